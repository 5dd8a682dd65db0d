"""The driver contract every vendor adapter fulfils, and the behaviour they share.

A driver is built from a URL and options and offers two calls:

* :meth:`Driver.identify` — who is there; raises a typed error when nobody answers
  (start-up and the CLI may fail fatally, nothing else may);
* :meth:`Driver.read_health` — one bounded poll (NUT's contract): the port is opened
  for this poll only, because the POS software usually owns it, and closed again. It
  never raises for device or link trouble: a failed poll returns the last good facts
  marked ``stale`` with the link state (``busy``, ``unreachable``, ``garbled``).

Each vendor implements :meth:`Driver._identify` and :meth:`Driver._poll` against one
poll's session: anything that counts bytes and retries and can be closed
(:class:`PollSession`). Wire vendors subclass :class:`kktmon.drivers.wire.WireDriver`,
whose session is the open byte transport; adapters that reach the register through a
vendor's driver server (HTTP) subclass :class:`Driver` with their own session type.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import ClassVar, Generic, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from kktmon.drivers.transport import Transport
from kktmon.protocol.errors import (
    ChecksumError,
    ConfigError,
    DeviceError,
    FrameError,
    KktmonError,
    LinkTimeoutError,
    MalformedAnswerError,
    NoAnswerError,
    PortBusyError,
    ServerBusyError,
    ServerDownError,
    ServerRefusedError,
    TransportClosedError,
    UnexpectedAnswerError,
    UnreachableError,
    WrongRegisterError,
)
from kktmon.protocol.health import BusyReason, DeviceInfo, HealthSnapshot, LinkInfo, LinkState
from kktmon.protocol.link import WaitKind


class PollSession(Protocol):
    """What the driver base needs from one poll's connection, whatever carries it."""

    retries: int

    @property
    def bytes_tx(self) -> int: ...

    @property
    def bytes_rx(self) -> int: ...

    def close(self) -> None: ...


S = TypeVar("S", bound=PollSession)
log = logging.getLogger(__name__)
TransportFactory = Callable[[str], Transport]
Clock = Callable[[], datetime]


def local_now() -> datetime:
    """Host wall-clock time with the local zone: registers keep local time too."""
    return datetime.now().astimezone()


class DriverOptions(BaseModel):
    """Timeouts and limits of one register; defaults follow the vendor drivers."""

    model_config = ConfigDict(extra="forbid")

    password: int = Field(default=30, ge=0, le=0xFFFFFFFF)
    #: A link-level password some protocols carry in every frame (Pirit's 4 characters,
    #: settings item 20), or a driver server's HTTP password; None keeps the default.
    connection_password: str | None = Field(default=None, min_length=1, max_length=256, repr=False)
    control_timeout_s: float = Field(default=1.0, gt=0)
    answer_timeout_s: float = Field(default=5.0, gt=0)
    archive_timeout_s: float = Field(default=30.0, gt=0)
    byte_timeout_s: float = Field(default=1.2, gt=0)
    enq_tries: int = Field(default=10, ge=1)
    poll_deadline_s: float = Field(default=60.0, gt=0)
    exchange_attempts: int = Field(default=3, ge=1)
    shift_walk_limit: int = Field(default=300, ge=0)

    def timeout_for(self, kind: WaitKind, slow: bool = False) -> float:
        """Seconds to wait for ``kind``; ``slow`` commands (FN archive reads) get longer."""
        if kind is WaitKind.CONTROL:
            return self.control_timeout_s
        if kind is WaitKind.BYTE:
            return self.byte_timeout_s
        return self.archive_timeout_s if slow else self.answer_timeout_s


