"""A Shtrih-M register, device side: which builder answers which command, and the gates.

Sans-I/O: :class:`ShtrihEmulator` holds the device (a vendor-neutral
:class:`~kktmon.simulators.scenario.DeviceState`, a clock, the log of received
commands; see :class:`~kktmon.simulators.emulator.WireEmulator`); each connection gets a
:class:`~kktmon.simulators.shtrih.link.ShtrihLink` that is fed bytes and returns
:mod:`~kktmon.simulators.server` outputs. The answers themselves are built in
:mod:`kktmon.simulators.shtrih.answers`.

Before a builder runs, :meth:`ShtrihEmulator.execute` checks, in the register's order:
the command is in :data:`COMMANDS` and on the read-only allowlist of
:mod:`kktmon.protocol.shtrih.commands` (or one of the few :data:`DEVICE_ONLY` commands a
third-party client needs, B0h "continue printing"), and the model has it (else 37h); the
length (7Eh); the password (4Fh: the system administrator's 30 for FN commands, tables
and 15h, any operator 1..30 for the status and register commands). Every command outside
the table or off the allowlist, B0h included, is also logged in ``forbidden_received``,
so driver tests can prove that no state-changing command ever reached the register.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from kktmon.protocol.shtrih.commands import is_allowed
from kktmon.protocol.shtrih.errors import UNSUPPORTED, WRONG_PASSWORD
from kktmon.protocol.shtrih.frame import Frame, command_bytes, encode_frame, split_command
from kktmon.simulators import fn
from kktmon.simulators.emulator import RefusalError, WireEmulator
from kktmon.simulators.server import Transport
from kktmon.simulators.shtrih import answers as a
from kktmon.simulators.shtrih.answers import SYSADMIN_PASSWORD, Context, Handler, fn_record
from kktmon.simulators.shtrih.link import ShtrihLink

BAD_LENGTH = 0x7E


class Password(enum.Enum):
    NONE = "none"
    SYSADMIN = "sysadmin"  # 30 only: FN commands and tables (section 5)
    OPERATOR = "operator"  # any operator 1..30: status commands


@dataclass(frozen=True)
class Command:
    handler: Handler  # gets the parameters after the password, returns what follows error 0
    password: Password
    params: int | tuple[int, ...]  # parameter bytes after the password (or each length)

    def takes(self, length: int) -> bool:
        return length in ((self.params,) if isinstance(self.params, int) else self.params)


COMMANDS: dict[int, Command] = {
    0xFC: Command(a.device_type, Password.NONE, 0),
    0xF7: Command(a.model_parameters, Password.NONE, 1),  # sub-command 01
    0x10: Command(a.short_status, Password.OPERATOR, 0),
    0x11: Command(a.long_status, Password.OPERATOR, 0),
    0x15: Command(a.exchange_parameters, Password.SYSADMIN, 1),  # port
    0x1A: Command(a.money_register, Password.OPERATOR, (1, 2)),  # register number
    0x1B: Command(a.operating_register, Password.OPERATOR, 1),
    0x1F: Command(a.read_table, Password.SYSADMIN, 4),
    0x2D: Command(a.table_structure, Password.SYSADMIN, 1),
    0x2E: Command(a.field_structure, Password.SYSADMIN, 2),
    0xFF01: Command(fn_record(fn.status), Password.SYSADMIN, 0),
    0xFF02: Command(fn_record(fn.serial), Password.SYSADMIN, 0),
    0xFF03: Command(fn_record(fn.validity), Password.SYSADMIN, 0),
    0xFF04: Command(fn_record(fn.firmware), Password.SYSADMIN, 0),
    0xFF09: Command(fn_record(a.registration), Password.SYSADMIN, 0),
    0xFF0A: Command(a.archive_document, Password.SYSADMIN, 4),
    0xFF39: Command(fn_record(fn.ofd_status), Password.SYSADMIN, 0),
    0xFF3F: Command(fn_record(fn.unconfirmed), Password.SYSADMIN, 0),
    0xFF40: Command(fn_record(fn.shift), Password.SYSADMIN, 0),
    0xFF63: Command(fn_record(a.fn_resource), Password.SYSADMIN, 0),
    0x6B: Command(a.error_text, Password.NONE, 1),
}

#: What a real register also does but the agent never asks (off the allowlist): run
#: here so a third-party client meets the device, logged in ``forbidden_received``.
DEVICE_ONLY: dict[int, Command] = {
    0xB0: Command(a.continue_printing, Password.OPERATOR, 0),
}


def _operator(kind: Password, password: int) -> int:
    """The operator number the password belongs to; raises 4Fh for a wrong one."""
    if kind is Password.NONE:
        return 0
    if password == SYSADMIN_PASSWORD or (kind is Password.OPERATOR and 1 <= password <= 30):
        return password
    raise RefusalError(WRONG_PASSWORD)


def _error(code: int, error: int) -> bytes:
    return command_bytes(code) + bytes([error])


class ShtrihEmulator(WireEmulator[int]):
    """The register: state, clock and the log of what arrived.

    ``received`` lists the code (``0xFC``, ``0xFF01`` ...) of every intact frame that
    arrived, in order, including frames the ``nak_frames`` fault refused; codes outside
    the command table or the allowlist are also appended to ``forbidden_received``.
    """

    def open_link(self, transport: Transport) -> ShtrihLink:
        return ShtrihLink(self, transport)

    def note(self, frame: Frame) -> None:
        """Log a frame that arrived intact (even one the link then NAKs on purpose)."""
        allowed = frame.code in COMMANDS and is_allowed(frame.code, frame.data)
        self.log(frame.code, allowed=allowed)

    def execute(self, body: bytes) -> bytes:
        """Answer body (CMD, error, fields) for a command body (CMD, data)."""
        frame = split_command(body)
        code, data = frame.code, frame.data
        self._printer_step()
        command = COMMANDS.get(code) if is_allowed(code, data) else DEVICE_ONLY.get(code)
        if command is None or self.state.lacks(code):
            return _error(code, UNSUPPORTED)
        width = 0 if command.password is Password.NONE else 4
        if not command.takes(len(data) - width):
            return _error(code, BAD_LENGTH)
        try:
            operator = _operator(command.password, int.from_bytes(data[:width], "little"))
            context = Context(self.state, self.device_time(), operator)
            return command_bytes(code) + b"\x00" + command.handler(context, data[width:])
        except RefusalError as refusal:
            return _error(code, refusal.code)

    def _printer_step(self) -> None:
        """Paper that runs out in the middle of a document suspends the printing until
        B0h (submode 2, then 3 once paper is back), whatever the host asks meanwhile."""
        printer = self.state.printer
        if printer.paper == "out" and self.state.faults.busy_printing and not printer.suspended:
            printer.suspended = True

    def stale_answer(self) -> bytes:
        """The answer frame a POS program left unacknowledged: 10h for cashier 1."""
        context = Context(self.state, self.device_time(), 1)
        return encode_frame(b"\x10\x00" + a.short_status(context, b""))
