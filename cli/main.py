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
    kktmon ticketing    --config FILE --retire [--client-id ID]   end a worker's session
    kktmon tickets      --config FILE [--json]           open and recent tickets
    kktmon tickets      --config FILE --refused [--json] what the limits refused
    kktmon console      --config FILE                    the web console and client portal
    kktmon console hash-password                         a password's hash for the config

Exit status: 0 when the register answered, 1 when it did not (with one line on stderr
naming the URL and what to check), 2 for bad command-line input or configuration.
"""

from __future__ import annotations

import importlib
import itertools
import sys
import tomllib
from collections.abc import Sequence
from pathlib import Path

from kktmon.agent import cli as agent_cli

#: The other layers' command modules, in the order ``kktmon --help`` lists them after the
#: agent's commands. None of them is imported to run an agent command: ``kktmon agent``
#: on a store PC would otherwise keep the ticketing, the simulators, the demo and the HTTP
#: client resident for as long as it runs (issue 13, the agent's footprint).
LAYERS = (
    "kktmon.simulators.cli",
    "kktmon.demo.cli",
    "kktmon.ticketing.cli",
    "kktmon.console.cli",
)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    parser, sub = agent_cli.new_parser(__doc__.split("\n\n")[0])
    agent_cli.add_commands(sub)
    if command_of(args) not in sub.choices or not_the_agents_file(args):
        # another layer's command, --help, none, a typo, or check-config on a ticketing file
        for module in LAYERS:
            importlib.import_module(module).add_commands(sub)
    return agent_cli.run(parser, args)


def command_of(argv: Sequence[str]) -> str | None:
    """The command ``argv`` names: its first word not starting with ``-`` (the global
    options of :func:`kktmon.agent.cli.new_parser` are flags that take no value)."""
    return next((word for word in argv if not word.startswith("-")), None)


def not_the_agents_file(argv: Sequence[str]) -> bool:
    """``check-config`` on a file without the agent's top-level ``site`` (a ticketing
    config, which the ticketing layer's check-config reads); an unreadable file stays the
    agent's to report."""
    if command_of(argv) != "check-config":
        return False
    words = list(argv)
    path = next((v for k, v in itertools.pairwise(words) if k == "--config"), None)
    path = path or next((w.split("=", 1)[1] for w in words if w.startswith("--config=")), None)
    try:
        return path is not None and "site" not in tomllib.loads(Path(path).read_text("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False


if __name__ == "__main__":
    sys.exit(main())
