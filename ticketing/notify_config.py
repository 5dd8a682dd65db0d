"""``[[clients]]`` and ``[notify]``: who hears about their registers, and how (DESIGN.md 7).

::

    [[clients]]
    id = "acme"
    name = "ООО «Акме»"
    sites = ["store-001", "store-002"]
    email = ["it@acme.example"]
    telegram_chat_ids = [-1001234567890, "@acme_kkt"]
    language = "ru"            # or "en"
    notify_tickets = false     # also a message when a ticket opens or resolves
    digest = false             # one message a day at [notify] digest_at instead

    [notify]
    days = [30, 14, 7, 3]      # tell the client when block_at is this many days away
    digest_at = "09:00"        # the store's local time (its [ticketing.closed_hours] zone)
    [notify.smtp]
    url = "smtps://smtp.example:465"   # or smtp://host:587 with starttls = true
    starttls = true
    username = "kktmon@example"
    password_file = "/etc/kktmon/smtp-password"   # or KKTMON_SMTP_PASSWORD
    from = "Сервисный центр <kktmon@example>"
    [notify.telegram]
    token_file = "/etc/kktmon/telegram-token"     # or KKTMON_TELEGRAM_TOKEN
    api_url = "https://api.telegram.org"

A site belongs to at most one client (two clients for one site is an error: whose is the
register?). A client with e-mail addresses needs ``[notify.smtp]``, one with chat ids
``[notify.telegram]``. Whether a listed site exists is known only to the store: ``kktmon
check-config`` warns about sites the store has never seen.
"""

from __future__ import annotations

import re
from datetime import time
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from kktmon.protocol.settings import ConfigPath, Positive, StrictModel
from kktmon.protocol.topics import check_level

ENV_SMTP_PASSWORD = "KKTMON_SMTP_PASSWORD"
ENV_TELEGRAM_TOKEN = "KKTMON_TELEGRAM_TOKEN"
DEFAULT_DAYS = (30, 14, 7, 3)

# Deliberately plain: one @, a dotted domain, no spaces, quotes or angle brackets. The
# server has the last word; this catches typos and pasted display names.
_ADDRESS = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
_FROM = re.compile(r"^(?:[^<>]*<(?P<inner>[^<>]+)>|(?P<bare>[^<>\s]+))$")
_CHANNEL = re.compile(r"^@[A-Za-z][A-Za-z0-9_]{4,31}$")
_CLIENT_ID = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


def _check_address(value: str) -> str:
    if not _ADDRESS.match(value):
        raise ValueError(f"{value!r} is not an e-mail address like name@example.ru")
    return value


def _check_from(value: str) -> str:
    match = _FROM.match(value.strip())
    address = match and (match.group("inner") or match.group("bare"))
    if not address or not _ADDRESS.match(address.strip()):
        raise ValueError("must be an address, or 'Name <address>'")
    return value.strip()


def _not_bool(value: object) -> object:
    # pydantic reads true as 1 for an int: a chat id of 1 is a typo, not a chat.
    if isinstance(value, bool | float):
        raise ValueError("a chat id is an integer or an @channel name")
    return value


def _check_chat(value: int | str) -> int | str:
    if isinstance(value, int):
        return value
    if re.fullmatch(r"-?\d+", value):
        return int(value)
    if not _CHANNEL.match(value):
        raise ValueError(f"{value!r} is not a chat id (an integer) or an @channel name")
    return value


