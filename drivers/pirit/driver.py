"""Pirit / Viki Print / Dreamkas-F driver: the read-only poll and its link policy.

One poll sends, in order (pirit.md 4.6): 00h (fatal status, flags, document), 13h
(clock), 04h (printer), 78h/2 (FN state, warnings), 78h/1 (FN serial), 78h/6 (shift),
78h/3 (last FD number), 02h/5 (last fiscal operation), 78h/7 (OFD queue), 78h/18 (FN
memory, Punix firmware only) and, once per shift number, 02h/17 (shift opened at).
Identity (02h/1, /21, /70 or /2, /3, /4, /14, 78h/14 and, where 78h/14 is short,
78h/22) is read on the first poll, after an FN change and every few hours.

Link policy (pirit.md 2.6-2.7): packet ids cycle 21h..3Fh per driver instance; each
wait maps to the reference's per-command timeouts unless the operator set the matching
:class:`DriverOptions` field. The reference advises never to re-send a command; that
guards commands that change state, and every command on the allowlist is a read, so
this driver asks again, each time with a fresh id: a garbled exchange (bad checksum, a
reply cut short, or the register refusing our frame as damaged: 04h/05h/07h) through
:meth:`Session.retrying`, and, once, a command whose reply never came although the
register ACKs ENQ (:meth:`WireDriver._ask`); a reply that stays away fails the poll as
busy with ``busy_reason`` ``no_answer``. A register refusing with 01h/09h is busy too.

Where each fact comes from is :mod:`kktmon.drivers.pirit.reads`. Subs a firmware lacks
(02h/03h) degrade to nulls and are not asked again; FN state refusals (01h, 42h, 48h,
10h) degrade to nulls for that poll only.

URLs: a serial port without a baud rate is probed with ENQ at 57600, 115200, 38400,
19200, 9600 and 4800 baud and the rate that answered ACK is kept; ``tcp://host`` without
a port means VikiDriver's / Dreamkas-F's port 50003.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from kktmon.drivers.base import Clock, DriverOptions, TransportFactory, local_now
from kktmon.drivers.pirit import reads
from kktmon.drivers.pirit.mapping import (
    PiritFacts,
    PiritIdentity,
    build_snapshot,
    device_info,
    shift_is_open,
)
from kktmon.drivers.transport import Transport, open_transport
from kktmon.drivers.wire import Read, Session, WireDriver
from kktmon.protocol.errors import FrameError, LinkTimeoutError, NoAnswerError
from kktmon.protocol.health import DeviceInfo, HealthSnapshot
from kktmon.protocol.link import WaitKind
from kktmon.protocol.pirit import commands as cmd
from kktmon.protocol.pirit.errors import (
    NO_DATA_IN_FN,
    PRINTER_NOT_READY,
    WRONG_FN_STATE,
    WRONG_STATE,
    meaning,
)
from kktmon.protocol.pirit.frame import ACK, DEFAULT_PASSWORD, PacketIds, Reply
from kktmon.protocol.pirit.link import HostLink, LinkCheck, LinkLimits

BAUD_RATES = (57600, 115200, 38400, 19200, 9600, 4800)  # pirit.md 1, 57600 first
TCP_PORT = 50003  # VikiDriver and the Dreamkas-F core (pirit.md 1)
IDENTITY_MAX_AGE_S = 6 * 3600  # "every few hours or on start" (pirit.md 4.6 step 6)
NO_DATA_IN_JOURNAL = 0x10
#: Refusals of the frame itself (pirit.md 3: buffer overflow, byte timeout, checksum):
#: the bytes got damaged on the way, so the exchange is retried like a garbled reply.
LINK_REFUSALS = frozenset({0x04, 0x05, 0x07})
#: Refusals that mean "not now" for one fact, not "this firmware lacks it".
STATE_REFUSALS = frozenset({WRONG_STATE, WRONG_FN_STATE, NO_DATA_IN_FN, NO_DATA_IN_JOURNAL})

#: The :class:`DriverOptions` field that overrides the reference's wait of each kind.
_OPTION_OF = {
    WaitKind.ANSWER: "answer_timeout_s",
    WaitKind.CONTROL: "control_timeout_s",
    WaitKind.BYTE: "byte_timeout_s",
}

SerialOpener = Callable[[str, int], Transport]


def open_at_baudrate(url: str, baudrate: int) -> Transport:
    return open_transport(url, baudrate=baudrate)


def needs_baud_probe(url: str) -> bool:
    """A bare device path or ``serial://`` URL that names no baud rate."""
    if "://" not in url:
        return True
    parts = urlsplit(url)
    return parts.scheme.lower() == "serial" and not {"baudrate", "baud"} & set(
        parse_qs(parts.query, keep_blank_values=True)
    )


