"""Recurring schedules fired by three real processes, one killed and restarted: exactly once."""

from __future__ import annotations

import signal
import time

import pytest
from schedule_ticker import Compression, fired_runs, read_until_tick, ticks_and_inserts

from jobengine import Engine

START = 1_800_000_000.0  # a whole multiple of five minutes


@pytest.mark.postgres
@pytest.mark.timeout(90)
def test_three_processes_one_killed_fire_each_run_exactly_once(postgres_url: str) -> None:
    setup = Engine(postgres_url)
    assert setup.store.schedules.count() == 0  # the schema exists before the processes start
    setup.close()
    began = time.monotonic()
    plan = Compression(postgres_url, time.time() + 1.5, 0.2, 100, START, 20)
    first, victim, third = (plan.start() for _ in range(3))
    killed_output = read_until_tick(victim, plan.ticks // 2 - 10)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)
    assert victim.stdout is not None
    victim.stdout.close()
    replacement = plan.start(restart=True)
    lived = [first, third, replacement]
    outputs = [process.communicate(timeout=60)[0] for process in lived]
    elapsed = time.monotonic() - began
    assert victim.returncode == -signal.SIGKILL
    assert [process.returncode for process in lived] == [0, 0, 0]

    finished = [ticks_and_inserts(output) for output in outputs]
    killed_ticks, killed_inserts = ticks_and_inserts(killed_output)
    assert finished[0][0] == finished[1][0] == list(range(plan.ticks))
    restarted_ticks = finished[2][0]
    # The replacement may start within the tick the victim printed last: it ticks that moment
    # again, and the exactly-once check below is what must hold.
    assert restarted_ticks[0] >= killed_ticks[-1] and restarted_ticks[-1] == plan.ticks - 1

    runs, submit_events = fired_runs(postgres_url)
    expected = plan.expected_runs()
    duplicates = {run: n for run, n in runs.items() if n != 1}
    assert duplicates == {}
    assert set(runs) - expected == set()
    assert expected - set(runs) == set()  # none missed
    assert submit_events == len(expected)
    inserts = [inserted for _, inserted in finished] + [killed_inserts]
    # The killed process may have committed a tick it never got to print.
    assert len(expected) - plan.schedules <= sum(inserts) <= len(expected)
    print(
        f"\n{plan.schedules} schedules x {plan.ticks} ticks, 3 processes, SIGKILL after tick "
        f"{killed_ticks[-1]}, restarted at tick {restarted_ticks[0]}: {len(runs)} runs, "
        f"{len(duplicates)} duplicates, {len(expected - set(runs))} missed; inserted by "
        f"survivors, restarted, killed: {inserts}; {elapsed:.1f} s"
    )
