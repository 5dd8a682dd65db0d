"""An ATOL register, device side, on either link layer: FE ("АТОЛ 3.0") or LEGACY ("2.4").

Sans-I/O like every wire emulator (:mod:`kktmon.simulators.emulator`):
:class:`AtolEmulator` holds the device (a vendor-neutral
:class:`~kktmon.simulators.scenario.DeviceState`, a clock, the log of what arrived); each
connection gets a link of the chosen layer that is fed bytes and returns
:mod:`~kktmon.simulators.server` outputs::

    emulator = AtolEmulator(state, link_layer="legacy")
    with TcpServer(emulator) as server:      # ATOL's own port would be 5555
        ...

* :mod:`kktmon.simulators.atol.link`: packets, the C1..C4 task buffer
  (:mod:`~kktmon.simulators.atol.task_buffer`), async results. Whether a task's result
  comes in the reply to ``C1`` or only in an ``F0`` packet is ``task_results``
  (:data:`TaskResults`): by default both, per command, as real firmware does.
* :mod:`kktmon.simulators.atol.legacy_link`: ENQ/ACK/EOT turns and STX/ETX frames.
* :mod:`kktmon.simulators.atol.answers`: what each command answers, from the state;
  :data:`COMMANDS` here says which builder answers which command.

Both links carry a task body ``password(2) command params``; :func:`answer` checks it in
the register's order: a command outside the allowlist of
:mod:`kktmon.protocol.atol.commands`, or one the scenario lists in ``unsupported``
(``"A4"`` for all of A4h, ``"A43D"`` for one sub-command), is answered 7Ah; a wrong
access password 8Ch; FN queries that make no sense in the FN's phase D4h.

Both links share the fault modes of ``state.faults`` with ATOL semantics (see each link
module), and the command log: :attr:`AtolEmulator.received` holds the command bytes
(command and params, no password) of every intact task that arrived, in order, copies
included; those outside the read-only allowlist are also in
:attr:`AtolEmulator.forbidden_received` (with FE task-buffer commands other than
C1..C4, by their whole DATA) and are answered 7Ah, never executed.
:attr:`AtolEmulator.buffer_commands` lists the first DATA byte of every intact FE host
packet (C1..C4, or whatever else came) in arrival order, so a test can prove an agent
never sent C4 uninvited.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Literal

from kktmon.protocol.atol import commands as cmd
from kktmon.protocol.atol.commands import (
    DEFAULT_PASSWORD,
    is_allowed,
    password_bytes,
    request_status_code,
)
from kktmon.protocol.atol.errors import UNSUPPORTED
from kktmon.simulators import fn
from kktmon.simulators.atol import answers as a
from kktmon.simulators.atol.answers import Answer, Context, Handler, fn_record
from kktmon.simulators.atol.legacy_link import LegacyDeviceLink
from kktmon.simulators.atol.link import FeDeviceLink
from kktmon.simulators.emulator import RefusalError, WireEmulator
from kktmon.simulators.scenario import DeviceState
from kktmon.simulators.server import Link, Transport

LinkLayer = Literal["fe", "legacy"]
#: How FE tasks report their results: in the reply to ``C1`` (``sync``, ``A3``/``A4``),
#: only through the ``F0`` packet (``async``, ``A6``/``A7``), or ``mixed``: the queries the
#: register forwards to its fiscal drive (A4h) asynchronously, the rest at once.
TaskResults = Literal["sync", "async", "mixed"]
MIXED_ASYNC_COMMANDS = frozenset({cmd.FN_QUERY})
TCP_PORT = 5555  # an ATOL register's own port (table 2 field 91): same bytes as serial
WRONG_PASSWORD = 0x8C

# (command, sub-command or None) -> builder; the allowlist decides what params follow.
COMMANDS: dict[tuple[int, int | None], Handler] = {
    (cmd.STATE, None): a.device_state,
    (cmd.STATUS_CODE, None): a.status_code,
    (cmd.DEVICE_TYPE, None): a.device_type,
    **{(cmd.FIRMWARE, sub): a.firmware(sub) for sub in (1, 2, 3)},
    (cmd.READ_REGISTER, cmd.REG_CLOCK): a.reg_clock,
    (cmd.READ_REGISTER, cmd.REG_SHIFT): a.reg_shift,
    (cmd.READ_REGISTER, cmd.REG_SERIAL): a.reg_serial,
    (cmd.READ_REGISTER, cmd.REG_UNSENT): a.reg_unsent,
    (cmd.READ_REGISTER, cmd.REG_FFD): a.reg_ffd,
    (cmd.READ_REGISTER, cmd.REG_EXTENDED_ERROR): a.reg_extended_error,
    (cmd.FN_QUERY, cmd.FN_SHIFT): fn_record(fn.shift),
    (cmd.FN_QUERY, cmd.FN_OFD_STATUS): fn_record(fn.ofd_status),
    (cmd.FN_QUERY, cmd.FN_STATUS): fn_record(fn.status),
    (cmd.FN_QUERY, cmd.FN_SERIAL): fn_record(fn.serial),
    (cmd.FN_QUERY, cmd.FN_VALIDITY): fn_record(fn.validity),
    (cmd.FN_QUERY, cmd.FN_FIRMWARE): fn_record(fn.firmware),
    (cmd.FN_QUERY, cmd.FN_UNCONFIRMED): fn_record(fn.unconfirmed),
    (cmd.FN_QUERY, cmd.FN_REGISTRATION): fn_record(a.fn_registration),
    (cmd.FN_QUERY, cmd.FN_FFD): a.fn_ffd,
    (cmd.FN_QUERY, cmd.FN_DAYS_LEFT): a.fn_days_left,
    (cmd.FN_QUERY, cmd.FN_RESOURCE): fn_record(a.fn_resource),
}


def command_allowed(command: bytes) -> bool:
    """``command`` = command byte and params (no password): on the read-only allowlist?"""
    return bool(command) and is_allowed(command[0], command[1:])


def _key(command: bytes) -> tuple[int, int | None]:
    code = command[0]
    return (code, command[1]) if cmd.ALLOWLIST[code].sub_codes else (code, None)


def _lacks(state: DeviceState, key: tuple[int, int | None]) -> bool:
    code, sub = key
    return state.lacks(code) or (sub is not None and state.lacks(code << 8 | sub))


def answer(ctx: Context, body: bytes, password: int) -> Answer:
    """The answer to one task body ``password(2) command params``."""
    command = body[2:]
    if not command_allowed(command) or _key(command) not in COMMANDS:
        return a.refusal(command[0] if command else 0, UNSUPPORTED)
    key = _key(command)
    if _lacks(ctx.state, key):
        return a.refusal(key[0], UNSUPPORTED)
    if body[:2] != password_bytes(password):
        return a.refusal(key[0], WRONG_PASSWORD)
    try:
        fields = COMMANDS[key](ctx)
    except RefusalError as exc:
        return a.refusal(key[0], exc.code)
    return a.shaped(key[0], fields)


class AtolEmulator(WireEmulator[bytes]):
    """The register: state, clock, link layer and the log of what arrived.

    ``password`` is the 4-digit access password the register expects (factory 0000);
    ``task_results`` the path of FE results (:data:`TaskResults`), ``mixed`` by default
    so that every poll meets both.
    """

    def __init__(
        self,
        state: DeviceState | None = None,
        clock: Callable[[], datetime] = datetime.now,
        seed: int | None = None,
        *,
        link_layer: LinkLayer = "fe",
        password: int = DEFAULT_PASSWORD,
        task_results: TaskResults = "mixed",
    ) -> None:
        super().__init__(state, clock, seed)
        self.link_layer: LinkLayer = link_layer
        self.password = password
        self.task_results: TaskResults = task_results
        self.buffer_commands: list[int] = []

    def open_link(self, transport: Transport) -> Link:
        if self.link_layer == "legacy":
            return LegacyDeviceLink(self, transport)
        return FeDeviceLink(self, transport)

    def reports_async(self, body: bytes) -> bool:
        """Whether the FE task ``body`` reports only through ``F0`` (see :data:`TaskResults`).

        In ``mixed`` a command off the allowlist is refused at once: it never reaches the
        fiscal drive.
        """
        if self.task_results != "mixed":
            return self.task_results == "async"
        command = body[2:]
        return command_allowed(command) and command[0] in MIXED_ASYNC_COMMANDS

    def note(self, body: bytes) -> None:
        """Log a task body (``password command params``) that arrived intact."""
        command = body[2:]
        self.log(command, allowed=command_allowed(command))

    def note_forbidden(self, data: bytes) -> None:
        """Log something refused below the command layer (an unknown FE buffer command)."""
        self.forbidden_received.append(data)

    def execute(self, body: bytes, transport: Transport) -> Answer:
        """The answer to a task body, from the state as it is now."""
        return answer(Context(self.state, self.device_time(), transport), body, self.password)

    def stale_answer(self, transport: Transport) -> bytes:
        """The answer a POS program left behind (LEGACY pending_answer): its 45h status."""
        body = request_status_code(self.password).body
        return self.execute(body, transport).data
