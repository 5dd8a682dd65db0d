"""Building blocks of kktmon's TOML configurations, shared by the agent and ticketing.

Pure validation (no file access: files a configuration names are read by a reader
the caller passes in): a strict model base, path and number types, the MQTT
connection settings both sides need, TOML parsing and the one-line error messages that
name the file and the dotted key (``store.toml: agent.poll_interval_s: ...``) without
echoing values, which may be secrets.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import unquote, urlsplit, urlunsplit

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

from kktmon.protocol.errors import ConfigError
from kktmon.protocol.topics import check_level

ENV_MQTT_PASSWORD = "KKTMON_MQTT_PASSWORD"

M = TypeVar("M", bound=BaseModel)
Loc = tuple[int | str, ...]


class StrictModel(BaseModel):
    """Unknown keys are errors (typos must not pass silently); values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _relative_to_config(value: Path, info: ValidationInfo) -> Path:
    base = (info.context or {}).get("base_dir")
    return Path(base) / value if base is not None and not value.is_absolute() else value


#: A path written in the file: relative paths resolve against the file's folder.
ConfigPath = Annotated[Path, AfterValidator(_relative_to_config)]
Positive = Annotated[float, Field(gt=0)]
NonNegative = Annotated[float, Field(ge=0)]


def split_password(url: str) -> tuple[str, str | None]:
    """``url`` without the password of its user info, and that password (None: none).

    How a URL with a secret becomes config: the URL for the file, the password for a
    ``connection_password_file`` or ``KKTMON_CONNECTION_PASSWORD``.
    """
    parts = urlsplit(url)
    if not parts.password:
        return url, None
    user, host = parts.netloc.rsplit("@", 1)
    bare = urlunsplit(parts._replace(netloc=f"{user.split(':', 1)[0]}@{host}"))
    return bare, unquote(parts.password)


def redact_url(url: str) -> str:
    """``url`` with the password of its user info masked, for logs and messages."""
    bare, password = split_password(url)
    return bare if password is None else bare.replace("@", ":***@", 1)


def check_topic_level(value: str) -> str:
    """One literal MQTT topic level (the rule of :func:`~kktmon.protocol.topics.check_level`),
    with a message that does not echo the value."""
    try:
        check_level(value)
    except ValueError:
        raise ValueError("must be non-empty without '/', '+', '#', NUL or whitespace") from None
    return value


class MqttSettings(StrictModel):
    """A broker connection (DESIGN.md section 4); each side adds its own keys."""

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
            check_topic_level(level)
        return value

    @model_validator(mode="after")
    def _check_credentials(self) -> MqttSettings:
        if self.password is not None and self.password_file is not None:
            raise ValueError("set password or password_file, not both")
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


def parse_toml(text: str, where: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: invalid TOML: {exc}") from exc


def validate_config(
    model: type[M], data: dict[str, Any], where: Path, shape: Callable[[Loc], Loc] | None = None
) -> M:
    """Validate ``data``; relative paths resolve against ``where``'s folder.

    ``shape`` maps pydantic's error locations back to the file's keys where a model adds
    levels the file does not have (a union tag, a folded table).
    """
    try:
        return model.model_validate(data, context={"base_dir": where.parent})
    except ValidationError as exc:
        # `from None`: the chained pydantic error echoes input values, which may be secrets.
        raise ConfigError(f"{where}: {describe(exc, shape)}") from None


def describe(exc: ValidationError, shape: Callable[[Loc], Loc] | None = None) -> str:
    """One ``dotted.key: message`` clause per error, without the offending values."""
    clauses = []
    for error in exc.errors(include_url=False, include_input=False):
        loc: Sequence[int | str] = shape(tuple(error["loc"])) if shape else error["loc"]
        key = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc)
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key (a typo?)"
        elif error["type"] == "missing":
            message = "required key is missing"
        clauses.append(f"{key.lstrip('.')}: {message}" if key else message)
    return "; ".join(clauses)


#: Reads the text of a file a configuration names. The caller supplies it (the agent's and
#: the ticketing's config loaders pass :func:`read_config_file`'s I/O twin), so this module
#: stays free of file access.
TextReader = Callable[[Path], str]


def resolve_mqtt_secrets(
    mqtt: MqttSettings,
    where: Path,
    env: Mapping[str, str],
    read_file: TextReader,
    env_key_password: str | None = None,
) -> dict[str, Any]:
    """The password (file or environment) and TLS key password; checks the TLS files read.

    Returns the fields to update on ``mqtt``. ``read_file`` raises ``OSError`` or
    ``UnicodeDecodeError`` for a file it cannot read; that becomes a :class:`ConfigError`
    naming the key.
    """
    password = mqtt.password
    if mqtt.password_file is not None:
        password = SecretStr(_read(read_file, mqtt.password_file, where, "password_file"))
    # An empty variable counts as unset: systemd's `Environment=X=` should not blank a secret.
    if env.get(ENV_MQTT_PASSWORD):
        password = SecretStr(env[ENV_MQTT_PASSWORD])
    key_password = mqtt.tls_key_password
    if env_key_password and env.get(env_key_password):
        key_password = SecretStr(env[env_key_password])
    if password is not None and mqtt.username is None:
        raise ConfigError(f"{where}: mqtt.username: required when a password is set")
    for key in ("tls_ca_file", "tls_cert_file", "tls_key_file"):
        file = getattr(mqtt, key)
        if file is not None:
            _read(read_file, file, where, key)
    return {"password": password, "tls_key_password": key_password}


def _read(read_file: TextReader, file: Path, where: Path, key: str) -> str:
    try:
        return read_file(file).rstrip("\r\n")
    except FileNotFoundError as exc:
        if key.startswith("tls_"):
            raise ConfigError(f"{where}: mqtt.{key}: no such file {file}") from exc
        raise ConfigError(f"{where}: mqtt.{key}: cannot read: {exc}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{where}: mqtt.{key}: cannot read: {exc}") from exc
