"""``kktmon report sla`` over a store (SQLite and PostgreSQL) holding a known November.

The month is played through the store's own lifecycle (raises, ticks, clears, help-desk
claims and failures at chosen instants), so the figures come from rows as the ticketing
writes them. Two clients: ``acme`` (Moscow, UTC+3: ``msk-001``, ``msk-002``) and ``far``
(``vl-001``, Vladivostok, UTC+10); ``other-001`` (Moscow) belongs to no client and shows
in the total only. November is [10-31 21:00Z, 11-30 21:00Z) in Moscow and
[10-31 14:00Z, 11-30 14:00Z) in Vladivostok: tickets at both edges, in both zones,
land on the right side of them.
"""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ticket_facts import DEVICE, StoreFactory, cleared, raised

from kktmon.protocol.health import Severity
from kktmon.ticketing.notify_config import ClientConfig
from kktmon.ticketing.sla import sla_report
from kktmon.ticketing.sla_store import read_sla_rows
from kktmon.ticketing.store import TicketStore

KKTMON = [sys.executable, "-m", "kktmon.cli"]
CLOSED_HOURS = {"timezone": "Europe/Moscow", "vl-001": "22:00-08:00 Asia/Vladivostok"}
CLIENTS = [
    ClientConfig(id="acme", name="Acme Retail", sites=["msk-001", "msk-002"]),
    ClientConfig(id="far", name="Far East Foods", sites=["vl-001"]),
]
NOW = datetime(2026, 12, 6, tzinfo=UTC)
ATOL_G = {"model": "АТОЛ 30Ф", "serial": "00106107000123", "rnm": "0000000001012345"}
FN = "9999078900001234"


