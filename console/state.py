"""What every request handler shares: the store, the accounts, the sessions, the templates.

Kept on ``app.state.console`` (:func:`console_of`); built once by
:func:`kktmon.console.app.create_app`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import jinja2
from fastapi import Request

from kktmon.console.auth import Accounts
from kktmon.console.formatting import filters
from kktmon.console.sessions import Sessions
from kktmon.ticketing.config import TicketingConfig
from kktmon.ticketing.hours import zone
from kktmon.ticketing.store import TicketStore, open_store

HERE = Path(__file__).resolve().parent
CookieSecure = Literal["auto", "always", "never"]


class StoreHolder:
    """The ticket store, opened on first use and again after it could not be: the console
    starts while the database is down and recovers when it is back."""

    def __init__(self, config: TicketingConfig) -> None:
        self.config = config
        self._store: TicketStore | None = None
        self._lock = threading.Lock()

    def get(self) -> TicketStore:
        with self._lock:
            if self._store is None:
                section = self.config.ticketing
                self._store = open_store(section.store, policy=section)
            return self._store

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None


@dataclass
class Console:
    """Everything a request handler needs, kept on ``app.state.console``."""

    config: TicketingConfig
    stores: StoreHolder
    accounts: Accounts
    sessions: Sessions
    templates: jinja2.Environment
    cookie_secure: CookieSecure = "auto"
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    @property
    def store(self) -> TicketStore:
        return self.stores.get()

    def now(self) -> datetime:
        return self.clock()

    def secure(self, request: Request) -> bool:
        """Whether the session cookie gets ``Secure``: always, never, or (auto) when the
        request came over TLS (as the proxy's ``X-Forwarded-Proto`` says)."""
        if self.cookie_secure == "auto":
            return request.url.scheme == "https"
        return self.cookie_secure == "always"


def console_of(request: Request) -> Console:
    found: Console = request.app.state.console
    return found


def template_env(config: TicketingConfig) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(filters(zone(config.ticketing.closed_hours.timezone)))
    env.globals["zone_name"] = config.ticketing.closed_hours.timezone
    return env
