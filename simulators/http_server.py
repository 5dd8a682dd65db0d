"""A runner that puts a fake vendor driver server (an :class:`HttpApp`) on a TCP port.

The fakes of ATOL Web Requests and kkmserver are written as apps: plain objects that
turn one :class:`HttpRequest` into one :class:`HttpReply` and hold the shared
:class:`~kktmon.simulators.scenario.DeviceState`. This module does the HTTP: the stdlib
``ThreadingHTTPServer`` on ``127.0.0.1`` (port 0 picks a free one), optionally wrapped
in TLS, one thread per request, HTTP/1.0 so no idle keep-alive thread outlives a test.

Replies can stall (``delay_s``, cut short when the server closes), hang up without an
answer (``drop``) or carry raw bytes that are not JSON (``raw``) — the fault paths a
driver must survive. Every request is recorded in :attr:`HttpFakeServer.requests`, which
is what the allowlist tests walk.
"""

from __future__ import annotations

import base64
import binascii
import json
import signal
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType, TracebackType
from typing import Any, Generic, Protocol, Self, TypeVar
from urllib.parse import parse_qsl, urlsplit

from kktmon.protocol.errors import ConfigError
from kktmon.simulators.scenario import DeviceState


@dataclass(frozen=True)
class HttpRequest:
    """One request as the fake saw it; header names are lower-case."""

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON; raises ``ValueError`` when it is not JSON."""
        return json.loads(self.body.decode("utf-8"))

    @property
    def credentials(self) -> tuple[str, str] | None:
        """``(user, password)`` from HTTP Basic auth, or None when absent or unreadable."""
        scheme, _, token = self.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, sep, password = base64.b64decode(token, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return (user, password) if sep else None


@dataclass(frozen=True)
class HttpReply:
    """What the fake answers: JSON ``body`` (None: empty), or ``raw`` bytes instead."""

    status: int = 200
    body: Any = None
    raw: bytes | None = None
    delay_s: float = 0.0
    drop: bool = False  # close the connection without any answer
    headers: Mapping[str, str] = field(default_factory=dict)

    def payload(self) -> bytes:
        if self.raw is not None:
            return self.raw
        if self.body is None:
            return b""
        return json.dumps(self.body, ensure_ascii=False).encode("utf-8")


class HttpApp(Protocol):
    """A fake driver server: the device state it serves and one request -> one reply."""

    state: DeviceState
    #: How a URL to this fake starts (``atol-web``); ``url`` adds user info and options.
    adapter: str

    def handle(self, request: HttpRequest) -> HttpReply: ...

    def url(self, host: str, port: int, *, https: bool = False) -> str:
        """A driver URL that reads the fake's register with the fake's own credentials."""
        ...


A = TypeVar("A", bound=HttpApp)


class HttpFakeServer(Generic[A]):
    """Serve ``app`` on ``host:port`` in a background thread; a context manager."""

    def __init__(
        self,
        app: A,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.app = app
        self.requests: list[HttpRequest] = []
        self._lock = threading.Lock()
        self._closing = threading.Event()
        try:
            self._server = ThreadingHTTPServer((host, port), _handler_for(self))
        except OSError as exc:
            raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
        self._server.daemon_threads = True
        self._server.block_on_close = True
        self.https = tls is not None
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name=f"{type(app).__name__}-http",
            daemon=True,
        )

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        """The driver URL for this fake (``atol-web://user:pw@127.0.0.1:PORT/?device=…``)."""
        return self.app.url(*self.address, https=self.https)

    @property
    def state(self) -> DeviceState:
        return self.app.state

    def recorded(self) -> list[HttpRequest]:
        with self._lock:
            return list(self.requests)

    def start(self) -> Self:
        self._thread.start()
        return self

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._closing.set()  # release stalled replies first, so shutdown does not wait
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()  # joins the handler threads (block_on_close)
        if self._thread.is_alive():
            self._thread.join()

    def serve(self, request: HttpRequest) -> HttpReply:
        """Called from a handler thread: record, ask the app, stall if it says so."""
        with self._lock:
            self.requests.append(request)
        reply = self.app.handle(request)
        if reply.delay_s:
            self._closing.wait(reply.delay_s)
        return reply


def _handler_for(owner: HttpFakeServer[Any]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "kktmon-fake"
        # Headers and body go out as two writes: with Nagle on, the body would wait for
        # the client's delayed ACK (40 ms on Linux), which no real server makes us pay.
        disable_nagle_algorithm = True

        def _any(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            request = HttpRequest(
                method=self.command,
                path=parts.path,
                query=dict(parse_qsl(parts.query, keep_blank_values=True)),
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
            )
            reply = owner.serve(request)
            if reply.drop:
                self.close_connection = True
                return
            data = reply.payload()
            try:
                self.send_response(reply.status)
                headers = {"Content-Type": "application/json; charset=utf-8", **reply.headers}
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting: a timeout test did that on purpose

        # http.server dispatches on these names.
        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _any  # noqa: N815

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


def run_http(app: HttpApp, host: str, port: int, *, tls: ssl.SSLContext | None = None) -> None:
    """Serve ``app`` until Ctrl-C or SIGTERM (``kktmon simulate atol-web|kkmserver``)."""
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        with HttpFakeServer(app, host, port, tls=tls) as server:
            print(f"{app.adapter} fake server for {app.state.model} at {server.url}", flush=True)
            stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
