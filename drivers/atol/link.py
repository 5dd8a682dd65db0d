"""ATOL's two link layers under one exchange call, URL options and layer probing.

URL: any :func:`~kktmon.drivers.transport.open_transport` form, plus one option of our
own, ``link=fe`` or ``link=legacy``, which :func:`split_url` strips before the transport
sees the URL; a TCP URL without a port gets ATOL's default 5555::

    socket://10.0.0.7:5555?link=fe     serial:///dev/ttyACM0?baudrate=115200&link=legacy
    tcp://10.0.0.7                     (port 5555, layer probed)

:class:`AtolWire` is one poll's link: it keeps the codec's per-connection session
objects (:class:`FeSession`, :class:`LegacySession`) for the whole :class:`Session`,
runs each command with :meth:`Session.run_link`, and probes the layer (quirk Q1) with
45h: FE with no resend, then LEGACY with one ENQ, twice round.

Timeouts: FE ``CONTROL`` and ``ANSWER`` both use ``control_timeout_s`` (``ANSWER`` only
paces the ``C3`` polls of a running task; its ``F0`` result ends the wait early) and
the number of polls spans ``answer_timeout_s`` (``archive_timeout_s`` for a slow read:
the driver's table marks register 91h reads slow, T5 of 30-45 s); LEGACY uses
:meth:`DriverOptions.timeout_for`.

``foreign_async`` counts ``F0`` packets for tasks that are not ours and
``foreign_exchanges`` the exchanges they came during: a result another program left
behind arrives once, at the start; a register relaying its OFD traffic through the
host (quirk Q3) keeps sending them.

A register that is busy becomes a :class:`DeviceError` the driver maps to
``LinkState.BUSY`` (see :data:`BUSY_CODES`): an FE task still running after every
status poll (``task buffer`` A2h, beside the codec's own A5h stopped and B1h overflow),
and a LEGACY register that answered our ENQs but never got ready (``link`` 15h).

A register that took the command but whose answer never came raises
:class:`NoAnswerError`, which the driver asks once more: on FE a link that gave up
after the register replied to some of its packets (a resent ``C1`` got ``B2``, yet the
result never came), on LEGACY one that heard only control bytes, an ``ACK`` among them
(it was ready and took our ENQ or frame, then sent no frame). Probes never raise it:
there, silence means "not this layer".
"""

from __future__ import annotations

import enum
import math
from urllib.parse import urlsplit

from kktmon.drivers.base import DriverOptions
from kktmon.drivers.wire import Session
from kktmon.protocol.atol import commands as cmd
from kktmon.protocol.atol.frame import TaskStatus
from kktmon.protocol.atol.legacy import (
    ACK,
    ENQ,
    EOT,
    NAK,
    LegacyLimits,
    LegacyLink,
    LegacySession,
)
from kktmon.protocol.atol.link import FeLimits, FeLink, FeSession
from kktmon.protocol.errors import (
    ChecksumError,
    ConfigError,
    DeviceError,
    FrameError,
    LinkTimeoutError,
    NoAnswerError,
)
from kktmon.protocol.link import WaitKind

DEFAULT_TCP_PORT = 5555
LINK_OPTION = "link"
PROBE_ROUNDS = 2

TASK_BUFFER = "task buffer"  # DeviceError.command of the codec's task-status refusals
LINK = "link"  # DeviceError.command of a LEGACY register that never got ready
#: Refusals that mean "busy right now", per DeviceError.command.
BUSY_CODES: dict[str, frozenset[int]] = {
    TASK_BUFFER: frozenset({TaskStatus.IN_PROGRESS, TaskStatus.STOPPED, TaskStatus.OVERFLOW}),
    LINK: frozenset({NAK}),
}
#: The LEGACY link's control bytes (a stray FFh included): heard alone, no frame came.
LEGACY_CONTROL = frozenset({ENQ, ACK, EOT, NAK, 0xFF})


class LinkLayer(enum.StrEnum):
    FE = "fe"  # "АТОЛ 3.0", the factory default
    LEGACY = "legacy"  # "АТОЛ 2.4"


