"""How diagnosis words what it found: durations, ages, counts, workers and actors; pure."""

from __future__ import annotations

import math

UNITS = ((86400, "d"), (3600, "h"), (60, "min"), (1, "s"))


def duration(seconds: float) -> str:
    """'350 ms', '2.5 s', '42 s', '3 min 20 s', '2 h 14 min', '3 d 4 h'."""
    seconds = abs(seconds) if math.isfinite(seconds) else 0.0
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 10:
        return f"{seconds:.1f} s".replace(".0 s", " s")
    whole = int(seconds)
    for index, (size, name) in enumerate(UNITS[:-1]):
        if whole >= size:
            next_size, next_name = UNITS[index + 1]
            rest = (whole % size) // next_size
            return f"{whole // size} {name}" + (f" {rest} {next_name}" if rest else "")
    return f"{whole} s"


def ago(moment: float, now: float) -> str:
    """'3 s ago', 'in 2 min', 'just now'."""
    difference = moment - now
    if abs(difference) < 0.05:
        return "just now"
    return f"in {duration(difference)}" if difference > 0 else f"{duration(difference)} ago"


def plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def worker_label(worker: str) -> str:
    """host:pid of a worker id host:pid:suffix (the id itself when it is not one)."""
    parts = worker.rsplit(":", 2)
    return f"{parts[0]}:{parts[1]}" if len(parts) == 3 and parts[1].isdigit() else worker


def actor_label(actor: str) -> str:
    """An event's actor as a sentence names it: 'worker host:pid', or 'cli', 'api'..."""
    label = worker_label(actor)
    return f"worker {label}" if label != actor else actor
