"""A webhook receiver that verifies what ``WebhookSink`` promises its receivers.

It recomputes the HMAC-SHA256 of the exact body bytes with its own copy of the secret
(401 on a mismatch), checks the ``Idempotency-Key`` and ``X-Kktmon-Timestamp`` headers
and the body's shape, answers ``{"id": "wh-N"}`` to an ``open``, and 409 (with the
original id) to an idempotency key it has already accepted.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Iterator
from typing import Any

from fake_http import FakeHttpServer, Recorded, Reply

BODY_KEYS = frozenset({"action", "idempotency_key", "ticket", "comment"})


class WebhookReceiver(FakeHttpServer):
    def __init__(self, secret: str | None, path: str = "/hooks/kktmon") -> None:
        super().__init__()
        self.secret = secret
        self.path = path
        self.accepted: dict[str, dict[str, Any]] = {}
        self.refs: dict[str, str] = {}
        self.bad_signatures = 0
        self._state = threading.Lock()

    @property
    def url(self) -> str:
        return self.base_url + self.path

    def __enter__(self) -> WebhookReceiver:
        super().__enter__()
        return self

    def handle(self, rec: Recorded) -> Reply:
        if rec.method != "POST" or rec.path != self.path:
            return self.violation(rec, "webhooks are POSTed to the configured path")
        if self.secret is not None and not self._signed(rec):
            with self._state:
                self.bad_signatures += 1
            return Reply(401, {"error": "bad signature"})
        if error := next(_errors(rec), None):
            return self.violation(rec, error)
        payload = rec.json()
        key = payload["idempotency_key"]
        with self._state:
            if key in self.accepted:
                return Reply(409, {"error": "duplicate", "id": self.refs.get(key)})
            self.accepted[key] = payload
            if payload["action"] != "open":
                return Reply(200, {})
            self.refs[key] = f"wh-{len(self.refs) + 1}"
            return Reply(201, {"id": self.refs[key]})

    def _signed(self, rec: Recorded) -> bool:
        assert self.secret is not None
        digest = hmac.new(self.secret.encode(), rec.body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(rec.headers.get("x-kktmon-signature", ""), f"sha256={digest}")


def _errors(rec: Recorded) -> Iterator[str]:
    if not rec.headers.get("content-type", "").startswith("application/json"):
        yield "body must be application/json"
    if not rec.headers.get("x-kktmon-timestamp", "").isdigit():
        yield "X-Kktmon-Timestamp must be Unix seconds"
    try:
        payload = rec.json()
    except ValueError:
        yield "body is not JSON"
        return
    if not isinstance(payload, dict) or set(payload) != BODY_KEYS:
        yield f"body keys must be {sorted(BODY_KEYS)}"
        return
    if rec.headers.get("idempotency-key") != payload["idempotency_key"]:
        yield "Idempotency-Key header differs from the body's idempotency_key"
    if not isinstance(payload["ticket"], dict) or "ticket_id" not in payload["ticket"]:
        yield "ticket must be a TicketView"
