"""``kktmon console``: the web console, and the password hashes its users log in with.

    kktmon console --config /etc/kktmon/ticketing.toml [--cookie-secure auto|always|never]
    kktmon console hash-password          # asks twice (or reads two lines from a pipe)

The console serves ``[console] listen`` (127.0.0.1:8080 unless told otherwise) until
SIGTERM or Ctrl-C. Nothing web-related is imported until a console command runs: the
``kktmon`` tree builds this parser for every non-agent command.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any, TextIO

from kktmon.protocol.errors import ConfigError


def add_commands(sub: Any) -> None:
    """Add ``console`` (and its ``hash-password``) to a subcommand set."""
    console = sub.add_parser("console", help="the service centre's web console and client portal")
    console.add_argument("--config", help="the ticketing TOML configuration file")
    console.add_argument(
        "--cookie-secure",
        choices=("auto", "always", "never"),
        default="auto",
        help="mark the session cookie Secure: auto = when the request came over TLS "
        "(X-Forwarded-Proto from the proxy), always, or never",
    )
    console.set_defaults(handler=_serve)
    actions = console.add_subparsers(dest="console_action", metavar="{hash-password}")
    hashing = actions.add_parser(
        "hash-password", help="read a password (twice) and print its hash for the config"
    )
    hashing.set_defaults(handler=_hash_password)


def _serve(args: argparse.Namespace) -> int:
    if not args.config:
        raise ConfigError("kktmon console: --config FILE is required (the ticketing config)")
    from kktmon.console.server import serve

    return serve(args.config, cookie_secure=args.cookie_secure)


def _hash_password(args: argparse.Namespace) -> int:
    password = read_password(sys.stdin)
    from kktmon.ticketing.passwords import hash_password

    print(hash_password(password))
    return 0


def read_password(stream: TextIO) -> str:
    """The password, typed twice: from a terminal without echo, from a pipe as its first
    two lines (``printf '%s\\n%s\\n' "$PW" "$PW" | kktmon console hash-password``). A
    typo in either is caught before a hash nobody can log in with goes into the config."""
    if stream.isatty():
        first, again = getpass.getpass("Password: "), getpass.getpass("Again: ")
    else:
        first, again = (stream.readline().rstrip("\r\n") for _ in range(2))
    if not first:
        raise ConfigError("an empty password; nothing printed")
    if again != first:
        raise ConfigError("the two passwords differ; nothing printed")
    return first
