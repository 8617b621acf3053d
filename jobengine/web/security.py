"""Who may use the dashboard: signed session cookies, bearer tokens, CSRF, security headers."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from http.cookies import SimpleCookie
from urllib.parse import quote, urlsplit

from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from jobengine.web.config import WebConfig, is_loopback

COOKIE = "jobengine_session"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
SESSION_KEY = "jobengine.session"
PRINCIPAL_KEY = "jobengine.principal"
OPEN_PATHS = ("/healthz", "/login", "/api/openapi.json")
OPEN_PREFIXES = ("/static/",)
MACHINE_PATHS = ("/metrics",)
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none';"
    " form-action 'self'"
)
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
}
LOCAL, SESSION, TOKEN = "local", "session", "token"


@dataclass(frozen=True)
class Session:
    """One browser's session: its id (which the CSRF token is bound to) and whether it logged in."""

    id: str
    authenticated: bool
    issued: int


class Sessions:
    """Signs and reads session cookies with the dashboard's secret."""

    def __init__(self, config: WebConfig) -> None:
        self.config = config

    def _signature(self, text: str) -> str:
        return hmac.new(self.config.secret, text.encode(), hashlib.sha256).hexdigest()

    def new(self, authenticated: bool = False) -> Session:
        return Session(secrets.token_urlsafe(18), authenticated, int(time.time()))

    def encode(self, session: Session) -> str:
        text = f"{session.id}.{int(session.authenticated)}.{session.issued}"
        return f"{text}.{self._signature(text)}"

    def decode(self, value: str | None) -> Session | None:
        """The session of a cookie value, or None if it is forged, malformed or expired."""
        parts = (value or "").split(".")
        if len(parts) != 4 or not parts[2].isdigit() or parts[1] not in ("0", "1"):
            return None
        text = ".".join(parts[:3])
        if not hmac.compare_digest(parts[3].encode(), self._signature(text).encode()):
            return None
        session = Session(parts[0], parts[1] == "1", int(parts[2]))
        if time.time() - session.issued > self.config.session_hours * 3600:
            return None
        return session

    def cookie(self, session: Session) -> str:
        """The Set-Cookie header value: HttpOnly, SameSite=Strict, Secure behind https."""
        secure = "; Secure" if self.config.secure_cookies else ""
        return f"{COOKIE}={self.encode(session)}; Path=/; HttpOnly; SameSite=Strict{secure}"

    def csrf_token(self, session: Session) -> str:
        return self._signature(f"csrf.{session.id}")

    def password_matches(self, given: str) -> bool:
        if self.config.password is None:
            return False
        expected = hashlib.sha256(self.config.password.encode()).digest()
        offered = hashlib.sha256(given.encode(errors="replace")).digest()
        return hmac.compare_digest(offered, expected)

    def token_matches(self, given: str) -> bool:
        offered = hashlib.sha256(given.encode(errors="replace")).digest()
        matches = [
            hmac.compare_digest(offered, hashlib.sha256(token.encode()).digest())
            for token in self.config.tokens
        ]
        return any(matches)


def session_of(request: Request) -> Session:
    session: Session = request.scope[SESSION_KEY]
    return session


def principal_of(request: Request) -> str:
    """How the request was let in: 'local' (no auth configured), 'session' or 'token'."""
    principal: str = request.scope[PRINCIPAL_KEY]
    return principal


def is_machine_path(path: str) -> bool:
    return path.startswith("/api/") or path == "/api" or path in MACHINE_PATHS


def check_csrf(request: Request, sessions: Sessions, submitted: str | None) -> None:
    """Refuse a state-changing request that does not carry this session's CSRF token.

    A request authenticated by a bearer token needs none: a browser never sends one by itself.
    """
    if principal_of(request) == TOKEN:
        return
    offered = submitted or request.headers.get(CSRF_HEADER) or ""
    expected = sessions.csrf_token(session_of(request)).encode()
    if not hmac.compare_digest(offered.encode(errors="replace"), expected):  # any text
        raise HTTPException(
            403,
            "missing or wrong CSRF token: reload the page and try again"
            " (API clients: send the X-CSRF-Token header, or use a bearer token)",
        )


