"""A small real HTTP server for sink tests: records every request, injects faults.

Subclasses implement :meth:`FakeHttpServer.handle`. The server runs the stdlib
``ThreadingHTTPServer`` on 127.0.0.1, port 0, in a thread; use it as a context manager.
Closing releases stalled handlers and joins every thread, so the suite's leak guard stays
quiet. HTTP/1.0 (one request per connection) keeps no idle handler thread alive.

Faults are queued with :meth:`FakeHttpServer.inject` and consumed by the next matching
requests: an error status (optionally with ``Retry-After``), a stall longer than the
client's timeout, or ``after=True`` to process the request and then answer with the
error (the "lost response" case: the server acted, the client thinks it failed).

Anything a handler finds wrong with a request (shape, unknown fields, missing headers)
goes to ``violations``; leaving the ``with`` block with violations fails the test.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Fault:
    count: int
    status: int
    match: str | None  # "METHOD /path-prefix", or None for any request
    retry_after: str | None = None
    stall_s: float = 0.0
    after: bool = False

    def matches(self, rec: Recorded) -> bool:
        return self.match is None or f"{rec.method} {rec.path}".startswith(self.match)


@dataclass
class Reply:
    status: int
    payload: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class FakeHttpServer:
    """Base of the fake help desks; see the module docstring."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.violations: list[str] = []
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},  # shutdown waits for one poll
            name=type(self).__name__,
            daemon=True,
        )

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def inject(
        self,
        count: int,
        status: int = 500,
        *,
        match: str | None = None,
        retry_after: str | None = None,
        stall_s: float = 0.0,
        after: bool = False,
    ) -> None:
        """The next ``count`` matching requests fail this way."""
        with self._lock:
            self._faults.append(Fault(count, status, match, retry_after, stall_s, after))

    def handle(self, rec: Recorded) -> Reply:
        raise NotImplementedError

    def violation(self, rec: Recorded, what: str) -> Reply:
        with self._lock:
            self.violations.append(f"{rec.method} {rec.path}: {what}")
        return Reply(400, {"errors": what})

    def recorded(self, method: str, path_prefix: str = "") -> list[Recorded]:
        with self._lock:
            found = [r for r in self.requests if r.method == method]
        return [r for r in found if r.path.startswith(path_prefix)]

    def __enter__(self) -> FakeHttpServer:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
        if kind is None and self.violations:
            raise AssertionError(f"bad requests: {self.violations}")

    def close(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()  # joins the handler threads
        self._thread.join()

    # --- called from handler threads -----------------------------------------------------

    def _take_fault(self, rec: Recorded) -> Fault | None:
        with self._lock:
            self.requests.append(rec)
            for fault in self._faults:
                if fault.count > 0 and fault.matches(rec):
                    fault.count -= 1
                    return fault
        return None

    def _serve(self, rec: Recorded) -> Reply:
        fault = self._take_fault(rec)
        if fault is not None and fault.stall_s:
            self._release.wait(fault.stall_s)
        if fault is not None and not fault.after:
            return _fault_reply(fault)
        reply = self.handle(rec)
        return _fault_reply(fault) if fault is not None else reply


def _fault_reply(fault: Fault) -> Reply:
    headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
    return Reply(fault.status, {"errors": f"injected {fault.status}"}, headers)


def _handler_for(owner: FakeHttpServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _any(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            rec = Recorded(self.command, parts.path, parse_qs(parts.query), headers, body)
            reply = owner._serve(rec)
            data = b"" if reply.payload is None else json.dumps(reply.payload).encode()
            try:
                self.send_response(reply.status)
                for name, value in {"Content-Type": "application/json", **reply.headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client timed out and went away: that was the point

        # http.server dispatches on these names.
        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _any  # noqa: N815

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
