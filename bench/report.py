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
        lines = ["| " + " | ".join(self.columns) + " |"]
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
    """Print every table; in bench/results/latest.md replace the sections of these tables.

    Each benchmark keeps its own latest section, so running one benchmark (or a module of its
    own) does not wipe the results of the others.
    """
    for table in tables:
        print()
        print(table.text())
    run = [
        f"- when: {time.strftime('%Y-%m-%d %H:%M:%S %Z', time.localtime(started))}",
        f"- command: `{command}`",
        f"- machine at the start: {machine_at_start}",
        f"- the run took {time.time() - started:.0f} s",
    ]
    sections = read_sections(RESULTS / "latest.md")
    for table in tables:
        sections[table.title] = "\n".join([f"## {table.title}", "", *run, "", table.markdown()])
    RESULTS.mkdir(exist_ok=True)
    target = RESULTS / "latest.md"
    target.write_text(HEADER + "\n\n".join(sections.values()) + "\n")
    print(f"\nwritten to {target}")
    return target


HEADER = (
    "# Benchmark results\n\n"
    "The latest run of each benchmark (`python -m bench` runs them all; see docs/benchmarks.md)."
    "\n\n"
)


def read_sections(path: Path) -> dict[str, str]:
    """The sections of an earlier results file, by title (each starts with a `## ` heading)."""
    if not path.exists():
        return {}
    sections: dict[str, str] = {}
    for block in path.read_text().split("\n## ")[1:]:
        title = block.split("\n", 1)[0].strip()
        sections[title] = "## " + block.rstrip()
    return sections


def command_line() -> str:
    return " ".join(["python -m bench", *sys.argv[1:]])
