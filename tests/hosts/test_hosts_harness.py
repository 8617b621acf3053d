"""The multi-host harness itself: names, clocks, links and process trees do what tests assume."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from host_cluster import Cluster, Settings, cluster
from host_network import DATABASE_ADDRESS, Network, ip
from waiting import wait_for

pytestmark = [pytest.mark.timeout(60)]

PROBE = """
import json, socket, time
import psycopg
started = time.monotonic()
time.sleep(0.1)  # works under faketime only through faketime_site/sitecustomize.py
slept = time.monotonic() - started
with psycopg.connect({url!r}, connect_timeout=3) as connection:
    address = connection.execute("SELECT host(inet_client_addr())").fetchone()[0]
print(json.dumps({{"name": socket.gethostname(), "address": address, "slept": slept,
    "wall_minus_monotonic": time.time() - time.monotonic(), "monotonic": time.monotonic()}}))
"""


def probe(made: Cluster, number: int) -> dict[str, object]:
    output = made.host(number).python(PROBE.format(url=made.host_url))
    return dict(json.loads(output))


def true_offset() -> float:
    return time.time() - time.monotonic()


def test_each_host_has_its_own_name_address_and_clock(tmp_path: Path) -> None:
    offsets = [-30.0, 0.0, 30.0]
    with cluster(tmp_path, Settings(offsets=offsets)) as made:
        before = time.monotonic()
        seen = [probe(made, number) for number in (1, 2, 3)]
        after = time.monotonic()
        reference = true_offset()
    names = [entry["name"] for entry in seen]
    assert names == ["host-1", "host-2", "host-3"]
    assert os.uname().nodename not in names  # the test's own name is untouched
    assert [entry["address"] for entry in seen] == [Network.host_address(n) for n in (1, 2, 3)]
    for offset, entry in zip(offsets, seen, strict=True):
        skew = float(entry["wall_minus_monotonic"]) - reference  # type: ignore[arg-type]
        assert abs(skew - offset) < 0.5, f"{entry['name']}: wall clock off by {skew:.2f} s"
        assert before <= float(entry["monotonic"]) <= after  # type: ignore[arg-type]
        assert 0.1 <= float(entry["slept"]) < 0.5  # type: ignore[arg-type]


STEPPED = """
import sys, time
print(time.time() - time.monotonic(), flush=True)
for line in sys.stdin:
    print(time.time() - time.monotonic(), time.monotonic(), flush=True)
"""


def test_stepping_a_host_clock_moves_a_running_process_wall_clock_only(tmp_path: Path) -> None:
    with cluster(tmp_path, Settings(hosts=1, offsets=[0.0])) as made:
        host = made.host(1)
        with subprocess.Popen(
            host.command(sys.executable, "-c", STEPPED),
            env=host.environment,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        ) as process:
            assert process.stdin is not None and process.stdout is not None
            first = float(process.stdout.readline()) - true_offset()
            readings = []
            for step in (30.0, -60.0):
                assert host.clock is not None
                host.clock.step(step)
                process.stdin.write("read\n")
                process.stdin.flush()
                skew, monotonic = map(float, process.stdout.readline().split())
                readings.append((skew - true_offset(), monotonic))
            process.kill()
    assert abs(first) < 0.5
    assert abs(readings[0][0] - 30.0) < 0.5 and abs(readings[1][0] + 30.0) < 0.5
    assert abs(readings[1][1] - time.monotonic()) < 30  # the monotonic clock did not jump


def test_a_cut_link_isolates_only_that_host(tmp_path: Path) -> None:
    connect = "import psycopg; psycopg.connect({url!r}, connect_timeout=2).close()"
    with cluster(tmp_path, Settings(hosts=2)) as made:
        code = connect.format(url=made.host_url)
        made.network.cut(1)
        assert not made.network.link_is_up(1)
        with pytest.raises(AssertionError, match="python on host-1 failed"):
            made.host(1).python(code)
        made.host(2).python(code)  # the other host still reaches the database
        with psycopg.connect(made.engine.url, connect_timeout=2) as connection:
            assert connection.execute("SELECT 1").fetchone() == (1,)  # and so does the test
        made.network.restore(1)
        wait_for(lambda: _reaches(made, code), 10, "host-1 to reach the database again")


def _reaches(made: Cluster, code: str) -> bool:
    try:
        made.host(1).python(code)
        return True
    except AssertionError:
        return False


TREE = "sleep 60 & setsid sleep 60 & (sleep 60 &) ; exec sleep 60"


def test_pause_resume_and_kill_reach_the_whole_process_tree(tmp_path: Path) -> None:
    with cluster(tmp_path, Settings(hosts=1)) as made:
        host = made.host(1)
        root = subprocess.Popen(host.command("sh", "-c", TREE), env=host.environment)
        host.supervisor = root
        members = wait_for(lambda: _at_least(host.members(), 4), 10, "the whole tree to start")
        assert len(host.pause()) >= 4
        assert host.timeline.paused_since is not None
        host.resume()
        assert all(_state(pid) != "T" for pid in host.members())
        killed = host.kill()
        assert set(members) <= set(killed)
        assert not host.members() and root.poll() is not None
        assert len(host.timeline.kills) == 1


def _at_least(pids: list[int], count: int) -> list[int]:
    return pids if len(pids) >= count else []


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return "gone"


def test_teardown_removes_namespaces_processes_and_the_server(tmp_path: Path) -> None:
    with cluster(tmp_path, Settings(hosts=2)) as made:
        names = [made.network.database_namespace, *(h.namespace for h in made.hosts)]
        server_folder = Path(made.engine.url.split("host=")[1].split("&")[0])
        left = subprocess.Popen(made.host(1).command("sleep", "60"), env=made.host(1).environment)
        wait_for(lambda: made.host(1).members(), 10, "a process on host-1")
        assert DATABASE_ADDRESS in ip("-n", made.network.database_namespace, "address")
    assert left.wait(10) == -9  # the teardown killed what the test left running
    listed = ip("netns", "list")
    assert not [name for name in names if name in listed]
    assert not server_folder.exists()
