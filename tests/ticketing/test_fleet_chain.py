"""The console's read model over a store filled by the whole chain: two Shtrih-M
simulators over TCP -> ``kktmon agent`` (one per site) -> Mosquitto -> ``kktmon
ticketing`` -> the store (SQLite and PostgreSQL), read back through :mod:`fleet_store`
as an engineer and as each client: the fleet with the registers' own facts, a register's
hours, the replacement plan and the tickets, never another client's site."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from ticketing_rig import Worker, config_text, wait_for

from kktmon.simulators.scenario import default_state
from kktmon.simulators.server import TcpServer
from kktmon.simulators.shtrih.emulator import ShtrihEmulator
from kktmon.ticketing.fleet import RegisterQuery, Scope
from kktmon.ticketing.fleet_store import (
    get_register,
    get_ticket,
    list_registers,
    list_tickets,
    plan,
)
from kktmon.ticketing.notify_config import ClientConfig
from kktmon.ticketing.store import TicketStore, open_store

CLIENTS = [
    ClientConfig(id="acme", name="Acme", sites=["store-7"]),
    ClientConfig(id="beta", name="Beta", sites=["store-8"]),
]
ACME, BETA, ALL = Scope(sites=frozenset({"store-7"})), Scope(sites=frozenset({"store-8"})), Scope()
DAY = timedelta(days=1)
SERIALS = {"store-7": "0392190008017798", "store-8": "0392190008017799"}


@pytest.fixture
def registers() -> Iterator[dict[str, TcpServer[ShtrihEmulator]]]:
    """store-7: a drive ending in 10 days, the shift closed; store-8: a drive for a
    year, 3 documents unsent for two days, the shift open for two hours (its 24 hours
    end first)."""
    acme, beta = default_state(), default_state()
    acme.fn.valid_until = date.today() + timedelta(days=10)
    acme.shift.state, acme.shift.opened_at = "closed", None
    beta.serial = SERIALS["store-8"]
    beta.fn.valid_until = date.today() + timedelta(days=365)
    beta.ofd.unsent_count = 3
    beta.ofd.first_unsent_at = datetime.now() - timedelta(days=2)  # naive: the register's
    with TcpServer(ShtrihEmulator(acme)) as first, TcpServer(ShtrihEmulator(beta)) as second:
        yield {"store-7": first, "store-8": second}


def _agent(tmp_path: Path, broker: Any, site: str, url: str) -> subprocess.Popen[bytes]:
    path = tmp_path / f"agent-{site}.toml"
    path.write_text(
        f'site = "{site}"\n[agent]\npoll_interval_s = 0.2\npoll_jitter = 0\n'
        f'health_interval_s = 5\nstate_dir = "{tmp_path / site}"\n'
        f'[mqtt]\nurl = "mqtt://{broker.host}:{broker.port}"\nreconnect_min_s = 0.1\n'
        f"reconnect_max_s = 0.5\n[rules]\nraise_after = 1\nclear_after = 1\n"
        f'[[devices]]\nvendor = "shtrih"\nname = "till-1"\nurl = "{url}"\n'
        "control_timeout_s = 0.2\nanswer_timeout_s = 0.5\npoll_deadline_s = 3\n",
        encoding="utf-8",
    )
    command = [sys.executable, "-m", "kktmon.cli", "agent", "--config", str(path)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _fleet(store: TicketStore, scope: Scope = ALL, **query: Any) -> list[Any]:
    now = datetime.now(UTC)
    return list_registers(store, RegisterQuery(**query), scope, CLIENTS, now).items


def _ticketed(store: TicketStore) -> bool:
    return {"FN_EXPIRING", "OFD_QUEUE_STALE"} <= {t.problem for t in store.tickets()}


def test_the_chain_read_back_as_an_engineer_and_as_each_client(
    tmp_path: Path,
    mosquitto: Any,
    store_url: str,
    registers: dict[str, TcpServer[ShtrihEmulator]],
) -> None:
    config = tmp_path / "ticketing.toml"
    config.write_text(
        config_text(mosquitto, store_url, mqtt='client_id = "tk-f"\n', lock_dir=tmp_path),
        encoding="utf-8",
    )
    worker = Worker(config, name="ticketing")
    agents = [_agent(tmp_path, mosquitto, site, s.url) for site, s in registers.items()]
    try:
        with open_store(store_url) as store:
            wait_for(lambda: len(_fleet(store)) == 2, "both registers in the fleet", timeout=60)
            wait_for(lambda: _ticketed(store), "FN_EXPIRING and OFD_QUEUE_STALE", timeout=60)
            _check_fleet(store)
            _check_scope(store)
    finally:
        for agent in agents:
            agent.terminate()
            agent.wait(15)
        worker.stop()


def _check_fleet(store: TicketStore) -> None:
    now = datetime.now(UTC)
    later, soon = _fleet(store)  # the soonest block_at first: store-8's shift
    assert (later.site, later.block_reason, later.shift_state) == (
        "store-8",
        "shift_24_hours",
        "open",
    )
    assert later.shift_opened_at is not None and later.block_at == later.shift_opened_at + DAY
    assert (soon.site, soon.client, soon.vendor) == ("store-7", "acme", "shtrih")
    assert soon.serial == SERIALS["store-7"] and soon.kkt.endswith(SERIALS["store-7"])
    assert soon.fn_serial == "9287440301120991"
    assert soon.fn_valid_until == date.today() + timedelta(days=10)
    assert soon.fn_days_left == (soon.fn_valid_until - now.date()).days
    assert soon.block_reason == "fn_expiry" and soon.shift_state == "closed"
    assert soon.shift_opened_at is None and not soon.stale
    assert [p.code for p in soon.problems] == ["FN_EXPIRING"]
    assert (later.site, later.unsent_count) == ("store-8", 3)
    assert later.oldest_unsent_age_h is not None and 40 < later.oldest_unsent_age_h < 56
    assert [r.site for r in _fleet(store, search="8017799")] == ["store-8"]
    assert [r.site for r in _fleet(store, problem="FN_EXPIRING")] == ["store-7"]
    detail = get_register(store, "store-8", later.kkt, ALL, CLIENTS, now)
    assert detail is not None and detail.facts["model"] == "ШТРИХ-ЛАЙТ-02Ф"
    point = detail.history[-1]  # the first state of this hour
    assert point.at == now.replace(minute=0, second=0, microsecond=0) or len(detail.history) > 1
    assert point.unsent_count == 3 and point.fn_documents_left == 245231
    month = plan(store, 30, ALL, CLIENTS, now)
    assert [(i.site, i.block_reason) for i in month.items] == [("store-7", "fn_expiry")]
    assert month.items[0].suggested_fn_type.startswith("36-month drive")  # no prefix known
    assert [i.site for i in plan(store, 400, ALL, CLIENTS, now).items] == ["store-7", "store-8"]


def _check_scope(store: TicketStore) -> None:
    now = datetime.now(UTC)
    (mine,) = _fleet(store, ACME)
    (theirs,) = _fleet(store, BETA)
    assert (mine.site, theirs.site) == ("store-7", "store-8")
    assert _fleet(store, ACME, client="beta") == [] and _fleet(store, ACME, search="8017799") == []
    assert get_register(store, "store-8", theirs.kkt, ACME, CLIENTS, now) is None
    assert get_register(store, "store-7", mine.kkt, BETA, CLIENTS, now) is None
    assert plan(store, 400, BETA, CLIENTS, now).items[0].site == "store-8"
    assert [i.site for i in plan(store, 400, ACME, CLIENTS, now).items] == ["store-7"]
    (ticket,) = list_tickets(store, ACME, now, clients=CLIENTS).items
    assert (ticket.site, ticket.problem, ticket.client) == ("store-7", "FN_EXPIRING", "acme")
    theirs_tickets = list_tickets(store, BETA, now, state="all", clients=CLIENTS).items
    assert {(t.site, t.client) for t in theirs_tickets} == {("store-8", "beta")}
    assert "OFD_QUEUE_STALE" in {t.problem for t in theirs_tickets}
    assert get_ticket(store, ticket.id, BETA) is None
    found = get_ticket(store, ticket.id, ACME, clients=CLIENTS)
    assert found is not None and found.history[0].state == "pending"
