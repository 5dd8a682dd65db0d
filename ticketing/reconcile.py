"""The retained alert set is the truth: read it, converge the store (DESIGN.md section 6).

Shared subscriptions never get retained messages, and a message can be lost on its way
(an event dropped by a full queue, a session that expired). So besides reading the set on
start, one worker at a time re-reads it every ``reconcile_interval_s``::

    reconciler = Reconciler(config, store, intake, holder="kktmon-ticketing-a")
    report = reconciler.run_if_due()    # None: not due, or another worker holds the lease
    report = reconciler.run_now()       # start-up: read and converge, no lease

**Reading** (:meth:`Reconciler.read_retained`, :mod:`retained`) is a short-lived
connection of its own (client id ``<holder>-reconcile``) that subscribes to the statuses and
the alerts and knows, from an end marker behind each, that it has read them all.

**Converging** (:meth:`Reconciler.converge`) reads the live tickets and the agent records
once, compares them with the set in memory and applies only the differences, in batches.
The read is taken to show the truth as of its start, less ``SETTLE_S`` (a minute) for
agent clocks that run a little off and deliveries under way; call that "settled":

* a retained alert whose problem has no pending or open ticket is raised, at the problem's
  ``since``; if the store holds something newer (a clear), it is raised again at
  "settled": the alert is back (the store's own ordering still ignores it if the clear
  is more recent than that);
* a pending or open ticket whose alert is gone starts clearing, unless the store heard of
  it after "settled" (raised live meanwhile: the read may not show it; the next run
  will); AGENT_LOST tickets follow the statuses instead. An incomplete read clears
  nothing: a missing alert cannot be told from a dropped one. A wrong clear (an event
  stamped long before it arrived) is undone by the next run, which finds the alert;
* a retained agent status is applied as if just received, where it changes the agent's
  record: a ``lost`` never recorded starts the AGENT_LOST clock, ``online`` and
  ``offline`` clear AGENT_LOST.

Every run logs one INFO line (:class:`ReconcileReport`). The set is held in memory as
topic -> payload for the run, about 0.45 kB per retained message; converging adds about as
much again (the ticket keys), whatever the store (``benchmarks/reconcile.py``).

**Broker limits**: each filter's retained set must stay below Mosquitto's
``max_queued_messages`` (100,000 in the shipped ``kktmon.conf``), or the read is incomplete
(logged) and nothing is cleared (:mod:`retained`).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from kktmon.protocol.contract import AgentState
from kktmon.protocol.errors import KktmonError
from kktmon.ticketing import lifecycle as lc
from kktmon.ticketing.config import TicketingConfig
from kktmon.ticketing.dispatch import utc_now
from kktmon.ticketing.intake import Fact, Intake
from kktmon.ticketing.retained import RetainedSet, read_retained
from kktmon.ticketing.store import OutcomeStatus, TicketStore
from kktmon.ticketing.store_db import Tx

log = logging.getLogger(__name__)

__all__ = ["LEASE", "ReconcileReport", "Reconciler", "RetainedSet"]

#: The store lease one worker holds while it reconciles, and for an interval after.
LEASE = "reconcile"
#: Events stamped this long before the read began may still be missing from it (agent
#: clocks run a little off, deliveries take a moment): tickets heard of since are left
#: alone until the next run.
SETTLE_S = 60.0
#: Facts per store transaction; the lease is renewed between batches.
BATCH = 500
#: A worker without the lease asks again this often (at most once an interval).
LEASE_RETRY_S = 30.0

_Key = tuple[str, str, str, str]  # site, kkt, problem code, FN serial ("" if not FN-scoped)
_LIVE = (lc.TicketState.PENDING, lc.TicketState.OPEN)


@dataclass(frozen=True)
class ReconcileReport:
    """What one run did, and what it cost."""

    retained: int  #: messages read: alerts plus statuses
    alerts: int
    statuses: int
    raised: int  #: tickets opened, reopened or refreshed from a retained alert
    cleared: int  #: tickets that started clearing because their alert is gone
    agents: int  #: agent records a retained status changed
    complete: bool  #: the end marker arrived: everything retained was read
    read_s: float
    converge_s: float
    #: The retained set's size in memory (topics, payloads, the dict): the run's peak.
    retained_bytes: int

    @property
    def duration_s(self) -> float:
        return self.read_s + self.converge_s

    def line(self) -> str:
        """The run's INFO line."""
        partial = "" if self.complete else " (incomplete read: nothing cleared)"
        return (
            f"reconciled {self.retained} retained ({self.alerts} alert(s), {self.statuses} "
            f"status(es)){partial}: raised {self.raised}, cleared {self.cleared}, agents "
            f"{self.agents}; read {self.read_s:.2f} s, converge {self.converge_s:.2f} s, "
            f"held {self.retained_bytes / 1e6:.1f} MB"
        )


