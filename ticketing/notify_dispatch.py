"""The notifier: finds thresholds crossed, and delivers what the outbox holds.

Two jobs, one thread per worker (:meth:`Notifier.run_forever`):

* **scan** (one worker at a time, under the store lease ``notify``, every
  ``[notify] scan_interval_s``): thresholds are crossed by time passing, not by messages,
  so the lease holder reads the newest state of every register of a client's sites,
  works out each deadline's nearest crossed threshold (:mod:`notify_rules`) and writes
  the rows still missing, a transaction per :data:`SCAN_BATCH` registers. A lost lease
  or a second scanner costs nothing: the table's unique key keeps one row per message;
* **deliver** (every worker): claims due rows (:func:`notify_store.claim`, a lease with
  a token), composes each message, sends it and records ``sent``; a refusal for good is
  recorded ``failed`` with the server's reason; anything else is retried with the
  help-desk dispatcher's :class:`~kktmon.ticketing.dispatch.Backoff` (doubling from
  ``retry_min_s`` to ``retry_max_s``, never before a ``Retry-After``), given up after
  ``max_attempts``.

Nothing here raises because of a channel or the store: failures are logged and retried,
and the loop goes on (the service counts what escapes anyway).
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from kktmon.ticketing import notify_rules as rules
from kktmon.ticketing import notify_store
from kktmon.ticketing.calls import SinkError
from kktmon.ticketing.config import TicketingConfig
from kktmon.ticketing.dispatch import Backoff, DispatchStats, utc_now
from kktmon.ticketing.notify_channels import Channel, EmailChannel, TelegramChannel
from kktmon.ticketing.notify_rules import Audience
from kktmon.ticketing.notify_store import Parcel
from kktmon.ticketing.notify_text import compose
from kktmon.ticketing.sinks import RetryLaterError
from kktmon.ticketing.store import TicketStore
from kktmon.ticketing.store_db import Tx, chunks

log = logging.getLogger(__name__)

LEASE = "notify"
SCAN_BATCH = 200  # registers per scan transaction
SITES_PER_READ = 100


@dataclass(frozen=True)
class _Candidate:
    deadline: rules.Deadline
    threshold: int
    facts: dict[str, Any]


class Notifier:
    """Scans for crossed thresholds (under the lease) and delivers the outbox."""

    def __init__(
        self,
        store: TicketStore,
        config: TicketingConfig,
        channels: Mapping[str, Channel],
        *,
        holder: str,
        clock: Callable[[], datetime] = utc_now,
        batch: int = 20,
        rng: random.Random | None = None,
    ) -> None:
        notify = config.notify
        self.store = store
        self.channels = dict(channels)
        self.holder = holder
        self.audience = audience_of(config)
        self.backoff = Backoff(
            notify.retry_min_s, notify.retry_max_s, max_attempts=notify.max_attempts
        )
        self.scan_interval_s = notify.scan_interval_s
        self.claim_ttl_s = config.ticketing.claim_ttl_s
        self._clock = clock
        self._batch = batch
        self._rng = rng or random.Random()
        self._next_scan = 0.0
        self._scans = 0

    # ------------------------------------------------------------------ scanning

    def scan_if_due(self) -> int | None:
        """Scan when the interval has passed and this worker holds the lease; the rows
        written, or None when it did not scan."""
        if time.monotonic() < self._next_scan:
            return None
        self._next_scan = time.monotonic() + self.scan_interval_s
        now = self._clock()
        ttl = 3 * self.scan_interval_s
        if not self.store.acquire_lease(LEASE, self.holder, ttl, now):
            return None
        return self.scan(now)

    def scan(self, now: datetime) -> int:
        """Write the rows for every threshold crossed by ``now``; how many."""
        candidates = self._candidates(now)
        written = 0
        for batch in chunks(candidates, SCAN_BATCH):
            written += self.store.transact(partial(self._enqueue, batch, now=now))
        self._scans += 1
        level = logging.INFO if written or self._scans == 1 else logging.DEBUG
        log.log(
            level,
            "notify scan: %d deadline(s) within a threshold, %d message(s) queued",
            len(candidates),
            written,
        )
        return written

    def _candidates(self, now: datetime) -> list[_Candidate]:
        found = []
        for sites in chunks(self.audience.sites(), SITES_PER_READ):
            for site, kkt, facts in self.store.transact(partial(_devices, sites=sites)):
                for deadline in rules.deadlines(site, kkt, facts):
                    threshold = rules.threshold_due(deadline.block_at, now, self.audience.days)
                    if threshold is not None:
                        found.append(_Candidate(deadline, threshold, rules.register_facts(facts)))
        return found

    def _enqueue(self, batch: Sequence[_Candidate], tx: Tx, now: datetime) -> int:
        return sum(
            notify_store.enqueue_deadline(
                tx, self.audience, c.deadline, threshold=c.threshold, facts=c.facts, now=now
            )
            for c in batch
        )

    def ticket_hook(self, tx: Tx, ticket: Any, actions: Sequence[str], now: datetime) -> object:
        """:attr:`TicketStore.ticket_notices`: ticket news, in the ticket's transaction."""
        return notify_store.enqueue_ticket(tx, self.audience, ticket, actions, now)

    # ------------------------------------------------------------------ delivering

    def deliver_once(self, now: datetime) -> DispatchStats:
        """Claim what is due and send it; what happened."""
        stats = DispatchStats()
        token = f"{self.holder}-{uuid.uuid4().hex[:8]}"
        try:
            parcels = self.store.transact(
                partial(
                    notify_store.claim,
                    limit=self._batch,
                    now=now,
                    ttl_s=self.claim_ttl_s,
                    token=token,
                )
            )
        except Exception:
            log.exception("notifications: cannot claim")
            stats.store_errors += 1
            return stats
        stats.claimed = len(parcels)
        for parcel in parcels:
            self._deliver(parcel, stats)
        return stats

    def _deliver(self, parcel: Parcel, stats: DispatchStats) -> None:
        what = _describe(parcel)
        channel = self.channels.get(parcel.channel)
        try:
            if channel is None:
                raise SinkError(
                    f"no [notify.{_section(parcel.channel)}] configured", retryable=False
                )
            message = compose(parcel.notices, self.audience.zone_for, self._clock())
            channel.send(parcel.recipient, message, self._key(parcel))
        except SinkError as exc:
            self._failed(parcel, exc, what, stats)
            return
        except Exception as exc:  # a bug must not stop the other messages
            log.exception("notification %s crashed", what)
            self._failed(
                parcel, SinkError(f"{type(exc).__name__}: {exc}", retryable=True), what, stats
            )
            return
        try:
            self.store.transact(partial(notify_store.finish, parcel=parcel, now=self._clock()))
        except Exception:
            log.exception("notification %s sent but not recorded", what)
            stats.store_errors += 1
            return
        stats.delivered += 1
        log.info("notification %s sent", what)

    def _failed(self, parcel: Parcel, exc: SinkError, what: str, stats: DispatchStats) -> None:
        failures = parcel.failures + 1
        retry_at: datetime | None = None
        if exc.retryable and not self.backoff.exhausted(failures):
            delay = self.backoff.delay_s(failures, self._rng)
            if isinstance(exc, RetryLaterError) and exc.retry_after_s is not None:
                delay = max(delay, min(exc.retry_after_s, self.backoff.max_s))
            retry_at = self._clock() + timedelta(seconds=delay)
            stats.retrying += 1
            log.warning("notification %s failed, retry at %s: %s", what, retry_at, exc)
        else:
            stats.given_up += 1
            log.error("notification %s failed for good (attempt %d): %s", what, failures, exc)
        try:
            self.store.transact(
                partial(notify_store.fail, parcel=parcel, error=str(exc), retry_at=retry_at)
            )
        except Exception:
            log.exception("notification %s: cannot record the failure", what)
            stats.store_errors += 1

    def _key(self, parcel: Parcel) -> str:
        """The message's own id, the same at every attempt (a digest: its first row and size)."""
        size = f"-x{len(parcel.ids)}" if len(parcel.ids) > 1 else ""
        return f"kktmon-{self.store.instance}-n{parcel.ids[0]}{size}"

    # ------------------------------------------------------------------ the loop

    def run_forever(self, stop: threading.Event, idle_s: float = 1.0) -> None:
        """Scan when due and deliver until ``stop``; rests ``idle_s`` when nothing was due."""
        while not stop.is_set():
            try:
                self.scan_if_due()
            except Exception:
                log.exception("notify scan failed")
            stats = self.deliver_once(self._clock())
            if stats.claimed == 0 or stats.store_errors:
                stop.wait(idle_s)

    def close(self) -> None:
        """Give the scan lease up (another worker takes over at once) and close channels."""
        try:
            self.store.release_lease(LEASE, self.holder)
        except Exception:
            log.warning("notify: cannot release the scan lease", exc_info=True)
        for channel in self.channels.values():
            close = getattr(channel, "close", None)
            if close is not None:
                close()