def z(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _ofd(at: str, site: str, kkt: str, block: str, **more: Any) -> tuple[datetime, Any]:
    fact = raised(z(at), code="OFD_QUEUE_STALE", site=site, kkt=kkt, ofd_block_at=block, **more)
    return z(at), fact


def _paper(at: str, site: str, kkt: str) -> tuple[datetime, Any]:
    return z(at), raised(z(at), code="PAPER_OUT", site=site, kkt=kkt)


def _clear(at: str, site: str, kkt: str, code: str, **more: Any) -> tuple[datetime, Any]:
    return z(at), cleared(z(at), code=code, site=site, kkt=kkt, **more)


def _tick(at: str) -> tuple[datetime, None]:
    return z(at), None


#: (instant, fact or None for a tick), in time order. Comments: ticket, zone, its point.
MONTH = [
    # I (msk-002): blocked since 10-30, fixed 11-02 21:00Z: 2 days of November stopped.
    _ofd("2026-10-20 00:00", "msk-002", "shtrih-I", "2026-10-30T00:00:00+00:00"),
    _tick("2026-10-20 00:05"),
    # C (vl-001): opened 10-31 15:00Z = 11-01 01:00 in Vladivostok: November there.
    _paper("2026-10-31 14:55", "vl-001", "pirit-C"),
    _tick("2026-10-31 15:00"),
    # A (msk-001): opened 10-31 20:30Z = 23:30 in Moscow: October; resolved at 21:00Z,
    # Moscow's November 00:00 exactly: a November resolution.
    _paper("2026-10-31 20:25", "msk-001", "atol-A"),
    _tick("2026-10-31 20:30"),
    _clear("2026-10-31 21:00", "msk-001", "atol-A", "PAPER_OUT"),
    _tick("2026-10-31 21:30"),
    _clear("2026-11-02 15:00", "vl-001", "pirit-C", "PAPER_OUT"),
    _tick("2026-11-02 15:30"),
    _clear("2026-11-02 21:00", "msk-002", "shtrih-I", "OFD_QUEUE_STALE"),
    _tick("2026-11-02 21:30"),
    # K: a clear without a raise leaves a tombstone, which is no ticket opened.
    _clear("2026-11-03 00:00", "msk-001", "atol-K", "COVER_OPEN"),
    # E (msk-002): fixed before its deadline: SLA met.
    _ofd("2026-11-05 09:00", "msk-002", "shtrih-E", "2026-11-10T12:00:00+00:00"),
    _tick("2026-11-05 09:10"),
    _clear("2026-11-08 09:05", "msk-002", "shtrih-E", "OFD_QUEUE_STALE"),
    _tick("2026-11-08 09:35"),
    # F (msk-002): fixed 30 h after its deadline: missed, 30 h stopped.
    _ofd("2026-11-10 00:00", "msk-002", "shtrih-F", "2026-11-12T00:00:00+00:00"),
    _tick("2026-11-10 00:05"),
    _clear("2026-11-13 06:00", "msk-002", "shtrih-F", "OFD_QUEUE_STALE"),
    _tick("2026-11-13 06:30"),
    # H (vl-001): still open, deadline far ahead: pending, not counted.
    _ofd("2026-11-15 00:00", "vl-001", "pirit-H", "2099-01-01T00:00:00+00:00"),
    _tick("2026-11-15 00:05"),
    # G2 and G (atol-G, msk-001): two problems whose stops overlap count once.
    (
        z("2026-11-18 00:00"),
        raised(
            z("2026-11-18 00:00"),
            code="FN_EXPIRING",
            severity=Severity.WARNING,
            site="msk-001",
            kkt="atol-G",
            snapshot=ATOL_G,
            fn_serial=FN,
            valid_until="2026-11-24T00:00:00+00:00",
        ),
    ),
    _tick("2026-11-18 00:20"),
    # J (other-001, no client): never notified (info), so never opened; its register
    # stopped all the same, for a day.
    (
        z("2026-11-19 00:00"),
        raised(
            z("2026-11-19 00:00"),
            code="OFD_QUEUE_STALE",
            severity=Severity.INFO,
            site="other-001",
            kkt="atol-J",
            ofd_block_at="2026-11-20T00:00:00+00:00",
        ),
    ),
    _ofd("2026-11-20 00:00", "msk-001", "atol-G", "2026-11-25T00:00:00+00:00", snapshot=ATOL_G),
    _tick("2026-11-20 00:15"),
    _clear("2026-11-21 00:00", "other-001", "atol-J", "OFD_QUEUE_STALE"),
    # V (vl-001): stopped from 11-29 to the end of Vladivostok's November, still open.
    _ofd("2026-11-25 00:00", "vl-001", "pirit-V", "2026-11-29T00:00:00+00:00"),
    _tick("2026-11-25 00:05"),
    _clear("2026-11-26 00:00", "msk-001", "atol-G", "FN_EXPIRING", fn_serial=FN),
    _tick("2026-11-26 00:30"),
    # D (vl-001): opened 11-30 15:00Z = 12-01 01:00 in Vladivostok: December there.
    _paper("2026-11-30 14:55", "vl-001", "pirit-D"),
    _tick("2026-11-30 15:00"),
    # B (msk-001): opened 11-30 20:59Z = 23:59 in Moscow: November's last minute.
    _paper("2026-11-30 20:50", "msk-001", "atol-B"),
    _tick("2026-11-30 20:59"),
]

#: (register, sink) -> how its OPEN call fails: None for good, else retried later.
FAILURES = {
    ("shtrih-E", "desk"): None,  # November in Moscow: counted for acme
    ("atol-A", "desk"): None,  # 10-31 20:30Z: October in Moscow, not counted
    ("pirit-C", "desk"): None,  # 10-31 15:00Z: November in Vladivostok, counted for far
    ("pirit-D", "hook"): None,  # 11-30 15:00Z: December in Vladivostok, not counted
    ("atol-B", "desk"): z("2027-01-01 00:00"),  # still being retried: acme, 1 retrying
}


def play_month(store: TicketStore) -> None:
    """Apply :data:`MONTH`, then deliver every help-desk call but :data:`FAILURES`."""
    for at, fact in MONTH:
        if fact is None:
            store.tick(at)
        else:
            store.apply(fact, at)
    kkt = {t.id: t.kkt for t in store.tickets()}
    at = z("2026-12-01 00:00")
    for sink in ("desk", "hook"):
        while calls := store.claim_calls(sink, 100, at):
            for call in calls:
                key = (kkt[call.ticket.ticket_id], sink)
                if key in FAILURES and call.action.value == "open":
                    store.fail_call(call.id, f"HTTP 500 from {sink}", FAILURES[key])
                else:
                    store.complete_call(call.id, f"HD-{call.id}", at)


def _durations(count: int, median: float | None, p95: float | None) -> dict[str, Any]:
    return {"count": count, "median_s": median, "p95_s": p95}


def _stopped(
    site: str, kkt: str, since: str, seconds: float, *, still: bool, device: dict[str, str] = DEVICE
) -> dict[str, Any]:
    problems = ["FN_EXPIRING", "OFD_QUEUE_STALE"] if kkt == "atol-G" else ["OFD_QUEUE_STALE"]
    return {
        "site": site,
        "kkt": kkt,
        "model": device["model"],
        "serial": device["serial"],
        "rnm": device.get("rnm"),
        "problems": problems,
        "since": since,
        "stopped_s": seconds,
        "still_stopped": still,
    }


# G: FN 11-24 to 11-26 and OFD 11-25 on, to Moscow's month end (11-30 21:00Z): 6 d 21 h.
STOP_G = _stopped(
    "msk-001", "atol-G", "2026-11-24T00:00:00Z", 165 * 3600, still=True, device=ATOL_G
)
STOP_F = _stopped("msk-002", "shtrih-F", "2026-11-12T00:00:00Z", 30 * 3600, still=False)
# I: blocked since 10-30; November from Moscow's month start (10-31 21:00Z), 2 days.
STOP_I = _stopped("msk-002", "shtrih-I", "2026-10-31T21:00:00Z", 48 * 3600, still=False)
STOP_J = _stopped("other-001", "atol-J", "2026-11-20T00:00:00Z", 24 * 3600, still=False)
# V: 11-29 00:00Z to Vladivostok's month end (11-30 14:00Z).
STOP_V = _stopped("vl-001", "pirit-V", "2026-11-29T00:00:00Z", 38 * 3600, still=True)

# First seen -> opened: B 540, E 600, F 300, G2 1200, G 900 | C 300, H 300, V 300.
# Opened -> resolved in November: A 1800, E 3 d - 5 min, F 3 d 5 h 55 min,
# G2 8 d - 20 min, I 13 d 20 h 55 min | C 2 d.
ACME = {
    "client_id": "acme",
    "name": "Acme Retail",
    "sites": ["msk-001", "msk-002"],
    "opened": 5,
    "opened_by_problem": {"FN_EXPIRING": 1, "OFD_QUEUE_STALE": 3, "PAPER_OUT": 1},
    "first_seen_to_opened": _durations(5, 600.0, 1200.0),
    "opened_to_resolved": _durations(5, 280500.0, 1198500.0),
    "sla_met": 1,
    "sla_missed": 3,
    "sla_pending": 0,
    "sla_met_share": 0.25,
    "stopped_registers": [STOP_G, STOP_F, STOP_I],
    "stopped_s": float(594000 + 108000 + 172800),
    "calls_retrying": 1,
}
FAR = {
    "client_id": "far",
    "name": "Far East Foods",
    "sites": ["vl-001"],
    "opened": 3,
    "opened_by_problem": {"OFD_QUEUE_STALE": 2, "PAPER_OUT": 1},
    "first_seen_to_opened": _durations(3, 300.0, 300.0),
    "opened_to_resolved": _durations(1, 172800.0, 172800.0),
    "sla_met": 0,
    "sla_missed": 1,
    "sla_pending": 1,
    "sla_met_share": 0.0,
    "stopped_registers": [STOP_V],
    "stopped_s": 136800.0,
    "calls_retrying": 0,
}
TOTAL = {
    "client_id": None,
    "name": "total",
    "sites": ["msk-001", "msk-002", "other-001", "vl-001"],
    "opened": 8,
    "opened_by_problem": {"FN_EXPIRING": 1, "OFD_QUEUE_STALE": 5, "PAPER_OUT": 2},
    "first_seen_to_opened": _durations(8, 420.0, 1200.0),
    "opened_to_resolved": _durations(6, 269700.0, 1198500.0),
    "sla_met": 1,
    "sla_missed": 4,
    "sla_pending": 1,
    "sla_met_share": 0.2,
    "stopped_registers": [STOP_G, STOP_F, STOP_I, STOP_J, STOP_V],
    "stopped_s": float(594000 + 108000 + 172800 + 86400 + 136800),
    "calls_retrying": 1,
}


def failed_calls(store: TicketStore, *registers: str) -> list[dict[str, Any]]:
    """The given-up OPEN calls of ``registers`` as the report lists them (ids from the
    store; everything else is known)."""
    tickets = {t.id: t for t in store.tickets()}
    out = []
    for call in store.calls():
        ticket = tickets[call.ticket_id]
        if call.state == "failed" and ticket.kkt in registers:
            out.append(
                {
                    "id": call.id,
                    "ticket_id": call.ticket_id,
                    "site": ticket.site,
                    "kkt": ticket.kkt,
                    "problem": ticket.problem,
                    "sink": call.sink,
                    "action": "open",
                    "state": "failed",
                    "attempts": 1,
                    "last_error": f"HTTP 500 from {call.sink}",
                    "created_at": ticket.opened_at.isoformat().replace("+00:00", "Z")
                    if ticket.opened_at
                    else None,
                }
            )
    return out


def expected(store: TicketStore) -> dict[str, dict[str, Any]]:
    return {
        "acme": ACME | {"calls_failed": failed_calls(store, "shtrih-E")},
        "far": FAR | {"calls_failed": failed_calls(store, "pirit-C")},
        "total": TOTAL | {"calls_failed": failed_calls(store, "pirit-C", "shtrih-E")},
    }


def _november(store: TicketStore) -> dict[str, Any]:
    tickets, calls = read_sla_rows(store, "2026-11")
    zones = store.policy.closed_hours.zone_for
    report = sla_report(tickets, calls, month="2026-11", clients=CLIENTS, zone_of=zones, now=NOW)
    return report.model_dump(mode="json")


def test_a_known_november_gives_every_figure_exactly(make_store: StoreFactory) -> None:
    store = make_store(closed_hours=CLOSED_HOURS)
    play_month(store)
    report = _november(store)
    want = expected(store)
    assert report["month"] == "2026-11"
    assert report["generated_at"] == "2026-12-06T00:00:00Z"
    assert [group["client_id"] for group in report["clients"]] == ["acme", "far"]
    assert report["clients"][0] == want["acme"]
    assert report["clients"][1] == want["far"]
    assert report["total"] == want["total"]


def test_one_clients_report_reads_only_its_sites(make_store: StoreFactory) -> None:
    store = make_store(closed_hours=CLOSED_HOURS)
    play_month(store)
    tickets, calls = read_sla_rows(store, "2026-11", ["vl-001"])
    assert {t.site for t in tickets} == {"vl-001"}
    assert {c.site for c in calls} == {"vl-001"}
    zones = store.policy.closed_hours.zone_for
    report = sla_report(
        tickets, calls, month="2026-11", clients=CLIENTS[1:], zone_of=zones, now=NOW,
        sites=["vl-001"],
    )  # fmt: skip
    want = expected(store)["far"]
    assert report.clients[0].model_dump(mode="json") == want
    assert report.total.model_dump(mode="json") == want | {"client_id": None, "name": "total"}


def test_october_and_december_see_the_other_side_of_each_boundary(
    make_store: StoreFactory,
) -> None:
    store = make_store(closed_hours=CLOSED_HOURS)
    play_month(store)
    zones = store.policy.closed_hours.zone_for
    by_month = {}
    for month in ("2026-10", "2026-12"):
        tickets, calls = read_sla_rows(store, month)
        report = sla_report(tickets, calls, month=month, clients=CLIENTS, zone_of=zones, now=NOW)
        by_month[month] = {g.client_id: g for g in report.clients}
    october, december = by_month["2026-10"], by_month["2026-12"]
    # Moscow's October holds A (23:30 local) and I; Vladivostok's holds nothing (C: Nov 1).
    assert october["acme"].opened_by_problem == {"OFD_QUEUE_STALE": 1, "PAPER_OUT": 1}
    assert october["far"].opened == 0
    assert [c.kkt for c in october["acme"].calls_failed] == ["atol-A"]
    assert [(r.kkt, r.stopped_s) for r in october["acme"].stopped_registers] == [
        ("shtrih-I", 45 * 3600.0)  # 10-30 00:00Z to Moscow's month end, 10-31 21:00Z
    ]
    # Vladivostok's December holds D (01:00 local on the 1st); Moscow's holds nothing.
    assert december["far"].opened_by_problem == {"PAPER_OUT": 1}
    assert december["acme"].opened == 0
    assert [c.kkt for c in december["far"].calls_failed] == ["pirit-D"]
    # Still stopped in December up to the clock: G from Moscow's month start, V from
    # Vladivostok's (12-06 00:00Z, the report's now).
    stops = {r.kkt: r.stopped_s for g in december.values() for r in g.stopped_registers}
    assert stops == {"atol-G": 5 * 86400 + 3 * 3600.0, "pirit-V": 5 * 86400 + 10 * 3600.0}


def _config(tmp_path: Path, store_url: str) -> Path:
    config = tmp_path / "ticketing.toml"
    config.write_text(
        f"""[ticketing]
store = "{store_url}"
[ticketing.closed_hours]
timezone = "Europe/Moscow"
"vl-001" = "22:00-08:00 Asia/Vladivostok"
[[clients]]
id = "acme"
name = "Acme Retail"
sites = ["msk-001", "msk-002"]
[[clients]]
id = "far"
name = "Far East Foods"
sites = ["vl-001"]
""",
        encoding="utf-8",
    )
    return config


def _kktmon(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*KKTMON, *args], capture_output=True, text=True, timeout=60, check=False)