class Reconciler:
    """Reads the retained set and converges ``store`` to it; one per worker."""

    def __init__(
        self,
        config: TicketingConfig,
        store: TicketStore,
        intake: Intake,
        holder: str,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.config = config
        self.store = store
        self.intake = intake
        #: This worker's name in the lease (its MQTT client id).
        self.holder = holder
        self.clock = clock
        self._next_try: datetime | None = None
        self._leased = False

    @property
    def interval(self) -> timedelta:
        return timedelta(seconds=self.config.ticketing.reconcile_interval_s)

    # ------------------------------------------------------------------ runs

    def run_if_due(self, *, force: bool = False) -> ReconcileReport | None:
        """Run when this worker's interval has passed (or ``force``) and it gets the
        lease; None otherwise, or when the run failed (logged; the lease is released)."""
        now = self.clock()
        if not force and self._next_try is not None and now < self._next_try:
            return None
        retry = min(self.interval, timedelta(seconds=LEASE_RETRY_S))
        ttl = self.interval.total_seconds()
        try:
            if not self.store.acquire_lease(LEASE, self.holder, ttl, now):
                self._next_try = now + retry
                return None
            self._leased = True
            report = self.run_now()
            # Held an interval past the run: whoever takes it next runs an interval on.
            self.store.acquire_lease(LEASE, self.holder, ttl, self.clock())
        except KktmonError as exc:
            log.error("reconciliation failed; another worker may try: %s", exc)
            with contextlib.suppress(KktmonError):
                self.store.release_lease(LEASE, self.holder)
            self._next_try = self.clock() + retry
            return None
        finally:
            self._leased = False
        return report

    def run_now(self) -> ReconcileReport:
        """Read and converge now, lease or not (start-up). Errors are KktmonError."""
        started = self.clock()
        retained = self.read_retained()
        return self.converge(retained, self.clock(), started)

    # ------------------------------------------------------------------ reading

    def read_retained(self, timeout_s: float = 15.0) -> RetainedSet:
        """Every retained alert and agent status (:func:`retained.read_retained`), as
        ``<holder>-reconcile``; TransportError subclasses when the broker fails."""
        return read_retained(self.config.mqtt, f"{self.holder}-reconcile", timeout_s)

    # ------------------------------------------------------------------ converging

    def converge(
        self,
        retained: Mapping[str, bytes],
        now: datetime,
        read_started_at: datetime,
        *,
        clear: bool | None = None,
    ) -> ReconcileReport:
        """Make the store agree with ``retained`` (topic -> payload, as read).

        ``now`` is the store's decision time; ``read_started_at`` the moment the read
        began: tickets heard of since then (less ``SETTLE_S``) are left alone. ``clear``
        (default: whether the read was complete) allows clearing tickets whose alert is
        gone.
        """
        begun = time.monotonic()
        if clear is None:
            clear = bool(getattr(retained, "complete", True))
        live, agents = _store_index(self.store)
        # Topics and keys, not facts: the facts are made again a batch at a time.
        raises: list[str] = []
        seen: list[lc.AgentSeen] = []
        alerts = statuses = 0
        for topic, payload in retained.items():
            fact = self.intake.translate(topic, payload, read_started_at).fact
            if isinstance(fact, lc.AgentSeen):
                statuses += 1
                if lc.on_agent_seen(agents.get(fact.site), fact) is not None:
                    seen.append(fact)
            elif isinstance(fact, lc.ProblemRaised):
                alerts += 1
                # What stays in ``live`` after the loop has no alert.
                state = live.pop((fact.site, fact.kkt, fact.problem.code, fact.fn_serial), None)
                if state is None or state[0] not in _LIVE:
                    raises.append(topic)
        if clear and statuses == 0 and agents:
            # Every agent leaves a retained status (its birth, or its will). None at all,
            # while the store knows agents, means the broker lost its retained set (a
            # restart without its persistence file): clearing now would resolve every
            # ticket only for the next run to reopen them. Raise what is there; wait.
            log.warning(
                "the broker holds no agent status although %d agent(s) are known: its"
                " retained set looks lost, so nothing is cleared this run",
                len(agents),
            )
            clear = False
        del agents
        # What the store heard of since this instant may not be in the read yet.
        settled = read_started_at - timedelta(seconds=SETTLE_S)
        gone = [
            key
            for key, (state, heard_at) in live.items()
            if clear and key[1] != lc.AGENT_KKT and state in _LIVE and heard_at < settled
        ]
        del live
        raised = self._raise(retained, raises, now, read_started_at, settled)
        cleared = 0
        for batch in _batches(gone):
            clears = [
                lc.ProblemCleared(site=s, kkt=k, code=c, fn_serial=f, at=read_started_at)
                for s, k, c, f in batch
            ]
            cleared += self._apply_counted(clears, now)
        changed_agents = self._apply_counted(seen, now)
        report = ReconcileReport(
            retained=len(retained),
            alerts=alerts,
            statuses=statuses,
            raised=raised,
            cleared=cleared,
            agents=changed_agents,
            complete=clear,
            read_s=float(getattr(retained, "read_s", 0.0)),
            converge_s=time.monotonic() - begun,
            retained_bytes=_size(retained),
        )
        self._next_try = self.clock() + self.interval
        log.info("%s", report.line())
        return report

    def _raise(
        self,
        retained: Mapping[str, bytes],
        topics: list[str],
        now: datetime,
        read_at: datetime,
        settled: datetime,
    ) -> int:
        """Raise the alerts of ``topics`` at their ``since``; what the store finds stale,
        again at ``settled``."""
        changed = 0
        again: list[lc.ProblemRaised] = []
        for batch in _batches(topics):
            facts = [self.intake.translate(t, retained[t], read_at).fact for t in batch]
            enriched = [self._enriched(f) for f in facts if isinstance(f, lc.ProblemRaised)]
            for fact, outcome in zip(enriched, self._apply(enriched, now), strict=True):
                if outcome is OutcomeStatus.CHANGED:
                    changed += 1
                elif outcome is OutcomeStatus.STALE and fact.at < settled:
                    again.append(fact.model_copy(update={"at": settled}))
        return changed + self._apply_counted(again, now)

    def _apply_counted(self, facts: Sequence[Fact], now: datetime) -> int:
        changed = 0
        for batch in _batches(facts):
            changed += sum(s is OutcomeStatus.CHANGED for s in self._apply(batch, now))
        return changed

    def _apply(self, batch: Sequence[Fact], now: datetime) -> list[OutcomeStatus]:
        if self._leased and not self.store.acquire_lease(
            LEASE, self.holder, self.interval.total_seconds(), self.clock()
        ):
            raise _LeaseLostError(f"reconcile: {self.holder} lost the lease mid-run")
        return [outcome.status for outcome in self.store.apply_batch(batch, now)]

    def _enriched(self, fact: lc.ProblemRaised) -> lc.ProblemRaised:
        """A retained alert carries no register facts: take the newest recorded state's."""
        if fact.snapshot_facts:
            return fact
        stored = self.store.device_facts(fact.site, fact.kkt)
        return fact.model_copy(update={"snapshot_facts": stored}) if stored else fact


class _LeaseLostError(KktmonError):
    """Another worker took the lease while this one was converging (a stall longer than
    an interval): it runs instead; this run stops."""


def _store_index(
    store: TicketStore,
) -> tuple[dict[_Key, tuple[lc.TicketState, datetime]], dict[str, lc.AgentRecord]]:
    """Every unresolved ticket's key, state and last event time, and every agent record:
    one query each, in one transaction, no ticket texts loaded.

    Through the store's transaction runner: :class:`TicketStore` has no public read this
    lean (``list_tickets`` parses every text, ``agents`` asks once per site).
    """

    def work(
        tx: Tx,
    ) -> tuple[dict[_Key, tuple[lc.TicketState, datetime]], dict[str, lc.AgentRecord]]:
        tickets = {
            (str(row[0]), str(row[1]), str(row[2]), str(row[3])): (
                lc.TicketState(row[4]),
                tx.d.read_ts(row[5]),
            )
            for row in tx.all(
                "SELECT site, kkt, problem, fn_serial, state, last_event_at FROM tickets"
                " WHERE state <> 'resolved'"
            )
        }
        agents = {
            str(row[0]): lc.AgentRecord(
                site=row[0],
                session=int(row[1]),
                state=AgentState(row[2]),
                last_status_at=tx.d.read_ts(row[3]),
            )
            for row in tx.all("SELECT site, session, state, last_status_at FROM agents")
        }
        return tickets, agents

    return store._run(work)


def _batches(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), BATCH):
        yield items[start : start + BATCH]


def _size(retained: Mapping[str, bytes]) -> int:
    if isinstance(retained, RetainedSet):
        return retained.size_bytes()
    return RetainedSet(retained).size_bytes()
