"""``kktmon demo``: the simulated shop and service centre."""

from __future__ import annotations

import argparse
from typing import Any


def add_commands(sub: Any) -> None:
    """Add ``demo`` to a subcommand set."""
    demo = sub.add_parser(
        "demo", help="a simulated shop and service centre: problems, tickets, a summary"
    )
    demo.add_argument(
        "--keep-running", action="store_true", help="stay up after the script until Ctrl-C"
    )
    demo.set_defaults(handler=_demo)


def _demo(args: argparse.Namespace) -> int:
    from kktmon.demo.runner import run_demo

    return run_demo(keep_running=args.keep_running)
