"""The agent's one TOML configuration file, validated by pydantic (DESIGN.md section 7).

A minimal file::

    site = "store-001"                      # store id: no '/', '+', '#'
    [agent]
    poll_interval_s = 60
    state_dir = "/var/lib/kktmon"
    [mqtt]
    url = "mqtt://127.0.0.1:1883"           # mqtts:// for TLS
    [[devices]]
    vendor = "shtrih"
    url = "socket://127.0.0.1:7778"

Every table forbids unknown keys, so a typo is an error rather than a silently ignored
setting. Errors are :class:`~kktmon.protocol.errors.ConfigError` with the file and the
dotted key, e.g. ``store.toml: agent.poll_interval_s: Input should be greater than 0``.

Secrets are :class:`pydantic.SecretStr` (masked in ``repr`` and logs). The broker password
comes, in order of precedence, from ``KKTMON_MQTT_PASSWORD``, ``mqtt.password_file`` or
``mqtt.password``; the TLS key passphrase from ``KKTMON_MQTT_TLS_KEY_PASSWORD`` or
``mqtt.tls_key_password``. Relative paths are relative to the configuration file.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from kktmon.agent.outbox import OutboxLimits
from kktmon.drivers.base import DriverOptions
from kktmon.protocol.errors import ConfigError

ENV_MQTT_PASSWORD = "KKTMON_MQTT_PASSWORD"
ENV_MQTT_TLS_KEY_PASSWORD = "KKTMON_MQTT_TLS_KEY_PASSWORD"

_TOPIC_FORBIDDEN = set("/+#\x00")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _relative_to_config(value: Path, info: ValidationInfo) -> Path:
    base = (info.context or {}).get("base_dir")
    return Path(base) / value if base is not None and not value.is_absolute() else value


#: A path written in the file: relative paths resolve against the file's folder.
ConfigPath = Annotated[Path, AfterValidator(_relative_to_config)]
Positive = Annotated[float, Field(gt=0)]


def _check_topic_level(value: str) -> str:
    if not value or any(ch in _TOPIC_FORBIDDEN or ch.isspace() for ch in value):
        raise ValueError("must be non-empty without '/', '+', '#', NUL or whitespace")
    return value


class AgentSection(_Strict):
    """How often and where the agent works."""

    poll_interval_s: Positive = 60.0
    #: Each wait is the interval +/- this fraction, so a fleet does not poll in lockstep.
    poll_jitter: float = Field(0.1, ge=0, le=0.5)
    state_dir: ConfigPath = Path("/var/lib/kktmon")
    health_interval_s: Positive = 60.0
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class MqttConfig(_Strict):
    """The broker connection (DESIGN.md section 4)."""

    url: str = "mqtt://127.0.0.1:1883"
    topic_prefix: str = "kktmon/v1"
    client_id: str | None = Field(None, min_length=1, max_length=128)
    protocol: Literal["auto", "5", "3.1.1"] = "auto"
    username: str | None = Field(None, min_length=1)
    password: SecretStr | None = None
    password_file: ConfigPath | None = None
    tls_ca_file: ConfigPath | None = None
    tls_cert_file: ConfigPath | None = None
    tls_key_file: ConfigPath | None = None
    tls_key_password: SecretStr | None = None
    keepalive_s: int = Field(60, ge=5, le=65535)
    connect_timeout_s: Positive = 10.0
    reconnect_min_s: Positive = 1.0
    reconnect_max_s: Positive = 120.0

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("mqtt", "mqtts"):
            raise ValueError("scheme must be mqtt:// or mqtts:// (TLS)")
        if not parts.hostname:
            raise ValueError("needs a host, e.g. mqtt://broker.example:1883")
        if parts.username or parts.password:
            raise ValueError("put credentials in mqtt.username / mqtt.password, not the URL")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError("must not carry a path, query or fragment")
        if parts.port == 0:  # .port itself raises ValueError outside 0-65535
            raise ValueError("port must be 1-65535")
        return value

    @field_validator("topic_prefix")
    @classmethod
    def _check_prefix(cls, value: str) -> str:
        if value.startswith("$"):
            raise ValueError("must not start with '$' (reserved for the broker)")
        for level in value.split("/"):
            _check_topic_level(level)
        return value

    @model_validator(mode="after")
    def _check_combinations(self) -> MqttConfig:
        if self.password is not None and self.password_file is not None:
            raise ValueError("set password or password_file, not both")
        if self.reconnect_min_s > self.reconnect_max_s:
            raise ValueError("reconnect_min_s must not exceed reconnect_max_s")
        if self.tls_key_file is not None and self.tls_cert_file is None:
            raise ValueError("tls_key_file needs tls_cert_file")
        uses_tls = any((self.tls_ca_file, self.tls_cert_file, self.tls_key_file))
        if uses_tls and not self.tls:
            raise ValueError("tls_* files need an mqtts:// url")
        return self

    @property
    def tls(self) -> bool:
        return urlsplit(self.url).scheme == "mqtts"

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        return urlsplit(self.url).port or (8883 if self.tls else 1883)


class DeviceConfig(_Strict):
    """One register: how to reach it and how patiently.

    Timeouts left unset keep the vendor driver's defaults (:class:`DriverOptions`).
    """

    vendor: str = Field("shtrih", pattern=r"^[a-z][a-z0-9_]*$")
    url: str = Field(min_length=1)
    name: str | None = None
    #: The register's system-administrator password (Shtrih default 30); never in repr.
    password: int = Field(30, ge=0, le=0xFFFFFFFF, repr=False)
    control_timeout_s: Positive | None = None
    answer_timeout_s: Positive | None = None
    byte_timeout_s: Positive | None = None
    poll_deadline_s: Positive | None = None
    exchange_attempts: int | None = Field(None, ge=1, le=10)
    poll_interval_s: Positive | None = None
    enabled: bool = True

    def driver_options(self) -> DriverOptions:
        tuning = {key: getattr(self, key) for key in _DRIVER_KEYS if getattr(self, key) is not None}
        return DriverOptions(password=self.password, **tuning)

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        if value != value.strip() or any(ch.isspace() for ch in value):
            raise ValueError("must not contain whitespace")
        return value

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str | None) -> str | None:
        return None if value is None else _check_topic_level(value)

    @property
    def label(self) -> str:
        """How logs and messages name this device before its serial is known."""
        return self.name or f"{self.vendor} at {self.url}"


_DRIVER_KEYS = (
    "control_timeout_s",
    "answer_timeout_s",
    "byte_timeout_s",
    "poll_deadline_s",
    "exchange_attempts",
)


class OutboxConfig(_Strict):
    """Bounds of the spool; beyond them the oldest state snapshots go, events stay."""

    max_rows: int = Field(100_000, ge=10)
    max_bytes: int = Field(256 * 1024 * 1024, ge=64 * 1024)
    max_age_days: Positive = 30.0

    def limits(self) -> OutboxLimits:
        return OutboxLimits(
            max_rows=self.max_rows,
            max_bytes=self.max_bytes,
            max_age_s=self.max_age_days * 86400.0,
        )


class RulesConfig(_Strict):
    """Thresholds of fiscal-health.md section 5 and the hysteresis of DESIGN.md section 3."""

    fn_expiry_info_days: int = Field(45, ge=0)
    fn_expiry_warning_days: int = Field(30, ge=0)
    fn_expiry_critical_days: int = Field(7, ge=0)
    ofd_stale_warning_days: Positive = 2.0
    ofd_stale_critical_days: Positive = 20.0
    shift_warning_h: Positive = 23.0
    clock_skew_warning_s: Positive = 120.0
    clock_skew_critical_s: Positive = 300.0
    memory_warning_pct: float = Field(80.0, gt=0, le=100)
    memory_critical_pct: float = Field(90.0, gt=0, le=100)
    memory_days_to_full_warning: Positive = 30.0
    memory_days_to_full_critical: Positive = 7.0
    #: The document rate is measured over at least this window (short ones are noise).
    doc_rate_min_window_h: Positive = 24.0
    unreachable_after_polls: int = Field(3, ge=1)
    unreachable_critical_min: Positive = 60.0
    #: How long FN_REPLACED / REGISTRATION_CHANGED stay active after the change.
    notice_hold_h: Positive = 24.0
    raise_after: int = Field(2, ge=1)
    clear_after: int = Field(2, ge=1)

    @model_validator(mode="after")
    def _check_order(self) -> RulesConfig:
        pairs = [
            ("fn_expiry_critical_days", "fn_expiry_warning_days"),
            ("fn_expiry_warning_days", "fn_expiry_info_days"),
            ("memory_days_to_full_critical", "memory_days_to_full_warning"),
            ("ofd_stale_warning_days", "ofd_stale_critical_days"),
            ("clock_skew_warning_s", "clock_skew_critical_s"),
            ("memory_warning_pct", "memory_critical_pct"),
        ]
        for low, high in pairs:
            if getattr(self, low) > getattr(self, high):
                raise ValueError(f"{low} must not exceed {high}")
        return self


class AgentConfig(_Strict):
    """The whole file."""

    site: str = Field(max_length=64)
    agent: AgentSection = Field(default_factory=AgentSection)
    mqtt: MqttConfig = Field(default_factory=MqttConfig)
    outbox: OutboxConfig = Field(default_factory=OutboxConfig)
    rules: RulesConfig = Field(default_factory=RulesConfig)
    devices: list[DeviceConfig] = Field(min_length=1)

    @field_validator("site")
    @classmethod
    def _check_site(cls, value: str) -> str:
        return _check_topic_level(value)

    @model_validator(mode="before")
    @classmethod
    def _default_client_id(cls, data: Any) -> Any:
        # One agent per site: the site in the client id makes broker logs readable, and
        # a second agent started by mistake takes the session over instead of doubling it.
        if isinstance(data, dict) and isinstance(data.get("site"), str):
            mqtt = data.get("mqtt", {})
            if isinstance(mqtt, dict) and "client_id" not in mqtt:
                data = {**data, "mqtt": {**mqtt, "client_id": f"kktmon-{data['site']}"}}
        return data

    @model_validator(mode="after")
    def _check_devices(self) -> AgentConfig:
        for what in ("url", "name"):
            values = [getattr(d, what) for d in self.devices if getattr(d, what) is not None]
            duplicates = sorted({v for v in values if values.count(v) > 1})
            if duplicates:
                raise ValueError(f"devices: duplicate {what} {', '.join(duplicates)}")
        return self

    @property
    def outbox_path(self) -> Path:
        return self.agent.state_dir / "outbox.sqlite3"

    @property
    def rules_state_path(self) -> Path:
        return self.agent.state_dir / "rules.json"


def load_config(path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> AgentConfig:
    """Read, validate and resolve the secrets of one configuration file.

    ``env`` defaults to ``os.environ``; every failure is a :class:`ConfigError`.
    """
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{source}: cannot read: {exc}") from exc
    return parse_config(text, source=source, env=env)


def parse_config(
    text: str, source: str | os.PathLike[str] = "<config>", env: Mapping[str, str] | None = None
) -> AgentConfig:
    """Validate TOML text; ``source`` names it in errors and anchors relative paths."""
    where = Path(source)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: invalid TOML: {exc}") from exc
    try:
        config = AgentConfig.model_validate(data, context={"base_dir": where.parent})
    except ValidationError as exc:
        # `from None`: the chained pydantic error echoes input values, which may be secrets.
        raise ConfigError(f"{where}: {_describe(exc)}") from None
    return _resolve_secrets(config, where, os.environ if env is None else env)


def _describe(exc: ValidationError) -> str:
    """One ``dotted.key: message`` clause per error, without the offending values."""
    clauses = []
    for error in exc.errors(include_url=False, include_input=False):
        key = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key (a typo?)"
        elif error["type"] == "missing":
            message = "required key is missing"
        clauses.append(f"{key.lstrip('.')}: {message}" if key else message)
    return "; ".join(clauses)


def _resolve_secrets(config: AgentConfig, where: Path, env: Mapping[str, str]) -> AgentConfig:
    mqtt = config.mqtt
    password = mqtt.password
    if mqtt.password_file is not None:
        try:
            password = SecretStr(mqtt.password_file.read_text(encoding="utf-8").rstrip("\r\n"))
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{where}: mqtt.password_file: cannot read: {exc}") from exc
    # An empty variable counts as unset: systemd's `Environment=X=` should not blank a secret.
    if env.get(ENV_MQTT_PASSWORD):
        password = SecretStr(env[ENV_MQTT_PASSWORD])
    key_password = mqtt.tls_key_password
    if env.get(ENV_MQTT_TLS_KEY_PASSWORD):
        key_password = SecretStr(env[ENV_MQTT_TLS_KEY_PASSWORD])
    if password is not None and mqtt.username is None:
        raise ConfigError(f"{where}: mqtt.username: required when a password is set")
    for key in ("tls_ca_file", "tls_cert_file", "tls_key_file"):
        file = getattr(mqtt, key)
        if file is not None and not file.is_file():
            raise ConfigError(f"{where}: mqtt.{key}: no such file {file}")
    update = {"password": password, "tls_key_password": key_password}
    return config.model_copy(update={"mqtt": mqtt.model_copy(update=update)})
