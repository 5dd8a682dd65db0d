"""The ticketing service's TOML configuration, validated by pydantic (DESIGN.md sections 6-7).

A minimal file::

    [mqtt]
    url = "mqtt://127.0.0.1:1883"
    # client_id = "kktmon-ticketing-a"  # default: kktmon-ticketing-<hostname>-<slot>
    # lock_dir = "/var/lib/kktmon"       # default: the SQLite store's folder, else this
    [ticketing]
    store = "sqlite:////var/lib/kktmon/tickets.sqlite3"   # or postgresql://user@host/db
    open_after_s = 300         # hold-down before a ticket opens
    resolve_after_s = 1800     # grace period before it resolves
    agent_lost_after_s = 900   # a lost agent's grace, counted outside closed hours
    on_clear = "resolve"       # or "comment": tell the help desk, let a human close
    notify_severities = ["warning", "critical", "blocked"]
    [ticketing.closed_hours]
    timezone = "Europe/Moscow"
    default = "22:00-08:00"
    "store-001" = "21:00-09:00 Asia/Yekaterinburg"   # a site's own window (and zone)
    "store-024" = ""                                 # open around the clock
    [[sinks]]
    type = "okdesk"
    url = "https://acme.okdesk.ru/api/v1/"
    api_token = "..."

Store URLs: ``sqlite:////abs/path.sqlite3`` (four slashes), ``sqlite:///relative.sqlite3``
(relative to this file) or ``postgresql://user@host:port/db`` (a libpq DSN for psycopg 3).

Every table forbids unknown keys; errors are :class:`~kktmon.protocol.errors.ConfigError`
naming the file and the dotted key, without echoing values (they may be secrets).
Secrets are :class:`pydantic.SecretStr`. ``KKTMON_MQTT_PASSWORD`` overrides
``mqtt.password``; ``KKTMON_MQTT_TLS_KEY_PASSWORD`` overrides ``mqtt.tls_key_password`` (the
passphrase of an encrypted ``tls_key_file``); ``KKTMON_SINK_<NAME>_SECRET`` (the sink name
upper-cased, other characters as ``_``) overrides a webhook's ``secret`` or an Okdesk
sink's ``api_token``.

``[console]`` and ``[[console.users]]`` (the web console, its logins and their scope) are
described in :mod:`kktmon.ticketing.console_config`.

``[[clients]]`` and ``[notify]`` (who is told about their registers, over e-mail and
Telegram) are described in :mod:`kktmon.ticketing.notify_config`; ``KKTMON_SMTP_PASSWORD``
and ``KKTMON_TELEGRAM_TOKEN`` override their secrets. A store's local time zone (dates in
messages and reports) is its ``[ticketing.closed_hours]`` zone: ``ClosedHours.zone_for``.

Each worker's MQTT client id is stable across restarts and unique among the live workers
of a host: ``[mqtt] client_id``, or ``kktmon-ticketing-<hostname>-<slot>`` with the lowest
slot free on the host, held by a lock file in ``lock_dir`` (:mod:`kktmon.ticketing.identity`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import tzinfo
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from kktmon.protocol.errors import ConfigError
from kktmon.protocol.health import Severity
from kktmon.protocol.settings import (
    ENV_MQTT_PASSWORD,
    ConfigPath,
    Loc,
    MqttSettings,
    NonNegative,
    Positive,
    StrictModel,
    check_topic_level,
    parse_toml,
    resolve_mqtt_secrets,
    validate_config,
)
from kktmon.protocol.topics import check_level
from kktmon.ticketing.console_config import ConsoleSection, check_users
from kktmon.ticketing.hours import ClosedWindow, zone
from kktmon.ticketing.notify_config import (
    ENV_SMTP_PASSWORD,
    ENV_TELEGRAM_TOKEN,
    ClientConfig,
    NotifySection,
    check_clients,
)
from kktmon.ticketing.passwords import check_hash

DEFAULT_STORE = "sqlite:////var/lib/kktmon/tickets.sqlite3"
__all__ = ["ENV_MQTT_PASSWORD", "ConfigPath", "TicketingConfig", "load_config", "parse_config"]


ENV_MQTT_TLS_KEY_PASSWORD = "KKTMON_MQTT_TLS_KEY_PASSWORD"


class MqttSection(MqttSettings):
    """The central broker connection; workers share ``$share/<shared_group>/...``."""

    #: This worker's own id, the same at every start (the broker keeps its session under
    #: it); one per worker, starting with ``kktmon-ticketing``. None: the lowest free
    #: ``kktmon-ticketing-<hostname>-<slot>`` of this host.
    client_id: str | None = Field(None, min_length=1, max_length=128)
    shared_group: str = "kktmon-ticketing"
    #: Where workers lock their client ids (``ticketing-<id>.lock``). None: the SQLite
    #: store's folder, else ``/var/lib/kktmon``. One folder for all workers of a host.
    lock_dir: ConfigPath | None = None

    @field_validator("shared_group")
    @classmethod
    def _check_group(cls, value: str) -> str:
        return check_topic_level(value)


def _check_window_spec(spec: str) -> str:
    _window(spec, "UTC")
    return spec


#: ``"HH:MM-HH:MM"``, optionally followed by a zone name; ``""`` means never closed.
WindowSpec = Annotated[str, AfterValidator(_check_window_spec)]


class ClosedHours(BaseModel):
    """``[ticketing.closed_hours]``: ``timezone``, ``default`` and one key per site.

    A site's value is ``"HH:MM-HH:MM"``, optionally followed by its own zone name, or
    ``""`` for a site that never closes. Sites without a key use ``default``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: str = "UTC"
    default: WindowSpec = ""
    sites: dict[str, WindowSpec] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _collect_sites(cls, data: Any) -> Any:
        # In the file, sites are keys of the table itself, beside timezone and default.
        if not isinstance(data, dict):
            return data
        own = {k: v for k, v in data.items() if k in ("timezone", "default")}
        return {**own, "sites": {k: v for k, v in data.items() if k not in own}}

    @field_validator("timezone")
    @classmethod
    def _check_zone(cls, value: str) -> str:
        zone(value)
        return value

    @field_validator("sites")
    @classmethod
    def _check_sites(cls, value: dict[str, str]) -> dict[str, str]:
        for site in value:
            try:
                check_level(site)
            except ValueError:
                raise ValueError(
                    f"{site!r} is not a site id (no '/', '+', '#', whitespace)"
                ) from None
        return value

    def window_for(self, site: str) -> ClosedWindow | None:
        """The site's closed window, or None when it never closes."""
        return _window(self.sites.get(site, self.default), self.timezone)

    def zone_for(self, site: str) -> tzinfo:
        """The site's local time zone: its window's own zone, else ``timezone``."""
        window = self.window_for(site)
        return window.tz if window is not None else zone(self.timezone)


