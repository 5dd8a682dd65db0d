"""A Pirit / Viki Print / Dreamkas-F register, device side: routing and the gates.

Sans-I/O like every wire emulator (:mod:`kktmon.simulators.emulator`):
:class:`PiritEmulator` holds the device (a vendor-neutral
:class:`~kktmon.simulators.scenario.DeviceState`, a clock, the password, the logs); each
connection gets a :class:`~kktmon.simulators.pirit.link.PiritLink` that is fed bytes and
returns :mod:`~kktmon.simulators.server` outputs. Answers are built in
:mod:`kktmon.simulators.pirit.answers`; this module routes a request to its builder.

Refusals, as error replies with no data (worked example 8): a wrong password 06h;
anything off the allowlist of :func:`kktmon.protocol.pirit.commands.is_allowed` 02h. A
command without parameters is answered in both forms real registers take: no data, or
one empty field (Dreamkas' Java example; :func:`~kktmon.protocol.pirit.commands.parameters`).
``state.unsupported`` names what the model lacks: ``"78"`` a whole command (answered
02h), ``"78/18"`` one sub-request: hex command, ``/``, decimal sub, the reference's own
notation (answered 03h, extended reason 66, like worked example 8). The reason of the
last 01h/03h refusal is what 06h/1 reports, to any client.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from kktmon.protocol.pirit.commands import (
    CLOCK,
    COUNTERS,
    DIAGNOSTICS,
    DRAWER,
    FN_INFO,
    INFO,
    MARKING,
    PRINTER_STATUS,
    READ_SETTING,
    SERVICE_INFO,
    STATUS,
    is_allowed,
    parameters,
)
from kktmon.protocol.pirit.errors import BAD_FUNCTION, BAD_PARAMETER, WRONG_PASSWORD, WRONG_STATE
from kktmon.protocol.pirit.frame import DEFAULT_PASSWORD, LF, RECOVERY_PACKET_ID, Reply, Request
from kktmon.simulators.emulator import RefusalError, WireEmulator
from kktmon.simulators.pirit import answers as a
from kktmon.simulators.pirit.answers import BAD_REQUEST_NUMBER, Answer, Context, Value
from kktmon.simulators.pirit.link import BYTE_TIMEOUT, PiritLink
from kktmon.simulators.scenario import DeviceState
from kktmon.simulators.server import Transport

_REASON_CODES = frozenset({WRONG_STATE, BAD_PARAMETER})  # the errors 06h/1 explains

#: Commands answered whole.
PLAIN_ANSWERS: dict[int, Answer] = {
    STATUS: a.status,
    PRINTER_STATUS: a.printer_status,
    CLOCK: lambda c: a.moment(c.now),
    DRAWER: lambda c: (0,),
}

#: Commands whose first field picks a sub-request: their builders per sub.
SUB_ANSWERS: dict[int, dict[int, Answer]] = {
    COUNTERS: a.COUNTER_ANSWERS,
    INFO: a.INFO_ANSWERS,
    SERVICE_INFO: a.SERVICE_ANSWERS,
    DIAGNOSTICS: a.DIAGNOSTIC_ANSWERS,
    FN_INFO: a.FN_ANSWERS,
    MARKING: a.MARKING_ANSWERS,
}


def answer(ctx: Context, command: int, numbers: Sequence[int]) -> tuple[Value, ...]:
    """Values of the successful reply to an allowed request (decimal fields ``numbers``)."""
    if command in PLAIN_ANSWERS:
        return PLAIN_ANSWERS[command](ctx)
    if command in SUB_ANSWERS:
        sub = numbers[0]
        handler = SUB_ANSWERS[command].get(sub)
        if handler is None or ctx.state.lacks(command, sub):
            raise RefusalError(BAD_PARAMETER, BAD_REQUEST_NUMBER)
        return (sub, *handler(ctx))
    if command == READ_SETTING:
        setting = a.SETTINGS.get((numbers[0], numbers[1]))
        if setting is None:
            raise RefusalError(BAD_PARAMETER, BAD_REQUEST_NUMBER)
        return (setting(ctx.state),)
    raise RefusalError(BAD_FUNCTION)


def _encode(value: Value) -> bytes:
    if isinstance(value, bytes):
        return value
    return str(value).encode("ascii") if isinstance(value, int) else a.text(value)


class PiritEmulator(WireEmulator[int]):
    """The register: state, clock, password and the logs of what arrived.

    ``received`` lists the command code of every intact frame, in order (frames the
    ``nak_frames`` fault refused included); ``requests`` the decoded frames themselves
    (packet id, fields, password). Codes of frames outside the allowlist go to
    ``forbidden_received`` too.
    """

    def __init__(
        self,
        state: DeviceState | None = None,
        clock: Callable[[], datetime] = datetime.now,
        seed: int | None = None,
        password: str = DEFAULT_PASSWORD,
    ) -> None:
        super().__init__(state, clock, seed)
        self.password = password
        self.requests: list[Request] = []
        self.error_reason = 0  # 06h/1: reason of the last 01h/03h error, any client

    def open_link(self, transport: Transport) -> PiritLink:
        return PiritLink(self, transport)

    def note(self, request: Request) -> None:
        """Log a frame that arrived intact (even one the link then refuses on purpose)."""
        self.requests.append(request)
        self.log(request.command, allowed=is_allowed(request.command, parameters(request.fields)))

    def note_line_feed(self) -> None:
        """A bare LF between frames: a paper feed, never a read (pirit.md 2.5)."""
        self.log(LF, allowed=False)

    def execute(self, request: Request) -> Reply:
        """The reply to an intact request frame."""
        try:
            values = self._answer(request)
        except RefusalError as refusal:
            if refusal.code in _REASON_CODES:
                self.error_reason = refusal.reason
            return Reply(request.packet_id, request.command, refusal.code)
        fields = tuple(_encode(value) for value in values)
        return Reply(request.packet_id, request.command, 0, fields)

    def _answer(self, request: Request) -> tuple[Value, ...]:
        if request.password != self.password:
            raise RefusalError(WRONG_PASSWORD)
        command, fields = request.command, parameters(request.fields)
        if not is_allowed(command, fields) or self.state.lacks(command):
            raise RefusalError(BAD_FUNCTION)
        busy = self.state.faults.busy_printing
        context = Context(self.state, self.device_time(), self.error_reason, busy)
        return answer(context, command, [int(field) for field in fields])

    def stale_reply(self) -> Reply:
        """The recovery reply of quirk 4: an answer the register failed to deliver."""
        return Reply(RECOVERY_PACKET_ID, STATUS, BYTE_TIMEOUT)
