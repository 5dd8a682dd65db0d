"""How many register states and events ``kktmon ticketing`` absorbs per second.

For each store (a SQLite file; a fresh PostgreSQL schema, dropped afterwards, or a note
when the server is not reachable) and for 1 and then 2 workers: a private Mosquitto on
a free loopback port with the queue limits of ``deploy/mosquitto/kktmon.conf``, the
workers as ``kktmon ticketing`` subprocesses (two workers really use two cores), and
publisher processes sending QoS 1 contract messages as agents do.

* live states: ~2 KB ``HealthSnapshot`` states, one per register (a register sends one a
  minute, so a burst never repeats one); absorbed = its row is in ``devices``.
* live events: ``Event`` pairs of a few codes, each problem raised and later cleared;
  absorbed = its id is in ``seen_events`` (written in the transaction applying it).
  ``left`` counts tickets still live afterwards: every problem was cleared, so it must
  be 0. ``--flapping`` sends each pair back to back over few registers (worst case).
* drained states: states queued by the broker while the workers were stopped, timed
  from the moment the first restarted worker connected: the workers' capacity without
  the publishers competing for the CPU. (With ``--protocol 3.1.1`` a restart also
  re-reads every retained state through its plain subscriptions; that is included.)

A rate is messages / (first publish, or connect, -> the store holds them all). The
targets are issue 12's, per worker process: 10,000 states/s and 2,000 events/s, and
two workers at least 1.7 times one. ``--repeat N`` runs every case N times and adds
the median row (the machine is shared: single runs vary); the last lines compare N
workers with one, on those medians.

    python benchmarks/ticketing.py [--states 20000] [--events 2000] [--store sqlite]
        [--workers 1 2] [--repeat 3] [--profile DIR]
"""

from __future__ import annotations

import argparse
import getpass
import multiprocessing as mp
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from kktmon.protocol import health as h
from kktmon.protocol.contract import Event, EventKind
from kktmon.protocol.health import HealthSnapshot, Problem
from kktmon.protocol.problems import Owner, ProblemCode, Severity

