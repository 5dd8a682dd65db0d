"""The console at 100,000 registers: how fast its three heaviest pages answer.

Issue 14's targets, on PostgreSQL with 100,000 registers over 2,000 clients and 90 days
of hourly history:

* the fleet's first page sorted by ``block_at`` and filtered by one client: p95 <= 150 ms;
* the replacement plan for 90 days (the whole fleet, as an engineer sees it): <= 300 ms;
* a register's page with its charts: <= 100 ms.

It creates a scratch database (``--db``, default ``kktmon_bench``; dropped at the end
unless ``--keep``), lets the store's migrations create the tables (the indexes a real
store has), and fills it on the server with ``INSERT ... SELECT`` over
``generate_series`` (no row travels through Python). Register ``i`` is at site
``i // 10`` of client ``i // 50``; its facts come from two hashes of ``i``
(``hashint4``), so every fill is the same:

* the drive's end date is spread from 5 days ago to 26 months ahead (15- and 36-month
  drives bought over the years: about one in eight ends within 90 days);
* 30 % have an open shift (they stop within 24 hours), 15 % unsent OFD documents up to
  29 days old (within 30 days), 2 % a drive filling up (within 120 days), 0.1 % a closed
  archive (stopped); ``block_at`` is the earliest, with its reason, as the agent computes
  it; 1 % are stale (the agent lost them hours ago);
* live tickets as the intake opens them: FN_EXPIRING within 30 days, OFD_QUEUE_STALE past
  3 days, FN_MEMORY_FULL, FN_ARCHIVE_CLOSED, DEVICE_UNREACHABLE for the stale ones,
  PAPER_OUT for 1 %; and a resolved ticket in the last 90 days for 30 % of registers;
* hourly history over ``--days``: ``--history full`` writes every register's 2,160 hours
  (216 million rows: 35 GiB with the key, 12 minutes on a 2-core VM; check ``df -h``
  first); ``--history sample`` (the default) every 20th register's (10.8 million rows,
  1.5 GiB, half a minute: the primary key's b-tree is as deep as at full size, 4 levels,
  and every register whose page is measured is in the sample). ``register_history`` is
  UNLOGGED for the fill (a scratch database: no WAL for 35 GiB; reads are the same).

Each case is measured ``--repeat`` times after a warm-up, rotating over clients and
registers, on two layers:

* ``query``: the :mod:`kktmon.ticketing.fleet_store` function in this process (the
  store's SQL and the models built from it), with the startup objects frozen out of the
  garbage collector's sight as ``kktmon console`` does; the plan's first call, which
  builds every item (later ones reuse the unchanged), is printed apart;
* ``api`` / ``page``: ``kktmon console`` as a process (uvicorn on a free port) asked by
  httpx with a session cookie from the login form (what a browser sends); ``api+basic``
  the same API with HTTP Basic, which checks the password (scrypt, ~50 ms by design) on
  every request.

    python benchmarks/console.py [--registers 100000] [--history sample|full]
        [--repeat 30] [--db kktmon_bench] [--keep] [--reuse]

The machine is shared: run it when nothing else is, and read p50 beside p95.
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg

from kktmon.protocol.problems import PROBLEMS, ProblemCode
from kktmon.ticketing import fleet_store
from kktmon.ticketing.fleet import RegisterQuery, Scope
from kktmon.ticketing.lifecycle import PRIORITY
from kktmon.ticketing.notify_config import ClientConfig
from kktmon.ticketing.passwords import hash_password
from kktmon.ticketing.store import TicketStore, open_store

ADMIN_DSN = os.environ.get("KKTMON_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
USER, PASSWORD = "bench", "bench-password"
TARGETS_MS = {"fleet": 150.0, "plan": 300.0, "register": 100.0}
SAMPLE_STEP = 20


@dataclass
class Figures:
    case: str
    layer: str
    times: list[float]

    def quantile(self, q: float) -> float:
        ordered = sorted(self.times)
        return ordered[max(0, math.ceil(q * len(ordered)) - 1)] * 1000

    def line(self) -> str:
        target = TARGETS_MS[self.case]
        p95 = self.quantile(0.95)
        verdict = "ok" if p95 <= target else "OVER"
        return (
            f"  {self.case:<9} {self.layer:<10} p50 {self.quantile(0.5):7.1f} ms"
            f"  p95 {p95:7.1f} ms  max {max(self.times) * 1000:7.1f} ms"
            f"  (target {target:.0f} ms: {verdict})"
        )


# --- the fill (on the server) -------------------------------------------------------

PER_SITE, SITES_PER_CLIENT = 10, 5
VENDORS = ("shtrih", "atol", "pirit")
MODELS = ("ШТРИХ-М-01Ф", "АТОЛ 30Ф", "Пирит 2Ф")
#: Registers whose history one statement writes (2,160 rows each over 90 days).
HISTORY_CHUNK = 1000


@dataclass(frozen=True)
class Layout:
    """Who owns what: register ``i`` is at site ``i // 10``, of client ``i // 50``."""

    registers: int

    @property
    def sites(self) -> int:
        return -(-self.registers // PER_SITE)

    @property
    def clients(self) -> int:
        return -(-self.sites // SITES_PER_CLIENT)

    @staticmethod
    def site(n: int) -> str:
        return f"site-{n:05d}"

    @staticmethod
    def client(n: int) -> str:
        return f"client-{n:04d}"

    def register(self, i: int) -> tuple[str, str]:
        return self.site(i // PER_SITE), f"{VENDORS[i % 3]}-{i:010d}"

    def client_sites(self, n: int) -> list[str]:
        first = n * SITES_PER_CLIENT
        return [self.site(s) for s in range(first, min(first + SITES_PER_CLIENT, self.sites))]


# SQL pieces shared by the statements: register i's site and kkt, and an ISO timestamp
# as the agent writes it (Python's isoformat, UTC).
SITE_SQL = "'site-' || lpad((i / 10)::text, 5, '0')"
KKT_SQL = "(ARRAY['shtrih','atol','pirit'])[i %% 3 + 1] || '-' || lpad(i::text, 10, '0')"
#: Register ``i``'s first hash, from a ``devices`` row (its kkt ends in ``i``).
REGISTER_HASH = "(hashint4(right(d.kkt, 10)::int) & 2147483647)"


def iso(expression: str) -> str:
    return f"""to_char(({expression}) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS') || '+00:00'"""


DEVICES = f"""
WITH r AS (
    SELECT i, (hashint4(i) & 2147483647) AS h, (hashint4(i + 7777777) & 2147483647) AS g
    FROM generate_series(0, %(n)s - 1) AS i
), f AS (
    SELECT i, h, g,
        (%(today)s::date + (h %% 795 - 5)) AS valid_until,
        CASE WHEN g %% 100 < 30 THEN %(now)s - make_interval(hours => g %% 20, mins => h %% 60)
        END AS shift_opened,
        CASE WHEN g %% 100 BETWEEN 40 AND 54
            THEN %(now)s - make_interval(days => h %% 29, hours => g %% 24) END AS first_unsent,
        CASE WHEN h %% 1000 < 20 THEN %(now)s + make_interval(hours => g %% 2880) END AS mem_full,
        CASE WHEN h %% 1000 = 999 THEN %(now)s - make_interval(hours => g %% 500) END AS archived,
        (g %% 1000 < 10) AS stale
    FROM r
), b AS (
    SELECT f.*, LEAST(valid_until::timestamptz, shift_opened + interval '24 hours',
        first_unsent + interval '30 days', mem_full, archived) AS block_at
    FROM f
)
INSERT INTO devices (site, kkt, facts, taken_at)
SELECT {SITE_SQL}, {KKT_SQL}, jsonb_strip_nulls(jsonb_build_object(
    'vendor', (ARRAY['shtrih','atol','pirit'])[i %% 3 + 1],
    'model', (ARRAY{list(MODELS)!r})[i %% 3 + 1],
    'serial', lpad(i::text, 10, '0'),
    'firmware', 'A4 ' || (g %% 9),
    'rnm', lpad((h::bigint * 7)::text, 16, '0'),
    'inn', '77' || lpad((g %% 100000000)::text, 8, '0'),
    'fn_serial', (ARRAY['99614403','99604403'])[h %% 2 + 1] || lpad(i::text, 8, '0'),
    'fn_phase', CASE WHEN archived IS NULL THEN 'fiscal' ELSE 'post_fiscal' END,
    'fn_valid_until', valid_until::text,
    'fn_days_left', valid_until - %(today)s::date,
    'fn_memory_used_pct', CASE WHEN mem_full IS NULL THEN (h %% 800) / 10.0 ELSE 97.5 END,
    'fn_documents_left', CASE WHEN mem_full IS NULL THEN 200000 - h %% 150000 ELSE g %% 900 END,
    'unsent_count', CASE WHEN first_unsent IS NULL THEN 0 ELSE 1 + h %% 200 END,
    'first_unsent_at', {iso("first_unsent")},
    'oldest_unsent_age_h', round((extract(epoch FROM %(now)s - first_unsent) / 3600)::numeric, 1),
    'shift_state', CASE WHEN shift_opened IS NULL THEN 'closed' ELSE 'open' END,
    'shift_opened_at', {iso("shift_opened")},
    'block_at', {iso("block_at")},
    'block_reason', CASE block_at
        WHEN archived THEN 'fn_archive_closed' WHEN mem_full THEN 'fn_memory_full'
        WHEN shift_opened + interval '24 hours' THEN 'shift_24_hours'
        WHEN first_unsent + interval '30 days' THEN 'ofd_30_days' ELSE 'fn_expiry' END,
    'taken_at', {iso("%(now)s - make_interval(secs => g %% 60)")},
    'stale', stale
)), CASE WHEN stale THEN %(now)s - make_interval(hours => 1 + g %% 72)
    ELSE %(now)s - make_interval(secs => g %% 60) END
FROM b
"""

#: Live tickets: which registers have which problem (``d.facts``, ``d.taken_at``).
LIVE = {
    "FN_EXPIRING": "(d.facts ->> 'fn_valid_until')::date <= %(today)s::date + 30",
    "OFD_QUEUE_STALE": "(d.facts ->> 'oldest_unsent_age_h')::numeric > 72",
    "FN_MEMORY_FULL": "d.facts ->> 'block_reason' = 'fn_memory_full'",
    "FN_ARCHIVE_CLOSED": "d.facts ->> 'block_reason' = 'fn_archive_closed'",
    "DEVICE_UNREACHABLE": "(d.facts ->> 'stale')::boolean",
    "PAPER_OUT": "(hashint4(right(d.kkt, 10)::int + 12345) & 2147483647) %% 100 = 7",
}
#: A ticket's deadline: the register's own when the problem's reason is its reason.
TICKET = """
INSERT INTO tickets (site, kkt, problem, fn_serial, state, severity, priority, title,
    description, facts, block_at, first_seen_at, opened_at, clearing_since, resolved_at,
    last_event_at, last_seen_at, external_ref, revision)
SELECT d.site, d.kkt, %(code)s::text,
    CASE WHEN %(fn)s::boolean THEN d.facts ->> 'fn_serial' ELSE '' END,
    %(state)s::text, %(severity)s::text, %(priority)s::text, %(code)s::text || ' at ' || d.kkt,
    'Raised by the agent; benchmark fill.',
    jsonb_build_object('message', %(code)s::text || ' at ' || d.kkt, 'owner', %(owner)s::text,
        'problem', jsonb_build_object('fn_serial', d.facts ->> 'fn_serial',
            'valid_until', d.facts ->> 'fn_valid_until'),
        'snapshot', d.facts),
    CASE WHEN d.facts ->> 'block_reason' = %(deadline)s::text
        THEN (d.facts ->> 'block_at')::timestamptz
        WHEN %(deadline)s::text = 'fn_expiry'
        THEN (d.facts ->> 'fn_valid_until')::date::timestamp AT TIME ZONE 'UTC' END,
    {first}, {first} + interval '5 minutes',
    {clearing}, {resolved}, coalesce({resolved}, d.taken_at), d.taken_at,
    'HD-' || right(d.kkt, 7), 2
FROM devices d WHERE {where}
"""
HISTORY = f"""
INSERT INTO register_history (site, kkt, hour, unsent_count, oldest_unsent_age_h,
    fn_days_left, fn_memory_used_pct, fn_documents_left)
SELECT {SITE_SQL}, {KKT_SQL}, %(hour)s - make_interval(hours => k),
    CASE WHEN (k + i) %% 24 < 6 THEN (k + i) %% 7 ELSE 0 END,
    CASE WHEN (k + i) %% 24 < 6 THEN ((k + i) %% 24)::real END,
    ((hashint4(i) & 2147483647) %% 795 - 5) + k / 24,
    greatest(((hashint4(i) & 2147483647) %% 800) / 10.0 - k / 500.0, 0),
    200000 - (hashint4(i) & 2147483647) %% 150000 + k * 3
FROM generate_series(%(first)s, %(last)s - 1) AS i,
    generate_series(%(hours)s - 1, 0, -1) AS k
WHERE i %% %(step)s = 0
"""


def fill_devices(conn: Any, registers: int, now: datetime) -> None:
    conn.execute(DEVICES, {"n": registers, "now": now, "today": now.date()})


def fill_tickets(conn: Any, now: datetime) -> None:
    """Live tickets per :data:`LIVE`, and a resolved one for 30 % of registers."""
    for code, where in LIVE.items():
        spec = PROBLEMS[ProblemCode(code)]
        params = _ticket_params(code, spec, "open", now)
        first = f"d.taken_at - make_interval(hours => 2 + {REGISTER_HASH} %% 200)"
        sql = TICKET.format(first=first, clearing="NULL", resolved="NULL", where=where)
        conn.execute(sql, params)
    spec = PROBLEMS[ProblemCode.PAPER_OUT]
    params = _ticket_params("PAPER_OUT", spec, "resolved", now)
    days = f"make_interval(hours => {REGISTER_HASH} %% 2100)"
    sql = TICKET.format(
        first=f"%(now)s - {days} - interval '3 hours'",
        clearing=f"%(now)s - {days} - interval '1 hour'",
        resolved=f"%(now)s - {days}",
        where="(hashint4(right(d.kkt, 10)::int + 54321) & 2147483647) %% 10 < 3",
    )
    conn.execute(sql, params)


def _ticket_params(code: str, spec: Any, state: str, now: datetime) -> dict[str, Any]:
    return {
        "code": code,
        "fn": spec.fn_scoped,
        "state": state,
        "severity": spec.severity.value,
        "priority": PRIORITY[spec.severity].value,
        "owner": spec.owner.value,
        "deadline": spec.deadline.value if spec.deadline else "",
        "now": now,
        "today": now.date(),
    }


def fill_history(conn: Any, layout: Layout, days: int, step: int, now: datetime) -> int:
    """Hourly rows over ``days`` for every ``step``-th register, a chunk per statement
    (committed each: progress shows, and a stop keeps what was written); rows written."""
    hours, written, started = days * 24, 0, time.perf_counter()
    for first in range(0, layout.registers, HISTORY_CHUNK):
        last = min(first + HISTORY_CHUNK, layout.registers)
        hour = now.replace(minute=0, second=0, microsecond=0)
        params = {"hour": hour, "first": first, "last": last, "hours": hours, "step": step}
        written += conn.execute(HISTORY, params).rowcount
        conn.commit()
        if first // HISTORY_CHUNK % 10 == 9 or last == layout.registers:
            elapsed = time.perf_counter() - started
            print(
                f"  history: {last:,}/{layout.registers:,} registers, {written:,} rows,"
                f" {elapsed:,.0f} s ({written / elapsed:,.0f} rows/s)",
                flush=True,
            )
    return written


# --- the store ------------------------------------------------------------------------------


def store_url(db: str) -> str:
    return ADMIN_DSN.rsplit("/", 1)[0] + "/" + db


@contextmanager
def scratch_database(db: str, *, keep: bool, reuse: bool) -> Iterator[str]:
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", db) or db in ("test", "postgres"):
        raise SystemExit(f"--db {db!r}: a scratch database of its own, please")
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db,)).fetchone()
        if exists and not reuse:
            admin.execute(f"DROP DATABASE {db}")
        if not exists or not reuse:
            admin.execute(f"CREATE DATABASE {db}")
    try:
        yield store_url(db)
    finally:
        if not keep:
            with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
                admin.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")


def fill(url: str, layout: Layout, days: int, step: int, now: datetime) -> None:
    open_store(url, now=now).close()  # the migrations: the real tables and indexes
    with psycopg.connect(url) as conn:
        conn.execute("SET maintenance_work_mem = '512MB'")
        conn.execute("ALTER TABLE register_history SET UNLOGGED")
        started = time.perf_counter()
        fill_devices(conn, layout.registers, now)
        conn.commit()
        print(f"  devices: {time.perf_counter() - started:.1f} s", flush=True)
        started = time.perf_counter()
        fill_tickets(conn, now)
        conn.commit()
        print(f"  tickets: {time.perf_counter() - started:.1f} s", flush=True)
        fill_history(conn, layout, days, step, now)
    with psycopg.connect(url, autocommit=True) as conn:
        started = time.perf_counter()
        conn.execute("VACUUM ANALYZE")
        print(f"  vacuum analyze: {time.perf_counter() - started:.1f} s", flush=True)
        print_sizes(conn)


def print_sizes(conn: Any) -> None:
    for table in ("devices", "tickets", "register_history"):
        rows, heap, index = conn.execute(
            "SELECT reltuples::bigint, pg_relation_size(oid), pg_indexes_size(oid)"
            " FROM pg_class WHERE relname = %s",
            (table,),
        ).fetchone()
        print(
            f"  {table}: ~{rows:,} rows, heap {heap / 2**20:,.0f} MiB,"
            f" indexes {index / 2**20:,.0f} MiB"
        )
    depth = (
        conn.execute("SELECT level FROM bt_metap('register_history_pkey')").fetchone()
        if _has_pageinspect(conn)
        else None
    )
    if depth is not None:
        print(f"  register_history_pkey: {depth[0] + 1} levels")


def _has_pageinspect(conn: Any) -> bool:
    try:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pageinspect")
    except psycopg.Error:
        return False
    return True


def clients_of(layout: Layout) -> list[ClientConfig]:
    return [
        ClientConfig(id=layout.client(n), name=f"Client {n}", sites=layout.client_sites(n))
        for n in range(layout.clients)
    ]


# --- the measurements ----------------------------------------------------------------------


def timed(work: Callable[[int], object], repeat: int, warmup: int = 3) -> list[float]:
    for n in range(warmup):
        work(n)
    times = []
    for n in range(repeat):
        started = time.perf_counter()
        work(warmup + n)
        times.append(time.perf_counter() - started)
    return times


@dataclass
class Subjects:
    """What the cases rotate over: clients to filter by, registers with history."""

    clients: list[str]
    registers: list[tuple[str, str]]

    @classmethod
    def of(cls, layout: Layout, step: int, count: int = 50) -> Subjects:
        stride = max(1, layout.clients // count)
        clients = [layout.client(n) for n in range(0, layout.clients, stride)][:count]
        sampled = range(0, layout.registers, step)
        stride = max(1, len(sampled) // count)
        registers = [layout.register(i) for i in sampled[::stride]][:count]
        return cls(clients, registers)


def measure_queries(
    store: TicketStore, clients: list[ClientConfig], subjects: Subjects, repeat: int
) -> list[Figures]:
    everyone = Scope()
    now = datetime.now(UTC)

    def fleet(n: int) -> object:
        query = RegisterQuery(client=subjects.clients[n % len(subjects.clients)])
        return fleet_store.list_registers(store, query, everyone, clients, now)

    def plan(n: int) -> object:
        return fleet_store.plan(store, 90, everyone, clients, now)

    def register(n: int) -> object:
        site, kkt = subjects.registers[n % len(subjects.registers)]
        found = fleet_store.get_register(store, site, kkt, everyone, clients, now)
        assert found is not None and found.history, (site, kkt)
        return found

    started = time.perf_counter()
    found = fleet_store.plan(store, 90, everyone, clients, now)
    print(
        f"  the plan for 90 days: {len(found.items):,} registers at {len(found.by_site):,}"
        f" sites; the first one {(time.perf_counter() - started) * 1000:.0f} ms (it builds"
        " every item: later ones reuse those whose facts did not change)"
    )
    return [
        Figures("fleet", "query", timed(fleet, repeat)),
        Figures("plan", "query", timed(plan, repeat)),
        Figures("register", "query", timed(register, repeat)),
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def write_config(path: Path, url: str, layout: Layout, port: int) -> None:
    lines = [
        f'[ticketing]\nstore = "{url}"\n',
        f'[console]\nlisten = "127.0.0.1:{port}"\n',
        f'[[console.users]]\nname = "{USER}"\nrole = "engineer"\n'
        f'password_hash = "{hash_password(PASSWORD)}"\n',
    ]
    for client in clients_of(layout):
        sites = ", ".join(f'"{s}"' for s in client.sites)
        lines.append(
            f'[[clients]]\nid = "{client.id}"\nname = "{client.name}"\nsites = [{sites}]\n'
        )
    path.write_text("\n".join(lines), encoding="utf-8")


@contextmanager
def console_process(config: Path, port: int) -> Iterator[str]:
    command = [sys.executable, "-m", "kktmon.cli", "console", "--config", str(config)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the console did not start: {process.stderr.read()!r}")  # type: ignore[union-attr]
            time.sleep(0.2)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)


def logged_in(url: str) -> httpx.Client:
    client = httpx.Client(base_url=url, timeout=60)
    form = client.get("/login").text
    token = re.search(r'name="csrf" value="([^"]+)"', form)
    assert token is not None
    answer = client.post(
        "/login", data={"username": USER, "password": PASSWORD, "csrf": token.group(1)}
    )
    assert answer.status_code in (200, 303), answer.status_code
    return client


def measure_http(url: str, subjects: Subjects, repeat: int) -> list[Figures]:
    cookie = logged_in(url)
    basic = httpx.Client(base_url=url, timeout=60, auth=(USER, PASSWORD))

    def getter(client: httpx.Client, path: Callable[[int], str]) -> Callable[[int], object]:
        def get(n: int) -> object:
            answer = client.get(path(n))
            assert answer.status_code == 200, (path(n), answer.status_code, answer.text[:300])
            return answer

        return get

    def fleet_path(prefix: str) -> Callable[[int], str]:
        return lambda n: f"{prefix}?client={subjects.clients[n % len(subjects.clients)]}"

    def register_path(prefix: str) -> Callable[[int], str]:
        def path(n: int) -> str:
            site, kkt = subjects.registers[n % len(subjects.registers)]
            return f"{prefix}/{site}/{kkt}"

        return path

    try:
        return [
            Figures("fleet", "api", timed(getter(cookie, fleet_path("/api/registers")), repeat)),
            Figures(
                "fleet", "api+basic", timed(getter(basic, fleet_path("/api/registers")), repeat)
            ),
            Figures("fleet", "page", timed(getter(cookie, fleet_path("/")), repeat)),
            Figures("plan", "api", timed(getter(cookie, lambda n: "/api/plan?days=90"), repeat)),
            Figures("plan", "page", timed(getter(cookie, lambda n: "/plan?days=90"), repeat)),
            Figures(
                "register", "api", timed(getter(cookie, register_path("/api/registers")), repeat)
            ),
            Figures("register", "page", timed(getter(cookie, register_path("/registers")), repeat)),
        ]
    finally:
        cookie.close()
        basic.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--registers", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--history", choices=("sample", "full"), default="sample")
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--db", default="kktmon_bench")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--reuse", action="store_true", help="measure the kept database")
    args = parser.parse_args()
    layout = Layout(args.registers)
    step = 1 if args.history == "full" else SAMPLE_STEP
    print(
        f"{layout.registers:,} registers at {layout.sites:,} sites of {layout.clients:,} clients;"
        f" {args.days} days of hourly history for "
        + ("every register" if step == 1 else f"every {step}th register ({args.history})"),
        flush=True,
    )
    with scratch_database(args.db, keep=args.keep, reuse=args.reuse) as url:
        if not args.reuse:
            fill(url, layout, args.days, step, datetime.now(UTC))
        subjects = Subjects.of(layout, step)
        clients = clients_of(layout)
        with open_store(url) as store:
            # As kktmon console does (console/server.py): what lives as long as the
            # process leaves the garbage collector's full passes.
            gc.collect()
            gc.freeze()
            figures = measure_queries(store, clients, subjects, args.repeat)
        with tempfile.TemporaryDirectory(prefix="kktmon-bench-") as folder:
            port = free_port()
            config = Path(folder) / "ticketing.toml"
            write_config(config, url, layout, port)
            with console_process(config, port) as console:
                figures += measure_http(console, subjects, args.repeat)
    load = ", ".join(f"{n:.2f}" for n in os.getloadavg())
    print(f"\n{args.repeat} repetitions of each, after 3 warm-ups (load average {load}):")
    for case in TARGETS_MS:
        for found in figures:
            if found.case == case:
                print(found.line())


if __name__ == "__main__":
    main()