def _window(spec: str, default_zone: str) -> ClosedWindow | None:
    parts = spec.split()
    if not parts:
        return None
    if len(parts) > 2:
        raise ValueError(f"{spec!r} is not 'HH:MM-HH:MM [Zone/Name]'")
    return ClosedWindow.parse(parts[0], zone(parts[1] if len(parts) == 2 else default_zone))


_WARNING_UP = [Severity.WARNING, Severity.CRITICAL, Severity.BLOCKED]


class TicketingLimits(StrictModel):
    """``[ticketing.limits]``: the most one store's messages may cost the centre.

    A store's credentials may publish anything inside its own subtree; these bound what
    that can add to the ticket store. What goes over is refused and counted per site
    (``kktmon tickets --refused``), never retried. The defaults hold a large store's
    worst day with room to spare: a register has at most ~30 problems at once (21 codes,
    the drive-scoped ones twice while a drive is replaced), a hypermarket ~100 registers.
    """

    #: Larger MQTT payloads are dead-lettered unread: the broker's ``message_size_limit``
    #: (deploy/), which a snapshot (a few KiB) never comes near.
    max_payload_bytes: int = Field(64 * 1024, ge=1024, le=16 * 1024 * 1024)
    #: Live (unresolved) tickets of one register; a new problem beyond it is refused.
    live_tickets_per_register: int = Field(64, ge=1)
    #: Live tickets of one site: ~100 registers with ~20 problems each.
    live_tickets_per_site: int = Field(2000, ge=1)
    #: Registers of one site whose newest state the store keeps (the ``devices`` table).
    registers_per_site: int = Field(256, ge=1)
    #: Dead letters kept, newest first (about 4 KiB each); all are counted.
    dead_letters_kept: int = Field(10_000, ge=0)


