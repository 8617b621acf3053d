"""What a benchmark run measures: sizes, time boxes and poll intervals."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Options:
    samples: int = 200  # jobs per latency measurement
    jobs: int = 5_000  # jobs per throughput measurement
    seconds: float = 15.0  # time box of one throughput measurement
    finished: int = 1_000_000  # finished jobs under the claim check
    polls: tuple[float, ...] = (1.0, 0.1)  # poll intervals measured on SQLite
