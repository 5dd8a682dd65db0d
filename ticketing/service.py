"""``kktmon ticketing``: the central subscriber that turns agents' messages into tickets.

A worker holds a stable MQTT identity (:mod:`identity`: the same client id after a
restart, never the id of another live worker on the host) and resumes its persistent
session under it (:mod:`session`), so its share of events waits at the broker while it
restarts. Threads, each with one job, none allowed to die of one message:

* paho's network thread receives messages and only queues them;
* the intake worker takes queued messages in batches and hands them to :mod:`apply`:
  translated (:mod:`intake`), stored, and only then acknowledged (manual PUBACK), so a
  killed worker loses nothing: the broker redelivers. A message the store refuses even
  alone (or one intake rejects) is dead-lettered and acknowledged; a store that is
  unavailable holds the batch unacknowledged and is retried with backoff;
* the ticker runs the store's clock (hold-downs, grace periods, lost agents);
* the dispatcher delivers help-desk calls from the store's outbox to the sinks;
* the notifier (when ``[[clients]]`` have contacts) finds thresholds crossed and delivers
  client messages from their outbox (:mod:`notify_dispatch`);
* the history pruner deletes register history older than ``[console] history_days``,
  one worker at a time under a lease (:mod:`history`);
* the reconciler reads the retained alerts once at start (brokers never hand retained
  messages to shared subscriptions) and then, one worker at a time under a lease, every
  ``reconcile_interval_s`` (:mod:`reconcile`).

Anything unexpected in a loop is logged (rate-limited, with the message's topic where
there is one), counted in :attr:`TicketingService.faults`, and the loop goes on.
:meth:`TicketingService.run` supervises: a thread that died anyway, or a session taken
over by another client with this id, ends the worker with a non-zero status
(:data:`EXIT_THREAD_DIED`: restart it; :data:`EXIT_TAKEN_OVER`: fix the ids first).

:meth:`TicketingService.retire` ends a worker's session for good (scale-in): it resumes
the session, leaves the shared group, applies what was queued for it, then has the
broker drop the session (:func:`session.end_session`).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import partial

import paho.mqtt.client as mqtt
from paho.mqtt.subscribeoptions import SubscribeOptions

from kktmon.protocol.errors import KktmonError
from kktmon.ticketing.apply import Applier, Message
from kktmon.ticketing.calls import Sink
from kktmon.ticketing.config import OkdeskSinkConfig, TicketingConfig, WebhookSinkConfig
from kktmon.ticketing.dispatch import Backoff, Dispatcher
from kktmon.ticketing.faults import Retry, Throttle
from kktmon.ticketing.history import HistoryPruner
from kktmon.ticketing.identity import Identity, claim
from kktmon.ticketing.intake import Intake
from kktmon.ticketing.notify_dispatch import build_notifier
from kktmon.ticketing.okdesk import OkdeskSink
from kktmon.ticketing.reconcile import Reconciler
from kktmon.ticketing.session import WorkerSession, end_session
from kktmon.ticketing.sinks import WebhookSink
from kktmon.ticketing.store import TicketStore, open_store

log = logging.getLogger(__name__)

BATCH = 500  # messages per store transaction
EXIT_OK, EXIT_THREAD_DIED, EXIT_TAKEN_OVER = 0, 1, 3
SUPERVISE_S = 0.5
RECONCILE_POLL_S = 1.0  # how often the reconciler asks whether its run is due
RETIRE_QUIET_S = 2.0  # retiring: this long without a message = the session's queue is empty
RETIRE_DEADLINE_S = 120.0


def utc_now() -> datetime:
    return datetime.now(UTC)


def build_sinks(config: TicketingConfig) -> dict[str, Sink]:
    sinks: dict[str, Sink] = {}
    for entry in config.sink_configs():
        if isinstance(entry, WebhookSinkConfig):
            secret = entry.secret.get_secret_value() if entry.secret else None
            sinks[entry.name] = WebhookSink(
                entry.name, entry.url, secret, timeout_s=entry.timeout_s, headers=entry.headers
            )
        elif isinstance(entry, OkdeskSinkConfig):
            token = entry.api_token.get_secret_value() if entry.api_token else ""
            sinks[entry.name] = OkdeskSink(
                entry.name,
                entry.url,
                token,
                author_id=entry.author_id,
                issue_type=entry.issue_type,
                priorities={str(k): v for k, v in entry.priorities.items()},
                resolved_status=entry.resolved_status,
                reopened_status=entry.reopened_status,
                timeout_s=entry.timeout_s,
                find_equipment=entry.find_equipment,
            )
    return sinks


def _backoffs(config: TicketingConfig) -> dict[str, Backoff]:
    return {
        entry.name: Backoff(entry.retry_min_s, entry.retry_max_s, max_attempts=entry.max_attempts)
        for entry in config.sink_configs()
    }


class TicketingService:
    """One worker; run several against one PostgreSQL store to scale out."""

    def __init__(
        self,
        config: TicketingConfig,
        store: TicketStore | None = None,
        identity: Identity | None = None,
    ) -> None:
        self.config = config
        section = config.ticketing
        self.identity = identity or claim(config)
        try:
            self.session = WorkerSession(
                config.mqtt,
                self.identity.client_id,
                on_connected=self._on_connected,
                on_message=self._on_message,
                on_fatal=self._on_fatal,
            )
            self.store = store or open_store(section.store, policy=section, sinks=config.sink_names)
        except BaseException:
            self.identity.release()
            raise
        self.intake = Intake(config.mqtt.topic_prefix, section.limits)
        self.sinks = build_sinks(config)
        self.dispatcher = Dispatcher(self.store, self.sinks, per_sink=_backoffs(config))
        self.notifier = build_notifier(config, self.store, self.identity.client_id)
        self.reconciler = Reconciler(
            config, self.store, self.intake, self.identity.client_id, utc_now
        )
        self.pruner = HistoryPruner(
            self.store, self.identity.client_id, config.console.history_days, clock=utc_now
        )
        self.stop_event = threading.Event()
        self.reconciled = threading.Event()
        self.exit_code = EXIT_OK
        #: Unexpected failures per loop, and what became of messages (dead-lettered, lost).
        self.faults: Counter[str] = Counter()
        self.applier = Applier(
            self.store,
            self.intake,
            ack=self._ack,
            stop=self.stop_event,
            faults=self.faults,
            on_fault=self._fault,
        )
        # SimpleQueue: its put and get are C, and paho's thread puts every message.
        self._inbox: queue.SimpleQueue[Message] = queue.SimpleQueue()
        self._unacked = 0
        self._unacked_lock = threading.Lock()
        self._last_message = time.monotonic()
        self._retiring = False
        self._throttle = Throttle(interval_s=30.0)
        self._last_tick = 0.0
        self._threads = [
            threading.Thread(target=self._intake_loop, name="ticketing intake", daemon=True),
            threading.Thread(target=self._tick_loop, name="ticketing ticker", daemon=True),
            threading.Thread(target=self._dispatch_loop, name="ticketing dispatcher", daemon=True),
            threading.Thread(target=self._reconcile_loop, name="ticketing reconciler", daemon=True),
            threading.Thread(target=self._history_loop, name="ticketing history", daemon=True),
        ]
        if self.notifier is not None:
            self._threads.append(
                threading.Thread(target=self._notify_loop, name="ticketing notifier", daemon=True)
            )

    # ------------------------------------------------------------------ lifecycle

    @property
    def client_id(self) -> str:
        return self.identity.client_id

    @property
    def v5(self) -> bool:
        """MQTT 5 (shared subscriptions, session expiry) unless the config says 3.1.1."""
        return self.session.v5

    @property
    def connected(self) -> threading.Event:
        return self.session.connected

    @property
    def client(self) -> mqtt.Client:
        return self.session.client

    @property
    def applied(self) -> int:
        """Facts stored and acknowledged so far."""
        return self.applier.applied

    def start(self) -> None:
        log.info("ticketing worker %s starting", self.client_id)
        self.session.start()
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Stop the threads, disconnect keeping the session, close the store, unlock the id."""
        self.stop_event.set()
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout=10)
        self.session.stop()
        if self.notifier is not None:
            self.notifier.close()
        self.store.close()
        for sink in self.sinks.values():
            close = getattr(sink, "close", None)
            if close is not None:
                close()
        self.identity.release()

    def run(self) -> int:
        """Serve until ``stop_event`` (set by the CLI's signal handlers), supervising threads.

        Returns 0 after a clean stop, :data:`EXIT_THREAD_DIED` when a thread died,
        :data:`EXIT_TAKEN_OVER` when another client took the session.
        """
        self.start()
        while not self.stop_event.wait(SUPERVISE_S):
            dead = [thread.name for thread in self._threads if not thread.is_alive()]
            if dead:
                log.critical(
                    "%s died; worker %s exits so that the service manager restarts it",
                    ", ".join(dead),
                    self.client_id,
                )
                self.exit_code = EXIT_THREAD_DIED
                break
        self.stop()
        return self.exit_code

    def _on_fatal(self, message: str) -> None:
        self.exit_code = EXIT_TAKEN_OVER
        self.stop_event.set()

    # ------------------------------------------------------------------ MQTT

    def _live_topics(self) -> list[str]:
        prefix = self.config.mqtt.topic_prefix
        return [f"{prefix}/+/kkt/+/event", f"{prefix}/+/kkt/+/state", f"{prefix}/+/agent/status"]

    def _filters(self) -> list[str]:
        group = self.config.mqtt.shared_group
        topics = self._live_topics()
        return [f"$share/{group}/{topic}" for topic in topics] if self.v5 else topics

    def _on_connected(self, client: mqtt.Client, _session_present: bool) -> None:
        self._last_message = time.monotonic()
        if self._retiring:  # leave the group first: nothing new is routed to this session
            client.unsubscribe(self._filters())
            return
        if self.v5:
            # Mosquitto 2.0 hands retained messages to a new $share subscription, contrary
            # to MQTT 5: every register's state to every worker on every connect. The
            # reconciler reads the retained set on its own connection instead.
            options = SubscribeOptions(qos=1, retainHandling=SubscribeOptions.RETAIN_DO_NOT_SEND)
            client.subscribe([(topic, options) for topic in self._filters()])
        else:  # one worker: plain subscriptions
            client.subscribe([(topic, 1) for topic in self._filters()])

    def _on_message(self, message: mqtt.MQTTMessage) -> None:
        with self._unacked_lock:
            self._unacked += 1
        self._last_message = time.monotonic()
        self._inbox.put(
            Message(message.topic, bytes(message.payload), message.mid, message.qos, utc_now())
        )

    def _ack(self, messages: Sequence[Message]) -> None:
        """Acknowledge a stored batch: PUBACKs queued back to back for paho's thread."""
        ack = self.session.ack
        for message in messages:
            ack(message.mid, message.qos)
        with self._unacked_lock:
            self._unacked -= len(messages)

    # ------------------------------------------------------------------ intake

    def _intake_loop(self) -> None:
        while not self.stop_event.is_set():
            batch = self._take_batch()
            if batch:
                more = f" (+{len(batch) - 1})" if len(batch) > 1 else ""
                self._guarded("intake", partial(self.applier.apply, batch), batch[0].topic + more)

    def _take_batch(self) -> list[Message]:
        try:
            batch = [self._inbox.get(timeout=0.2)]
        except queue.Empty:
            return []
        while len(batch) < BATCH:
            try:
                batch.append(self._inbox.get_nowait())
            except queue.Empty:
                break
        return batch

    # ------------------------------------------------------------------ other loops

    def _guarded(self, loop: str, work: Callable[[], object], topic: str | None = None) -> None:
        try:
            work()
        except Exception as exc:  # one failure must not end the loop
            self._fault(loop, exc, topic)

    def _fault(self, loop: str, exc: Exception, topic: str | None = None) -> None:
        self.faults[loop] += 1
        where = f" on {topic}" if topic else ""
        self._throttle.log(
            log,
            logging.ERROR,
            f"{loop}:{type(exc).__name__}",
            "%s failed%s (%d failure(s) so far), carrying on: %s: %s",
            loop,
            where,
            self.faults[loop],
            type(exc).__name__,
            exc,
            exc_info=not isinstance(exc, KktmonError),
        )

    def _tick_loop(self) -> None:
        interval = self.config.ticketing.tick_interval_s
        while not self.stop_event.wait(min(interval, 1.0)):
            if self._tick_due(interval):
                self._guarded("ticker", lambda: self.store.tick(utc_now()))

    def _tick_due(self, interval: float) -> bool:
        now = time.monotonic()
        if now - self._last_tick >= interval:
            self._last_tick = now
            return True
        return False

    def _dispatch_loop(self) -> None:
        while not self.stop_event.is_set():
            self._guarded("dispatcher", lambda: self.dispatcher.run_forever(self.stop_event))
            self.stop_event.wait(1.0)  # run_forever only returns by raising or stopping

    def _notify_loop(self) -> None:
        notifier = self.notifier
        while notifier is not None and not self.stop_event.is_set():
            self._guarded("notifier", lambda: notifier.run_forever(self.stop_event))
            self.stop_event.wait(1.0)  # run_forever only returns by raising or stopping

    def _history_loop(self) -> None:
        while not self.stop_event.is_set():
            self._guarded("history", lambda: self.pruner.run_forever(self.stop_event))
            self.stop_event.wait(1.0)  # run_forever only returns by raising or stopping

    def _reconcile_loop(self) -> None:
        retry = Retry(1.0, 15.0)
        while not self.stop_event.is_set():
            try:
                self._reconcile_at_start()
                break
            except Exception as exc:
                self.faults["reconciler"] += 1
                delay = retry.next_s()
                log.warning(
                    "start-up reconcile failed (%s: %s); retrying in %g s",
                    type(exc).__name__,
                    exc,
                    delay,
                    exc_info=not isinstance(exc, KktmonError),
                )
                self.stop_event.wait(delay)
        while not self.stop_event.wait(RECONCILE_POLL_S):
            self._guarded("reconciler", self.reconciler.run_if_due)

    def _reconcile_at_start(self) -> None:
        self.reconciler.run_now()  # every worker, no lease: its own start (logs its line)
        self.reconciled.set()

    # ------------------------------------------------------------------ retiring

    def retire(self) -> int:
        """End this worker's session for good, after applying what was queued for it.

        Returns 0 when the session is gone; 1 (logged) when queued messages could not be
        stored in time: the session is then kept, so nothing is lost, and retiring again
        later finishes the job.
        """
        self._retiring = True
        self.session.start()
        intake = self._threads[0]
        intake.start()
        deadline = time.monotonic() + RETIRE_DEADLINE_S
        drained = False
        while time.monotonic() < deadline and not self.stop_event.is_set():
            quiet = time.monotonic() - self._last_message >= RETIRE_QUIET_S
            if self.connected.is_set() and quiet and self._unacked == 0:
                drained = True
                break
            time.sleep(0.1)
        ever_connected = self.session.ever_connected
        self.stop()
        if not drained:
            why = (
                f"{self._unacked} queued message(s) could not be stored"
                if ever_connected
                else "the broker could not be reached"
            )
            log.error("%s not retired: %s; its session is kept, try again", self.client_id, why)
            return 1
        end_session(self.config.mqtt, self.client_id)
        log.warning("retired %s: the broker dropped its session", self.client_id)
        return 0
