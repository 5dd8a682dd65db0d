"""The demo's help desk: a loopback HTTP server that takes the ticketing's webhook calls.

It plays the service centre's help desk so the demo shows the whole path a real ticket
takes (store -> transactional outbox -> signed webhook -> help-desk reference), and so
the store records every call it made (``store.calls()``) for the summary. It checks the
HMAC signature as a real receiver would and answers ``open`` with a reference
``HD-1001``, ``HD-1002``...
"""

from __future__ import annotations

import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

from kktmon.ticketing.sinks import sign

SECRET = "kktmon-demo"
FIRST_REFERENCE = 1001


class DemoHelpdesk:
    """``url`` receives the webhook; ``received`` lists (action, ticket id) in order."""

    def __init__(self) -> None:
        self.received: list[tuple[str, int]] = []
        self._opened = 0
        self._answers: dict[str, dict[str, Any]] = {}  # idempotency key -> first answer
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        host, port = self._server.server_address[:2]
        self.url = f"http://{host!s}:{port}/kktmon"
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="demo help desk", daemon=True
        )
        self._thread.start()

    def take(self, body: bytes, signature: str | None, key: str) -> tuple[int, dict[str, Any]]:
        """One webhook request -> (HTTP status, JSON answer); a repeated key gets the
        first answer again, as a help desk honouring ``Idempotency-Key`` would give."""
        if signature is None or not hmac.compare_digest(signature, sign(SECRET.encode(), body)):
            return 401, {"error": "bad signature"}
        call = json.loads(body)
        with self._lock:
            if key in self._answers:
                return 200, self._answers[key]
            self.received.append((call["action"], call["ticket"]["ticket_id"]))
            answer: dict[str, Any] = {}
            if call["action"] == "open":
                self._opened += 1
                answer = {"id": f"HD-{FIRST_REFERENCE + self._opened - 1}"}
            self._answers[key] = answer
            return 200, answer

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _handler(desk: DemoHelpdesk) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            signature = self.headers.get("X-Kktmon-Signature")
            status, answer = desk.take(body, signature, self.headers.get("Idempotency-Key", ""))
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the demo prints what the store records, not an access log

    return Handler