def test_report_sla_prints_json_csv_and_a_table(
    make_store: StoreFactory, store_url: str, tmp_path: Path
) -> None:
    store = make_store(closed_hours=CLOSED_HOURS)
    play_month(store)
    want = expected(store)
    config = str(_config(tmp_path, store_url))
    month = ["report", "sla", "--config", config, "--month", "2026-11"]

    as_json = _kktmon(*month, "--json")
    assert as_json.returncode == 0, as_json.stderr
    report = json.loads(as_json.stdout)
    assert report["month"] == "2026-11"
    assert report["clients"] == [want["acme"], want["far"]]
    assert report["total"] == want["total"]

    as_csv = _kktmon(*month, "--csv")
    assert as_csv.returncode == 0, as_csv.stderr
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert [row["client_id"] for row in rows] == ["acme", "far", ""]
    acme, far, total = rows
    assert acme == {
        "month": "2026-11",
        "client_id": "acme",
        "client": "Acme Retail",
        "sites": "msk-001 msk-002",
        "opened": "5",
        "to_open_n": "5",
        "to_open_median_s": "600",
        "to_open_p95_s": "1200",
        "to_resolve_n": "5",
        "to_resolve_median_s": "280500",
        "to_resolve_p95_s": "1198500",
        "sla_met": "1",
        "sla_missed": "3",
        "sla_pending": "0",
        "sla_met_share": "0.25",
        "registers_stopped": "3",
        "stopped_s": "874800",
        "calls_failed": "1",
        "calls_retrying": "1",
        "opened FN_EXPIRING": "1",
        "opened OFD_QUEUE_STALE": "3",
        "opened PAPER_OUT": "1",
    }
    assert (far["opened"], far["sla_met_share"], far["sla_pending"]) == ("3", "0", "1")
    assert (far["opened FN_EXPIRING"], far["to_resolve_median_s"]) == ("0", "172800")
    assert (total["client"], total["opened"], total["to_open_median_s"]) == ("total", "8", "420")
    assert (total["sla_met_share"], total["stopped_s"], total["calls_failed"]) == (
        "0.2",
        "1098000",
        "2",
    )

    table = _kktmon(*month)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].startswith("SLA report for 2026-11 (each site's month in its own time zone")
    cells = {line.split("  ")[0]: re.split(r"\s{2,}", line) for line in lines[2:7]}
    assert cells["acme Acme Retail"][1:] == [
        "5", "10 min / 20 min", "3 d 05 h / 13 d 20 h", "1 of 4 (25%)", "3, 10 d 03 h",
        "1 (1 retrying)",
    ]  # fmt: skip
    assert cells["far Far East Foods"][1:] == [
        "3", "5 min / 5 min", "2 d 00 h / 2 d 00 h", "0 of 1 (0%), 1 pending", "1, 1 d 14 h", "1",
    ]  # fmt: skip
    assert cells["total"][1:] == [
        "8", "7 min / 20 min", "3 d 02 h / 13 d 20 h", "1 of 5 (20%), 1 pending", "5, 12 d 17 h",
        "2 (1 retrying)",
    ]  # fmt: skip
    stopped = lines[lines.index("Registers that stopped selling:") + 3]
    assert re.split(r"\s{2,}", stopped) == [
        "msk-001", "atol-G", "АТОЛ 30Ф 00106107000123", "FN_EXPIRING, OFD_QUEUE_STALE",
        "2026-11-24 00:00", "6 d 21 h (still)",
    ]  # fmt: skip
    failed = lines[lines.index("Help-desk calls that failed:") + 3 :]
    assert [re.split(r"\s{2,}", line)[1:] for line in failed] == [
        ["vl-001", "pirit-C", "PAPER_OUT", "desk open", "1", "HTTP 500 from desk"],
        ["msk-002", "shtrih-E", "OFD_QUEUE_STALE", "desk open", "1", "HTTP 500 from desk"],
    ]


def test_report_sla_for_one_client_and_bad_input(
    make_store: StoreFactory, store_url: str, tmp_path: Path
) -> None:
    store = make_store(closed_hours=CLOSED_HOURS)
    play_month(store)
    want = expected(store)["far"]
    config = str(_config(tmp_path, store_url))
    month = ["report", "sla", "--config", config, "--month", "2026-11"]

    one = _kktmon(*month, "--client", "far", "--json")
    assert one.returncode == 0, one.stderr
    report = json.loads(one.stdout)
    assert report["clients"] == [want]
    assert report["total"] == want | {"client_id": None, "name": "total"}

    unknown = _kktmon(*month, "--client", "nobody")
    assert unknown.returncode == 2
    assert "--client 'nobody': no such client in [[clients]] (acme, far)" in unknown.stderr
    bad = _kktmon("report", "sla", "--config", config, "--month", "2026-13")
    assert bad.returncode == 2 and "not a month like 2026-11" in bad.stderr
    both = _kktmon(*month, "--json", "--csv")
    assert both.returncode == 2 and "not allowed with argument" in both.stderr
