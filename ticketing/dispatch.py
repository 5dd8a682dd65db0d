"""The outbox dispatcher: hands pending help-desk calls to their sinks and records outcomes.

One pass (:meth:`Dispatcher.run_once`) claims up to ``batch`` due calls per sink, delivers
each, and records success (with the help desk's reference for OPEN) or failure. A
retryable failure is scheduled again after exponential backoff (doubling from
``first_s``, capped at ``max_s``, with a little jitter so several workers do not retry in
step), never before the server's ``Retry-After``; a final failure, or one past
``max_attempts``, is given up with ``retry_at`` None and stays in the store for inspection.

The dispatcher never raises because of a sink or the store: a sink that fails, or even
crashes with an unexpected exception, is logged and retried; a store that cannot record
an outcome leaves the call claimed, the claim expires, and the call is delivered again,
which every sink recognises (idempotency key, or a read before the write).
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from kktmon.ticketing.calls import CallStore, HelpdeskCall, Sink, SinkError
from kktmon.ticketing.sinks import RetryLaterError

log = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Backoff:
    """When to try a failed call again, and when to stop trying."""

    first_s: float = 30.0
    max_s: float = 3600.0
    factor: float = 2.0
    jitter: float = 0.1  # up to this fraction is added at random
    max_attempts: int | None = None  # None: retry for as long as the failure is retryable

    def delay_s(self, failures: int, rng: random.Random) -> float:
        """The pause after the ``failures``-th failure (1 for the first)."""
        exponent = min(max(failures - 1, 0), 64)  # 2**64 s is past any cap, and no overflow
        base = min(self.first_s * self.factor**exponent, self.max_s)
        return min(base * (1.0 + self.jitter * rng.random()), self.max_s)

    def exhausted(self, failures: int) -> bool:
        return self.max_attempts is not None and failures >= self.max_attempts


@dataclass
class DispatchStats:
    """What one pass did."""

    claimed: int = 0
    delivered: int = 0
    retrying: int = 0
    given_up: int = 0
    store_errors: int = 0


class Dispatcher:
    """Moves calls from the store's outbox to the sinks."""

    def __init__(
        self,
        store: CallStore,
        sinks: Mapping[str, Sink],
        *,
        clock: Callable[[], datetime] = utc_now,
        batch: int = 20,
        backoff: Backoff | None = None,
        per_sink: Mapping[str, Backoff] | None = None,
        idle_s: float = 1.0,
        rng: random.Random | None = None,
    ) -> None:
        self._store = store
        self._sinks = dict(sinks)
        self._clock = clock
        self._batch = batch
        self._backoff = backoff or Backoff()
        self._per_sink = dict(per_sink or {})
        self._idle_s = idle_s
        self._rng = rng or random.Random()

    def run_once(self, now: datetime) -> DispatchStats:
        """One pass over every sink; ``now`` decides which calls are due."""
        stats = DispatchStats()
        for name, sink in self._sinks.items():
            try:
                calls = self._store.claim_calls(name, self._batch, now)
            except Exception:
                log.exception("sink %s: cannot claim calls", name)
                stats.store_errors += 1
                continue
            stats.claimed += len(calls)
            for call in calls:
                self._dispatch(name, sink, call, stats)
        return stats

    def run_forever(self, stop: threading.Event) -> None:
        """Pass after pass until ``stop`` is set; rests ``idle_s`` when nothing was due."""
        while not stop.is_set():
            try:
                stats = self.run_once(self._clock())
            except Exception:  # run_once guards each step; this is the last line
                log.exception("dispatcher pass failed")
                stats = DispatchStats()
            if stats.claimed == 0 or stats.store_errors:
                stop.wait(self._idle_s)

    def _dispatch(self, name: str, sink: Sink, call: HelpdeskCall, stats: DispatchStats) -> None:
        try:
            ref = sink.deliver(call)
        except SinkError as exc:
            self._failed(name, call, exc, stats)
            return
        except Exception as exc:  # a bug in one sink must not stop the others
            log.exception("sink %s: call %d crashed", name, call.id)
            error = SinkError(f"{type(exc).__name__}: {exc}", retryable=True)
            self._failed(name, call, error, stats)
            return
        try:
            self._store.complete_call(call.id, ref, self._clock())
        except Exception:
            # Delivered but not recorded: the claim expires and the sink recognises the repeat.
            log.exception("sink %s: call %d delivered but not recorded", name, call.id)
            stats.store_errors += 1
            return
        stats.delivered += 1
        log.debug("sink %s: call %d (%s) delivered", name, call.id, call.action.value)

    def _failed(self, name: str, call: HelpdeskCall, exc: SinkError, stats: DispatchStats) -> None:
        policy = self._per_sink.get(name, self._backoff)
        failures = call.attempts + 1
        retry_at: datetime | None = None
        if exc.retryable and not policy.exhausted(failures):
            delay = policy.delay_s(failures, self._rng)
            if isinstance(exc, RetryLaterError) and exc.retry_after_s is not None:
                delay = max(delay, min(exc.retry_after_s, policy.max_s))
            retry_at = self._clock() + timedelta(seconds=delay)
            stats.retrying += 1
            log.warning("sink %s: call %d failed, retry at %s: %s", name, call.id, retry_at, exc)
        else:
            stats.given_up += 1
            log.error("sink %s: call %d given up (attempt %d): %s", name, call.id, failures, exc)
        try:
            self._store.fail_call(call.id, str(exc), retry_at)
        except Exception:
            log.exception("sink %s: cannot record the failure of call %d", name, call.id)
            stats.store_errors += 1
