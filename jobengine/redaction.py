"""Hiding secrets in what people see: database URLs, connection strings, settings and messages.

Imports nothing from jobengine, so every layer (store, CLI, logs, support bundle) can use it.
The rules err on the side of hiding too much: a URL shown with its host masked is a nuisance,
a password shown is an incident.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, quote_plus, unquote

MASK = "***"
SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
# A URL inside free text: up to white space or a quote around it.
EMBEDDED_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>`]*")
# ?password=... or &sslpassword=... in a URL's query: the value runs to the next & or the end.
QUERY_SECRET = re.compile(r"(?i)([?&](?:ssl)?password=)([^&]*)")
# password=... in a key=value connection string: a quoted value, or up to white space.
PAIR_SECRET = re.compile(r"(?i)(\b(?:ssl)?password\s*=\s*)('(?:[^'\\]|\\.)*'?|[^\s'\"]+)")
PASSWORD_FIELDS = ("password", "sslpassword")
# The words of a setting's name that make its value a secret (api_key, apiKey, DB_PASSWORD).
SECRET_WORDS = frozenset({"key", "pass", "pwd", "auth", "cookie", "credential", "authorization"})
SECRET_ENDINGS = ("password", "passwd", "passphrase", "secret", "token", "apikey")
# Where a driver's message may cut a password it misread: between URL punctuation.
FRAGMENT_SPLIT = re.compile(r"[/?#@:&=\s]+")
SHORTEST_FRAGMENT = 4  # shorter pieces would blank ordinary words ("p" in "postgres")


def mask_url(url: str) -> str:
    """`url` (a URL or a key=value connection string) with every password shown as ***.

    The text rules cover what libpq would misread (`user:pa#ss/w?rd@host`, a password that
    was not percent-encoded: the user information runs to the last @); psycopg's conninfo
    parser (when installed) then reads the result as libpq would, and if it still finds a
    password there, nothing but the scheme is shown.
    """
    if not isinstance(url, str):
        return MASK
    masked = _mask_uri(url) if SCHEME.match(url) else PAIR_SECRET.sub(rf"\1{MASK}", url)
    if any(password != MASK for password in _libpq_passwords(masked)):
        scheme = SCHEME.match(url)
        return f"{scheme.group(0)}{MASK}" if scheme else MASK
    return masked


def mask_text(text: str) -> str:
    """Free text (a message, a log line) with every URL in it masked and every password=... too."""
    if "://" in text:  # the searches cost more than these tests: most lines hold neither
        text = EMBEDDED_URL.sub(lambda match: mask_url(match.group(0)), text)
    if "password" in text.lower():
        text = PAIR_SECRET.sub(rf"\1{MASK}", text)
    return text


def scrub(text: str, urls: Iterable[str | None]) -> str:
    """`text` with the passwords of `urls` hidden wherever they appear, even outside a URL.

    For messages made by other code, such as a driver's error quoting the part of a URL it
    misread ("failed to resolve host 'Secret99@127.0.0.1'"): each password, its encoded forms,
    and its pieces between URL punctuation of SHORTEST_FRAGMENT characters or more become ***.
    """
    masked = mask_text(text)
    for url in urls:
        for secret in _hidden_forms(url) if url else ():
            masked = masked.replace(secret, MASK)
    return masked


def redact(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of settings with the values of secret-looking keys (password, secret, token, key)
    replaced by ***, nested mappings and lists redacted too, and URLs in text masked."""
    return {key: _redact_value(key, value) for key, value in mapping.items()}


def secrets_of(url: str) -> set[str]:
    """Every password `url` holds as the text rules and libpq read it, decoded or not, and its
    pieces between URL punctuation: each at least SHORTEST_FRAGMENT characters long."""
    found = {match.group(2) for match in QUERY_SECRET.finditer(url)}
    found |= {match.group(2).strip("'") for match in PAIR_SECRET.finditer(url)}
    password = _user_information(QUERY_SECRET.sub(r"\1", url))[1]
    found |= {password} if password else set()
    found |= set(_libpq_passwords(url))
    found |= {unquote(secret) for secret in found}
    found |= {piece for secret in found for piece in FRAGMENT_SPLIT.split(secret)}
    return {secret for secret in found if len(secret) >= SHORTEST_FRAGMENT and secret != MASK}


def _user_information(url: str) -> tuple[str | None, str | None]:
    """(user, password) of scheme://user:password@host..., reading up to the last @ so that an
    unencoded @, /, ? or # in the password stays in it; (None, None) where there is none."""
    scheme = SCHEME.match(url)
    rest = url[scheme.end() :] if scheme else ""
    at = rest.rfind("@")
    if at <= 0 or rest.startswith("/"):
        return None, None
    user, colon, password = rest[:at].partition(":")
    return user, (password if colon else None)


def _mask_uri(url: str) -> str:
    """scheme://user:***@host/path?password=***."""
    masked = QUERY_SECRET.sub(rf"\1{MASK}", url)
    user, password = _user_information(masked)
    if password is None:
        return masked
    scheme = SCHEME.match(masked)
    assert scheme is not None  # _user_information found user information after it
    return f"{scheme.group(0)}{user}:{MASK}@{masked[masked.rfind('@') + 1 :]}"


def _libpq_passwords(text: str) -> list[str]:
    """The passwords libpq reads in a connection string; none where psycopg is missing or the
    text is not one it reads (then nothing could connect with it either)."""
    scheme = SCHEME.match(text)
    postgres = (
        scheme.group(0).lower() in ("postgresql://", "postgres://") if scheme else "=" in text
    )
    if not postgres:
        return []
    try:
        from psycopg.conninfo import conninfo_to_dict

        parsed = conninfo_to_dict(text)
    except Exception:  # no psycopg (then the text rules stand), or not a string libpq reads
        return []
    return [str(parsed[field]) for field in PASSWORD_FIELDS if parsed.get(field)]


@functools.lru_cache(maxsize=64)
def _hidden_forms(url: str) -> tuple[str, ...]:
    """The texts `scrub` replaces for `url`, longest first (worked out once per URL: the worker
    scrubs every line of its log): its secrets, as written and percent-encoded, but never the
    user name the masked URL still shows."""
    shown = _user_information(url)[0]
    forms = {
        form
        for secret in secrets_of(url)
        for form in (secret, quote(secret, safe=""), quote(secret), quote_plus(secret))
    }
    return tuple(sorted(forms - {shown or ""}, key=len, reverse=True))


def _is_secret_key(key: str) -> bool:
    """Whether a setting's name says its value is a secret: its words, split at case changes
    and punctuation, include key, pass, auth... or end in password, secret, token, apikey."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", key).lower()
    words = re.findall(r"[a-z0-9]+", spaced)
    forms = {form for word in words for form in (word, word.removesuffix("s"))}
    return any(form in SECRET_WORDS or form.endswith(SECRET_ENDINGS) for form in forms)


def _redact_value(key: str, value: Any) -> Any:
    if _is_secret_key(str(key)) and value not in (None, ""):
        return MASK
    if isinstance(value, Mapping):
        return redact({str(inner): item for inner, item in value.items()})
    if isinstance(value, list | tuple):
        return [_redact_value(key, item) for item in value]
    if isinstance(value, str):
        return mask_text(value)
    return value
