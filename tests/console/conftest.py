"""Console tests: a ticket store on SQLite and PostgreSQL, filled directly, and the console
running on it as a real ``kktmon console`` process.

``store_url`` is parametrised like the ticketing tests' (a SQLite file; a fresh schema in
the PostgreSQL database ``KKTMON_TEST_POSTGRES``, skipped with the reason when it is not
reachable). ``filled`` writes a small fleet straight into the store the way the intake
does (:meth:`TicketStore.record_states` with :func:`snapshot_facts` of real snapshots,
:meth:`TicketStore.apply` with raised problems): five registers at three sites of two
clients, one register name at two sites, tickets with deadlines near and far. The chain
tests (``test_chain.py``) fill it through simulators, the agent, Mosquitto and the
ticketing instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from console_rig import ConsoleProcess, console_config

from kktmon.protocol.health import DeviceInfo, FnHealth, HealthSnapshot, OfdQueue, Owner, Problem
from kktmon.protocol.health import Severity as Sev
from kktmon.ticketing import lifecycle as lc
from kktmon.ticketing.config import TicketingSection
from kktmon.ticketing.store import RegisterFacts, open_store
from kktmon.ticketing.text import snapshot_facts

PG_DSN = os.environ.get("KKTMON_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")

#: site, kkt, FN days left, unsent documents and the oldest's age in days, problem code.
FLEET: list[tuple[str, str, int, int, str | None]] = [
    ("acme-1", "shtrih-0001", 20, 0, "FN_EXPIRING"),
    ("acme-1", "atol-0002", 200, 3, None),
    ("acme-2", "pirit-0003", 300, 25, "OFD_QUEUE_STALE"),
    ("beta-1", "shtrih-0004", 1, 0, "FN_EXPIRING"),  # stops within the SLA margin
    ("beta-1", "shtrih-0001", 400, 0, None),  # the same name as acme-1's
]


def _pg_admin() -> Any:
    try:
        import psycopg
    except ImportError:
        pytest.skip("PostgreSQL tests need psycopg 3 (pip install 'psycopg[binary]')")
    try:
        return psycopg.connect(PG_DSN, autocommit=True, connect_timeout=3)
    except psycopg.Error as exc:
        pytest.skip(f"PostgreSQL not reachable at {PG_DSN}: {' '.join(str(exc).split())[:200]}")


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/tickets.sqlite3"
        return
    admin = _pg_admin()
    schema = f"c_{uuid.uuid4().hex[:12]}"
    try:
        admin.execute(f"CREATE SCHEMA {schema}")
        yield f"{PG_DSN}?options=-csearch_path%3D{schema}"
    finally:
        admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        admin.close()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/tickets.sqlite3"


def snapshot(site: str, kkt: str, fn_days: int, unsent: int, at: datetime) -> HealthSnapshot:
    vendor, serial = kkt.split("-", 1)
    first_unsent = at - timedelta(days=unsent) if unsent else None
    state = HealthSnapshot(
        taken_at=at,
        device=DeviceInfo(vendor=vendor, model=f"{vendor.upper()} 01Ф", serial=f"00{serial}"),
        fn=FnHealth(
            serial=f"996044030000{serial}",
            valid_until=(at + timedelta(days=fn_days)).date(),
            days_left=fn_days,
            memory_used_pct=10.0 + fn_days % 7,
        ),
        ofd=OfdQueue(
            unsent_count=unsent,
            first_unsent_at=first_unsent,
            oldest_unsent_age_h=unsent * 24.0 if unsent else None,
        ),
    )
    return state.with_block_deadline()


def fill(store_url: str, now: datetime, hours: int = 3) -> None:
    """:data:`FLEET`'s states for the last ``hours`` hours, and a ticket per problem."""
    with open_store(store_url, policy=TicketingSection(open_after_s=0)) as store:
        for back in range(hours, -1, -1):
            at = now - timedelta(hours=back)
            states = []
            for site, kkt, fn_days, unsent, _ in FLEET:
                snap = snapshot(site, kkt, fn_days, unsent + (hours - back), at)
                states.append(RegisterFacts(site, kkt, snapshot_facts(snap), at))
            store.record_states(states)
        for site, kkt, fn_days, unsent, code in FLEET:
            if code is None:
                continue
            snap = snapshot(site, kkt, fn_days, unsent + hours, now)
            problem = Problem(
                code=code,
                severity=Sev.WARNING,
                owner=Owner.SERVICE,
                message=f"{code} at {kkt}",
                since=now,
            )
            fact = lc.ProblemRaised(
                site=site,
                kkt=kkt,
                problem=problem,
                event_id=uuid.uuid4().hex,
                at=now,
                snapshot_facts=snapshot_facts(snap),
            )
            store.apply(fact, now)
        store.tick(now + timedelta(seconds=1))


@pytest.fixture
def filled(store_url: str) -> str:
    fill(store_url, datetime.now(UTC))
    return store_url


@pytest.fixture
def console(filled: str, tmp_path: Path) -> Iterator[ConsoleProcess]:
    with ConsoleProcess(console_config(tmp_path / "ticketing.toml", filled)) as running:
        yield running
