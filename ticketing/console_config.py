"""``[console]`` and ``[[console.users]]``: the service-centre console (issue 14).

::

    [console]
    listen = "127.0.0.1:8080"      # host:port; [::1]:8080 for IPv6
    history_days = 90              # hourly register history kept this long
    sla_margin_h = 24              # a ticket turns red this close to its block_at
    stale_after_min = 15           # a register not seen this long is marked stale
    session_secret_file = "/etc/kktmon/console-secret"   # else a random one per start

    [[console.users]]
    name = "ivanov"
    role = "engineer"              # sees the whole fleet
    password_hash = "scrypt$16384$8$1$..."   # from `kktmon console hash-password`

    [[console.users]]
    name = "acme"
    role = "client"                # sees only its client's sites
    client = "acme"                # a [[clients]] id
    password_file = "/etc/kktmon/console-acme.hash"   # a file holding such a hash

Exactly one of ``password_hash`` / ``password_file`` per user; the file is read when the
configuration loads (:func:`resolve_console`), so ``password_hash`` is always set after.
The console binds loopback by default: put a TLS reverse proxy in front (deploy/).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from kktmon.protocol.settings import ConfigPath, StrictModel
from kktmon.ticketing.notify_config import ClientConfig
from kktmon.ticketing.passwords import check_hash

DEFAULT_LISTEN = "127.0.0.1:8080"
_USER_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$"
_HOST_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9-]{1,63})*$")


class ConsoleUser(StrictModel):
    """One ``[[console.users]]`` entry: a login and what it may see."""

    name: str = Field(pattern=_USER_NAME)
    role: Literal["engineer", "client"]
    #: The ``[[clients]]`` id whose sites a client user sees; engineers have none.
    client: str | None = None
    password_hash: str | None = None
    password_file: ConfigPath | None = None

    @field_validator("password_hash")
    @classmethod
    def _check_hash(cls, value: str | None) -> str | None:
        return None if value is None else check_hash(value.strip())

    @model_validator(mode="after")
    def _check_user(self) -> ConsoleUser:
        if self.role == "client" and self.client is None:
            raise ValueError("client: required for role = 'client' (a [[clients]] id)")
        if self.role == "engineer" and self.client is not None:
            raise ValueError("client: only for role = 'client' (an engineer sees every site)")
        if (self.password_hash is None) == (self.password_file is None):
            raise ValueError("set exactly one of password_hash and password_file")
        return self


class ConsoleSection(StrictModel):
    """``[console]``: where the console listens, what it keeps, and who may log in."""

    listen: str = DEFAULT_LISTEN
    #: Days of hourly register history the store keeps (pruned by one worker).
    history_days: int = Field(90, ge=1, le=3660)
    #: A ticket whose ``block_at`` is closer than this is shown red.
    sla_margin_h: float = Field(24.0, ge=0)
    #: A register whose newest state is older than this is marked stale.
    stale_after_min: float = Field(15.0, gt=0)
    #: A file holding the cookie-signing secret (workers behind one proxy share it);
    #: None: a random secret per start (sessions end when the console restarts).
    session_secret_file: ConfigPath | None = None
    #: The secret itself, read from ``session_secret_file`` when the file loads.
    session_secret: SecretStr | None = None
    users: list[ConsoleUser] = Field(default_factory=list)

    @field_validator("listen")
    @classmethod
    def _check_listen(cls, value: str) -> str:
        split_listen(value)
        return value

    @field_validator("users")
    @classmethod
    def _unique_names(cls, value: list[ConsoleUser]) -> list[ConsoleUser]:
        names = [u.name for u in value]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"duplicate user name {', '.join(twice)}")
        return value

    @property
    def host(self) -> str:
        return split_listen(self.listen)[0]

    @property
    def port(self) -> int:
        return split_listen(self.listen)[1]

    def user(self, name: str) -> ConsoleUser | None:
        """The user called ``name``, or None."""
        return next((u for u in self.users if u.name == name), None)


def split_listen(value: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` for IPv6) as (host, port); ``ValueError`` otherwise."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError("must be host:port, e.g. 127.0.0.1:8080 (port 1-65535)")
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise ValueError("must be host:port; [..] holds an IPv6 address") from None
        return host[1:-1], int(port)
    if not _HOST_NAME.match(host):
        raise ValueError("must be host:port with a host name or address ([::1]:8080 for IPv6)")
    return host, int(port)


def check_users(console: ConsoleSection, clients: list[ClientConfig]) -> None:
    """A client user names a ``[[clients]]`` id; ``ValueError`` names the key."""
    ids = {c.id for c in clients}
    for i, user in enumerate(console.users):
        if user.client is not None and user.client not in ids:
            raise ValueError(f"console.users[{i}].client: {user.client!r} is not a [[clients]] id")