def _check_site(value: str) -> str:
    try:
        check_level(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a site id (no '/', '+', '#', whitespace)") from None
    return value


def _check_clock(value: str) -> str:
    try:
        time.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a time of day like '09:00'") from None
    return value


Address = Annotated[str, AfterValidator(_check_address)]
ChatId = Annotated[int | str, BeforeValidator(_not_bool), AfterValidator(_check_chat)]
SiteId = Annotated[str, AfterValidator(_check_site)]


class ClientConfig(StrictModel):
    """One ``[[clients]]`` entry: a client of the service centre and their contacts."""

    id: str = Field(pattern=_CLIENT_ID)
    name: str = Field(min_length=1, max_length=200)
    sites: list[SiteId] = Field(min_length=1)
    email: list[Address] = Field(default_factory=list)
    telegram_chat_ids: list[ChatId] = Field(default_factory=list)
    language: Literal["ru", "en"] = "ru"
    #: Also tell the client when a ticket on one of their registers opens or resolves.
    notify_tickets: bool = False
    #: Collect the day's messages into one, sent at ``[notify] digest_at`` store-local time.
    digest: bool = False

    @field_validator("sites", "email", "telegram_chat_ids")
    @classmethod
    def _unique(cls, value: list[object]) -> list[object]:
        return list(dict.fromkeys(value))

    def recipients(self) -> list[tuple[str, str]]:
        """(channel, recipient) pairs: every address and chat this client is told on."""
        return [("email", a) for a in self.email] + [
            ("telegram", str(c)) for c in self.telegram_chat_ids
        ]


class SmtpSection(StrictModel):
    """``[notify.smtp]``: the mail server the centre sends from (stdlib ``smtplib``)."""

    #: ``smtp://host[:port]`` (25 by default; STARTTLS by ``starttls``) or
    #: ``smtps://host[:port]`` (implicit TLS, 465 by default).
    url: str
    starttls: bool = False
    username: str | None = Field(None, min_length=1)
    password: SecretStr | None = None
    password_file: ConfigPath | None = None
    from_: Annotated[str, AfterValidator(_check_from)] = Field(alias="from")
    timeout_s: Positive = 30.0
    #: CA bundle for the server's certificate (default: the system's).
    tls_ca_file: ConfigPath | None = None

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError("must be smtp://host:port or smtps://host:port")
        if parts.username or parts.password:
            raise ValueError("no user info in the URL: use username and password_file")
        parts.port  # noqa: B018 - raises ValueError on a bad port
        return value

    @model_validator(mode="after")
    def _check_tls(self) -> SmtpSection:
        if self.starttls and urlsplit(self.url).scheme == "smtps":
            raise ValueError("starttls: smtps:// is TLS from the start; use smtp:// for STARTTLS")
        return self

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        return parts.port or (465 if parts.scheme == "smtps" else 25)

    @property
    def implicit_tls(self) -> bool:
        return urlsplit(self.url).scheme == "smtps"


class TelegramSection(StrictModel):
    """``[notify.telegram]``: the bot the centre writes as (Bot API ``sendMessage``)."""

    token: SecretStr | None = None
    token_file: ConfigPath | None = None
    #: The Bot API's base; tests and proxies point it elsewhere.
    api_url: str = "https://api.telegram.org"
    timeout_s: Positive = 30.0

    @field_validator("api_url")
    @classmethod
    def _check_api(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host")
        return value.rstrip("/")


class NotifySection(StrictModel):
    """``[notify]``: when clients hear, how delivery retries, and the two channels."""

    #: Days before ``block_at`` at which a client is told, once per threshold.
    days: list[int] = Field(default_factory=lambda: list(DEFAULT_DAYS), min_length=1)
    #: The digest's hour, store-local (HH:MM).
    digest_at: Annotated[str, AfterValidator(_check_clock)] = "09:00"
    #: How often the lease holder looks for thresholds crossed by time passing.
    scan_interval_s: Positive = 300.0
    max_attempts: int = Field(10, ge=1, le=1000)
    retry_min_s: Positive = 30.0
    retry_max_s: Positive = 3600.0
    smtp: SmtpSection | None = None
    telegram: TelegramSection | None = None

    @field_validator("days")
    @classmethod
    def _check_days(cls, value: list[int]) -> list[int]:
        if any(d < 1 or d > 366 for d in value):
            raise ValueError("each threshold is 1-366 days")
        return sorted(set(value), reverse=True)

    @model_validator(mode="after")
    def _check_retry(self) -> NotifySection:
        if self.retry_min_s > self.retry_max_s:
            raise ValueError("retry_min_s must not exceed retry_max_s")
        return self

    @property
    def digest_time(self) -> time:
        return time.fromisoformat(self.digest_at)


def check_clients(clients: list[ClientConfig], notify: NotifySection) -> None:
    """Cross-entry rules; ``ValueError`` names the offending key (``clients[i].x``)."""
    owners: dict[str, int] = {}
    ids: set[str] = set()
    for i, client in enumerate(clients):
        if client.id in ids:
            raise ValueError(f"clients[{i}].id: duplicate client id {client.id!r}")
        ids.add(client.id)
        for site in client.sites:
            if site in owners:
                raise ValueError(
                    f"clients[{i}].sites: {site!r} is already listed by clients[{owners[site]}]"
                )
            owners[site] = i
        if client.email and notify.smtp is None:
            raise ValueError(f"clients[{i}].email: needs a [notify.smtp] section")
        if client.telegram_chat_ids and notify.telegram is None:
            raise ValueError(f"clients[{i}].telegram_chat_ids: needs a [notify.telegram] section")
