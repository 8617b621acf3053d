"""Where the dashboard plugs in the engine's diagnosis: why, doctor, support bundle.

`why` reads `Engine.why` (jobengine/why.py), `doctor` `Engine.doctor` (jobengine/doctor.py),
`support_bundle` jobengine/bundle.py; the pages and the API show what these return (None would
mean the engine lacks the feature, and they say so).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jobengine import bundle
from jobengine.engine import Engine
from jobengine.why import Verdict

__all__ = ["Check", "Verdict", "doctor", "support_bundle", "why"]


@dataclass(frozen=True)
class Check:
    """One health check: its name, OK / WARN / FAIL, what was found and how to fix it."""

    name: str
    level: str
    message: str
    fix: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "level": self.level, "message": self.message, "fix": self.fix}


def why(engine: Engine, job_id: int) -> Verdict:
    """The engine's verdict on a job (jobengine/why.py)."""
    return engine.why(job_id)


def doctor(engine: Engine) -> list[Check] | None:
    """The doctor's checks (jobengine/doctor.py), as the Health page shows them."""
    report = engine.doctor()
    return [Check(c.name, c.level, c.message, c.fix) for c in report.checks]


def support_bundle(engine: Engine) -> bytes | None:
    """The support bundle (jobengine/bundle.py) as .tar.gz bytes."""
    return bundle.build(engine)
