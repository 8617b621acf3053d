"""How the pages print times, ages, durations and JSON: as people read them, never epochs."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

LEVEL_RANKS = {
    "DEBUG": 10,
    "INFO": 20,
    "STDOUT": 20,
    "WARNING": 30,
    "STDERR": 30,
    "ERROR": 40,
    "CRITICAL": 50,
}
LEVEL_CHOICES: tuple[tuple[str, str], ...] = (
    ("", "all levels"),
    ("INFO", "info and above"),
    ("WARNING", "warnings and errors"),
    ("ERROR", "errors only"),
)


def time_text(moment: float | None) -> str:
    """'2026-01-31 09:21:58 UTC', or '-' when there is no time."""
    if moment is None:
        return "-"
    try:
        return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, ValueError, OSError):
        return f"{moment!r} (out of range)"


def duration(seconds: float | None) -> str:
    """'0.25 s', '42 s', '3 min 20 s', '2 h 14 min', '3 d 4 h'."""
    if seconds is None:
        return "-"
    seconds = max(0.0, seconds)
    if seconds < 10:
        return f"{seconds:.2f} s".replace(".00 s", " s")
    if seconds < 60:
        return f"{seconds:.0f} s"
    whole = int(seconds)
    for size, unit, next_size, next_unit in (
        (86400, "d", 3600, "h"),
        (3600, "h", 60, "min"),
        (60, "min", 1, "s"),
    ):
        if whole >= size:
            rest = (whole % size) // next_size
            return f"{whole // size} {unit}" + (f" {rest} {next_unit}" if rest else "")
    return f"{whole} s"  # pragma: no cover - unreachable, seconds >= 60 here


def relative(moment: float | None, now: float) -> str:
    """'3 s ago', 'in 2 min', or '-'."""
    if moment is None:
        return "-"
    difference = moment - now
    if abs(difference) < 0.5:
        return "now"
    return f"in {duration(difference)}" if difference > 0 else f"{duration(-difference)} ago"


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def compact_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def level_rank(level: str) -> int:
    return LEVEL_RANKS.get(level.upper(), 20)


def log_file_line(at: float, level: str, attempt: int, text: str) -> str:
    """One line of a downloaded .log file (continuation lines indented under the first)."""
    stamp = time_text(at)
    lines = text.splitlines() or [""]
    head = f"{stamp} {level:<8} [attempt {attempt}] {lines[0]}"
    return "\n".join([head, *(" " * 4 + line for line in lines[1:])]) + "\n"
