"""What the notification tests share: a config with clients, a register's state facts.

:func:`notify_config` writes ``[[clients]]`` and ``[notify]`` for a store URL and the
loopback SMTP and Telegram fakes; :func:`drive_facts` is a register's newest state as the
``devices`` table keeps it, with a fiscal drive ending on a given day.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from kktmon.ticketing.config import TicketingConfig, parse_config
from kktmon.ticketing.store import RegisterFacts, TicketStore

#: A Thursday morning in Moscow; the drive below ends 30 days later.
NOW = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)
SITE, KKT = "store-001", "shtrih-0012345678"
EMAIL = "it@acme.example"
CHAT = -1001234567890


def notify_text(
    store_url: str,
    *,
    smtp_url: str | None = "smtp://127.0.0.1:1",
    telegram_url: str | None = None,
    email: str | None = EMAIL,
    token: str = "123456:test-token",
    client: str = "",
    notify: str = "",
    ticketing: str = "",
) -> str:
    """The TOML: one client ``acme`` (store-001, store-002) told by e-mail (unless
    ``email`` is None) and Telegram (when ``telegram_url``), Moscow time; ``client``,
    ``notify`` and ``ticketing`` add keys to those tables."""
    chats = f"telegram_chat_ids = [{CHAT}]\n" if telegram_url else ""
    smtp = f'[notify.smtp]\nurl = "{smtp_url}"\nfrom = "Сервис <svc@centre.example>"\n'
    bot = f'[notify.telegram]\ntoken = "{token}"\napi_url = "{telegram_url}"\n'
    return (
        f'[ticketing]\nstore = "{store_url}"\n{ticketing}\n'
        '[ticketing.closed_hours]\ntimezone = "Europe/Moscow"\ndefault = ""\n'
        '[[clients]]\nid = "acme"\nname = "ООО «Акме» <&>"\n'
        'sites = ["store-001", "store-002"]\n'
        + (f'email = ["{email}"]\n' if email else "")
        + f"{chats}{client}\n"
        f"[notify]\nretry_min_s = 10\nretry_max_s = 40\nmax_attempts = 4\n{notify}\n"
        + (smtp if smtp_url else "")
        + (bot if telegram_url else "")
    )


def notify_config(store_url: str, **options: Any) -> TicketingConfig:
    return parse_config(notify_text(store_url, **options), env={})


def drive_facts(ends: date, *, fn_serial: str = "9999078900001234", **more: Any) -> dict[str, Any]:
    """A register's state facts (as intake keeps them) with its drive ending on ``ends``."""
    taken = NOW.astimezone(ZoneInfo("Europe/Moscow"))
    facts: dict[str, Any] = {
        "vendor": "shtrih",
        "model": "ШТРИХ-М-01Ф",
        "serial": "0012345678",
        "rnm": "0000000001012345",
        "fn_serial": fn_serial,
        "fn_valid_until": ends.isoformat(),
        "taken_at": taken.isoformat(),
        "stale": False,
    }
    return facts | more


def record(
    store: TicketStore,
    facts: dict[str, Any],
    *,
    site: str = SITE,
    kkt: str = KKT,
    at: datetime = NOW,
) -> None:
    store.record_states([RegisterFacts(site, kkt, facts, at)])


def days(n: float) -> timedelta:
    return timedelta(days=n)
