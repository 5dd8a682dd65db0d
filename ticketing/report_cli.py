"""``kktmon report sla``: a month's SLA figures per client and in total, for a manager.

::

    kktmon report sla --config ticketing.toml --month 2026-11 [--client ID] [--json | --csv]

The figures and what they mean: :mod:`kktmon.ticketing.sla`. The store is the config's
``[ticketing] store``; the clients are its ``[[clients]]`` (with ``--client``, one of
them, and the total is that client's); each site's month runs in its own zone from
``[ticketing.closed_hours]``. Without ``--month``: the current month in that table's
``timezone``. Output: a table for people, ``--json`` (the :class:`~.sla.SlaReport`
model), or ``--csv`` (one row per client and the total; a column per problem code).
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from kktmon.protocol.errors import ConfigError
from kktmon.ticketing.config import TicketingConfig, load_config
from kktmon.ticketing.hours import zone
from kktmon.ticketing.service import utc_now
from kktmon.ticketing.sla import (
    ClientScope,
    Durations,
    SlaFigures,
    SlaReport,
    parse_month,
    sla_report,
)
from kktmon.ticketing.sla_store import read_sla_rows
from kktmon.ticketing.store import open_store

ERROR_SHOWN = 60  # characters of a failed call's last error in the table


def add_commands(sub: Any) -> None:
    """Add ``report`` (with its one report, ``sla``) to a subcommand set."""
    report = sub.add_parser("report", help="reports over the ticket store")
    kinds = report.add_subparsers(dest="report", required=True)
    sla = kinds.add_parser("sla", help="a month's SLA figures per client and in total")
    sla.add_argument("--config", required=True, help="the ticketing TOML configuration")
    sla.add_argument(
        "--month", type=_month, help="YYYY-MM (default: this month in closed_hours.timezone)"
    )
    sla.add_argument("--client", metavar="ID", help="one client of [[clients]] only")
    output = sla.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="the report as JSON")
    output.add_argument("--csv", action="store_true", help="one CSV row per client and total")
    sla.set_defaults(handler=_sla)


def _month(text: str) -> str:
    try:
        parse_month(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _sla(args: argparse.Namespace) -> int:
    config = load_config(args.config, service_secrets=False)
    now = utc_now()
    month = args.month or now.astimezone(zone(config.ticketing.closed_hours.timezone)).strftime(
        "%Y-%m"
    )
    report = build_report(config, month, now, args.client)
    if args.json:
        sys.stdout.write(report.model_dump_json(indent=2) + "\n")
    elif args.csv:
        write_csv(report, sys.stdout)
    else:
        sys.stdout.write(render(report))
    return 0


def build_report(
    config: TicketingConfig, month: str, now: datetime, client: str | None = None
) -> SlaReport:
    """Read the month from the config's store and compute its figures."""
    clients: list[ClientScope] = list(config.clients)
    sites: list[str] | None = None
    if client is not None:
        chosen = [c for c in clients if c.id == client]
        if not chosen:
            known = ", ".join(c.id for c in clients) or "none configured"
            raise ConfigError(f"--client {client!r}: no such client in [[clients]] ({known})")
        clients, sites = chosen, list(chosen[0].sites)
    with open_store(config.ticketing.store, policy=config.ticketing) as store:
        tickets, calls = read_sla_rows(store, month, sites)
    zones = config.ticketing.closed_hours.zone_for
    return sla_report(
        tickets, calls, month=month, clients=clients, zone_of=zones, now=now, sites=sites
    )


# --- CSV -----------------------------------------------------------------------------


def write_csv(report: SlaReport, out: Any) -> None:
    """One row per client and the total; ``opened <CODE>`` columns for every code seen."""
    groups = [*report.clients, report.total]
    codes = sorted({code for g in groups for code in g.opened_by_problem})
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        ["month", "client_id", "client", "sites", "opened"]
        + [f"{what}_{figure}" for what in ("to_open", "to_resolve") for figure in _DURATION]
        + ["sla_met", "sla_missed", "sla_pending", "sla_met_share"]
        + ["registers_stopped", "stopped_s", "calls_failed", "calls_retrying"]
        + [f"opened {code}" for code in codes]
    )
    for g in groups:
        writer.writerow(
            [report.month, g.client_id or "", g.name, " ".join(g.sites), g.opened]
            + _duration_cells(g.first_seen_to_opened)
            + _duration_cells(g.opened_to_resolved)
            + [g.sla_met, g.sla_missed, g.sla_pending, _cell(g.sla_met_share)]
            + [len(g.stopped_registers), _cell(g.stopped_s), len(g.calls_failed)]
            + [g.calls_retrying]
            + [g.opened_by_problem.get(code, 0) for code in codes]
        )