class TicketingSection(StrictModel):
    """The ticket lifecycle policy (DESIGN.md section 6)."""

    store: str = DEFAULT_STORE
    open_after_s: NonNegative = 300.0
    resolve_after_s: NonNegative = 1800.0
    agent_lost_after_s: NonNegative = 900.0
    on_clear: Literal["resolve", "comment"] = "resolve"
    #: Problems below these stay ``pending``: recorded here, never sent to the help desk.
    notify_severities: list[Severity] = Field(default_factory=lambda: list(_WARNING_UP))
    closed_hours: ClosedHours = Field(default_factory=ClosedHours)
    #: How often the service checks hold-downs, grace periods and lost agents.
    tick_interval_s: Positive = 10.0
    #: A dispatcher's claim on a call expires after this long (a dead worker's calls return).
    claim_ttl_s: Positive = 300.0
    #: How often one worker (under the store's lease) re-reads the retained alert set and
    #: converges the store: the longest a lost message stays unrepaired.
    reconcile_interval_s: Positive = 300.0
    limits: TicketingLimits = Field(default_factory=TicketingLimits)

    @field_validator("store")
    @classmethod
    def _check_store(cls, value: str, info: ValidationInfo) -> str:
        scheme = urlsplit(value).scheme
        if scheme in ("postgresql", "postgres"):
            return value
        if scheme != "sqlite" or not value.startswith("sqlite:///") or value == "sqlite:///":
            raise ValueError("use sqlite:////absolute/path, sqlite:///relative or postgresql://")
        path = Path(value.removeprefix("sqlite:///"))
        base = (info.context or {}).get("base_dir")
        if base is not None and not path.is_absolute():
            return "sqlite:///" + str((Path(base) / path).resolve())
        return value

    @field_validator("notify_severities")
    @classmethod
    def _check_severities(cls, value: list[Severity]) -> list[Severity]:
        return list(dict.fromkeys(value))


_SINK_NAME = r"^[a-z][a-z0-9_-]{0,63}$"


def _check_http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    return value


class _SinkBase(StrictModel):
    timeout_s: Positive = 10.0
    #: Delivery attempts per call before it is given up (kept as ``failed`` for inspection).
    max_attempts: int = Field(10, ge=1, le=1000)
    retry_min_s: Positive = 5.0
    retry_max_s: Positive = 900.0

    @model_validator(mode="after")
    def _check_retry(self) -> _SinkBase:
        if self.retry_min_s > self.retry_max_s:
            raise ValueError("retry_min_s must not exceed retry_max_s")
        return self


class WebhookSinkConfig(_SinkBase):
    """A generic JSON webhook, signed with HMAC-SHA256 when ``secret`` is set."""

    type: Literal["webhook"]
    name: str = Field("webhook", pattern=_SINK_NAME)
    url: Annotated[str, AfterValidator(_check_http_url)]
    secret: SecretStr | None = None
    headers: dict[str, str] = Field(default_factory=dict)


class OkdeskSinkConfig(_SinkBase):
    """An Okdesk account (fiscal-health.md 6.2); codes are the account's, not hard-coded."""

    type: Literal["okdesk"]
    name: str = Field("okdesk", pattern=_SINK_NAME)
    #: The account's API base, ``https://<account>.okdesk.ru/api/v1/``.
    url: Annotated[str, AfterValidator(_check_http_url)]
    api_token: SecretStr | None = None
    #: The employee comments are written as (Okdesk requires an author for comments).
    author_id: int | None = Field(None, ge=1)
    issue_type: str | None = None
    #: Our priority (low/normal/high/critical) -> the account's priority code.
    priorities: dict[Literal["low", "normal", "high", "critical"], str] = Field(
        default_factory=lambda: {p: p for p in ("low", "normal", "high", "critical")}
    )
    resolved_status: str = "completed"
    reopened_status: str = "opened"
    #: Look the register up in the equipment registry by serial to attach company/object.
    find_equipment: bool = True


