"""``kktmon ticketing`` and ``kktmon tickets``: the service centre's two commands.

``kktmon ticketing --config F`` runs one worker until SIGTERM/SIGINT, which stop it
cleanly and keep its broker session (a restart resumes it). Exit status: 0 after a clean
stop, 1 when a worker thread died (the service manager should restart it), 2 for bad
configuration or a client id another live process on this host holds, 3 when another
client took the session over (another host runs a worker with this id: fix the ids
before restarting). ``--workers N`` runs N workers as processes under a supervisor that
restarts them and exits 2 or 3 as they would (:mod:`workers`: a worker uses about one
core). ``--retire`` ends this worker's session for good: the id a worker started now
would take (the config's ``client_id`` or this host's lowest free slot), or
``--client-id``.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from datetime import datetime, timedelta
from types import FrameType
from typing import Any

from kktmon.protocol.errors import ConfigError
from kktmon.ticketing import notify_cli, report_cli
from kktmon.ticketing.config import load_config
from kktmon.ticketing.identity import claim, lock, lock_dir
from kktmon.ticketing.service import TicketingService, utc_now
from kktmon.ticketing.store import Refusal, TicketRow, open_store
from kktmon.ticketing.store_guards import REGISTERS
from kktmon.ticketing.workers import Pool, check_pool, worker_command

RECENT = timedelta(days=7)


def add_commands(sub: Any) -> None:
    """Add ``ticketing``, ``tickets``, ``report`` and ``notifications`` to a subcommand set
    (and teach ``check-config`` ticketing files: :mod:`notify_cli`)."""
    for name, handler, text in (
        ("ticketing", _ticketing, "run the central ticketing subscriber"),
        ("tickets", _tickets, "show open and recent tickets, most urgent first"),
    ):
        command = sub.add_parser(name, help=text)
        command.add_argument("--config", required=True, help="TOML configuration file")
        command.add_argument("--json", action="store_true", help="machine-readable output")
        if name == "ticketing":
            command.add_argument(
                "--retire",
                action="store_true",
                help="end this worker's broker session for good (scale-in), then exit",
            )
            command.add_argument(
                "--client-id", help="with --retire: the session to end (another slot's id)"
            )
            command.add_argument(
                "--workers",
                type=int,
                metavar="N",
                help="run N worker processes (one core each), supervised, restarted if they die",
            )
        if name == "tickets":
            command.add_argument(
                "--refused",
                action="store_true",
                help="what [ticketing.limits] refused, per site, and the dead letters",
            )
        command.set_defaults(handler=handler)
    report_cli.add_commands(sub)
    notify_cli.add_commands(sub)


def _ticketing(args: argparse.Namespace) -> int:
    if args.client_id and not args.retire:
        raise ConfigError("--client-id goes with --retire (set [mqtt] client_id to run as one)")
    if args.retire:
        if args.workers is not None:
            raise ConfigError("--retire ends one session: give --client-id, not --workers")
        return retire_worker(args.config, args.client_id)
    if args.workers is not None:
        return run_pool(args.config, args.workers, args.verbose)
    return run_ticketing(args.config)


def _tickets(args: argparse.Namespace) -> int:
    if args.refused:
        return show_refused(args.config, args.json)
    return show_tickets(args.config, args.json)


def run_ticketing(config_path: str) -> int:
    """Serve until SIGTERM/SIGINT."""
    _log_lifecycle()
    service = TicketingService(load_config(config_path))

    def stop(signum: int, frame: FrameType | None) -> None:
        service.stop_event.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    return service.run()


def run_pool(config_path: str, count: int, verbose: bool = False) -> int:
    """Run ``count`` workers as processes until SIGTERM/SIGINT (:mod:`workers`)."""
    _log_lifecycle()
    check_pool(load_config(config_path), count)
    return Pool(worker_command(config_path, verbose), count).run()


def retire_worker(config_path: str, client_id: str | None = None) -> int:
    """Apply what the broker queued for the worker's session, then end the session."""
    _log_lifecycle()
    config = load_config(config_path)
    identity = claim(config) if client_id is None else lock(lock_dir(config), client_id)
    service = TicketingService(config, identity=identity)

    def stop(signum: int, frame: FrameType | None) -> None:
        service.stop_event.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    code = service.retire()
    if code == 0:
        print(f"retired {identity.client_id}")
    return code


def _log_lifecycle() -> None:
    """A service says what it does (connects, reconciles, retries) without ``-v``."""
    package = logging.getLogger("kktmon")
    if package.getEffectiveLevel() > logging.INFO:
        package.setLevel(logging.INFO)


def show_tickets(config_path: str, as_json: bool, days: float = RECENT.days) -> int:
    """Open tickets and those resolved in the last ``days``, most urgent ``block_at`` first."""
    config = load_config(config_path, service_secrets=False)
    with open_store(config.ticketing.store, policy=config.ticketing) as store:
        rows = store.list_tickets(include_resolved_since=utc_now() - timedelta(days=days))
        refusals, dead = store.refusals(), store.dead_letter_count()
    if as_json:  # the array alone, as ever: the counters are `--refused --json`
        print(json.dumps([ticket_json(row) for row in rows], ensure_ascii=False))
    else:
        sys.stdout.write(render(rows) + refused_summary(refusals, dead))
    return 0


def show_refused(config_path: str, as_json: bool) -> int:
    """What the limits refused, per site and limit, and how many messages were dead-lettered."""
    config = load_config(config_path, service_secrets=False)
    with open_store(config.ticketing.store, policy=config.ticketing) as store:
        refusals, dead = store.refusals(), store.dead_letter_count()
    if as_json:
        items = [refusal.model_dump(mode="json") for refusal in refusals]
        print(json.dumps({"refused": items, "dead_letters": dead}, ensure_ascii=False))
        return 0
    lines = [f"{'site':<12}  {'limit':<26}  {'refused':>8}  {'first':<16}  last"]
    lines += [
        f"{r.site:<12}  {r.reason:<26}  {r.refused:>8}  {_when(r.first_at):<16}  {_when(r.last_at)}"
        for r in refusals
    ]
    if not refusals:
        lines = ["nothing refused over [ticketing.limits]"]
    sys.stdout.write("\n".join([*lines, f"dead letters: {dead}"]) + "\n")
    return 0


def refused_summary(refusals: list[Refusal], dead_letters: int) -> str:
    """One line under the tickets when something was refused or dead-lettered."""
    parts = []
    for registers, what in ((False, "new ticket"), (True, "state of a new register")):
        mine = [r for r in refusals if (r.reason == REGISTERS) is registers]
        if mine:
            count, sites = sum(r.refused for r in mine), len({r.site for r in mine})
            parts.append(
                f"{_count(count, what)} refused over the limits at {_count(sites, 'site')}"
            )
    if dead_letters:
        parts.append(f"{_count(dead_letters, 'message')} dead-lettered")
    return "; ".join(parts) + " (kktmon tickets --refused)\n" if parts else ""


def _count(n: int, noun: str) -> str:
    plural = noun.replace("state of", "states of") if noun.startswith("state") else noun + "s"
    return f"{n} {noun if n == 1 else plural}"


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
