"""How commands print: a table on a terminal, plain columns in a pipe, JSON on request; times as
dates with their zone and ages, durations as durations, never seconds since the epoch."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from typing import Any

import click

from jobengine import wording
from jobengine.clock import utc_text

Data = dict[str, Any]
# (seconds in the unit, its name), largest first; a duration shows its two largest units.
# The names --json printed before it shared the HTTP API's representation: kept beside the
# representation's own names so that scripts written against them go on working.
FORMER_NAMES = {"arguments": "args", "every_seconds": "every", "description": "reading"}


def utc(moment: float | None) -> str:
    """'2026-12-01 09:21:58 UTC', '-' for no time; a stored time beyond any date says so."""
    if moment is None:
        return "-"
    try:
        return utc_text(moment)
    except (OverflowError, OSError, ValueError):
        return "a time out of range (the row is damaged)"


def when(moment: float | None) -> str:
    """The compact form for table columns and log lines: '2026-12-01 09:21:58' (UTC)."""
    return utc(moment).removesuffix(" UTC")


def duration(seconds: float | None) -> str:
    """'350 ms', '2.5 s', '42 s', '3 min 20 s', '1 h 2 min', '3 d 4 h'; '-' for none."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    return wording.duration(seconds)


def age(moment: float | None, now: float) -> str:
    """How far `moment` is from `now`: '3 s ago', 'in 2 min', 'now'; '-' for no time."""
    if moment is None or not math.isfinite(moment):
        return "-"
    difference = moment - now
    if abs(difference) < 0.5:
        return "now"
    return f"in {duration(difference)}" if difference > 0 else f"{duration(difference)} ago"


def moment_and_age(moment: float | None, now: float) -> str:
    """'2026-12-01 09:21:58 UTC (3 s ago)', or '-'."""
    if moment is None:
        return "-"
    text = utc(moment)
    return f"{text} ({age(moment, now)})" if text.endswith(" UTC") else text


def with_former_names(data: Data) -> Data:
    """A representation (jobengine.representation) with the former --json names added."""
    former = {old: data[new] for new, old in FORMER_NAMES.items() if new in data}
    return {**data, **former}


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[str(value) for value in row] for row in rows]
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        table = Table(*headers)
        for row in cells:
            table.add_row(*(Text(cell) for cell in row))
        Console().print(table)
        return
    widths = [max([len(h), *(len(row[i]) for row in cells)]) for i, h in enumerate(headers)]
    click.echo("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for row in cells:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