SinkConfig = Annotated[WebhookSinkConfig | OkdeskSinkConfig, Field(discriminator="type")]


class TicketingConfig(StrictModel):
    """The whole file."""

    mqtt: MqttSection = Field(default_factory=MqttSection)
    ticketing: TicketingSection = Field(default_factory=TicketingSection)
    sinks: list[SinkConfig] = Field(default_factory=list)
    #: The centre's clients: their sites and contacts (:mod:`notify_config`).
    clients: list[ClientConfig] = Field(default_factory=list)
    notify: NotifySection = Field(default_factory=NotifySection)
    #: The web console and its users (:mod:`console_config`).
    console: ConsoleSection = Field(default_factory=ConsoleSection)

    @model_validator(mode="after")
    def _check_sinks(self) -> TicketingConfig:
        names = [sink.name for sink in self.sinks]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"sinks: duplicate name {', '.join(duplicates)} (set name = ...)")
        check_clients(self.clients, self.notify)
        check_users(self.console, self.clients)
        return self

    def client_for(self, site: str) -> ClientConfig | None:
        """The client whose ``sites`` lists ``site`` (at most one: the file is checked)."""
        return next((c for c in self.clients if site in c.sites), None)

    def sink_configs(self) -> list[WebhookSinkConfig | OkdeskSinkConfig]:
        """The validated sink entries, secrets resolved, in file order."""
        return list(self.sinks)

    @property
    def sink_names(self) -> list[str]:
        """Names the store fans every help-desk call out to."""
        return [sink.name for sink in self.sinks]


def sink_env_name(sink: str) -> str:
    """The environment variable that overrides the secret of the sink named ``sink``."""
    return "KKTMON_SINK_" + "".join(c if c.isalnum() else "_" for c in sink.upper()) + "_SECRET"


def load_config(
    path: str | os.PathLike[str],
    env: Mapping[str, str] | None = None,
    *,
    service_secrets: bool = True,
) -> TicketingConfig:
    """Read, validate and resolve the secrets of one configuration file.

    ``env`` defaults to ``os.environ``; every failure is a :class:`ConfigError`. Commands
    that only read the store (the console, ``tickets``, ``report``, ``notifications``)
    pass ``service_secrets=False``: the broker's, the help desks' and the channels'
    secrets are the ticketing service's, and a reader neither needs nor may hold them.
    """
    source = Path(path)
    try:
        text = read_text_file(source)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{source}: cannot read: {exc}") from exc
    return parse_config(text, source=source, env=env, service_secrets=service_secrets)


def parse_config(
    text: str,
    source: str | os.PathLike[str] = "<config>",
    env: Mapping[str, str] | None = None,
    *,
    service_secrets: bool = True,
) -> TicketingConfig:
    """Validate TOML text; ``source`` names it in errors and anchors relative paths."""
    where = Path(source)
    config = validate_config(TicketingConfig, parse_toml(text, where), where, _file_shape)
    if not service_secrets:
        console = _console_secrets(config.console, where)
        return config.model_copy(update={"console": console})
    return _resolve_secrets(config, where, os.environ if env is None else env)


def _file_shape(loc: Loc) -> Loc:
    """Drop what the models add to the file's shape: the tag of a tagged union
    (sinks[0].okdesk.url) and the folded site table (closed_hours.sites.store-001)."""
    return tuple(
        p
        for i, p in enumerate(loc)
        if not (i > 0 and isinstance(loc[i - 1], int) and p in ("webhook", "okdesk"))
        and not (i > 0 and loc[i - 1] == "closed_hours" and p == "sites")
    )


