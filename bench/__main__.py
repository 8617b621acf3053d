"""`python -m bench [latency|throughput|claim|cancel|recovery|memory|cost|skew-recovery]`: run the
suite, print, save (skew-recovery, 9 minutes as root, only when named);
`python -m bench compare [--quick]`: jobengine side by side with its peers (bench/compare.py)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

from bench import bench_recovery, cancel, claim, cost, latency, memory, skew_recovery, throughput
from bench.options import Options
from bench.report import Table, command_line, machine, write

SUITES: dict[str, Callable[[Options], Table]] = {
    "latency": latency.run,
    "throughput": throughput.run,
    "claim": claim.run,
    "cancel": cancel.run,
    "recovery": bench_recovery.run,
    "memory": memory.run,
    "cost": cost.run,
    "skew-recovery": skew_recovery.run,
}
ONLY_WHEN_NAMED = frozenset({"skew-recovery"})  # needs root and network namespaces


def parse(argv: list[str] | None = None) -> tuple[list[str], Options]:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="The jobengine benchmark suite; each figure is shown next to a reference "
        "measured in the same run. Results go to stdout and bench/results/latest.md.",
    )
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"one of {', '.join(SUITES)}")
    defaults = Options()
    parser.add_argument("--samples", type=int, default=defaults.samples, help="latency jobs")
    parser.add_argument("--jobs", type=int, default=defaults.jobs, help="throughput jobs")
    parser.add_argument(
        "--seconds", type=float, default=defaults.seconds, help="time box per throughput run"
    )
    parser.add_argument(
        "--finished", type=int, default=defaults.finished, help="history under the claim check"
    )
    arguments = parser.parse_args(argv)
    unknown = [name for name in arguments.names if name not in SUITES]
    if unknown:
        parser.error(f"unknown benchmark {unknown[0]!r}; choose from {', '.join(SUITES)}")
    options = Options(arguments.samples, arguments.jobs, arguments.seconds, arguments.finished)
    return arguments.names or [name for name in SUITES if name not in ONLY_WHEN_NAMED], options


def main(argv: list[str] | None = None) -> None:
    arguments = sys.argv[1:] if argv is None else argv
    if arguments[:1] == ["compare"]:
        from bench import compare

        compare.main(arguments[1:])
        return
    names, options = parse(argv)
    started, machine_at_start = time.time(), machine()
    print(f"machine: {machine_at_start}", flush=True)
    tables = []
    for name in names:
        print(f"== {name}", flush=True)
        tables.append(SUITES[name](options))
    write(tables, command_line(), started, machine_at_start)


if __name__ == "__main__":
    main()
