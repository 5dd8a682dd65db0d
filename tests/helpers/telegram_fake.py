"""A fake Telegram Bot API on loopback: ``POST /bot<token>/sendMessage``, recorded.

It answers as the real API does: ``{"ok": true, "result": {...}}``; 401 for another
token; 400 ``chat not found`` for chats in ``unknown``; 403 ``bot was blocked by the
user`` for chats in ``blocked``; :meth:`rate_limit` makes the next requests 429 with
``parameters.retry_after``, and :meth:`inject` (from :class:`FakeHttpServer`) any status.
"""

from __future__ import annotations

import threading
from typing import Any

from fake_http import FakeHttpServer, Recorded, Reply

BODY_KEYS = frozenset({"chat_id", "text", "parse_mode", "disable_web_page_preview"})


class FakeTelegram(FakeHttpServer):
    def __init__(self, token: str = "123456:test-token") -> None:
        super().__init__()
        self.token = token
        self.sent: list[dict[str, Any]] = []
        self.unknown: set[int | str] = set()
        self.blocked: set[int | str] = set()
        self._limited = 0
        self._retry_after = 0
        self._state = threading.Lock()

    def __enter__(self) -> FakeTelegram:
        super().__enter__()
        return self

    def rate_limit(self, count: int, retry_after: int) -> None:
        with self._state:
            self._limited, self._retry_after = count, retry_after

    def handle(self, rec: Recorded) -> Reply:  # noqa: PLR0911 - one answer per API error
        if rec.method != "POST" or not rec.path.startswith("/bot"):
            return self.violation(rec, "the Bot API is POST /bot<token>/<method>")
        token, _, method = rec.path.removeprefix("/bot").partition("/")
        if token != self.token:
            return _error(401, "Unauthorized")
        if method != "sendMessage":
            return _error(404, "Not Found")
        body = rec.json()
        if set(body) - BODY_KEYS or not {"chat_id", "text"} <= set(body):
            return self.violation(rec, f"unexpected sendMessage body keys {sorted(body)}")
        with self._state:
            if self._limited > 0:
                self._limited -= 1
                return Reply(
                    429,
                    {
                        "ok": False,
                        "error_code": 429,
                        "description": "Too Many Requests: retry later",
                        "parameters": {"retry_after": self._retry_after},
                    },
                )
            chat = body["chat_id"]
            if chat in self.unknown:
                return _error(400, "Bad Request: chat not found")
            if chat in self.blocked:
                return _error(403, "Forbidden: bot was blocked by the user")
            self.sent.append(body)
            message_id = len(self.sent)
        return Reply(200, {"ok": True, "result": {"message_id": message_id, "text": body["text"]}})


def _error(status: int, description: str) -> Reply:
    return Reply(status, {"ok": False, "error_code": status, "description": description})