def _resolve_secrets(
    config: TicketingConfig, where: Path, env: Mapping[str, str]
) -> TicketingConfig:
    mqtt = config.mqtt.model_copy(
        update=resolve_mqtt_secrets(
            config.mqtt, where, env, read_text_file, ENV_MQTT_TLS_KEY_PASSWORD
        )
    )
    sinks = [_sink_secret(sink, i, where, env) for i, sink in enumerate(config.sinks)]
    notify = _notify_secrets(config.notify, where, env)
    console = _console_secrets(config.console, where)
    update = {"mqtt": mqtt, "sinks": sinks, "notify": notify, "console": console}
    return config.model_copy(update=update)


def _console_secrets(console: ConsoleSection, where: Path) -> ConsoleSection:
    """Each user's ``password_file`` read (and checked) into ``password_hash``; the
    session secret read from its file."""
    users = []
    for i, user in enumerate(console.users):
        if user.password_file is not None:
            key = f"console.users[{i}].password_file"
            encoded = _secret_file(user.password_file, where, key)
            try:
                check_hash(encoded)
            except ValueError as exc:
                raise ConfigError(f"{where}: {key}: the file {exc}") from None
            users.append(user.model_copy(update={"password_hash": encoded}))
        else:
            users.append(user)
    secret = console.session_secret
    if console.session_secret_file is not None:
        key = "console.session_secret_file"
        secret = SecretStr(_secret_file(console.session_secret_file, where, key))
        if len(secret.get_secret_value()) < 16:
            raise ConfigError(f"{where}: {key}: the secret must be at least 16 characters")
    return console.model_copy(update={"users": users, "session_secret": secret})


def _notify_secrets(notify: NotifySection, where: Path, env: Mapping[str, str]) -> NotifySection:
    """The SMTP password and the bot token, from their files or the environment."""
    update: dict[str, Any] = {}
    smtp, bot = notify.smtp, notify.telegram
    if smtp is not None:
        password = smtp.password
        if env.get(ENV_SMTP_PASSWORD):
            password = SecretStr(env[ENV_SMTP_PASSWORD])
        elif smtp.password_file is not None:
            key = "notify.smtp.password_file"
            password = SecretStr(_secret_file(smtp.password_file, where, key))
        if password is not None and smtp.username is None:
            raise ConfigError(f"{where}: notify.smtp.username: required when a password is set")
        update["smtp"] = smtp.model_copy(update={"password": password})
    if bot is not None:
        token = bot.token
        if env.get(ENV_TELEGRAM_TOKEN):
            token = SecretStr(env[ENV_TELEGRAM_TOKEN])
        elif bot.token_file is not None:
            token = SecretStr(_secret_file(bot.token_file, where, "notify.telegram.token_file"))
        if token is None or not token.get_secret_value():
            raise ConfigError(
                f"{where}: notify.telegram.token_file: required (or set {ENV_TELEGRAM_TOKEN})"
            )
        update["telegram"] = bot.model_copy(update={"token": token})
    return notify.model_copy(update=update)


def _secret_file(path: Path, where: Path, key: str) -> str:
    try:
        return read_text_file(path).strip()
    except FileNotFoundError:
        raise ConfigError(f"{where}: {key}: no such file {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{where}: {key}: cannot read: {exc}") from None


def _sink_secret(
    sink: WebhookSinkConfig | OkdeskSinkConfig, index: int, where: Path, env: Mapping[str, str]
) -> WebhookSinkConfig | OkdeskSinkConfig:
    variable = sink_env_name(sink.name)
    field = "secret" if isinstance(sink, WebhookSinkConfig) else "api_token"
    if env.get(variable):
        return sink.model_copy(update={field: SecretStr(env[variable])})
    if isinstance(sink, OkdeskSinkConfig) and sink.api_token is None:
        raise ConfigError(f"{where}: sinks[{index}].api_token: required (or set {variable})")
    return sink


def read_text_file(path: Path) -> str:
    """A configuration file, or one it names (a password, a certificate), as text."""
    return path.read_text(encoding="utf-8")
