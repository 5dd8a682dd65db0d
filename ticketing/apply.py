"""Messages into the ticket store, acknowledged only once stored (the intake thread's work).

:meth:`Applier.apply` takes a batch of received messages, translates each
(:class:`~kktmon.ticketing.intake.Intake`), and stores the batch: register states first
(so raises find their register's facts), then the facts in one transaction, then the
dead letters of what intake rejected. Only then are the messages acknowledged (manual
PUBACK): a worker killed mid-batch loses nothing, the broker redelivers.

When the store fails, :func:`~kktmon.ticketing.faults.is_outage` decides whose fault it is:

* the store is unavailable (connection refused or lost, database locked or full): the
  batch is held, unacknowledged, and tried again after 1 s, doubling to 60 s, logged;
  nothing is dead-lettered, nothing is acknowledged; a stopping worker leaves it to
  the broker's redelivery;
* the store refused the work: the batch is applied message by message, so only the
  message it cannot take even alone is set aside, as a dead letter with the reason, and
  acknowledged. A message that cannot even be dead-lettered is logged with its payload
  and dropped (counted as ``lost``): holding it would block the worker forever.

An unexpected exception from intake is that message's fault: it is dead-lettered too.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import NamedTuple

from kktmon.ticketing import lifecycle as lc
from kktmon.ticketing.faults import Retry, Throttle, is_outage
from kktmon.ticketing.intake import Fact, Intake
from kktmon.ticketing.store import RegisterFacts, TicketStore

log = logging.getLogger(__name__)

STORE_RETRY_MIN_S, STORE_RETRY_MAX_S = 1.0, 60.0


def utc_now() -> datetime:
    return datetime.now(UTC)


class Message(NamedTuple):
    """A received message, until it is acknowledged (a tuple: thousands a second)."""

    topic: str
    payload: bytes
    mid: int
    qos: int
    received_at: datetime


class _Item(NamedTuple):
    """A message and what intake made of it; ``rejected`` is why it cannot be a fact."""

    message: Message
    fact: Fact | None = None
    state: RegisterFacts | None = None
    rejected: str | None = None


class _RefusedError(Exception):
    """The store refused the work for a reason other than being unavailable."""


class Applier:
    """Stores batches of messages and acknowledges them; one per worker (its intake thread)."""

    def __init__(
        self,
        store: TicketStore,
        intake: Intake,
        *,
        ack: Callable[[Sequence[Message]], None],
        stop: threading.Event,
        faults: Counter[str],
        on_fault: Callable[[str, Exception, str | None], None],
    ) -> None:
        self.store = store
        self.intake = intake
        #: Facts applied (and acknowledged) so far.
        self.applied = 0
        self._ack = ack
        self._stop = stop
        self._faults = faults
        self._on_fault = on_fault
        self._throttle = Throttle(interval_s=30.0)

    def apply(self, batch: list[Message]) -> None:
        """Store ``batch`` and acknowledge it; returns early (nothing acknowledged) on stop."""
        items = [self._translate(message) for message in batch]
        try:
            if not self._until_stored(partial(self._store, items), len(items)):
                return  # stopping: unacknowledged, the broker redelivers them
        except _RefusedError as exc:
            if len(items) > 1:
                log.warning(
                    "ticket store refused a batch of %d (%s); applying one by one", len(items), exc
                )
            if not self._isolate(items):
                return
        self.applied += sum(1 for item in items if item.fact is not None)
        self._ack(batch)  # only now: a killed worker loses nothing the store lacks

    def _translate(self, message: Message) -> _Item:
        try:
            translated = self.intake.translate(message.topic, message.payload, message.received_at)
        except Exception as exc:  # a bug in intake: this message, not the worker
            self._on_fault("intake", exc, message.topic)
            return _Item(message, rejected=f"intake failed: {type(exc).__name__}: {exc}")
        if translated.rejected is not None:
            return _Item(message, rejected=translated.rejected)
        return _Item(message, fact=translated.fact, state=translated.state)

    def _isolate(self, items: list[_Item]) -> bool:
        """Apply items one at a time, dead-lettering those the store refuses; False: stopping."""
        for item in items:
            try:
                if not self._until_stored(partial(self._store, [item]), 1):
                    return False
            except _RefusedError as exc:
                reason = item.rejected or f"the ticket store refused it: {exc}"
                if not self._dead_letter(item.message, reason):
                    return False
        return True

    def _store(self, items: list[_Item]) -> None:
        now = utc_now()
        states: dict[tuple[str, str], RegisterFacts] = {}
        for item in items:
            state = item.state
            if state is not None:
                seen = states.get((state.site, state.kkt))
                if seen is None or state.taken_at > seen.taken_at:
                    states[(state.site, state.kkt)] = state
        # States first, so raises in the same batch find their register's facts.
        if states:
            self.store.record_states(list(states.values()))
        facts = [item.fact for item in items if item.fact is not None]
        if facts:
            self.store.apply_batch(self._enriched(facts), now)
        for item in items:
            if item.rejected is not None:
                self._record_dead_letter(item.message, item.rejected)

    def _dead_letter(self, message: Message, reason: str) -> bool:
        try:
            return self._until_stored(lambda: self._record_dead_letter(message, reason), 1)
        except _RefusedError as exc:
            self._faults["lost"] += 1
            log.error(
                "message on %s refused by the ticket store and not dead-lettered either (%s); "
                "dropped: %r",
                message.topic,
                exc,
                message.payload[:200],
            )
            return True

    def _record_dead_letter(self, message: Message, reason: str) -> None:
        self.store.record_dead_letter(message.topic, message.payload, reason, utc_now())
        self._faults["dead_lettered"] += 1
        self._throttle.log(
            log,
            logging.WARNING,
            f"dead:{message.topic}",
            "message on %s dead-lettered: %s",
            message.topic,
            reason,
        )

    def _until_stored(self, work: Callable[[], None], count: int) -> bool:
        """Run ``work`` until it succeeds (True) or the worker stops (False), waiting out
        an unavailable store; :class:`_RefusedError` when the store refuses the work."""
        retry = Retry(STORE_RETRY_MIN_S, STORE_RETRY_MAX_S)
        while True:
            try:
                work()
            except Exception as exc:
                if not is_outage(exc):
                    raise _RefusedError(str(exc) or type(exc).__name__) from exc
                delay = retry.next_s()
                self._faults["store_unavailable"] += 1
                self._throttle.log(
                    log,
                    logging.ERROR,
                    "store-down",
                    "ticket store unavailable (%s); %d message(s) held unacknowledged, "
                    "retrying in %g s",
                    exc,
                    count,
                    delay,
                )
                if self._stop.wait(delay):
                    return False
                continue
            if retry.failures:
                log.warning("ticket store available again after %d attempt(s)", retry.failures)
            return True

    def _enriched(self, facts: list[Fact]) -> list[Fact]:
        """Raises without register facts get the newest state's (one read for all)."""
        bare = {
            (fact.site, fact.kkt)
            for fact in facts
            if isinstance(fact, lc.ProblemRaised) and not fact.snapshot_facts
        }
        if not bare:
            return facts
        stored = self.store.devices_facts(bare)
        return [
            fact.model_copy(update={"snapshot_facts": stored[(fact.site, fact.kkt)]})
            if isinstance(fact, lc.ProblemRaised)
            and not fact.snapshot_facts
            and stored.get((fact.site, fact.kkt))
            else fact
            for fact in facts
        ]