def split_url(url: str) -> tuple[str, LinkLayer | None]:
    """The transport's URL (``link`` option removed, TCP port defaulted) and the layer."""
    base, sep, query = url.partition("?")
    items = [item for item in query.split("&") if item] if sep else []
    layers = [item.partition("=")[2] for item in items if item.partition("=")[0] == LINK_OPTION]
    rest = [item for item in items if item.partition("=")[0] != LINK_OPTION]
    layer = None
    if layers:
        try:
            layer = LinkLayer(layers[-1].lower())
        except ValueError:
            raise ConfigError(f"{url}: link must be fe or legacy, not {layers[-1]!r}") from None
    base = _default_port(base)
    return (f"{base}?{'&'.join(rest)}" if rest else base), layer


def _default_port(base: str) -> str:
    parts = urlsplit(base)
    try:
        port = parts.port
    except ValueError:
        return base  # open_transport names the bad port
    if parts.scheme.lower() in ("tcp", "socket") and parts.hostname and port is None:
        return parts._replace(netloc=f"{parts.netloc}:{DEFAULT_TCP_PORT}").geturl()
    return base


class AtolWire:
    """One poll's link to an ATOL register (see the module docstring)."""

    def __init__(self, session: Session, options: DriverOptions, layer: LinkLayer) -> None:
        self.session = session
        self.options = options
        self.layer = layer
        self.fe = FeSession()
        self.legacy = LegacySession()
        self.foreign_async = 0  # F0 packets for tasks that are not ours (quirk Q3)
        self.foreign_exchanges = 0  # exchanges during which such packets arrived
        self.probe_answer: bytes | None = None  # the probe's 45h answer

    def probe(self, request: cmd.Request) -> LinkLayer:
        """Find the layer that answers ``request`` (45h); its answer is kept.

        A garbled reply is an answer too: only a register of that layer frames bytes so
        (a LEGACY register never sends ``FE``; an FE register ignores ``ENQ``).
        """
        for _ in range(PROBE_ROUNDS):
            for layer in LinkLayer:
                self.layer = layer
                try:
                    self.probe_answer = self.session.retrying(lambda: self._probe_once(request))
                except LinkTimeoutError:
                    continue
                return layer
        raise LinkTimeoutError(
            f"{self.session.url}: no answer over the FE or the legacy link layer"
        )

    def _probe_once(self, request: cmd.Request) -> bytes | None:
        try:
            return self.exchange(request, probe=True)
        except (ChecksumError, FrameError):
            return None

    def exchange(self, request: cmd.Request, slow: bool = False, probe: bool = False) -> bytes:
        """One command on the current layer; its answer (unchecked)."""
        if self.layer is LinkLayer.FE:
            return self._fe(request, slow, probe)
        return self._legacy(request, slow, probe)

    def _fe(self, request: cmd.Request, slow: bool, probe: bool) -> bytes:
        options = self.options
        budget = options.archive_timeout_s if slow else options.answer_timeout_s
        polls = max(1, math.ceil(budget / options.control_timeout_s))
        limits = FeLimits(resends=0) if probe else FeLimits(status_polls=polls)
        link = FeLink(request, self.fe, limits)
        try:
            return self.session.run_link(link, self._fe_timeout)
        except LinkTimeoutError as exc:
            if link.polls > limits.status_polls:
                meaning = f"{request.name} still running after {link.polls} status polls"
                raise DeviceError(cmd.VENDOR, TASK_BUFFER, TaskStatus.IN_PROGRESS, meaning) from exc
            if not probe and self.session.heard:  # it replied, but not with our result
                raise NoAnswerError(f"{request.name}: the result never came ({exc})") from exc
            raise
        finally:
            self.foreign_async += link.foreign_async
            self.foreign_exchanges += link.foreign_async > 0

    def _fe_timeout(self, kind: WaitKind) -> float:
        if kind is WaitKind.BYTE:
            return self.options.byte_timeout_s
        return self.options.control_timeout_s

    def _legacy(self, request: cmd.Request, slow: bool, probe: bool) -> bytes:
        limits = LegacyLimits(enq_tries=1 if probe else self.options.enq_tries)
        link = LegacyLink(request, self.legacy, limits)
        received = self.session.bytes_rx
        try:
            return self.session.run_link(link, lambda kind: self.options.timeout_for(kind, slow))
        except LinkTimeoutError as exc:
            if probe or self.session.bytes_rx == received:
                raise  # silence: nobody there, or not this layer
            session = self.session
            if session.heard_only(LEGACY_CONTROL) and ACK in session.heard:
                raise NoAnswerError(f"{request.name}: took it, never answered ({exc})") from exc
            meaning = f"{request.name}: the register answered but never got ready"
            raise DeviceError(cmd.VENDOR, LINK, NAK, meaning) from exc