class Driver(ABC, Generic[S]):
    """Base of every vendor driver: lifecycle, failure handling, link figures."""

    vendor: ClassVar[str]
    #: The vendor's device error codes that mean "busy printing / wrong mode right now"
    #: (reported as DEVICE_BUSY), not "broken".
    busy_device_codes: ClassVar[frozenset[int]] = frozenset()
    #: Answer fields read as null because they did not validate, since start; the agent
    #: publishes it in its health figures. Adapters with tolerant parsing count here.
    invalid_fields: int = 0

    def __init__(
        self, url: str, options: DriverOptions | None = None, *, clock: Clock = local_now
    ) -> None:
        self.url = url
        self.options = options or DriverOptions()
        self.clock = clock
        self._last_good: HealthSnapshot | None = None
        self._invalid_logged: set[str] = set()
        self.setup()

    def setup(self) -> None:
        """Hook for a vendor's per-register caches (identity, capabilities)."""
        return None  # most vendors need none: an explicit no-op, not an abstract method

    def identify(self) -> DeviceInfo:
        """Who is at the URL; raises a typed :class:`KktmonError` when nobody answers."""
        with self._session() as session:
            return self._identify(session)

    def read_health(self) -> HealthSnapshot:
        """One bounded poll; trouble becomes a stale snapshot, never an exception."""
        started = time.monotonic()
        session: S | None = None
        try:
            with self._session() as session:
                snapshot = self._poll(session)
        except ConfigError:
            raise  # a bad URL or option is the operator's to fix, not a device state
        except KktmonError as exc:
            return self._failed(exc, started, session)
        link = LinkInfo(
            state=LinkState.OK,
            duration_ms=_elapsed_ms(started),
            bytes_tx=session.bytes_tx,
            bytes_rx=session.bytes_rx,
            retries=session.retries,
        )
        snapshot = snapshot.model_copy(update={"link": link, "last_good_at": snapshot.taken_at})
        self._last_good = snapshot.with_block_deadline()
        return self._last_good

    @contextmanager
    def _session(self) -> Iterator[S]:
        session = self._open_session()
        try:
            yield session
        finally:
            session.close()

    def _failed(self, exc: KktmonError, started: float, session: S | None) -> HealthSnapshot:
        state = self._link_state(exc)
        link = LinkInfo(
            state=state,
            busy_reason=self._busy_reason(exc) if state is LinkState.BUSY else None,
            duration_ms=_elapsed_ms(started),
            bytes_tx=session.bytes_tx if session else 0,
            bytes_rx=session.bytes_rx if session else 0,
            retries=session.retries if session else 0,
            last_error=self._error_code(exc),
        )
        base = self._last_good or HealthSnapshot(
            taken_at=self.clock(), device=DeviceInfo(vendor=self.vendor)
        )
        return base.model_copy(
            update={"taken_at": self.clock(), "link": link, "stale": True, "problems": []}
        )

    def _link_state(self, exc: KktmonError) -> LinkState:
        if isinstance(exc, PortBusyError):
            return LinkState.BUSY
        if isinstance(exc, DeviceError):
            busy = exc.code in self.busy_device_codes
            return LinkState.BUSY if busy else LinkState.GARBLED
        if isinstance(exc, ChecksumError | FrameError | MalformedAnswerError):
            return LinkState.GARBLED
        if isinstance(exc, UnexpectedAnswerError):
            return LinkState.GARBLED
        return LinkState.UNREACHABLE

    def _read_as_null(self, key: str, message: str) -> None:
        """Count one answer field read as null; log it only the first time (``key``):
        a register keeps sending the same oddity every poll."""
        self.invalid_fields += 1
        if key not in self._invalid_logged:
            self._invalid_logged.add(key)
            log.warning("%s", message)

    def _busy_reason(self, exc: KktmonError) -> str:
        """``link.busy_reason`` of a busy poll; vendors whose busy has other causes override it."""
        if isinstance(exc, ServerBusyError):
            if exc.reason.startswith(BusyReason.QUEUE_BLOCKED):
                return exc.reason  # the server stopped the register's queue: its own reason
            return f"{BusyReason.SERVER_BUSY}{exc.reason}"
        if isinstance(exc, DeviceError):
            return BusyReason.PRINTING  # a busy device code: printing, or a mode that refuses reads
        return BusyReason.PORT_HELD

    def _error_code(self, exc: KktmonError) -> str:
        """``link.last_error`` for a failed poll; adapters may add the server's words."""
        return error_code(exc)

    @abstractmethod
    def _open_session(self) -> S:
        """Open one poll's connection (raises a typed error when it cannot)."""

    @abstractmethod
    def _identify(self, session: S) -> DeviceInfo:
        """Read identity over an open session."""

    @abstractmethod
    def _poll(self, session: S) -> HealthSnapshot:
        """Read everything over an open session; the base fills in ``link``."""


def error_code(exc: BaseException) -> str:
    """Stable, typed code for ``link.last_error``: ``PORT_BUSY``, ``DEVICE_ERROR_4F``..."""
    if isinstance(exc, DeviceError):
        return f"DEVICE_ERROR_{exc.code:02X}"
    if isinstance(exc, ServerBusyError):
        return f"SERVER_BUSY:{exc.reason}"
    if isinstance(exc, ServerRefusedError):
        return exc.reason.upper()
    for cls, code in _ERROR_CODES:
        if isinstance(exc, cls):
            return code
    return type(exc).__name__.upper()


_ERROR_CODES: tuple[tuple[type[BaseException], str], ...] = (
    (PortBusyError, "PORT_BUSY"),
    (ServerDownError, "SERVER_DOWN"),
    (WrongRegisterError, "WRONG_REGISTER"),
    (NoAnswerError, "NO_ANSWER"),  # before its base: alive on the line, the read unanswered
    (LinkTimeoutError, "TIMEOUT"),
    (TransportClosedError, "CLOSED"),
    (UnreachableError, "UNREACHABLE"),
    (ChecksumError, "CHECKSUM"),
    (FrameError, "FRAME"),
    (MalformedAnswerError, "MALFORMED_ANSWER"),
    (UnexpectedAnswerError, "UNEXPECTED_ANSWER"),
)


def _elapsed_ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)