_DURATION = ("n", "median_s", "p95_s")


def _duration_cells(d: Durations) -> list[object]:
    return [d.count, _cell(d.median_s), _cell(d.p95_s)]


def _cell(value: float | None) -> str:
    """A figure as a spreadsheet reads it: whole numbers bare, else to the millisecond
    (``1198500.25``, never ``1.1985e+06``)."""
    if value is None:
        return ""
    return str(int(value)) if value == int(value) else f"{value:.3f}".rstrip("0")


# --- the table for people ------------------------------------------------------------


def render(report: SlaReport) -> str:
    groups = [*report.clients, report.total]
    as_of = f"{report.generated_at:%Y-%m-%d %H:%M} UTC"
    lines = [
        f"SLA report for {report.month} (each site's month in its own time zone; as of {as_of})",
        "",
        *_table(
            [
                "client",
                "opened",
                "seen->opened p50/p95",
                "opened->resolved p50/p95",
                "SLA met",
                "stopped registers",
                "failed calls",
            ],
            [_summary(g) for g in groups],
            right=1,
        ),
    ]
    codes = sorted({code for g in groups for code in g.opened_by_problem})
    if codes:
        lines += ["", "Tickets opened, by problem:"]
        header = ["problem", *(g.client_id or "total" for g in groups)]
        rows = [[code, *(str(g.opened_by_problem.get(code, 0)) for g in groups)] for code in codes]
        lines += _table(header, rows, right=len(groups))
    lines += _stopped(report.total) + _failed(report.total)
    return "\n".join(lines) + "\n"


def _summary(g: SlaFigures) -> list[str]:
    name = f"{g.client_id} {g.name}" if g.client_id is not None else "total"
    share = f" ({g.sla_met_share:.0%})" if g.sla_met_share is not None else ""
    sla = f"{g.sla_met} of {g.sla_met + g.sla_missed}{share}"
    if g.sla_pending:
        sla += f", {g.sla_pending} pending"
    stopped = f"{len(g.stopped_registers)}, {duration(g.stopped_s)}" if g.stopped_s else "0"
    failed = str(len(g.calls_failed)) + (
        f" ({g.calls_retrying} retrying)" if g.calls_retrying else ""
    )
    return [
        name,
        str(g.opened),
        _pair(g.first_seen_to_opened),
        _pair(g.opened_to_resolved),
        sla,
        stopped,
        failed,
    ]


def _pair(d: Durations) -> str:
    return "-" if d.count == 0 else f"{duration(d.median_s)} / {duration(d.p95_s)}"


def _stopped(total: SlaFigures) -> list[str]:
    if not total.stopped_registers:
        return []
    rows = [
        [
            r.site,
            r.kkt,
            " ".join(part for part in (r.model, r.serial) if part) or "-",
            ", ".join(r.problems),
            f"{r.since:%Y-%m-%d %H:%M}",
            duration(r.stopped_s) + (" (still)" if r.still_stopped else ""),
        ]
        for r in sorted(total.stopped_registers, key=lambda r: -r.stopped_s)
    ]
    header = ["site", "register", "model, serial", "problems", "since (UTC)", "stopped"]
    return ["", "Registers that stopped selling:", *_table(header, rows)]


def _failed(total: SlaFigures) -> list[str]:
    if not total.calls_failed:
        return []
    rows = [
        [
            f"#{c.ticket_id}",
            c.site,
            c.kkt,
            c.problem,
            f"{c.sink} {c.action}",
            str(c.attempts),
            (c.last_error or "")[:ERROR_SHOWN],
        ]
        for c in total.calls_failed
    ]
    header = ["ticket", "site", "register", "problem", "call", "attempts", "last error"]
    return ["", "Help-desk calls that failed:", *_table(header, rows)]


def _table(header: list[str], rows: Sequence[list[str]], right: int = 0) -> list[str]:
    """Columns as wide as their widest cell; the ``right`` columns after the first
    right-aligned (counts), the others left."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        parts = [
            cell.rjust(width) if 0 < i <= right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    return [line(header), "-" * len(line(header)), *(line(row) for row in rows)]


def duration(seconds: float | None) -> str:
    """``45 s``, ``12 min``, ``2 h 05 min``, ``3 d 04 h``: what a person reads at a glance."""
    if seconds is None:
        return "-"
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    return f"{s // 86400} d {s % 86400 // 3600:02d} h"
