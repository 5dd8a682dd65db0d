"""The ``kktmon`` command line.

Commands::

    kktmon status   --vendor shtrih --url URL [--json]   one poll, a table or JSON
    kktmon simulate shtrih [--tcp HOST:PORT] [--pty] [--scenario FILE]
    kktmon simulate atol-web|kkmserver --tcp HOST:PORT   a fake driver server (HTTP)
    kktmon demo [--keep-running]                         a simulated shop, its tickets
    kktmon agent        --config FILE                    the service (systemd unit)
    kktmon check-config --config FILE                    validate a config, name the bad key
    kktmon outbox       --config FILE [--json]           depth, oldest age, drops of the spool
    kktmon ticketing    --config FILE                    the service centre's ticket maker
    kktmon tickets      --config FILE [--json]           open and recent tickets

Exit status: 0 when the register answered, 1 when it did not (with one line on stderr
naming the URL and what to check), 2 for bad command-line input or configuration.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence

from kktmon.agent.config import RulesConfig
from kktmon.agent.rules import block_deadline, evaluate
from kktmon.agent.status_view import failure_hint, render_table
from kktmon.drivers.base import DriverOptions, local_now
from kktmon.drivers.registry import driver_class, vendors
from kktmon.protocol.errors import ConfigError, KktmonError
from kktmon.protocol.health import HealthSnapshot
from kktmon.protocol.settings import redact_url

EXIT_OK, EXIT_NO_ANSWER, EXIT_USAGE = 0, 1, 2
#: Where ``status`` takes a connection password from, so it need not show in ``ps``.
ENV_CONNECTION_PASSWORD = "KKTMON_CONNECTION_PASSWORD"


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kktmon", description=__doc__.split("\n\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

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

    simulate = sub.add_parser("simulate", help="run a register simulator")
    simulate.add_argument("vendor", help="register family to emulate, e.g. shtrih")
    simulate.add_argument("--tcp", metavar="HOST:PORT", help="listen on TCP (e.g. 127.0.0.1:7778)")
    simulate.add_argument("--pty", action="store_true", help="also expose a pseudo-terminal")
    simulate.add_argument("--scenario", help="TOML scenario file (default: a healthy register)")
    simulate.add_argument(
        "--generation",
        type=int,
        choices=(1, 2, 3),
        help="atol-web only: the server generation to fake (1, 2 or 3 = Web Requests, default)",
    )
    simulate.set_defaults(handler=_simulate)

    demo = sub.add_parser(
        "demo", help="a simulated shop and service centre: problems, tickets, a summary"
    )
    demo.add_argument(
        "--keep-running", action="store_true", help="stay up after the script until Ctrl-C"
    )
    demo.set_defaults(handler=_demo)

    for name, handler, text in (
        ("agent", _agent, "run the monitoring service"),
        ("check-config", _check_config, "validate a configuration file"),
        ("outbox", _outbox, "show the local spool of unsent messages"),
        ("ticketing", _ticketing, "run the central ticketing subscriber"),
        ("tickets", _tickets, "show open and recent tickets, most urgent first"),
    ):
        command = sub.add_parser(name, help=text)
        command.add_argument("--config", required=True, help="TOML configuration file")
        command.add_argument("--json", action="store_true", help="machine-readable output")
        command.set_defaults(handler=handler)
    return parser


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


def _simulate(args: argparse.Namespace) -> int:
    # Imported here: simulators are a tool beside the agent, not something it runs on.
    from kktmon.simulators.registry import run_simulator

    if not args.tcp and not args.pty:
        raise ConfigError("simulate: give --tcp HOST:PORT, --pty or both")
    options = {} if args.generation is None else {"generation": args.generation}
    tcp, pty = _host_port(args.tcp), args.pty
    run_simulator(args.vendor, tcp=tcp, pty=pty, scenario=args.scenario, **options)
    return EXIT_OK


def _host_port(value: str | None) -> tuple[str, int] | None:
    if value is None:
        return None
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"--tcp wants HOST:PORT, got {value!r}")
    return host, int(port)


def _demo(args: argparse.Namespace) -> int:
    from kktmon.agent.demo import run_demo

    return run_demo(keep_running=args.keep_running)


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
    return EXIT_OK


def _agent(args: argparse.Namespace) -> int:
    from pathlib import Path

    from kktmon.agent.config import load_config
    from kktmon.agent.service import AgentService

    config = load_config(args.config)
    logging.getLogger().setLevel(config.agent.log_level)
    return AgentService(config, Path(args.config)).run()


def _ticketing(args: argparse.Namespace) -> int:
    # The centre's side lives in kktmon.ticketing; the CLI only dispatches to it.
    from kktmon.ticketing.cli import run_ticketing

    return run_ticketing(args.config)


def _tickets(args: argparse.Namespace) -> int:
    from kktmon.ticketing.cli import show_tickets

    return show_tickets(args.config, args.json)


if __name__ == "__main__":
    sys.exit(main())
