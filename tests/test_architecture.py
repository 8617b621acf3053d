"""The shape of the package: SQL only in the store, dialect knowledge only in the backends."""

from __future__ import annotations

import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "jobengine"
SQL = re.compile(r"\b(SELECT\s.+\sFROM|INSERT INTO|UPDATE\s+\w+\s+SET|DELETE FROM)\b")
DIALECT_TEST = re.compile(r"\bdialect\s*(==|!=|\bin\b)")
BACKENDS = {
    PACKAGE / "store" / name for name in ("sqlite.py", "postgres.py", "postgres_transaction.py")
}


def modules() -> list[Path]:
    return sorted(path for path in PACKAGE.rglob("*.py") if "migrations" not in path.parts)


def test_no_sql_outside_the_store() -> None:
    outside = [p for p in modules() if "store" not in p.parts and SQL.search(p.read_text())]
    assert outside == []


def test_no_dialect_comparison_outside_the_backends() -> None:
    found = [p for p in modules() if p not in BACKENDS and DIALECT_TEST.search(p.read_text())]
    assert found == []


def test_every_module_says_its_responsibility_first() -> None:
    silent = [p for p in modules() if p.stat().st_size and not p.read_text().startswith('"""')]
    assert silent == []


def test_the_patterns_catch_what_they_look_for() -> None:
    assert SQL.search("rows = transaction.execute('SELECT id FROM jobs')")
    assert DIALECT_TEST.search("if database.dialect == 'sqlite':")