def with_default_port(url: str) -> str:
    """``tcp://host`` -> ``tcp://host:50003``; any other URL unchanged."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "tcp" or not parts.netloc or parts.port is not None:
        return url
    return f"{parts.scheme}://{parts.netloc}:{TCP_PORT}{parts.path}"


class PiritDriver(WireDriver[Reply]):
    """Pirit 2F / 2SF, Viki Print and the Dreamkas-F core over serial, USB-CDC or TCP.

    ``password`` is the 4-character connection password (settings item 20, ``PIRI``
    unless changed); ``serial_opener`` opens a serial URL at a given baud rate for
    probing (tests pass a fake).
    """

    vendor = "pirit"
    busy_device_codes = frozenset({WRONG_STATE, PRINTER_NOT_READY})
    degrade_codes = STATE_REFUSALS

    def __init__(
        self,
        url: str,
        options: DriverOptions | None = None,
        *,
        transport_factory: TransportFactory = open_transport,
        clock: Clock = local_now,
        password: str = DEFAULT_PASSWORD,
        serial_opener: SerialOpener = open_at_baudrate,
    ) -> None:
        self._serial_opener = serial_opener
        super().__init__(
            with_default_port(url), options, transport_factory=transport_factory, clock=clock
        )
        # The configured connection password (agent config, --connection-password) wins.
        self.password = self.options.connection_password or password

    def setup(self) -> None:
        self._ids = PacketIds()
        self._identity: PiritIdentity | None = None
        self._device: DeviceInfo | None = None
        self._identity_fn_serial: str | None = None
        self._identity_at = 0.0  # time.monotonic() of the last identity read
        self._shift_opened: dict[int, datetime | None] = {}
        self.baudrate: int | None = None  # the probed rate, once one answered
        if needs_baud_probe(self.url):
            self._transport_factory = self._open_serial

    # ------------------------------------------------------------------ the poll

    def _identify(self, session: Session) -> DeviceInfo:
        versions = self._optional(session, reads.FN_VERSIONS)
        short = versions is None or versions.fn_max_ffd is None
        identity = PiritIdentity(
            serial=self._ask(session, reads.SERIAL),
            model=self._optional(session, reads.MODEL),
            firmware_version=self._optional(session, reads.FIRMWARE_VERSION),
            inn=self._optional(session, reads.INN),
            rnm=self._optional(session, reads.RNM),
            versions=versions,
            ffd_support=self._optional(session, reads.FFD_SUPPORT) if short else None,
        )
        if not identity.firmware_version:
            identity = replace(identity, firmware_id=self._optional(session, reads.FIRMWARE_ID))
        self._identity, self._identity_at = identity, time.monotonic()
        self._device = device_info(identity, session.transport.kind)
        return self._device

    def _poll(self, session: Session) -> HealthSnapshot:
        status = self._ask(session, reads.STATUS)
        device_time = self._optional(session, reads.CLOCK)
        host_time = self.clock()
        facts = PiritFacts(
            status=status,
            printer=self._ask(session, reads.PRINTER),
            fn_status=self._ask(session, reads.FN_STATUS),
            device_time=device_time,
            fn_serial=self._optional(session, reads.FN_SERIAL),
        )
        identity, device = self._current_identity(session, facts.fn_serial)
        facts = replace(
            facts,
            fn_shift=self._optional(session, reads.FN_SHIFT),
            last_fd_number=self._optional(session, reads.LAST_FD),
            last_fiscal_at=self._optional(session, reads.LAST_FISCAL_AT),
            ofd=self._optional(session, reads.OFD_QUEUE),
            memory=self._optional(session, reads.FN_MEMORY),
            expiry=self._optional(session, reads.FN_EXPIRY),
        )
        facts = replace(facts, shift_opened_at=self._shift_opened_at(session, facts))
        return build_snapshot(identity=identity, device=device, facts=facts, host_time=host_time)

    def _current_identity(
        self, session: Session, fn_serial: str | None
    ) -> tuple[PiritIdentity, DeviceInfo]:
        """Cached identity; read again after an FN change or when it grew old."""
        old = time.monotonic() - self._identity_at > IDENTITY_MAX_AGE_S
        if self._identity is None or fn_serial != self._identity_fn_serial or old:
            self._identify(session)
            self._identity_fn_serial = fn_serial
        assert self._identity is not None and self._device is not None  # set by _identify
        return self._identity, self._device

    def _shift_opened_at(self, session: Session, facts: PiritFacts) -> datetime | None:
        """02h/17 with the shift open, once per shift number (every poll if unknown)."""
        if not shift_is_open(facts):
            return None
        if facts.fn_shift is None:
            return self._optional(session, reads.SHIFT_OPENED)
        number = facts.fn_shift.number
        if number not in self._shift_opened:
            self._shift_opened = {number: self._optional(session, reads.SHIFT_OPENED)}
        return self._shift_opened[number]

    # ------------------------------------------------------------------ exchanges

    def _exchange(self, session: Session, read: Read[Reply, Any]) -> Reply:
        request = cmd.request(
            read.command,
            read.sub,
            read.params,
            packet_id=self._ids.next(),
            password=self.password,
        )
        link = HostLink(request, self._limits())
        try:
            reply = session.run_link(link, self.timeouts(read.command))
        except LinkTimeoutError as exc:
            if link.alive:  # ENQ got ACK (or NAK), the command got nothing
                raise NoAnswerError(str(exc)) from exc
            self.baudrate = None  # probe again next poll: the rate may have changed
            raise
        if reply.error in LINK_REFUSALS:
            raise FrameError(
                f"{cmd.command_name(read.command, read.sub)}: the register refused the"
                f" frame with {reply.error:02X}h ({meaning(reply.error)})"
            )
        return reply

    def _limits(self) -> LinkLimits:
        if "enq_tries" in self.options.model_fields_set:
            return LinkLimits(enq_tries=self.options.enq_tries)
        return LinkLimits()

    def timeouts(self, command: int | None) -> Callable[[WaitKind], float]:
        """Seconds per wait: the option when the operator set it, else the reference's
        policy (per command for ANSWER; ``None`` is the bare ENQ probe)."""
        answer = cmd.DEFAULT_ANSWER_TIMEOUT_S if command is None else cmd.answer_timeout_s(command)
        reference = {
            WaitKind.ANSWER: answer,
            WaitKind.CONTROL: cmd.ENQ_TIMEOUT_S,
            WaitKind.BYTE: cmd.INTER_BYTE_TIMEOUT_S,
        }

        def seconds(kind: WaitKind) -> float:
            name = _OPTION_OF[kind]
            given = name in self.options.model_fields_set
            return float(getattr(self.options, name)) if given else reference[kind]

        return seconds

    # ------------------------------------------------------------------ baud probing

    def _open_serial(self, url: str) -> Transport:
        """Open at the remembered rate, or find one: the first that ACKs an ENQ."""
        if self.baudrate is not None:
            return self._serial_opener(url, self.baudrate)
        for rate in BAUD_RATES:
            transport = self._serial_opener(url, rate)
            if self._answers_enq(url, transport):
                self.baudrate = rate
                return transport
            transport.close()
        raise LinkTimeoutError(
            f"{url}: no ACK to ENQ at {', '.join(map(str, BAUD_RATES))} baud; check the"
            " cable, the power and that no other program owns the port"
        )

    def _answers_enq(self, url: str, transport: Transport) -> bool:
        probe = Session(url, lambda _url: transport, self.options)
        try:
            return probe.run_link(LinkCheck(), self.timeouts(None)) == ACK
        except LinkTimeoutError:
            return False
        except BaseException:
            transport.close()
            raise
