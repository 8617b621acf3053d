"""The dashboard's settings: where it listens, who may use it, and whether it may act."""

from __future__ import annotations

import ipaddress
import os
import secrets
from dataclasses import dataclass, field

from jobengine.errors import ConfigurationError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8400
PASSWORD_VARIABLE = "JOBENGINE_WEB_PASSWORD"
TOKENS_VARIABLE = "JOBENGINE_WEB_TOKENS"
SECRET_VARIABLE = "JOBENGINE_WEB_SECRET"


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach: 127.0.0.0/8, ::1 and localhost."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, repr=False)
class WebConfig:
    """How the dashboard runs. `password` guards the pages, `tokens` the API (bearer)."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    password: str | None = None
    tokens: tuple[str, ...] = ()
    read_only: bool = False
    public_url: str | None = None
    dead_after: float = 20.0
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    session_hours: float = 12.0

    def __post_init__(self) -> None:
        if self.password is not None and not self.password:
            raise ConfigurationError(f"{PASSWORD_VARIABLE} is empty; set a password or unset it")
        if any(not token or token != token.strip() for token in self.tokens):
            raise ConfigurationError(
                f"{TOKENS_VARIABLE} holds an empty token or one with spaces around it;"
                " separate tokens with commas only"
            )
        if self.public_url is not None and not self.public_url.startswith(("http://", "https://")):
            raise ConfigurationError(
                f"public URL {self.public_url!r} must start with http:// or https://"
            )

    def __repr__(self) -> str:  # never show the password, the tokens or the secret
        return (
            f"WebConfig(host={self.host!r}, port={self.port}, auth={self.auth_enabled},"
            f" read_only={self.read_only})"
        )

    @property
    def auth_enabled(self) -> bool:
        return self.password is not None or bool(self.tokens)

    @property
    def secure_cookies(self) -> bool:
        return bool(self.public_url and self.public_url.startswith("https://"))

    def check_binding(self) -> None:
        """Refuse to listen beyond this machine without a password for the pages."""
        if is_loopback(self.host) or self.password is not None:
            return
        raise ConfigurationError(
            f"the dashboard would listen on {self.host}, reachable from other machines, without"
            f" authentication; set {PASSWORD_VARIABLE} (and {TOKENS_VARIABLE}, comma-separated,"
            f" for the API), or listen on {DEFAULT_HOST}"
        )

    def job_url(self, job_id: int) -> str | None:
        """The job's page at the public address, when one is configured."""
        if self.public_url is None:
            return None
        return f"{self.public_url.rstrip('/')}/jobs/{job_id}"


def from_environment(**settings: object) -> WebConfig:
    """A WebConfig whose password, tokens and session secret come from the environment."""
    password = os.environ.get(PASSWORD_VARIABLE) or None
    tokens = tuple(t.strip() for t in os.environ.get(TOKENS_VARIABLE, "").split(",") if t.strip())
    secret = os.environ.get(SECRET_VARIABLE)
    extra: dict[str, object] = {"secret": secret.encode()} if secret else {}
    return WebConfig(password=password, tokens=tokens, **extra, **settings)  # type: ignore[arg-type]
