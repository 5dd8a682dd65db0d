"""``kktmon notifications`` and ``kktmon check-config`` for a ticketing file.

``kktmon notifications --config F [--json] [--days N]`` lists the client notifications:
every one pending (with its attempts, next attempt and last error: a channel that is down
shows here), every one failed for good (with the server's reason), and those sent in the
last ``N`` days (7).

``kktmon check-config --config F`` validates an agent's file; given a ticketing file
(one with ``[ticketing]``, ``[[sinks]]``, ``[[clients]]`` or ``[notify]`` and no
``site``) it validates that instead, naming the bad key, and then warns about each
client site the store has never heard from (a typo, or a store not yet installed). The
store is only read for that (SQLite read-only; nothing is created or migrated), and a
store that cannot be read is a note, not an error: the file itself is fine.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tomllib
from collections import Counter
from contextlib import closing
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from kktmon.ticketing import notify_store
from kktmon.ticketing.config import TicketingConfig, load_config
from kktmon.ticketing.dispatch import utc_now
from kktmon.ticketing.notify_store import Notice
from kktmon.ticketing.store import open_store

_TICKETING_KEYS = frozenset({"ticketing", "sinks", "clients", "notify"})
_SEEN = "SELECT site FROM devices UNION SELECT site FROM agents"


def add_commands(sub: Any) -> None:
    """Add ``notifications``, and teach ``check-config`` (if present) ticketing files."""
    command = sub.add_parser("notifications", help="client notifications: pending, sent, failed")
    command.add_argument("--config", required=True, help="the ticketing TOML file")
    command.add_argument("--json", action="store_true", help="machine-readable output")
    command.add_argument("--days", type=float, default=7.0, help="show those sent in N days")
    command.set_defaults(handler=_notifications)
    check = sub.choices.get("check-config")
    if check is not None:
        agent_check = check.get_default("handler")
        check.set_defaults(handler=lambda args: _check_config(args, agent_check))


def _notifications(args: argparse.Namespace) -> int:
    return show_notifications(args.config, args.json, args.days)


def show_notifications(config_path: str, as_json: bool, days: float = 7.0) -> int:
    """Print the notifications not sent, and those sent in the last ``days``."""
    config = load_config(config_path, service_secrets=False)
    since = utc_now() - timedelta(days=days)
    with open_store(config.ticketing.store, policy=config.ticketing) as store:
        rows = store.transact(lambda tx: notify_store.records(tx, since))
    counts = Counter(row.state for row in rows)
    if as_json:
        items = [notice_json(row) for row in rows]
        print(json.dumps({"notifications": items, "counts": dict(counts)}, ensure_ascii=False))
        return 0
    sys.stdout.write(render(rows))
    return 0


def notice_json(row: Notice) -> dict[str, object]:
    data: dict[str, object] = {}
    for name in notify_store.NAMES:
        value = getattr(row, name)
        data[name] = value.isoformat() if isinstance(value, datetime) else value
    return data


def render(rows: list[Notice]) -> str:
    if not rows:
        return "no client notifications pending, failed or recently sent\n"
    header = (
        f"{'state':<8} {'tries':>5}  {'next / sent':<16}  {'site':<12}  {'register':<24}  "
        f"{'cause':<15} {'days':>4}  {'to':<30}  reason"
    )
    lines = [header, "-" * len(header)]
    order = {"failed": 0, "pending": 1, "claimed": 1, "sent": 2}
    for row in sorted(rows, key=lambda r: (order.get(r.state, 3), r.id)):
        when = row.sent_at if row.state == "sent" else row.next_attempt_at
        to = f"{row.channel}:{row.recipient}"
        lines.append(
            f"{row.state:<8} {row.attempts:>5}  {_when(when):<16}  {row.site:<12}  "
            f"{row.kkt:<24}  {row.cause:<15} {row.threshold or '':>4}  {to:<30}  "
            + (row.last_error or "")
        )
    counts = Counter(row.state for row in rows)
    summary = ", ".join(f"{counts[s]} {s}" for s in ("pending", "claimed", "failed", "sent"))
    return "\n".join([*lines, summary]) + "\n"


def _when(value: datetime | None) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M") if value else "-"


def is_ticketing_file(path: str) -> bool:
    """Whether ``path`` looks like a ticketing config (an agent's has ``site``)."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False  # the agent's check reports what is wrong with it
    return "site" not in data and bool(_TICKETING_KEYS & set(data))


def _check_config(args: argparse.Namespace, agent_check: Any) -> int:
    if not is_ticketing_file(args.config):
        code: int = agent_check(args)
        return code
    return check_ticketing(args.config)


def check_ticketing(config_path: str) -> int:
    """Validate a ticketing file (errors raise ConfigError naming the key) and warn about
    client sites the store has never seen."""
    config = load_config(config_path)
    sites = sum(len(c.sites) for c in config.clients)
    print(
        f"{config_path}: ok (ticketing; {len(config.sinks)} sink(s), "
        f"{len(config.clients)} client(s) with {sites} site(s))"
    )
    for line in site_warnings(config):
        print(line, file=sys.stderr)
    return 0


def site_warnings(config: TicketingConfig) -> list[str]:
    """One line per client site absent from the store, or a note when it cannot be read."""
    if not config.clients:
        return []
    try:
        seen = seen_sites(config.ticketing.store)
    except Exception as exc:
        return [f"note: cannot read the store to check the clients' sites: {exc}"]
    if seen is None:
        return ["note: the store does not exist yet; the clients' sites are not checked"]
    return [
        f"warning: clients[{i}].sites: {site!r} has never reported to the store (a typo?)"
        for i, client in enumerate(config.clients)
        for site in client.sites
        if site not in seen
    ]


def seen_sites(url: str) -> set[str] | None:
    """Sites the store has heard from (registers' states, agents' statuses), read only;
    None when a SQLite store does not exist yet."""
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if not path.exists():
            return None
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as db:
            return {str(row[0]) for row in db.execute(_SEEN)}
    import psycopg

    with psycopg.connect(url, connect_timeout=5) as db:
        return {str(row[0]) for row in db.execute(_SEEN)}
