"""``kktmon ticketing`` and ``kktmon tickets``: the service centre's two commands."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from datetime import datetime, timedelta
from types import FrameType
from typing import Any

from kktmon.ticketing.config import load_config
from kktmon.ticketing.service import TicketingService, utc_now
from kktmon.ticketing.store import TicketRow, open_store

RECENT = timedelta(days=7)


def add_commands(sub: Any) -> None:
    """Add ``ticketing`` and ``tickets`` to a subcommand set."""
    for name, handler, text in (
        ("ticketing", _ticketing, "run the central ticketing subscriber"),
        ("tickets", _tickets, "show open and recent tickets, most urgent first"),
    ):
        command = sub.add_parser(name, help=text)
        command.add_argument("--config", required=True, help="TOML configuration file")
        command.add_argument("--json", action="store_true", help="machine-readable output")
        command.set_defaults(handler=handler)


def _ticketing(args: argparse.Namespace) -> int:
    return run_ticketing(args.config)


def _tickets(args: argparse.Namespace) -> int:
    return show_tickets(args.config, args.json)


def run_ticketing(config_path: str) -> int:
    """Serve until SIGTERM/SIGINT."""
    service = TicketingService(load_config(config_path))

    def stop(signum: int, frame: FrameType | None) -> None:
        service.stop_event.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    return service.run()


def show_tickets(config_path: str, as_json: bool, days: float = RECENT.days) -> int:
    """Open tickets and those resolved in the last ``days``, most urgent ``block_at`` first."""
    config = load_config(config_path)
    with open_store(config.ticketing.store, policy=config.ticketing) as store:
        rows = store.list_tickets(include_resolved_since=utc_now() - timedelta(days=days))
    if as_json:
        print(json.dumps([ticket_json(row) for row in rows], ensure_ascii=False))
    else:
        sys.stdout.write(render(rows))
    return 0


def ticket_json(row: TicketRow) -> dict[str, object]:
    data = row.model_dump(mode="json")
    data["helpdesk_ref"] = row.external_ref
    return data


def _when(value: datetime | None) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M") if value else "-"


def render(rows: list[TicketRow]) -> str:
    if not rows:
        return "no open or recent tickets\n"
    header = (
        f"{'blocks at':<16}  {'state':<8}  {'severity':<8}  {'site':<12}  {'register':<28}  problem"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        lines.append(
            f"{_when(row.block_at):<16}  {row.state.value:<8}  {row.severity.value:<8}  "
            f"{row.site:<12}  {row.kkt:<28}  {row.problem}"
            + (f"  [{row.external_ref}]" if row.external_ref else "")
        )
    return "\n".join(lines) + "\n"
