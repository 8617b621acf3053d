"""Network namespaces for one test: a database namespace with a switch, a veth link per host.

Layout (every address exists only inside the test's own namespaces; nothing is routed to the
machine's real network, and the root namespace has no link into them at all):

    database namespace: bridge "switch" 10.47.0.1/24, one port "port<N>" per host
    host N namespace:   "eth0" 10.47.0.<10+N>/24, the other end of port<N>

The test process reaches the database through PostgreSQL's Unix socket (a file, so it crosses
network namespaces), never through this network; a link cut therefore never blinds the test.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

NETNS_FOLDER = "/run/netns"
PREFIX = "jet"  # jobengine test: <prefix><creator pid>-<token>-<role>
STALE = re.compile(rf"^{PREFIX}(\d+)-[0-9a-f]+-")
SUBNET = "10.47.0"
DATABASE_ADDRESS = f"{SUBNET}.1"
SWITCH = "switch"


def ip(*arguments: str) -> str:
    """Run `ip ARGUMENTS`; raise with ip's own message when it fails."""
    result = subprocess.run(["ip", *arguments], capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        raise RuntimeError(f"`ip {' '.join(arguments)}` failed: {result.stderr.strip()}")
    return result.stdout


def namespace_members(namespace: str) -> list[int]:
    """Pids of every living process in the network namespace (what `ip netns pids` lists)."""
    try:
        target = os.stat(f"{NETNS_FOLDER}/{namespace}")
    except FileNotFoundError:
        return []
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            found = os.stat(f"/proc/{entry}/ns/net")
        except OSError:
            continue  # ended meanwhile, or a zombie
        if (found.st_ino, found.st_dev) == (target.st_ino, target.st_dev):
            members.append(int(entry))
    return members


def signal_all(pids: list[int], number: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, number)


def empty_namespace(namespace: str, timeout: float = 10.0) -> None:
    """SIGKILL every process of the namespace until none is left."""
    deadline = time.monotonic() + timeout
    while members := namespace_members(namespace):
        signal_all(members, signal.SIGKILL)
        if time.monotonic() > deadline:
            raise RuntimeError(f"processes {members} of namespace {namespace} survive SIGKILL")
        time.sleep(0.02)


def delete_namespace(namespace: str) -> None:
    empty_namespace(namespace)
    if os.path.exists(f"{NETNS_FOLDER}/{namespace}"):
        ip("netns", "delete", namespace)


def sweep_stale_namespaces() -> list[str]:
    """Delete the namespaces of earlier test runs whose creating process is gone."""
    swept = []
    names = os.listdir(NETNS_FOLDER) if os.path.isdir(NETNS_FOLDER) else []
    for name in names:
        found = STALE.match(name)
        if found and not os.path.exists(f"/proc/{found.group(1)}"):
            with contextlib.suppress(RuntimeError):
                delete_namespace(name)
                swept.append(name)
    return swept


@dataclass
class Network:
    """A database namespace and `hosts` host namespaces, each linked to the database's switch."""

    hosts: int
    token: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    created: list[str] = field(default_factory=list)

    @property
    def database_namespace(self) -> str:
        return f"{PREFIX}{os.getpid()}-{self.token}-db"

    def host_namespace(self, number: int) -> str:
        return f"{PREFIX}{os.getpid()}-{self.token}-h{number}"

    @staticmethod
    def host_address(number: int) -> str:
        return f"{SUBNET}.{10 + number}"

    @staticmethod
    def port(number: int) -> str:
        """The switch port (in the database namespace) that host `number` is plugged into."""
        return f"port{number}"

    def create(self) -> None:
        database = self.database_namespace
        self._add_namespace(database)
        ip("-n", database, "link", "add", SWITCH, "type", "bridge")
        ip("-n", database, "address", "add", f"{DATABASE_ADDRESS}/24", "dev", SWITCH)
        ip("-n", database, "link", "set", SWITCH, "up")
        for number in range(1, self.hosts + 1):
            self._add_host(number)

    def _add_namespace(self, name: str) -> None:
        ip("netns", "add", name)
        self.created.append(name)
        ip("-n", name, "link", "set", "lo", "up")

    def _add_host(self, number: int) -> None:
        database, host, port = (
            self.database_namespace,
            self.host_namespace(number),
            self.port(number),
        )
        self._add_namespace(host)
        ip(
            "-n",
            database,
            "link",
            "add",
            port,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            host,
        )
        ip("-n", database, "link", "set", port, "master", SWITCH, "up")
        ip("-n", host, "address", "add", f"{self.host_address(number)}/24", "dev", "eth0")
        ip("-n", host, "link", "set", "eth0", "up")

    def cut(self, number: int) -> None:
        """Unplug host `number`: its switch port goes down; its packets go nowhere."""
        ip("-n", self.database_namespace, "link", "set", self.port(number), "down")

    def restore(self, number: int) -> None:
        ip("-n", self.database_namespace, "link", "set", self.port(number), "up")

    def link_is_up(self, number: int) -> bool:
        state = ip("-n", self.database_namespace, "-o", "link", "show", self.port(number))
        return "state UP" in state or ",UP" in state.split(">")[0]

    def destroy(self) -> None:
        """Kill every process left in the namespaces, then delete them (hosts first)."""
        problems = []
        for name in reversed(self.created):
            try:
                delete_namespace(name)
            except RuntimeError as error:
                problems.append(str(error))
        self.created.clear()
        if problems:
            raise RuntimeError("; ".join(problems))


@contextlib.contextmanager
def network(hosts: int) -> Iterator[Network]:
    """A new network for one test, torn down afterwards even when the test fails."""
    sweep_stale_namespaces()
    made = Network(hosts)
    try:
        made.create()
        yield made
    finally:
        made.destroy()