PREFIX = "kktmon/v1"
PG_DSN = os.environ.get("KKTMON_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
#: Issue 12's targets per worker process, and for two workers against one.
TARGET_STATES, TARGET_EVENTS, TARGET_SCALING = 10_000, 2_000, 1.7
CODES = (ProblemCode.PAPER_OUT, ProblemCode.COVER_OPEN, ProblemCode.OFD_QUEUE_STALE)
TICKS = os.sysconf("SC_CLK_TCK")
#: The central broker's queue limits; as root, mosquitto would switch to the
#: 'mosquitto' user, which cannot write its log into our folder.
BROKER_CONF = """user {user}
listener {port} 127.0.0.1
allow_anonymous true
max_inflight_messages 20
max_queued_messages 100000
log_dest file {folder}/mosquitto.log
log_type error
log_type warning
log_type notice
log_type subscribe
connection_messages true
"""
Job = tuple[str, int, int, str, bool]  # kind, first, last, base time (ISO), flapping


def state_template(base: datetime) -> str:
    """A register's state as ``kktmon agent`` publishes it; ``@SERIAL@`` to fill in."""
    stale = Problem(
        code=ProblemCode.OFD_QUEUE_STALE,
        severity=Severity.WARNING,
        owner=Owner.SERVICE,
        message="3 documents not confirmed by the OFD for 1.1 days",
        since=base - timedelta(hours=26),
        facts={"unsent_count": 3, "first_unsent_number": 423},
    )
    shift = stale.model_copy(
        update={
            "code": ProblemCode.SHIFT_TOO_LONG.value,
            "message": "shift open 20.5 h",
            "facts": {"hours": 20.5},
        }
    )
    snapshot = HealthSnapshot(
        taken_at=base,
        device=h.DeviceInfo(
            vendor="shtrih",
            model="ШТРИХ-ЛАЙТ-02Ф",
            serial="@SERIAL@",
            firmware="T.3 build 7196 (2025-12-17)",
            rnm="0001234567012345",
            inn="9706048530",
            ffd=h.FfdVersions(device="1.2", fn="1.2", registered="1.2"),
            transport="socket",
        ),
        fn=h.FnHealth(
            serial="9287440301120991",
            phase=h.FnPhaseInfo.from_byte(3),
            valid_until=date(2027, 9, 23),
            days_left=300,
            registrations_left=11,
            last_document_number=425,
            last_document_at=base - timedelta(minutes=3),
            memory_used_pct=0.17,
            documents_left=245231,
            storage_30d_free_kb=1023,
            firmware="fn v 2.13",
        ),
        ofd=h.OfdQueue(
            unsent_count=3,
            first_unsent_number=423,
            first_unsent_at=base - timedelta(hours=26),
            oldest_unsent_age_h=26.0,
            exchange=h.OfdExchangeStatus.from_byte(3),
        ),
        shift=h.ShiftInfo(
            state=h.ShiftState.OPEN,
            number=42,
            opened_at=base - timedelta(hours=20.5),
            hours_open=20.5,
        ),
        printer=h.PrinterInfo(paper=h.PaperState.OK, cover_open=False, fault=False),
        clock=h.ClockInfo(device_time=base, skew_s=-0.9),
        link=h.LinkInfo(duration_ms=8.9, bytes_tx=242, bytes_rx=594),
        last_good_at=base,
        problems=[stale, shift],
    ).with_block_deadline()
    return str(snapshot.to_json())


def register(n: int) -> tuple[str, str]:
    """Site and kkt of register ``n`` (two registers per store)."""
    return f"store-{n // 2:06d}", f"shtrih-{n:016d}"


def state_messages(first: int, last: int, base: datetime) -> list[tuple[str, bytes]]:
    template = state_template(base)
    out = []
    for n in range(first, last):
        site, kkt = register(n)
        payload = template.replace("@SERIAL@", f"{n:016d}").encode()
        out.append((f"{PREFIX}/{site}/kkt/{kkt}/state", payload))
    return out


def event_messages(
    first: int, last: int, base: datetime, flapping: bool
) -> list[tuple[str, bytes]]:
    """Pairs ``first // 2 .. last // 2``: raised, then cleared (back to back if flapping)."""
    raised: list[tuple[str, EventKind, Problem, datetime]] = []
    cleared: list[tuple[str, EventKind, Problem, datetime]] = []
    for pair in range(first // 2, last // 2):
        key = pair % 600 if flapping else pair  # flapping: 200 registers x 3 codes
        site, kkt = register(key // len(CODES))
        code = CODES[key % len(CODES)]
        at = base + (timedelta(seconds=pair) if flapping else timedelta(milliseconds=pair))
        problem = Problem(
            code=code,
            severity=Severity.WARNING,
            owner=Owner.SERVICE,
            message=f"{code} on {kkt}",
            since=at,
            facts={"unsent_count": 3} if code is ProblemCode.OFD_QUEUE_STALE else {},
        )
        topic = f"{PREFIX}/{site}/kkt/{kkt}/event"
        later = at + timedelta(seconds=0.5 if flapping else 60)
        raised.append((topic, EventKind.RAISED, problem, at))
        (raised if flapping else cleared).append((topic, EventKind.CLEARED, problem, later))
    return [
        (topic, Event(seq=seq, kind=kind, problem=problem, at=at).to_bytes())
        for seq, (topic, kind, problem, at) in enumerate(raised + cleared)
    ]


def publisher(port: int, job: Job, ready: Any, done: Any, go: Any) -> None:
    """One agent-like client: build its messages, wait for ``go``, send them at QoS 1."""
    kind, first, last, base, flapping = job
    when = datetime.fromisoformat(base)
    if kind == "state":
        messages = state_messages(first, last, when)
    else:
        messages = event_messages(first, last, when, flapping)
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5
    )
    client.connect("127.0.0.1", port)
    client.loop_start()
    ready.put(os.getpid())
    go.wait()
    retain = kind == "state"  # as the agent does: the newest state of every register
    infos = [client.publish(topic, payload, qos=1, retain=retain) for topic, payload in messages]
    for info in infos:
        info.wait_for_publish(120)
    done.put(time.monotonic())
    client.disconnect()
    client.loop_stop()


class Publishers:
    """Publisher processes, ready to send on :meth:`go`; joined (or killed) on exit."""

    def __init__(self, port: int, jobs: list[Job]) -> None:
        ctx = mp.get_context("spawn")
        self.ready, self.done, self.event = ctx.Queue(), ctx.Queue(), ctx.Event()
        self.messages = sum(job[2] - job[1] for job in jobs)
        args = [(port, job, self.ready, self.done, self.event) for job in jobs]
        self.procs = [ctx.Process(target=publisher, args=a, daemon=True) for a in args]
        self.begin = 0.0

    def __enter__(self) -> Publishers:
        for proc in self.procs:
            proc.start()
        for _ in self.procs:
            self.ready.get(timeout=60)
        return self

    def go(self) -> float:
        self.event.set()
        self.begin = time.monotonic()
        return self.begin

    def publish_s(self) -> float:
        """Seconds from :meth:`go` until the broker acknowledged every message."""
        return float(max(self.done.get(timeout=120) for _ in self.procs)) - self.begin

    def __exit__(self, *exc_info: object) -> None:
        for proc in self.procs:
            proc.join(5)
            if proc.is_alive():
                proc.terminate()
                proc.join(5)


def split(
    kind: str, total: int, base: datetime, *, offset: int = 0, flapping: bool = False
) -> list[Job]:
    """Two publishers' contiguous halves of ``offset + range(total)`` (events: whole pairs)."""
    step = 2 if kind == "event" else 1
    bounds = [0, total // 2 // step * step, total]
    at = base.isoformat()
    return [(kind, offset + a, offset + b, at, flapping) for a, b in pairwise(bounds) if b > a]


def wait_for(condition: Callable[[], bool], what: str, timeout: float, step: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(step)


def stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


class Broker:
    def __init__(self, folder: Path) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self.log = folder / "mosquitto.log"
        conf = folder / "mosquitto.conf"
        conf.write_text(BROKER_CONF.format(user=getpass.getuser(), port=self.port, folder=folder))
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.process = subprocess.Popen([binary, "-c", str(conf)], stderr=subprocess.DEVNULL)
        wait_for(lambda: listening(self.port), "mosquitto listening", 10)

    def seen(self, line: str) -> int:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return text.count(line)

    def connected(self, client_id: str) -> int:
        return self.seen(f" as {client_id} (")

    def subscribed(self, client_id: str) -> int:
        """How often the worker subscribed to the agents' statuses, the last of its live
        filters (it applies what arrives from then on; its start-up reconcile reads the
        retained alerts on a connection of its own, in the background)."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return sum(
            1
            for line in text.splitlines()
            if f" {client_id} 1 " in line and line.endswith(f"{PREFIX}/+/agent/status")
        )


class Workers:
    """``kktmon ticketing`` processes with fixed client ids, so a restart resumes the
    session and gets what the broker queued meanwhile."""

    def __init__(
        self,
        folder: Path,
        broker: Broker,
        url: str,
        count: int,
        protocol: str,
        *,
        profile: Path | None = None,
    ) -> None:
        self.folder, self.broker, self.count, self.profile = folder, broker, count, profile
        self.processes: list[subprocess.Popen[bytes]] = []
        self.profilers: list[subprocess.Popen[bytes]] = []
        for n in range(count):
            (folder / f"worker-{n}.toml").write_text(
                f'[mqtt]\nurl = "mqtt://127.0.0.1:{broker.port}"\nclient_id = "bench-w{n}"\n'
                f'protocol = "{protocol}"\n[ticketing]\nstore = "{url}"\n'
                '[ticketing.closed_hours]\ndefault = ""\n'
            )

    def start(self, until: str = "subscribed") -> float:
        """Start the workers and wait until every one has ``until`` (``connected`` or
        ``subscribed``); the time the first one did."""
        check = getattr(self.broker, until)
        ids = [f"bench-w{n}" for n in range(self.count)]
        before = [check(client_id) for client_id in ids]
        for n in range(self.count):
            config = str(self.folder / f"worker-{n}.toml")
            command = [sys.executable, "-m", "kktmon.cli", "ticketing", "--config", config]
            with (self.folder / f"worker-{n}.log").open("ab") as log:
                self.processes.append(subprocess.Popen(command, stdout=log, stderr=log))
            if self.profile is not None:
                self._attach(self.processes[-1].pid, n)

        first: list[float] = []

        def ready() -> bool:
            if any(p.poll() is not None for p in self.processes):
                raise RuntimeError(f"a worker exited; see {self.folder}/worker-*.log")
            done = [check(i) > b for i, b in zip(ids, before, strict=True)]
            if any(done) and not first:
                first.append(time.monotonic())
            return all(done)

        wait_for(ready, f"workers {until}", 30, step=0.01)
        return first[0]

    def _attach(self, pid: int, n: int) -> None:
        """py-spy samples the worker until it exits: raw collapsed stacks of the thread that
        holds the GIL (what the worker spends its one core of Python on)."""
        assert self.profile is not None
        out = self.profile / f"{self.folder.name}-w{n}-{pid}.txt"
        spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        command = [spy, "record", "--pid", str(pid), "--gil", "--nonblocking", "--rate", "250"]
        self.profilers.append(
            subprocess.Popen(
                [*command, "--format", "raw", "--output", str(out)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )

    def stop(self) -> None:
        for process in self.processes:
            stop_process(process)
        self.processes = []
        for profiler in self.profilers:  # they write their file once the worker is gone
            profiler.wait(30)
        self.profilers = []

    def cpu_s(self) -> float:
        total = 0.0
        for process in self.processes:
            fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime
        return total

    def rss_mb(self) -> float:
        sizes = [0.0]
        for process in self.processes:
            for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    sizes.append(int(line.split()[1]) / 1024)
        return max(sizes)


class Reader:
    """Counts what the store holds, through a connection of its own."""

    def __init__(self, url: str) -> None:
        if url.startswith("sqlite:///"):
            import sqlite3

            self.conn: Any = sqlite3.connect(url.removeprefix("sqlite:///"))
        else:
            import psycopg

            self.conn = psycopg.connect(url, autocommit=True)

    def count(self, sql: str) -> int:
        return int(self.conn.execute(sql).fetchone()[0])

    def states(self) -> int:
        return self.count("SELECT count(*) FROM devices")

    def events(self) -> int:
        return self.count("SELECT count(*) FROM seen_events")

    def live_tickets(self) -> int:
        return self.count("SELECT count(*) FROM tickets WHERE state <> 'resolved'")


def host_jiffies() -> tuple[int, int]:
    """(busy, all) CPU time of the whole machine so far, from ``/proc/stat``."""
    user, nice, system, idle, iowait, irq, softirq, steal = map(
        int, Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    )
    busy = user + nice + system + irq + softirq
    return busy, busy + idle + iowait + steal


@dataclass
class Phase:
    messages: int
    absorbed: int
    seconds: float
    cpu_s: float
    publish_s: float = 0.0
    host_busy: float = 0.0  # of all CPUs, 0..1

    def per_s(self) -> float:
        return self.absorbed / self.seconds

    def cpu_us(self) -> float:
        return self.cpu_s / max(self.absorbed, 1) * 1e6


def wait_absorbed(
    target: int, progress: Callable[[], int], begin: float, timeout: float
) -> tuple[int, float]:
    absorbed = progress()
    while absorbed < target and time.monotonic() < begin + timeout:
        time.sleep(0.05)
        absorbed = progress()
    return absorbed, time.monotonic() - begin


def live_phase(
    workers: Workers, jobs: list[Job], progress: Callable[[], int], timeout: float
) -> Phase:
    start = progress()
    with Publishers(workers.broker.port, jobs) as publishers:
        cpu0, begin = workers.cpu_s(), publishers.go()
        target = start + publishers.messages
        absorbed, seconds = wait_absorbed(target, progress, begin, timeout)
        cpu = workers.cpu_s() - cpu0
        return Phase(publishers.messages, absorbed - start, seconds, cpu, publishers.publish_s())


def drain_phase(workers: Workers, jobs: list[Job], reader: Reader, timeout: float) -> Phase:
    start = reader.states()
    workers.stop()
    with Publishers(workers.broker.port, jobs) as publishers:
        publishers.go()
        publish_s = publishers.publish_s()
    # A resumed session gets its queue right after CONNACK: time from the first connect.
    begin = workers.start(until="connected")
    cpu0, host0, target = workers.cpu_s(), host_jiffies(), start + publishers.messages
    absorbed, seconds = wait_absorbed(target, reader.states, begin, timeout)
    cpu, host1 = workers.cpu_s() - cpu0, host_jiffies()
    busy = (host1[0] - host0[0]) / max(host1[1] - host0[1], 1)
    return Phase(publishers.messages, absorbed - start, seconds, cpu, publish_s, busy)


@dataclass
class Case:
    """One run of one store with ``workers`` workers: its figures by column."""

    store: str
    workers: int
    figures: dict[str, float]
    complete: bool

    def row(self, label: str = "") -> str:
        f = self.figures
        mark = "" if self.complete else "*"
        return (
            f"{self.store:<10} {self.workers:>2} {f['states']:>8,.0f}{mark} {f['pub_s']:>5.1f}"
            f" {f['states_us']:>6,.0f} {f['drained']:>8,.0f}{mark} {f['drained_us']:>6,.0f}"
            f" {f['host']:>4.0f}%"
            f" {f['events']:>8,.0f}{mark} {f['events_us']:>6,.0f} {f['left']:>4.0f}"
            f" {f['rss_mb']:>3.0f}  {self.meets()}{label}"
        )

    def meets(self) -> str:
        """Against one worker's targets; 1.7 times them for two workers (and 0.7 more for
        every further worker)."""
        f = self.figures
        scale = 1 + (self.workers - 1) * (TARGET_SCALING - 1)

        def met(value: float, target: float) -> str:
            return "met" if self.complete and value >= scale * target else "no"

        states = f"{met(f['states'], TARGET_STATES)}/{met(f['drained'], TARGET_STATES)}"
        return f"{states} {met(f['events'], TARGET_EVENTS)}"


def median_case(cases: list[Case]) -> Case:
    figures = {key: statistics.median(c.figures[key] for c in cases) for key in cases[0].figures}
    first = cases[0]
    return Case(first.store, first.workers, figures, all(c.complete for c in cases))


def scaling(store: str, medians: dict[int, Case]) -> list[str]:
    """N workers against one, on the medians."""
    one = medians.get(1)
    lines = []
    for count, case in sorted(medians.items()):
        if one is None or count == 1:
            continue
        ratios = ", ".join(
            f"{key} x{case.figures[key] / max(one.figures[key], 1):.2f}"
            for key in ("states", "drained", "events")
        )
        lines.append(f"{store}: {count} workers / 1: {ratios} (target x{TARGET_SCALING})")
    return lines


def run_case(folder: Path, url: str, count: int, args: argparse.Namespace) -> Case:
    broker = Broker(folder)
    workers = Workers(folder, broker, url, count, args.protocol, profile=args.profile)
    reader: Reader | None = None
    base = datetime.now(UTC).replace(microsecond=0)
    try:
        workers.start()
        reader = Reader(url)
        jobs = split("state", args.states, base)
        states = live_phase(workers, jobs, reader.states, args.timeout)
        jobs = split("event", args.events, base, flapping=args.flapping)
        events = live_phase(workers, jobs, reader.events, args.timeout)
        left = reader.live_tickets()
        jobs = split("state", args.states, base, offset=args.states)  # new registers
        drained = drain_phase(workers, jobs, reader, args.timeout)
        figures = {
            "states": states.per_s(),
            "pub_s": states.publish_s,
            "states_us": states.cpu_us(),
            "drained": drained.per_s(),
            "drained_us": drained.cpu_us(),
            "host": drained.host_busy * 100,
            "events": events.per_s(),
            "events_us": events.cpu_us(),
            "left": float(left),
            "rss_mb": workers.rss_mb(),
        }
        complete = all(p.absorbed >= p.messages for p in (states, drained, events))
        return Case(url.partition(":")[0], count, figures, complete)
    finally:
        if reader is not None:
            reader.conn.close()
        workers.stop()
        stop_process(broker.process)


@contextmanager
def store_url(kind: str, folder: Path) -> Iterator[str | None]:
    """A fresh store per case: a SQLite file, or a PostgreSQL schema dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{folder}/tickets.sqlite3"
        return
    try:
        import psycopg

        admin = psycopg.connect(PG_DSN, autocommit=True, connect_timeout=3)
    except Exception as exc:  # any reason not to reach it is printed, never hidden
        print(f"note: PostgreSQL skipped, not reachable at {PG_DSN}: {str(exc).strip()[:160]}")
        yield None
        return
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{PG_DSN}?options=-csearch_path%3D{schema}"
    finally:
        admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        admin.close()


HEADER = """\
                ---- live states ----  ----- drained -----  ---- live events ----      target
store       w  states/s pub s µs/msg  states/s µs/msg host  events/s µs/msg left  MB  states ev"""
NOTES = """\
w: workers. pub s: seconds the publishers took to send the states. µs/msg: CPU of all
workers per message. host: the machine's CPU busy while draining (broker, workers and
database; near 100% the machine, not the workers, sets the rate). left: tickets still
live after every problem was cleared (must be 0). MB: the largest worker's RSS at the
end. * = not all absorbed within the timeout.
target: {states:,} states/s (live/drained) and {events:,} events/s for one worker, 1.7 times
that for two. "drained" is the workers' capacity without the publishers competing for
the CPU; "live" includes that competition. One worker absorbing R states/s keeps up with
R x 60 registers sending a state a minute."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--states", type=int, default=20_000, help="per phase")
    parser.add_argument("--events", type=int, default=2_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--store", choices=["sqlite", "postgresql"], action="append")
    parser.add_argument("--flapping", action="store_true", help="raise+clear back to back")
    parser.add_argument(
        "--protocol", choices=["5", "3.1.1"], default="5", help="the workers' (3.1.1: 1 worker)"
    )
    parser.add_argument("--timeout", type=float, default=40.0, help="per phase, s")
    parser.add_argument("--repeat", type=int, default=1, help="runs per case; adds medians")
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="record every worker with py-spy (must be installed) into DIR as collapsed stacks",
    )
    args = parser.parse_args()
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    if args.protocol == "3.1.1":
        args.workers = [1]  # no shared subscriptions: one worker gets everything
    print(
        f"{os.cpu_count()} CPU(s) shared by broker, publishers, workers and database;"
        f" {args.states:,} states and {args.events:,} events per phase, 2 publishers,"
        f" workers on MQTT {args.protocol}\n" + HEADER
    )
    summary: list[str] = []
    with tempfile.TemporaryDirectory(prefix="kktmon-bench-") as tmp:
        for kind in args.store or ["sqlite", "postgresql"]:
            medians: dict[int, Case] = {}
            for count in args.workers:
                cases = []
                for run in range(args.repeat):
                    folder = Path(tmp) / f"{kind}-{count}-{run}"
                    folder.mkdir()
                    with store_url(kind, folder) as url:
                        if url is None:
                            break
                        cases.append(run_case(folder, url, count, args))
                        print(cases[-1].row(), flush=True)
                if not cases:
                    break
                medians[count] = median_case(cases)
                if args.repeat > 1:
                    print(medians[count].row("  (median)"), flush=True)
            summary += scaling(kind, medians)
    print("\n".join([*summary, NOTES.format(states=TARGET_STATES, events=TARGET_EVENTS)]))


if __name__ == "__main__":
    main()
