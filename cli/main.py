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

Exit status: 0 when the register answered, 1 when it did not (with one line on stderr
naming the URL and what to check), 2 for bad command-line input or configuration.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from kktmon.agent import cli as agent_cli
from kktmon.demo import cli as demo_cli
from kktmon.simulators import cli as simulators_cli
from kktmon.ticketing import cli as ticketing_cli

#: Each layer's commands, in the order ``kktmon --help`` lists them.
LAYERS = (agent_cli, simulators_cli, demo_cli, ticketing_cli)


def main(argv: Sequence[str] | None = None) -> int:
    parser, sub = agent_cli.new_parser(__doc__.split("\n\n")[0])
    for layer in LAYERS:
        layer.add_commands(sub)
    return agent_cli.run(parser, argv)


if __name__ == "__main__":
    sys.exit(main())
