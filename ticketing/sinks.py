"""Help-desk sinks that need no vendor API: a signed JSON webhook and the local record.

Shared HTTP plumbing for every HTTP sink lives here too: :class:`HttpRetry` runs one
request with bounded retries (tenacity: exponential backoff, a cap on attempts and on
total time) on connection errors, timeouts, 408, 429 and 5xx, honouring ``Retry-After``.
A wait longer than the sink may spend in one call is not slept here: the sink raises
:class:`RetryLaterError` carrying the server's figure and the dispatcher schedules the call.

Webhook request (``POST <url>``), body bytes are the compact JSON of::

    {"action": "open", "idempotency_key": "...", "ticket": {TicketView}, "comment": null}

with headers ``Idempotency-Key``, ``X-Kktmon-Timestamp`` (Unix seconds) and
``X-Kktmon-Signature: sha256=<hex HMAC-SHA256 of the exact body bytes, keyed by the
shared secret>``. A receiver answers 2xx (for ``open`` optionally ``{"id": ...}``, our
external reference) or 409 for an idempotency key it has already processed, which counts
as delivered. Other 4xx are final; the call is given up and kept for inspection.

httpx is the client: a maintained synchronous API with per-request timeouts, TLS
verification on by default, connection pooling, and pluggable transports (the Okdesk sink
uses one to keep its token out of every URL httpx logs).
"""

from __future__ import annotations

import email.utils
import hashlib
import hmac
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import httpx
import tenacity

from kktmon.protocol.errors import ConfigError
from kktmon.ticketing.calls import CallAction, HelpdeskCall, SinkError

log = logging.getLogger(__name__)


class RetryLaterError(SinkError):
    """A retryable failure; ``retry_after_s`` is the server's ``Retry-After``, if any."""

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message, retryable=True)
        self.retry_after_s = retry_after_s


class _NotProcessedError(RetryLaterError):
    """The server certainly did not act on the request (no connection, rate limited),
    so even a non-idempotent request may be sent again."""


def _identity(text: str) -> str:
    return text


@dataclass(frozen=True)
class HttpRetry:
    """Retry budget for one sink call; the dispatcher's backoff takes over after it."""

    attempts: int = 3
    total_s: float = 15.0
    backoff_s: float = 0.5  # first wait, doubled per attempt
    max_wait_s: float = 5.0  # longest single wait spent inside the sink

    def send(
        self,
        request: Callable[[], httpx.Response],
        what: str,
        redact: Callable[[str], str] = _identity,
        *,
        idempotent: bool = True,
    ) -> httpx.Response:
        """Return the first response that is not transient; raise :class:`RetryLaterError`
        once the budget is spent, or :class:`SinkError` for a non-HTTP failure.

        A non-idempotent request is repeated only when the server certainly did not act
        on it; after a timeout or a 5xx it may have, and the caller must look first.
        """

        def attempt() -> httpx.Response:
            try:
                response = request()
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                raise _NotProcessedError(_failure(what, exc, redact)) from exc
            except httpx.TransportError as exc:
                raise RetryLaterError(_failure(what, exc, redact)) from exc
            except httpx.HTTPError as exc:
                raise SinkError(f"{what}: {redact(str(exc))}", retryable=False) from exc
            code = response.status_code
            if code == 429:
                raise _NotProcessedError(f"{what}: HTTP 429", retry_after_s=retry_after_s(response))
            if code == 408 or code >= 500:
                raise RetryLaterError(f"{what}: HTTP {code}", retry_after_s=retry_after_s(response))
            return response

        kind = RetryLaterError if idempotent else _NotProcessedError
        retrying = tenacity.Retrying(
            stop=self._stop,
            wait=self._wait,
            retry=tenacity.retry_if_exception_type(kind),
            before_sleep=lambda state: log.info("%s: retrying (%s)", what, _outcome(state)),
            reraise=True,
        )
        return retrying(attempt)

    def _stop(self, state: tenacity.RetryCallState) -> bool:
        if state.attempt_number >= self.attempts:
            return True
        if (state.seconds_since_start or 0.0) >= self.total_s:
            return True
        wanted = _retry_after(state)
        # A server asking for a longer pause than we may sleep gets it from the dispatcher.
        return wanted is not None and wanted > self.max_wait_s

    def _wait(self, state: tenacity.RetryCallState) -> float:
        wanted = _retry_after(state)
        if wanted is None:
            wanted = min(self.backoff_s * 2 ** (state.attempt_number - 1), self.max_wait_s)
        left = self.total_s - (state.seconds_since_start or 0.0)
        return max(min(wanted, left), 0.0)


