"""Where the dashboard plugs in engine features still being built: why, doctor, support bundle.

Each function returns None while the engine lacks the feature (issue 12), and the pages and the
API then say so. Once `Engine.why(job_id)` returns a verdict with `code`, `sentence` and
`evidence`, and the doctor exists, only this module changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jobengine.engine import Engine


@dataclass(frozen=True)
class Verdict:
    """Why a job is where it is: a stable code, one sentence, and the facts behind it."""

    code: str
    sentence: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "sentence": self.sentence, "evidence": self.evidence}


@dataclass(frozen=True)
class Check:
    """One health check: its name, OK / WARN / FAIL, what was found and how to fix it."""

    name: str
    level: str
    message: str
    fix: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "level": self.level, "message": self.message, "fix": self.fix}


def why(engine: Engine, job_id: int) -> Verdict | None:
    """The engine's verdict on a job, or None until the engine can give one."""
    explain = getattr(engine, "why", None)
    if explain is None:
        return None
    verdict = explain(job_id)
    evidence = getattr(verdict, "evidence", {}) or {}
    return Verdict(str(verdict.code), str(verdict.sentence), dict(evidence))


def doctor(engine: Engine) -> list[Check] | None:
    """The doctor's checks, or None until the engine has a doctor (the basic checks stand in)."""
    return None


def support_bundle(engine: Engine) -> bytes | None:
    """The support bundle as .tar.gz bytes, or None until the engine can build one."""
    return None
