"""The results: tables printed to stdout and written as Markdown to bench/results/latest.md."""

from __future__ import annotations

import os
import platform
import sqlite3
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass
class Table:
    """One benchmark's results: a title, column names, rows and notes."""

    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, *values: object) -> None:
        self.rows.append([format_value(value) for value in values])
        print("  " + " | ".join(self.rows[-1]), flush=True)

    def text(self) -> str:
        widths = [
            max(len(cell) for cell in [name, *(row[i] for row in self.rows)])
            for i, name in enumerate(self.columns)
        ]
        lines = [
            self.title,
            "  ".join(n.ljust(w) for n, w in zip(self.columns, widths, strict=True)),
        ]
        lines += [
            "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in self.rows
        ]
        return "\n".join(lines + [f"  {note}" for note in self.notes])

    def markdown(self) -> str:
        lines = [f"### {self.title}", "", "| " + " | ".join(self.columns) + " |"]
        lines.append("|" + "|".join("---" for _ in self.columns) + "|")
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        return "\n".join(lines + [""] + [f"- {note}" for note in self.notes])


def format_value(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 10 else f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def machine() -> str:
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    return (
        f"{platform.platform()}, {os.cpu_count()} cores (load average {load}), "
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}"
    )


def write(tables: list[Table], command: str, started: float, machine_at_start: str) -> Path:
    """Print every table and write them all to bench/results/latest.md."""
    for table in tables:
        print()
        print(table.text())
    header = [
        "# Benchmark results",
        "",
        f"- when: {time.strftime('%Y-%m-%d %H:%M:%S %Z', time.localtime(started))}",
        f"- command: `{command}`",
        f"- machine at the start: {machine_at_start}",
        f"- took: {time.time() - started:.0f} s",
        "",
    ]
    body = "\n\n".join(table.markdown() for table in tables)
    RESULTS.mkdir(exist_ok=True)
    target = RESULTS / "latest.md"
    target.write_text("\n".join(header) + "\n" + body + "\n")
    print(f"\nwritten to {target}")
    return target


def command_line() -> str:
    return " ".join(["python -m bench", *sys.argv[1:]])