def _devices(tx: Tx, sites: Sequence[str]) -> list[tuple[str, str, dict[str, Any]]]:
    marks = ", ".join("?" for _ in sites)
    rows = tx.all(f"SELECT site, kkt, facts FROM devices WHERE site IN ({marks})", *sites)
    return [(str(site), str(kkt), tx.d.read_json(facts)) for site, kkt, facts in rows]


def _describe(parcel: Parcel) -> str:
    first = parcel.notices[0]
    what = f"{first.id} ({first.cause} {first.threshold} d, {first.site} {first.kkt})"
    if len(parcel.notices) > 1:
        what = f"digest {first.digest_key} of {len(parcel.notices)} from {first.id}"
    return f"{what} to {parcel.channel} {parcel.recipient}"


def _section(channel: str) -> str:
    return "smtp" if channel == "email" else channel


def audience_of(config: TicketingConfig) -> Audience:
    notify = config.notify
    zone_for = config.ticketing.closed_hours.zone_for
    return Audience(config.clients, notify.days, notify.digest_time, zone_for)


def build_channels(config: TicketingConfig) -> dict[str, Channel]:
    """The channels ``[notify]`` configures."""
    channels: dict[str, Channel] = {}
    if config.notify.smtp is not None:
        channels["email"] = EmailChannel(config.notify.smtp)
    if config.notify.telegram is not None:
        channels["telegram"] = TelegramChannel(config.notify.telegram)
    return channels


def build_notifier(config: TicketingConfig, store: TicketStore, holder: str) -> Notifier | None:
    """The notifier of a worker, wired to ``store``; None when no client has contacts."""
    if not any(client.recipients() for client in config.clients):
        return None
    notifier = Notifier(store, config, build_channels(config), holder=holder)
    if any(client.notify_tickets for client in config.clients):
        store.ticket_notices = notifier.ticket_hook
    return notifier
