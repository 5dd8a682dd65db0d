"""What one reconciliation costs: reading the retained set and converging the store.

A private Mosquitto on a free loopback port, with the queue limits of
``deploy/mosquitto/kktmon.conf``, holds N retained alerts (one per register, four
registers per store, so N/4 agent statuses too) of about 0.5 kB each, as agents leave
them. For each store (a SQLite file; a fresh PostgreSQL schema, dropped afterwards, or a
note when the server is not reachable):

* read: :meth:`Reconciler.read_retained` (its own connection, end markers);
* cold: the first converge, into an empty store: N tickets and N/4 agent records written;
* steady: a converge with the store already in agreement (the run every interval);
* repair: 1 % of the alerts emptied and 1 % new ones, their events lost: the converge
  that clears and raises them.

Each figure is the wall time of a run without tracemalloc, and the peak of Python
allocations (tracemalloc) of a second, traced run of the same step ("held" is what the
retained set itself takes). N = 10,000 by default; ``--full`` is 100,000.

    python benchmarks/reconcile.py [--full | --alerts N] [--store sqlite|postgresql|both]
"""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import socket
import subprocess
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from kktmon.demo.broker import free_port, mosquitto_binary
from kktmon.protocol.contract import AgentState, AgentStatus
from kktmon.protocol.health import Owner, Problem, Severity
from kktmon.ticketing.config import TicketingConfig
from kktmon.ticketing.intake import Intake
from kktmon.ticketing.reconcile import Reconciler, ReconcileReport
from kktmon.ticketing.retained import RetainedSet
from kktmon.ticketing.store import open_store

