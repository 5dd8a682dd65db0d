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
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from kktmon.agent.outbox import MAX_PAYLOAD_BYTES, MQTT_MAX_PAYLOAD, OutboxLimits
from kktmon.drivers.base import DriverOptions
from kktmon.drivers.usb import parse_usb_url
from kktmon.protocol.errors import ConfigError
from kktmon.protocol.settings import (
    ENV_MQTT_PASSWORD,
    ConfigPath,
    MqttSettings,
    Positive,
    StrictModel,
    check_topic_level,
    parse_toml,
    redact_url,
    resolve_mqtt_secrets,
    validate_config,
)

ENV_MQTT_TLS_KEY_PASSWORD = "KKTMON_MQTT_TLS_KEY_PASSWORD"
__all__ = ["ENV_MQTT_PASSWORD", "AgentConfig", "MqttConfig", "load_config", "parse_config"]


class AgentSection(StrictModel):
    """How often and where the agent works."""

    poll_interval_s: Positive = 60.0
    #: Each wait is the interval +/- this fraction, so a fleet does not poll in lockstep.
    poll_jitter: float = Field(0.1, ge=0, le=0.5)
    state_dir: ConfigPath = Path("/var/lib/kktmon")
    health_interval_s: Positive = 60.0
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class MqttConfig(MqttSettings):
    """The broker connection (DESIGN.md section 4) and how to get it back."""

    reconnect_min_s: Positive = 1.0
    reconnect_max_s: Positive = 120.0
    #: MQTT 5: how long the broker holds our ``lost`` will after the link drops, so a
    #: quick reconnect (a Wi-Fi blip, a restart) never shows the store as lost. 0 sends it
    #: at once; MQTT 3.1.1 has no delay.
    will_delay_s: int = Field(5, ge=0, le=86_400)

    @model_validator(mode="after")
    def _check_backoff(self) -> MqttConfig:
        if self.reconnect_min_s > self.reconnect_max_s:
            raise ValueError("reconnect_min_s must not exceed reconnect_max_s")
        return self


class DeviceConfig(StrictModel):
    """One register: how to reach it and how patiently.

    Timeouts left unset keep the vendor driver's defaults (:class:`DriverOptions`).
    """

    vendor: str = Field("shtrih", pattern=r"^[a-z][a-z0-9_-]*$")
    url: str = Field(min_length=1)
    name: str | None = None
    #: The register's system-administrator password (Shtrih default 30); never in repr.
    password: int = Field(30, ge=0, le=0xFFFFFFFF, repr=False)
    #: The link-level password of families that have one (Pirit: "PIRI" unless changed),
    #: or the HTTP password of a driver server (atol-web, kkmserver) kept out of the URL.
    connection_password: str | None = Field(None, min_length=1, max_length=256, repr=False)
    #: The same, read from a file (mode 0600), so the config itself holds no secret.
    connection_password_file: ConfigPath | None = None
    control_timeout_s: Positive | None = None
    answer_timeout_s: Positive | None = None
    byte_timeout_s: Positive | None = None
    poll_deadline_s: Positive | None = None
    exchange_attempts: int | None = Field(None, ge=1, le=10)
    poll_interval_s: Positive | None = None
    enabled: bool = True

    def driver_options(self) -> DriverOptions:
        tuning = {key: getattr(self, key) for key in _DRIVER_KEYS if getattr(self, key) is not None}
        return DriverOptions(
            password=self.password, connection_password=self.connection_password, **tuning
        )

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        if value != value.strip() or any(ch.isspace() for ch in value):
            raise ValueError("must not contain whitespace")
        if value.lower().startswith("usb://"):
            try:
                parse_usb_url(value)  # ids and options, so a typo fails check-config
            except ConfigError as exc:
                raise ValueError(str(exc)) from exc
        return value

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str | None) -> str | None:
        return None if value is None else check_topic_level(value)

    @property
    def label(self) -> str:
        """How logs and messages name this device before its serial is known."""
        return self.name or f"{self.vendor} at {redact_url(self.url)}"


_DRIVER_KEYS = (
    "control_timeout_s",
    "answer_timeout_s",
    "byte_timeout_s",
    "poll_deadline_s",
    "exchange_attempts",
)


class OutboxConfig(StrictModel):
    """Bounds of the spool; beyond them the oldest state snapshots go, events stay.

    ``max_payload_bytes`` is the broker's payload limit (the shipped Mosquitto's
    ``message_size_limit``): a bigger message is trimmed (states, alerts) or set aside
    in the spool's ``rejected`` table (events), never sent to be dropped there. From a
    real state's size up to MQTT's own maximum.
    """

    max_rows: int = Field(100_000, ge=10)
    max_bytes: int = Field(256 * 1024 * 1024, ge=64 * 1024)
    max_age_days: Positive = 30.0
    max_payload_bytes: int = Field(MAX_PAYLOAD_BYTES, ge=4096, le=MQTT_MAX_PAYLOAD)

    def limits(self) -> OutboxLimits:
        return OutboxLimits(
            max_rows=self.max_rows,
            max_bytes=self.max_bytes,
            max_age_s=self.max_age_days * 86400.0,
            max_payload_bytes=self.max_payload_bytes,
        )


class RulesConfig(StrictModel):
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


class AgentConfig(StrictModel):
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
        return check_topic_level(value)

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
                shown = ", ".join(redact_url(value) for value in duplicates)
                raise ValueError(f"devices: duplicate {what} {shown}")
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
        text = read_text_file(source)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{source}: cannot read: {exc}") from exc
    return parse_config(text, source=source, env=env)


def parse_config(
    text: str, source: str | os.PathLike[str] = "<config>", env: Mapping[str, str] | None = None
) -> AgentConfig:
    """Validate TOML text; ``source`` names it in errors and anchors relative paths."""
    where = Path(source)
    config = validate_config(AgentConfig, parse_toml(text, where), where)
    env = os.environ if env is None else env
    update = resolve_mqtt_secrets(
        config.mqtt, where, env, read_text_file, ENV_MQTT_TLS_KEY_PASSWORD
    )
    devices = [_with_password_file(d, index, where) for index, d in enumerate(config.devices)]
    return config.model_copy(
        update={"mqtt": config.mqtt.model_copy(update=update), "devices": devices}
    )


def _with_password_file(device: DeviceConfig, index: int, where: Path) -> DeviceConfig:
    """Read ``connection_password_file`` into ``connection_password`` (one of them only)."""
    file = device.connection_password_file
    if file is None:
        return device
    key = f"{where}: devices.{index}.connection_password_file"
    if device.connection_password is not None:
        raise ConfigError(f"{key}: set either connection_password or the file, not both")
    try:
        secret = file.read_text(encoding="utf-8").rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{key}: cannot read {file}: {exc}") from exc
    if not secret:
        raise ConfigError(f"{key}: {file} is empty")
    return device.model_copy(update={"connection_password": secret})


def read_text_file(path: Path) -> str:
    """A configuration file, or one it names (a password, a certificate), as text."""
    return path.read_text(encoding="utf-8")
