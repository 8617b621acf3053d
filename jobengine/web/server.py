"""Serving the dashboard with uvicorn: in the foreground, or in a thread beside workers."""

from __future__ import annotations

import signal
import socket
import threading
import time

import uvicorn

from jobengine.engine import Engine
from jobengine.errors import ConfigurationError
from jobengine.interrupts import SignalEvent
from jobengine.web.app import create_app
from jobengine.web.config import WebConfig

START_TIMEOUT = 10.0


def listen(host: str, port: int) -> socket.socket:
    """A bound listening socket (port 0 picks a free one), or a clear error if it is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # Naming the protocol lets asyncio turn Nagle's algorithm off on each connection
    # (TCP_NODELAY): otherwise a response written in two parts waits for the client's
    # delayed acknowledgement, 40 ms on every request of a kept-alive connection.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as error:
        sock.close()
        raise ConfigurationError(
            f"cannot listen on {host}:{port} ({error.strerror}); choose another --port or --host"
        ) from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


class DashboardServer:
    """The dashboard on its own socket; `start()` runs it in a thread, `run()` in this one."""

    def __init__(self, engine: Engine, config: WebConfig) -> None:
        config.check_binding()
        engine.store  # noqa: B018 - a missing or outdated database is said before the port is taken
        self.config = config
        self.socket = listen(config.host, config.port)
        self.port = int(self.socket.getsockname()[1])
        self.server = uvicorn.Server(
            uvicorn.Config(
                create_app(engine, config),
                log_level="warning",
                access_log=False,
                lifespan="off",
                timeout_graceful_shutdown=2,
            )
        )
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = self.config.host
        shown = f"[{host.strip('[]')}]" if ":" in host else host
        return f"http://{shown}:{self.port}"

    def _serve(self) -> None:
        try:
            self.server.run(sockets=[self.socket])
        finally:
            self.socket.close()

    def run(self) -> None:
        """Serve until SIGINT or SIGTERM, then stop cleanly (call from the main thread)."""
        stopped = SignalEvent()  # set by the signal handlers
        signals = (signal.SIGINT, signal.SIGTERM)
        previous = {number: signal.signal(number, lambda *_: stopped.set()) for number in signals}
        try:
            self.start()
            while self.thread is not None and self.thread.is_alive() and not stopped.wait(0.5):
                pass
        finally:
            self.stop()
            for number, handler in previous.items():
                signal.signal(number, handler)

    def start(self) -> DashboardServer:
        """Serve in a daemon thread; returns once the server accepts connections."""
        self.thread = threading.Thread(target=self._serve, name="dashboard", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise ConfigurationError(f"the dashboard did not start on {self.url}")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout)
