"""The agent's commands: ``status``, ``agent``, ``check-config``, ``outbox`` and ``scan``.

:func:`add_commands` hangs them on the ``kktmon`` tree (:mod:`kktmon.cli`);
``python -m kktmon.agent`` runs them alone, which is all a store PC needs. Exit status:
0 when the register answered, 1 when it did not (with one line on stderr naming the URL
and what to check), 2 for bad command-line input or configuration.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from kktmon.agent.config import RulesConfig
from kktmon.agent.rules import block_deadline, evaluate
from kktmon.agent.scan_cli import add_scan_command
from kktmon.agent.status_view import failure_hint, render_table
from kktmon.drivers.base import DriverOptions, local_now
from kktmon.drivers.registry import driver_class, vendors
from kktmon.protocol.errors import ConfigError, KktmonError
from kktmon.protocol.health import HealthSnapshot
from kktmon.protocol.settings import redact_url

EXIT_OK, EXIT_NO_ANSWER, EXIT_USAGE = 0, 1, 2
#: Where ``status`` takes a connection password from, so it need not show in ``ps``.
ENV_CONNECTION_PASSWORD = "KKTMON_CONNECTION_PASSWORD"


def run(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen command; typed errors become exit statuses."""
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        code: int = args.handler(args)
    except ConfigError as exc:
        print(f"kktmon: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KktmonError as exc:
        print(f"kktmon: {exc}", file=sys.stderr)
        return EXIT_NO_ANSWER
    except KeyboardInterrupt:
        return EXIT_OK
    return code


def new_parser(description: str) -> tuple[argparse.ArgumentParser, Any]:
    """The ``kktmon`` parser with its global options and an empty subcommand set."""
    parser = argparse.ArgumentParser(prog="kktmon", description=description)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser, parser.add_subparsers(dest="command", required=True)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m kktmon.agent``: the store PC's commands only."""
    parser, sub = new_parser("kktmon agent commands")
    add_commands(sub)
    return run(parser, argv)


def add_commands(sub: Any) -> None:
    """Add ``status``, ``agent``, ``check-config``, ``outbox`` and ``scan`` to a subcommand set."""
    status = sub.add_parser("status", help="poll one register once and show its health")
    status.add_argument("--vendor", required=True, choices=vendors())
    status.add_argument(
        "--url",
        required=True,
        help="serial:///dev/ttyACM0, socket://host:7778, atol-web://user@host:16732/?device=ID, "
        "kkmserver://User@host:5893/?device=1",
    )
    status.add_argument("--json", action="store_true", help="print one HealthSnapshot as JSON")
    status.add_argument("--password", type=int, default=30, help="system administrator password")
    status.add_argument(
        "--connection-password",
        default=os.environ.get(ENV_CONNECTION_PASSWORD) or None,
        help="link password where the family has one (Pirit: PIRI), or the driver server's "
        f"HTTP password; default ${ENV_CONNECTION_PASSWORD}",
    )
    status.add_argument("--timeout", type=float, default=60.0, help="whole-poll deadline, s")
    status.set_defaults(handler=_status)
    for name, handler, text in (
        ("agent", _agent, "run the monitoring service"),
        ("check-config", _check_config, "validate a configuration file"),
        ("outbox", _outbox, "show the local spool of unsent messages"),
    ):
        command = sub.add_parser(name, help=text)
        command.add_argument("--config", required=True, help="TOML configuration file")
        command.add_argument("--json", action="store_true", help="machine-readable output")
        command.set_defaults(handler=handler)
    add_scan_command(sub)


def _status(args: argparse.Namespace) -> int:
    options = DriverOptions(
        password=args.password,
        connection_password=args.connection_password,
        poll_deadline_s=args.timeout,
    )
    driver = driver_class(args.vendor)(args.url, options)
    snapshot = with_problems(driver.read_health())
    print(snapshot.to_json() if args.json else render_table(snapshot))
    if snapshot.stale:
        error = snapshot.link.last_error
        print(
            f"kktmon: {args.vendor} register at {redact_url(args.url)} did not answer ({error}): "
            f"{failure_hint(error)}",
            file=sys.stderr,
        )
        return EXIT_NO_ANSWER
    return EXIT_OK


def with_problems(snapshot: HealthSnapshot) -> HealthSnapshot:
    """One poll judged by the default rules (no hysteresis: there is only one poll)."""
    rules = RulesConfig()
    now = local_now()
    problems = evaluate(snapshot, rules, now=now)
    deadline = block_deadline(snapshot, rules, now=now)
    block_at, reason = deadline if deadline else (None, None)
    return snapshot.model_copy(
        update={"problems": problems, "block_at": block_at, "block_reason": reason}
    )


def _check_config(args: argparse.Namespace) -> int:
    from kktmon.agent.config import load_config

    config = load_config(args.config)
    devices = ", ".join(device.label for device in config.devices)
    print(f"{args.config}: ok (site {config.site}; {len(config.devices)} register(s): {devices})")
    return EXIT_OK


def _outbox(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from kktmon.agent.config import load_config
    from kktmon.agent.outbox import Outbox

    config = load_config(args.config)
    with Outbox(config.outbox_path, config.outbox.limits()) as outbox:
        stats = outbox.stats()
    if args.json:
        print(json.dumps(asdict(stats)))
        return EXIT_OK
    age = "-" if stats.oldest_age_s is None else f"{stats.oldest_age_s:.0f} s"
    print(f"outbox {config.outbox_path}")
    print(f"  queued   {stats.depth} ({stats.depth_by_kind}), {stats.bytes} bytes")
    print(f"  oldest   {age}")
    print(f"  dropped  {stats.drops}")
    print(f"  set aside {stats.rejected} now ({stats.set_aside}), {stats.trimmed} trimmed")
    return EXIT_OK


def _agent(args: argparse.Namespace) -> int:
    from pathlib import Path

    from kktmon.agent.config import load_config
    from kktmon.agent.service import AgentService

    config = load_config(args.config)
    logging.getLogger().setLevel(config.agent.log_level)
    return AgentService(config, Path(args.config)).run()
