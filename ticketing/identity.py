"""A ticketing worker's MQTT identity: one client id per live worker, the same after a restart.

The broker keeps each worker's persistent session (its place in the shared subscription
group and its queue of events while it is away) under the worker's client id, so that
id must be

* stable: a restarted worker resumes its own session; a new id at every start would leave
  a session behind that the group keeps feeding for a week and nobody reads;
* unique among live workers: two workers with one id take the session from each other.

The id is ``[mqtt] client_id`` when the config names one, else
``kktmon-ticketing-<hostname>-<slot>``, where the slot is the lowest number from 1 whose
lock this process can take. Locks are ``fcntl.flock`` locks on
``<lock_dir>/ticketing-<client id>.lock`` (the file holds the holder's pid), held while
the worker runs and dropped by the kernel when it dies: a second worker on the host gets
slot 2, a restarted one gets its slot back, and a second process started with an
explicit id that a live one holds is refused, naming that pid. Across hosts the broker
notices: the older connection is told "session taken over" (MQTT 5 reason 0x8E) and the
service exits instead of taking it back.

``lock_dir`` is ``[mqtt] lock_dir``, else the folder of a SQLite store, else
``/var/lib/kktmon``.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import re
import socket
from pathlib import Path
from urllib.parse import quote, urlsplit

from kktmon.protocol.errors import ConfigError
from kktmon.ticketing.config import TicketingConfig

#: Every worker's client id starts with this, so it can never be a store's site id.
CLIENT_ID_PREFIX = "kktmon-ticketing"
DEFAULT_LOCK_DIR = Path("/var/lib/kktmon")
#: More workers than this on one host is a mistake, not a plan.
MAX_SLOTS = 64
_NAME_MAX = 200  # a lock file name stays under the usual 255-byte limit


class Identity:
    """A client id this process holds the lock of until :meth:`release` (or exit)."""

    def __init__(self, client_id: str, path: Path, fd: int) -> None:
        self.client_id = client_id
        self.path = path
        self._fd: int | None = fd

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Drop the lock (closing the file drops it); the file stays for the next holder."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def __enter__(self) -> Identity:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"Identity({self.client_id!r}, held={self.held})"


def lock_dir(config: TicketingConfig) -> Path:
    """Where this config's workers lock their ids (see the module docstring)."""
    if config.mqtt.lock_dir is not None:
        return config.mqtt.lock_dir
    store = config.ticketing.store
    if urlsplit(store).scheme == "sqlite":
        return Path(store.removeprefix("sqlite:///")).parent
    return DEFAULT_LOCK_DIR


def host_name() -> str:
    """This host's name as a client-id part: characters other than ``A-Za-z0-9._-`` -> ``-``."""
    return re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname()) or "localhost"


def slot_id(slot: int, host: str | None = None) -> str:
    """The default client id of ``slot`` on ``host`` (this host when None)."""
    return f"{CLIENT_ID_PREFIX}-{host or host_name()}-{slot}"


def claim(config: TicketingConfig, host: str | None = None) -> Identity:
    """The configured client id, locked, or the lowest free slot of this host.

    Raises :class:`ConfigError` when the configured id is held by a live process here,
    every slot is taken, or the lock folder cannot be used.
    """
    folder = lock_dir(config)
    if config.mqtt.client_id is not None:
        return lock(folder, config.mqtt.client_id)
    for slot in range(1, MAX_SLOTS + 1):
        identity = try_lock(folder, slot_id(slot, host))
        if identity is not None:
            return identity
    raise ConfigError(
        f"{MAX_SLOTS} ticketing workers already run on this host (locks in {folder}); "
        "set [mqtt] client_id to run more"
    )


def lock(folder: Path, client_id: str) -> Identity:
    """Lock ``client_id``; :class:`ConfigError` naming the holder's pid when a live one has it."""
    identity = try_lock(folder, client_id)
    if identity is None:
        path = lock_path(folder, client_id)
        pid = holder_pid(path)
        who = f"pid {pid}" if pid else "another process"
        raise ConfigError(
            f"MQTT client id {client_id!r} is in use on this host by {who} (lock {path}): "
            "two workers with one id take the broker session from each other; "
            "give each worker its own [mqtt] client_id, or leave it unset"
        )
    return identity


def try_lock(folder: Path, client_id: str) -> Identity | None:
    """Lock ``client_id``, or None when another live process (or this one) holds it."""
    path = lock_path(folder, client_id)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise ConfigError(
            f"cannot lock the MQTT client id in {folder}: {exc.strerror or exc} "
            "(set [mqtt] lock_dir to a folder this user can write)"
        ) from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return None
        raise ConfigError(f"cannot lock {path}: {exc.strerror or exc}") from exc
    with contextlib.suppress(OSError):  # the pid is for messages only
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return Identity(client_id, path, fd)


def lock_path(folder: Path, client_id: str) -> Path:
    name = quote(client_id, safe="-_.")
    if len(name) > _NAME_MAX:
        name = hashlib.sha256(client_id.encode()).hexdigest()
    return folder / f"ticketing-{name}.lock"


def holder_pid(path: Path) -> int | None:
    """The pid written by the lock's holder, when it can be read."""
    try:
        text = path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
