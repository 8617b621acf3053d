"""Job types: a name mapped to a function and its defaults; only registered types ever run."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from jobengine.errors import ConfigurationError, InvalidArguments, UnknownJobType

ISOLATIONS = ("thread", "process")
FITTING_KEPT = 1_000  # sets of argument names known to bind, per job type
JobFunction = Callable[..., Any]


@dataclass(frozen=True)
class JobType:
    name: str
    function: JobFunction
    queue: str = "default"
    priority: int = 0
    timeout: float | None = None
    max_attempts: int = 1
    isolation: str = "thread"
    idempotent: bool = False
    signature: inspect.Signature = field(init=False, repr=False, compare=False)
    fitting: set[frozenset[str]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "signature", inspect.signature(self.function))
        object.__setattr__(self, "fitting", set())
        if self.isolation not in ISOLATIONS:
            raise ConfigurationError(
                f"job type {self.name!r}: isolation must be one of {ISOLATIONS}, "
                f"not {self.isolation!r}"
            )
        if self.isolation == "process" and not _importable(self.function):
            raise ConfigurationError(
                f"job type {self.name!r}: a process-isolated job function must be defined at "
                "the top level of an importable module (not nested, not in the script being "
                "run), so its child process can import it"
            )
        if self.max_attempts < 1:
            raise ConfigurationError(f"job type {self.name!r}: max_attempts must be 1 or more")
        if self.timeout is not None and self.timeout <= 0:
            raise ConfigurationError(f"job type {self.name!r}: timeout must be positive seconds")

    @property
    def takes_context(self) -> bool:
        parameters = list(self.signature.parameters)
        return bool(parameters) and parameters[0] == "ctx"

    def encode_arguments(self, arguments: dict[str, Any]) -> str:
        """The arguments as JSON, checked to bind to the function; else InvalidArguments."""
        if not arguments and type(arguments) is dict:
            self.bind(arguments)
            return "{}"
        try:
            text = json.dumps(arguments, allow_nan=False, sort_keys=True)
        except (TypeError, ValueError) as error:
            raise InvalidArguments(
                f"arguments of job type {self.name!r} must be JSON (str, int, float, bool, None, "
                f"lists and dicts with string keys): {error}"
            ) from error
        if not _stays_as_it_is(arguments):
            raise InvalidArguments(
                f"arguments of job type {self.name!r} would change when stored as JSON "
                "(tuples, non-string dict keys or sets); pass lists and string keys instead"
            )
        self.bind(arguments)
        return text

    def bind(self, arguments: dict[str, Any]) -> None:
        """Raise InvalidArguments unless the function takes these keyword arguments (what binds
        depends only on their names, so each set of names is checked once)."""
        names = frozenset(arguments)
        if names in self.fitting:
            return
        leading = [None] if self.takes_context else []
        try:
            self.signature.bind(*leading, **arguments)
        except TypeError as error:
            raise InvalidArguments(
                f"arguments do not fit job type {self.name!r}{self.signature}: {error}"
            ) from error
        if len(self.fitting) < FITTING_KEPT:
            self.fitting.add(names)


def _importable(function: JobFunction) -> bool:
    module = getattr(function, "__module__", "__main__")
    return module != "__main__" and "<locals>" not in getattr(function, "__qualname__", "<locals>")


def _stays_as_it_is(value: Any) -> bool:
    """Whether JSON gives `value` back as it is: no tuples, no keys that are not strings."""
    if isinstance(value, dict):
        return all(isinstance(key, str) and _stays_as_it_is(item) for key, item in value.items())
    if isinstance(value, list):
        return all(_stays_as_it_is(item) for item in value)
    return value is None or isinstance(value, str | int | float)


class Registry:
    """Names to job types."""

    def __init__(self) -> None:
        self._types: dict[str, JobType] = {}

    def add(self, job_type: JobType) -> None:
        existing = self._types.get(job_type.name)
        if existing is not None and existing.function is not job_type.function:
            raise ConfigurationError(
                f"job type {job_type.name!r} is registered twice; give one of them another name="
            )
        self._types[job_type.name] = job_type

    def get(self, name: str) -> JobType:
        try:
            return self._types[name]
        except KeyError:
            known = (
                ", ".join(sorted(self._types)) or "none (pass --app or register with @engine.job)"
            )
            raise UnknownJobType(
                f"job type {name!r} is not registered; known types: {known}"
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self._types

    def names(self) -> list[str]:
        return sorted(self._types)