class SecurityMiddleware:
    """Loads the session, lets in only who may come, and adds the security headers."""

    def __init__(self, app: ASGIApp, config: WebConfig) -> None:
        self.app = app
        self.config = config
        self.sessions = Sessions(config)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        cookies = SimpleCookie()
        try:
            cookies.load(request.headers.get("cookie", ""))
        except Exception:  # a malformed Cookie header is no session, not an error
            cookies = SimpleCookie()
        morsel = cookies.get(COOKIE)
        session = self.sessions.decode(morsel.value if morsel else None)
        fresh = session is None
        scope[SESSION_KEY] = session = session or self.sessions.new()
        outcome = self._admit(request, session)
        if isinstance(outcome, Response):
            await self._with_headers(outcome, None)(scope, receive, send)
            return
        scope[PRINCIPAL_KEY] = outcome
        await self._with_headers(self.app, session if fresh else None)(scope, receive, send)

    def _known_host(self, request: Request) -> bool:
        """Without authentication, only requests addressed to this machine by a loopback name
        (or the configured host and public address) are served: a web page that points its own
        name at 127.0.0.1 (DNS rebinding) cannot read the dashboard."""
        if self.config.auth_enabled:
            return True
        host = request.headers.get("host", "")
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        name = name.strip("[]").lower()
        allowed = {self.config.host.strip("[]").lower()}
        if self.config.public_url:
            allowed.add((urlsplit(self.config.public_url).hostname or "").lower())
        return is_loopback(name) or name in allowed

    def _admit(self, request: Request, session: Session) -> str | Response:
        """The principal the request comes as, or the response that turns it away."""
        path = request.url.path
        if not self._known_host(request):
            return PlainTextResponse(
                "this dashboard answers only to 127.0.0.1, localhost or its public URL", 421
            )
        authorization = request.headers.get("authorization", "")
        if authorization:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() == "bearer" and self.sessions.token_matches(token.strip()):
                return TOKEN
            if self.config.auth_enabled:
                return self._refuse(request, "wrong bearer token")
        if not self.config.auth_enabled:
            return LOCAL
        if path in OPEN_PATHS or path.startswith(OPEN_PREFIXES):
            return SESSION if session.authenticated else LOCAL
        if session.authenticated:
            return SESSION
        return self._refuse(request, "authentication required")

    def _refuse(self, request: Request, reason: str) -> Response:
        path = request.url.path
        if is_machine_path(path) or request.method != "GET":
            message = (
                f"{reason}: send 'Authorization: Bearer <token>' (a token of JOBENGINE_WEB_TOKENS)"
            )
            if not is_machine_path(path):
                message = f"{reason}: log in at /login first"
            return JSONResponse(
                {"error": {"status": 401, "message": message}},
                401,
                headers={"www-authenticate": 'Bearer realm="jobengine"'},
            )
        target = quote(path + (f"?{request.url.query}" if request.url.query else ""), safe="")
        return RedirectResponse(f"/login?next={target}", 303)

    def _with_headers(self, app: ASGIApp, new_session: Session | None) -> ASGIApp:
        async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
            async def send_with_headers(message: Message) -> None:
                if message["type"] == "http.response.start":
                    headers = MutableHeaders(scope=message)
                    for name, value in SECURITY_HEADERS.items():
                        headers.setdefault(name, value)
                    if not scope["path"].startswith(OPEN_PREFIXES):
                        headers.setdefault("cache-control", "no-store")
                    if new_session is not None and "set-cookie" not in headers:
                        headers.append("set-cookie", self.sessions.cookie(new_session))
                await send(message)

            await app(scope, receive, send_with_headers)

        return wrapped