def _failure(what: str, exc: Exception, redact: Callable[[str], str]) -> str:
    return f"{what}: {type(exc).__name__}: {redact(str(exc))}"


def _retry_after(state: tenacity.RetryCallState) -> float | None:
    exc = state.outcome.exception() if state.outcome is not None else None
    return exc.retry_after_s if isinstance(exc, RetryLaterError) else None


def _outcome(state: tenacity.RetryCallState) -> str:
    exc = state.outcome.exception() if state.outcome is not None else None
    return str(exc) if exc is not None else "no exception"


def retry_after_s(response: httpx.Response) -> float | None:
    """The ``Retry-After`` header in seconds (delta-seconds or an HTTP date), or None."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)


class RejectedError(SinkError):
    """A final refusal by the server: the same request will not succeed later."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message, retryable=False)
        self.status = status


def rejected(what: str, response: httpx.Response, redact: Callable[[str], str]) -> RejectedError:
    excerpt = redact(response.text[:300].replace("\n", " "))
    code = response.status_code
    return RejectedError(f"{what}: HTTP {code}: {excerpt}", status=code)


def sign(secret: bytes, body: bytes) -> str:
    """The signature header value for ``body``."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


class WebhookSink:
    """POSTs each call as signed JSON to one URL."""

    def __init__(
        self,
        name: str,
        url: str,
        secret: str | None,
        *,
        timeout_s: float = 10.0,
        verify_tls: bool = True,
        headers: dict[str, str] | None = None,
        client: httpx.Client | None = None,
        retry: HttpRetry | None = None,
    ) -> None:
        if secret == "":
            raise ConfigError(f"webhook sink {name!r}: an empty secret would sign nothing")
        if secret is None:
            log.warning("webhook sink %s: no secret, requests go unsigned", name)
        self.name = name
        self._url = url
        self._secret = secret.encode() if secret is not None else None
        self._headers = dict(headers or {})
        self._timeout = httpx.Timeout(timeout_s)
        self._own_client = client is None
        self._client = client or httpx.Client(verify=verify_tls, timeout=self._timeout)
        self._retry = retry or HttpRetry()
        # The URL may carry a secret path segment: name the sink, never the URL.
        self._what = f"webhook {name}"

    def deliver(self, call: HelpdeskCall) -> str | None:
        body = self.body(call)
        what = f"{self._what} {call.action.value} #{call.id}"
        response = self._retry.send(lambda: self._post(call.idempotency_key, body), what)
        if response.status_code == 409:
            log.info("%s: already delivered (409)", what)
        elif not response.is_success:
            raise rejected(what, response, _identity)
        return _reference(response) if call.action is CallAction.OPEN else None

    @staticmethod
    def body(call: HelpdeskCall) -> bytes:
        """The exact bytes that are signed and sent."""
        payload = {
            "action": call.action.value,
            "idempotency_key": call.idempotency_key,
            "ticket": call.ticket.model_dump(mode="json"),
            "comment": call.comment,
        }
        return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()

    def _post(self, key: str, body: bytes) -> httpx.Response:
        headers = {
            **self._headers,
            "Content-Type": "application/json",
            "Idempotency-Key": key,
            "X-Kktmon-Timestamp": str(int(time.time())),
        }
        if self._secret is not None:
            headers["X-Kktmon-Signature"] = sign(self._secret, body)
        return self._client.post(self._url, content=body, headers=headers, timeout=self._timeout)

    def close(self) -> None:
        if self._own_client:
            self._client.close()

    def __enter__(self) -> WebhookSink:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _reference(response: httpx.Response) -> str | None:
    try:
        data: Any = response.json()
    except ValueError:
        return None
    ref = data.get("id") if isinstance(data, dict) else None
    return None if ref is None else str(ref)


class LocalSink:
    """The default "local store" mode: the ticket store is the record, nothing leaves.

    Keeps the most recent calls in memory for inspection (tests, ``kktmon demo``) and
    returns ``local-<ticket id>`` as the reference of an opened ticket.
    """

    def __init__(self, name: str = "local", *, keep: int = 1000) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._calls: deque[HelpdeskCall] = deque(maxlen=keep)

    def deliver(self, call: HelpdeskCall) -> str | None:
        with self._lock:
            self._calls.append(call)
        log.info("ticket %d: %s (%s)", call.ticket.ticket_id, call.action.value, call.ticket.title)
        return f"local-{call.ticket.ticket_id}" if call.action is CallAction.OPEN else None

    @property
    def calls(self) -> list[HelpdeskCall]:
        with self._lock:
            return list(self._calls)

    def close(self) -> None:
        """Nothing to release; present so every sink can be closed the same way."""