PREFIX = "kktmon/v1"
PG_DSN = os.environ.get("KKTMON_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
PER_SITE = 4
CODES = ("PAPER_OUT", "OFD_QUEUE_STALE", "FN_EXPIRING", "SHIFT_TOO_LONG", "CLOCK_SKEW")
BROKER_CONF = """user {user}
listener {port} 127.0.0.1
allow_anonymous true
persistence false
max_inflight_messages 20
max_queued_messages 100000
message_size_limit 65536
log_dest file {folder}/mosquitto.log
log_type error
log_type warning
"""
T = TypeVar("T")


def register(n: int) -> tuple[str, str]:
    return f"store-{n // PER_SITE:06d}", f"shtrih-{n:016d}"


def alert(n: int, base: datetime) -> tuple[str, bytes]:
    site, kkt = register(n)
    code = CODES[n % len(CODES)]
    problem = Problem(
        code=code,
        severity=Severity.WARNING,
        owner=Owner.SERVICE,
        message=f"{code} on {kkt}: what the agent says about it, in a sentence or two",
        since=base - timedelta(minutes=n % 600),
        facts={"fn_serial": f"92874403{n:08d}", "unsent_count": 3, "oldest_unsent_age_h": 26.0},
    )
    return f"{PREFIX}/{site}/kkt/{kkt}/alert/{code}", problem.model_dump_json().encode()


def status(site: str, base: datetime) -> tuple[str, bytes]:
    payload = AgentStatus(state=AgentState.ONLINE, session=1, version="1", started_at=base)
    return f"{PREFIX}/{site}/agent/status", payload.to_bytes()


@contextmanager
def broker(folder: Path) -> Iterator[int]:
    binary = mosquitto_binary()
    if binary is None:
        raise SystemExit("needs Mosquitto (apt-get install mosquitto)")
    port = free_port()
    conf = folder / "mosquitto.conf"
    conf.write_text(BROKER_CONF.format(user=getpass.getuser(), port=port, folder=folder))
    process = subprocess.Popen([binary, "-c", str(conf)])
    try:
        deadline = time.monotonic() + 10
        while not listening(port):
            if time.monotonic() > deadline or process.poll() is not None:
                raise SystemExit(f"mosquitto did not start on {port}")
            time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        process.wait(10)


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


class Publisher:
    """Leaves retained messages on the broker (QoS 1, a window at a time)."""

    def __init__(self, port: int) -> None:
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5
        )
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def retain(self, messages: Iterable[tuple[str, bytes]]) -> int:
        count = 0
        info: mqtt.MQTTMessageInfo | None = None
        for count, (topic, payload) in enumerate(messages, 1):
            info = self.client.publish(topic, payload, qos=1, retain=True)
            if count % 10_000 == 0:
                info.wait_for_publish(120)
        if info is not None:
            info.wait_for_publish(120)
        return count

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@contextmanager
def store_urls(kind: str, folder: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{folder}/tickets-{uuid.uuid4().hex[:6]}.sqlite3"
        return
    import psycopg

    try:
        admin = psycopg.connect(PG_DSN, autocommit=True, connect_timeout=3)
    except psycopg.Error as exc:
        print(f"note: PostgreSQL skipped, not reachable at {PG_DSN}: {str(exc).strip()[:160]}")
        return
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{PG_DSN}?options=-csearch_path%3D{schema}"
    finally:
        admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        admin.close()


@dataclass
class Figure:
    seconds: float
    peak_mb: float | None = None

    def __str__(self) -> str:
        peak = "-" if self.peak_mb is None else f"{self.peak_mb:.1f}"
        return f"{self.seconds:7.2f} s {peak:>7} MB"


def timed(step: Callable[[], T]) -> tuple[T, float]:
    started = time.perf_counter()
    result = step()
    return result, time.perf_counter() - started


def traced(step: Callable[[], T]) -> tuple[T, float]:
    tracemalloc.start()
    try:
        result = step()
        return result, tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()


def run_store(kind: str, port: int, folder: Path, base: datetime, n: int) -> list[str]:
    lines: list[str] = []
    with store_urls(kind, folder) as url:
        config = TicketingConfig.model_validate(
            {"mqtt": {"url": f"mqtt://127.0.0.1:{port}"}, "ticketing": {"store": url}}
        )
        with open_store(url, policy=config.ticketing) as store:
            worker = Reconciler(config, store, Intake(PREFIX), "kktmon-ticketing-bench")

            def read() -> RetainedSet:
                return worker.read_retained(timeout_s=600)

            def converge(retained: RetainedSet) -> Callable[[], ReconcileReport]:
                return lambda: worker.converge(retained, datetime.now(UTC), read_at)

            read_at = datetime.now(UTC)
            retained, read_s = timed(read)
            _, read_mb = traced(read)
            assert retained.complete, "the end marker did not come"
            lines.append(
                f"{kind:10} read    {Figure(read_s, read_mb)}  {len(retained):,} messages,"
                f" held {retained.size_bytes() / 1e6:.1f} MB"
            )
            cold, cold_s = timed(converge(retained))
            lines.append(
                f"{kind:10} cold    {Figure(cold_s, cold_peak(config, url, retained, read_at))}"
                f"  raised {cold.raised:,}, agents {cold.agents:,}"
            )
            steady, steady_s = timed(converge(retained))
            _, steady_mb = traced(converge(retained))
            assert (steady.raised, steady.cleared) == (0, 0), steady
            lines.append(f"{kind:10} steady  {Figure(steady_s, steady_mb)}")
            lines.append(repair(kind, worker, port, base=base, n=n, before=retained))
    return lines


def cold_peak(
    config: TicketingConfig, url: str, retained: RetainedSet, read_at: datetime
) -> float | None:
    """The peak of a traced first converge, into a fresh SQLite store beside ``url``'s
    (what the converge holds does not depend on the database; a traced run is slow)."""
    if not url.startswith("sqlite:///"):
        return None
    fresh = url.replace(".sqlite3", "-traced.sqlite3")
    with open_store(fresh, policy=config.ticketing) as store:
        worker = Reconciler(config, store, Intake(PREFIX), "kktmon-ticketing-traced")
        return traced(lambda: worker.converge(retained, datetime.now(UTC), read_at))[1]


def repair(
    kind: str, worker: Reconciler, port: int, *, base: datetime, n: int, before: RetainedSet
) -> str:
    """1 % of alerts emptied and 1 % new, events lost; put back afterwards."""
    step = 100
    gone = [alert(i, base)[0] for i in range(0, n, step)]
    new = [alert(n + i, base) for i in range(0, n, step)]
    publisher = Publisher(port)
    try:
        publisher.retain((topic, b"") for topic in gone)
        publisher.retain(new)
        read_at = datetime.now(UTC)
        retained = worker.read_retained(timeout_s=600)
        report, seconds = timed(lambda: worker.converge(retained, datetime.now(UTC), read_at))
        line = (
            f"{kind:10} repair  {Figure(seconds)}  cleared {report.cleared:,},"
            f" raised {report.raised:,}"
        )
        publisher.retain((topic, b"") for topic, _ in new)
        publisher.retain((topic, before[topic]) for topic in gone)
        return line
    finally:
        publisher.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--alerts", type=int, default=10_000)
    parser.add_argument("--full", action="store_true", help="100,000 retained alerts")
    parser.add_argument("--store", choices=("sqlite", "postgresql", "both"), default="both")
    args = parser.parse_args()
    n = 100_000 if args.full else args.alerts
    kinds = ["sqlite", "postgresql"] if args.store == "both" else [args.store]
    logging.basicConfig(level=logging.WARNING)
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    with tempfile.TemporaryDirectory(prefix="kktmon-reconcile-") as tmp, broker(Path(tmp)) as port:
        publisher = Publisher(port)
        try:
            sites = sorted({register(i)[0] for i in range(n)})
            publish_s = time.perf_counter()
            publisher.retain(status(site, base) for site in sites)
            publisher.retain(alert(i, base) for i in range(n))
            publish_s = time.perf_counter() - publish_s
        finally:
            publisher.close()
        print(f"{n:,} retained alerts, {len(sites):,} statuses (published in {publish_s:.1f} s)")
        print(f"{'store':10} step    {'time':>9} {'peak':>10}")
        for kind in kinds:
            for line in run_store(kind, port, Path(tmp), base, n):
                print(line, flush=True)


if __name__ == "__main__":
    main()
