"""Job types: a name mapped to a function and its defaults; only registered types ever run."""

from __future__ import annotations

import inspect
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from jobengine import limits
from jobengine.errors import ConfigurationError, InvalidArguments, UnknownJobType

ISOLATIONS = ("thread", "process")
FITTING_KEPT = 1_000  # sets of argument names known to bind, per job type
DEEPEST = 100  # levels of lists and dicts in a job's arguments or result
CHANGED_KEY = "a key that is not text, which would change when stored as JSON"
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
    takes_context: bool = field(init=False, repr=False, compare=False)  # its first is `ctx`

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ConfigurationError(f"a job type's name must be non-empty text, not {self.name!r}")
        object.__setattr__(self, "signature", _signature(self.name, self.function))
        object.__setattr__(self, "fitting", set())
        first = next(iter(self.signature.parameters), None)  # read once: every run asks
        object.__setattr__(self, "takes_context", first == "ctx")
        try:
            limits.queue_name(self.queue)
            limits.priority(self.priority)
            limits.attempts(self.max_attempts)
        except ConfigurationError as error:
            raise ConfigurationError(f"job type {self.name!r}: {error}") from None
        if self.timeout is not None and not _is_timeout(self.timeout):
            raise ConfigurationError(
                f"job type {self.name!r}: timeout must be positive seconds, at most 100 years, "
                f"not {self.timeout!r}"
            )
        if not isinstance(self.idempotent, bool):
            raise ConfigurationError(f"job type {self.name!r}: idempotent must be True or False")
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

    def encode_arguments(self, arguments: dict[str, Any]) -> str:
        """The arguments as JSON, checked to bind to the function; else InvalidArguments."""
        if type(arguments) is not dict:
            raise InvalidArguments(
                f"arguments of job type {self.name!r} must be a dict of argument names to "
                f"values, not {type(arguments).__name__}"
            )
        if not arguments:
            self.bind(arguments)
            return "{}"
        problem = json_problem(arguments)
        if problem:
            raise InvalidArguments(
                f"arguments of job type {self.name!r} must be JSON (str, int, float, bool, None, "
                f"lists and dicts with string keys): {problem}"
            )
        self.bind(arguments)
        return json.dumps(arguments, allow_nan=False, sort_keys=True)

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


def _signature(name: str, function: Any) -> inspect.Signature:
    if not callable(function):
        raise ConfigurationError(f"job type {name!r}: {function!r} is not a function")
    if inspect.iscoroutinefunction(function) or inspect.isasyncgenfunction(function):
        raise ConfigurationError(
            f"job type {name!r}: async job functions are not supported (nothing awaits them); "
            "register a plain def that calls asyncio.run(...)"
        )
    if inspect.isgeneratorfunction(function):
        raise ConfigurationError(
            f"job type {name!r}: a generator function would return a generator, not a result; "
            "return a value (a list, say) instead of yielding"
        )
    try:
        return inspect.signature(function)
    except (TypeError, ValueError) as error:
        raise ConfigurationError(
            f"job type {name!r}: cannot read the parameters of {function!r} ({error}); "
            "wrap it in a def"
        ) from None


def _is_timeout(value: Any) -> bool:
    try:
        limits.timeout(value)
    except ConfigurationError:
        return False
    return True


def json_problem(value: Any, depth: int = 0) -> str:
    """What keeps `value` from being stored as JSON and read back the same ('' if nothing):
    a tuple, a set or an object, a key that is not text, a NaN, text that is not UTF-8 (a
    lone surrogate), or nesting deeper than DEEPEST."""
    if depth > DEEPEST:
        return f"nested deeper than {DEEPEST} levels"
    if isinstance(value, str):
        return "" if value.isascii() or _is_utf8(value) else f"text that is not UTF-8: {value!r}"
    if value is None or isinstance(value, int):  # bool is an int
        return ""
    if isinstance(value, float):
        return "" if math.isfinite(value) else f"{value!r}, which JSON has no number for"
    if isinstance(value, list):
        return next(filter(None, (json_problem(item, depth + 1) for item in value)), "")
    if isinstance(value, dict):
        for key, item in value.items():
            problem = json_problem(key, depth + 1) if isinstance(key, str) else CHANGED_KEY
            problem = problem or json_problem(item, depth + 1)
            if problem:
                return problem
        return ""
    if isinstance(value, tuple):
        return "a tuple, which would change when stored as JSON (pass a list)"
    return f"a {type(value).__name__} value (pass lists, dicts and plain values)"


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


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

    def remove(self, name: str) -> None:
        self._types.pop(name, None)

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
