"""A Shtrih-M register, device side: the ENQ/ACK/NAK link and the read-only commands.

Sans-I/O: :class:`ShtrihEmulator` holds the device (a vendor-neutral
:class:`~kktmon.simulators.scenario.DeviceState`, a clock, the log of received
commands); each connection gets a :class:`ShtrihLink` that is fed bytes and returns
:mod:`~kktmon.simulators.server` outputs. Framing comes from :mod:`kktmon.protocol.shtrih`.

Device-side link rules (shtrih-m.md 3.1): ENQ -> NAK when idle, ACK + the answer again
while an answer is unacknowledged; a good frame -> ACK, then the answer; a bad LRC, or a
frame (or line noise) that stops for ``byte_timeout_s`` -> NAK. A host NAK of an answer
is not answered: the register waits for ENQ and then resends.

Answers follow section 8 byte for byte (worked examples E1-E13 are the check). Every
command outside the table below, or off the read-only allowlist, is answered 37h and
logged in :attr:`ShtrihEmulator.forbidden_received`, so driver tests can prove that no
state-changing command ever reached the register.
"""

from __future__ import annotations

import enum
import random
import struct
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from kktmon.protocol.errors import ChecksumError, FrameError
from kktmon.protocol.shtrih.commands import is_allowed
from kktmon.protocol.shtrih.errors import (
    ERROR_MEANINGS,
    NO_DATA_IN_FN,
    UNSUPPORTED,
    WRONG_FN_STATE,
    WRONG_PASSWORD,
)
from kktmon.protocol.shtrih.frame import (
    ACK,
    ENQ,
    NAK,
    STRAY,
    STX,
    Frame,
    FrameReader,
    command_bytes,
    decode_frame,
    encode_frame,
    split_command,
)
from kktmon.simulators.scenario import DOC_RECEIPT, DeviceState, Faults, default_state
from kktmon.simulators.server import Close, Output, Transport, Write

SYSADMIN_PASSWORD = 30
DEFAULT_MODEL_CODE = 252  # ШТРИХ-ЛАЙТ family (E1)
BYTE_TIMEOUT_S = 0.05  # the register's own inter-byte timeout (section 1)
BUSY_DELAY_S = 0.05  # extra answer delay while printing (quirk 11.3)
BAD_PARAMETERS = 0x33
TABLE_NOT_DEFINED = 0x5D
BAD_LENGTH = 0x7E


class RefusalError(Exception):
    """A handler's way of answering with a non-zero error code."""

    def __init__(self, code: int) -> None:
        super().__init__(f"error {code:02X}h")
        self.code = code


@dataclass(frozen=True)
class Context:
    state: DeviceState
    now: datetime  # the device's clock
    operator: int


Handler = Callable[[Context, bytes], bytes]


class Password(enum.Enum):
    NONE = "none"
    SYSADMIN = "sysadmin"  # 30 only: FN commands and tables (section 5)
    OPERATOR = "operator"  # any operator 1..30: status commands


@dataclass(frozen=True)
class Command:
    handler: Handler  # gets the parameters after the password, returns what follows error 0
    password: Password
    params: int  # parameter bytes after the password


# ------------------------------------------------------------------ encodings


def _le(value: int, size: int) -> bytes:
    return value.to_bytes(size, "little")


def _fn_date(day: date) -> bytes:
    return bytes([day.year - 2000, day.month, day.day])


def _fn_datetime(moment: datetime) -> bytes:
    return _fn_date(moment) + bytes([moment.hour, moment.minute])


def _classic_date(day: date) -> bytes:
    return bytes([day.day, day.month, day.year - 2000])


def _ascii(text: str, size: int) -> bytes:
    return text.encode("ascii")[:size].ljust(size, b" ")


# ------------------------------------------------------------------ status (10h, 11h, FCh, F7h)


def _mode(ctx: Context) -> int:
    shift = ctx.state.shift
    if not shift.is_open:
        return 4
    opened = shift.opened_at
    if shift.state == "expired" or (opened and ctx.now - opened >= timedelta(hours=24)):
        return 3
    return 2


def _submode(ctx: Context) -> int:
    busy = ctx.state.faults.busy_printing
    if ctx.state.printer.paper == "out":
        return 3 if busy else 1  # ran out while printing: waits for "continue printing"
    return 5 if busy else 0


def _flags(ctx: Context) -> int:
    printer = ctx.state.printer
    flags = 1 << 4  # legacy bit a real ЛАЙТ-02Ф keeps set (E2: 0292h)
    if printer.paper != "out":
        flags |= 1 << 7  # optical sensor: paper
    if printer.paper == "ok":
        flags |= 1 << 1  # roll sensor: not near the end
    flags |= 1 << 10 if printer.cover_open else 1 << 9  # open cover lifts the head lever
    return flags


def _device_type(ctx: Context, _: bytes) -> bytes:
    code = ctx.state.model_code if ctx.state.model_code is not None else DEFAULT_MODEL_CODE
    return bytes([0, 0, 1, 14, code, 0]) + ctx.state.model.encode("cp1251", errors="replace")


_CAPABILITIES = 1 << 43 | 1 << 47  # fiscal drive supported, FFD 1.1


def _model_parameters(ctx: Context, _: bytes) -> bytes:
    return struct.pack(
        "<QBBBBBBBIIBBHBBHBBBBB",
        *(_CAPABILITIES, 48, 64, 1, 12, 16, 20, 16, 0, SYSADMIN_PASSWORD, 0, 0, 255, 64),
        *(64, 1200, 18, 19, 0, 17, 17),  # FS, OFD tables; FFD version in table 17 field 17
    )


def _short_status(ctx: Context, _: bytes) -> bytes:
    # Battery 9Fh, supply 2Ch, head temperature 76h, previous mode 4, key status 24h: E3.
    tail = bytes([0, 0x9F, 0x2C, 0, 0, 0, 0x76, 4, 0x24])
    last_print = b"\x02" if ctx.state.printer.fault else b""  # LEN 17: printer error
    head = bytes([ctx.operator]) + _le(_flags(ctx), 2) + bytes([_mode(ctx), _submode(ctx)])
    return head + tail + last_print


_LEGACY_FP = bytes.fromhex("57 41 00 00 01 01 10")  # junk a real FN model sends (E2)


def _long_status(ctx: Context, _: bytes) -> bytes:
    state, now = ctx.state, ctx.now
    firmware = (state.firmware.replace(".", "") + "  ")[:2].encode("cp1251", errors="replace")
    last_closed = state.shift.number - 1 if state.shift.is_open else state.shift.number
    return b"".join(
        [
            bytes([ctx.operator]),
            firmware,
            _le(state.firmware_build, 2),
            _classic_date(state.firmware_date),
            b"\x01",  # number in hall
            _le(state.fn.last_document_number % 10_000, 2),
            _le(_flags(ctx), 2),
            bytes([_mode(ctx), _submode(ctx), 2]),  # port: a real one reached over TCP said 2
            _LEGACY_FP,
            _classic_date(now),
            bytes([now.hour, now.minute, now.second]),
            b"\x00",  # legacy FP flags
            _le(int(state.serial[-6:]), 4),  # E2: 16-digit serials do not fit; trailing digits
            _le(max(last_closed, 0), 2),
            bytes(4),  # legacy FP records and registration counters: 0 on FN models
            _le(int(state.inn), 6),
        ]
    )


# ------------------------------------------------------------------ tables (1Fh, 2Dh, 2Eh)


@dataclass(frozen=True)
class TableField:
    name: str
    size: int
    text: bool
    value: Callable[[DeviceState], int | str | bytes]


_FFD_CODES = {"1.0": 1, "1.05": 2, "1.1": 3, "1.2": 4}

TABLES: dict[int, tuple[str, dict[int, TableField]]] = {
    17: (
        "Региональные настройки",
        {17: TableField("Формат ФД", 1, False, lambda s: _FFD_CODES[s.ffd.device])},
    ),
    18: (
        "Fiscal storage",
        {
            # The real device leaves junk after the NUL (E5): drivers must cut there.
            1: TableField(
                "Заводской номер ККТ", 21, True, lambda s: s.serial.encode() + b"\x00000\x00"
            ),
            3: TableField("РНМ", 20, True, lambda s: s.rnm),
            7: TableField("Пользователь", 64, True, lambda s: s.organisation),
            13: TableField("Адрес сайта ФНС", 64, True, lambda s: "www.nalog.gov.ru"),
        },
    ),
    19: (
        "Параметры ОФД",
        {
            1: TableField("Сервер", 64, True, lambda s: s.ofd.server),
            2: TableField("Порт", 2, False, lambda s: s.ofd.port),
        },
    ),
}


def _table_field(table: int, field: int) -> TableField:
    if table not in TABLES:
        raise RefusalError(TABLE_NOT_DEFINED)
    spec = TABLES[table][1].get(field)
    if spec is None:
        raise RefusalError(BAD_PARAMETERS)
    return spec


def _text(value: str, size: int) -> bytes:
    return value.encode("cp1251", errors="replace")[:size].ljust(size, b"\x00")


def _read_table(ctx: Context, params: bytes) -> bytes:
    table, row, field = struct.unpack("<BHB", params)
    spec = _table_field(table, field)
    if row != 1:
        raise RefusalError(BAD_PARAMETERS)
    value = spec.value(ctx.state)
    if isinstance(value, int):
        return _le(value, spec.size)
    return value[: spec.size] if isinstance(value, bytes) else _text(value, spec.size)


def _table_structure(ctx: Context, params: bytes) -> bytes:
    if params[0] not in TABLES:
        raise RefusalError(TABLE_NOT_DEFINED)
    name, fields = TABLES[params[0]]
    return _text(name, 40) + _le(1, 2) + bytes([max(fields)])


def _field_structure(ctx: Context, params: bytes) -> bytes:
    spec = _table_field(params[0], params[1])
    head = _text(spec.name, 40) + bytes([int(spec.text), spec.size])
    if spec.text:
        return head + b"\x00\x00"  # what real devices append after a CHAR field's size
    return head + _le(0, spec.size) + _le(256**spec.size - 1, spec.size)


# ------------------------------------------------------------------ fiscal drive (FFxxh)


def _fn_status(ctx: Context, _: bytes) -> bytes:
    fn = ctx.state.fn
    head = bytes([fn.phase, 0, 0, int(ctx.state.shift.is_open), fn.warnings])
    last_at = _fn_datetime(fn.last_document_at) if fn.last_document_number else bytes(5)
    return head + last_at + fn.serial.encode() + _le(fn.last_document_number, 4)


def _fn_serial(ctx: Context, _: bytes) -> bytes:
    return ctx.state.fn.serial.encode()


def _fn_validity(ctx: Context, _: bytes) -> bytes:
    fn = ctx.state.fn
    return _fn_date(fn.valid_until) + bytes([fn.registrations_left, fn.registrations_done])


def _fn_firmware(ctx: Context, _: bytes) -> bytes:
    fn = ctx.state.fn
    return fn.firmware.encode("ascii").ljust(16, b"\x00") + bytes([int(fn.release_firmware)])


def _registration(ctx: Context, _: bytes) -> bytes:
    state, reg = ctx.state, ctx.state.registration
    if state.fn.phase & 0x02 == 0:  # fiscal mode never opened: nothing registered
        raise RefusalError(WRONG_FN_STATE)
    body = _fn_datetime(reg.registered_at) + _ascii(state.inn, 12) + _ascii(state.rnm, 20)
    body += bytes([reg.tax_systems, reg.work_mode])
    if state.ffd.registered in ("1.1", "1.2"):  # long layout: ext. mode, OFD INN, reasons
        body += b"\x00" + _ascii(reg.ofd_inn, 12) + _le(0, 4)
    return body + _le(reg.fd_number, 4) + _le(reg.fiscal_sign, 4)


def _ofd_status(ctx: Context, _: bytes) -> bytes:
    ofd = ctx.state.ofd
    number, when = 0, bytes(5)
    if ofd.unsent_count and ofd.first_unsent_at is not None:
        number, when = ctx.state.first_unsent_number(), _fn_datetime(ofd.first_unsent_at)
    return bytes([ofd.exchange_status, 0]) + _le(ofd.unsent_count, 2) + _le(number, 4) + when


def _unconfirmed(ctx: Context, _: bytes) -> bytes:
    return _le(ctx.state.ofd.unsent_count, 2)


def _shift_parameters(ctx: Context, _: bytes) -> bytes:
    shift = ctx.state.shift
    return bytes([int(shift.is_open)]) + _le(shift.number, 2) + _le(shift.receipts, 2)


def _fn_resource(ctx: Context, _: bytes) -> bytes:
    fn = ctx.state.fn
    marking = b"" if fn.marking_fill_pct is None else bytes([fn.marking_fill_pct])
    return _le(fn.documents_left, 4) + _le(fn.storage_30d_free_kb, 4) + marking


def _archive_document(ctx: Context, params: bytes) -> bytes:
    if ctx.state.fn.phase not in (3, 7):
        raise RefusalError(WRONG_FN_STATE)
    doc = ctx.state.archive_document(int.from_bytes(params, "little"))
    if doc is None:
        raise RefusalError(NO_DATA_IN_FN)
    body = bytes([doc.doc_type, int(doc.ofd_confirmed)]) + _fn_datetime(doc.at)
    body += _le(doc.number, 4) + _le(doc.fiscal_sign, 4)
    if doc.shift_number is not None:
        return body + _le(doc.shift_number, 2)
    if doc.doc_type == DOC_RECEIPT:
        return body + b"\x01" + _le(doc.amount, 5)  # operation 1 = sale (приход)
    return body


def _error_text(ctx: Context, params: bytes) -> bytes:
    text = ERROR_MEANINGS.get(params[0], "no error" if params[0] == 0 else "unknown error")
    return text.encode("cp1251", errors="replace")


COMMANDS: dict[int, Command] = {
    0xFC: Command(_device_type, Password.NONE, 0),
    0xF7: Command(_model_parameters, Password.NONE, 1),  # sub-command 01
    0x10: Command(_short_status, Password.OPERATOR, 0),
    0x11: Command(_long_status, Password.OPERATOR, 0),
    0x1F: Command(_read_table, Password.SYSADMIN, 4),
    0x2D: Command(_table_structure, Password.SYSADMIN, 1),
    0x2E: Command(_field_structure, Password.SYSADMIN, 2),
    0xFF01: Command(_fn_status, Password.SYSADMIN, 0),
    0xFF02: Command(_fn_serial, Password.SYSADMIN, 0),
    0xFF03: Command(_fn_validity, Password.SYSADMIN, 0),
    0xFF04: Command(_fn_firmware, Password.SYSADMIN, 0),
    0xFF09: Command(_registration, Password.SYSADMIN, 0),
    0xFF0A: Command(_archive_document, Password.SYSADMIN, 4),
    0xFF39: Command(_ofd_status, Password.SYSADMIN, 0),
    0xFF3F: Command(_unconfirmed, Password.SYSADMIN, 0),
    0xFF40: Command(_shift_parameters, Password.SYSADMIN, 0),
    0xFF63: Command(_fn_resource, Password.SYSADMIN, 0),
    0x6B: Command(_error_text, Password.NONE, 1),
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


# ------------------------------------------------------------------ the device


class ShtrihEmulator:
    """The register: state, clock and the log of what arrived.

    ``received`` lists the code (``0xFC``, ``0xFF01`` ...) of every intact frame that
    arrived, in order, including frames the ``nak_frames`` fault refused; codes outside
    the command table or the allowlist are also appended to ``forbidden_received``.
    ``clock`` is the host's clock (naive local); the device runs ``clock_offset_s``
    ahead of it. ``seed`` makes the ``garbage_before_stx`` noise repeatable.
    """

    def __init__(
        self,
        state: DeviceState | None = None,
        clock: Callable[[], datetime] = datetime.now,
        seed: int | None = None,
    ) -> None:
        self.state = state if state is not None else default_state()
        self.clock = clock  # host clock; the device runs clock_offset_s ahead of it
        self.received: list[int] = []
        self.forbidden_received: list[int] = []
        self.rng = random.Random(seed)

    def open_link(self, transport: Transport) -> ShtrihLink:
        return ShtrihLink(self, transport)

    def device_time(self) -> datetime:
        return self.clock() + timedelta(seconds=self.state.clock_offset_s)

    def note(self, frame: Frame) -> None:
        """Log a frame that arrived intact (even one the link then NAKs on purpose)."""
        self.received.append(frame.code)
        if frame.code not in COMMANDS or not is_allowed(frame.code, frame.data):
            self.forbidden_received.append(frame.code)

    def execute(self, body: bytes) -> bytes:
        """Answer body (CMD, error, fields) for a command body (CMD, data)."""
        frame = split_command(body)
        code, data = frame.code, frame.data
        command = COMMANDS.get(code)
        if command is None or not is_allowed(code, data) or self.state.lacks(code):
            return _error(code, UNSUPPORTED)
        width = 0 if command.password is Password.NONE else 4
        if len(data) != width + command.params:
            return _error(code, BAD_LENGTH)
        try:
            operator = _operator(command.password, int.from_bytes(data[:width], "little"))
            context = Context(self.state, self.device_time(), operator)
            return command_bytes(code) + b"\x00" + command.handler(context, data[width:])
        except RefusalError as refusal:
            return _error(code, refusal.code)

    def stale_answer(self) -> bytes:
        """The answer frame a POS program left unacknowledged: 10h for cashier 1."""
        context = Context(self.state, self.device_time(), 1)
        return encode_frame(b"\x10\x00" + _short_status(context, b""))


class ShtrihLink:
    """Device side of one connection (section 3.1), with the scenario's faults."""

    byte_timeout_s = BYTE_TIMEOUT_S

    def __init__(self, emulator: ShtrihEmulator, transport: Transport) -> None:
        self._emulator = emulator
        self._transport = transport
        self._reader = FrameReader()
        self._noise = False  # bytes that were neither control bytes nor a frame
        self._pending: bytes | None = None  # answer frame not yet acknowledged
        self._commands = 0

    @property
    def _faults(self) -> Faults:
        return self._emulator.state.faults

    @property
    def mid_frame(self) -> bool:
        return self._reader.started or self._noise

    def start(self) -> list[Output]:
        if self._faults.pending_answer:
            self._pending = self._emulator.stale_answer()
        return []

    def feed(self, data: bytes) -> list[Output]:
        if self._faults.silent:
            return []
        outputs: list[Output] = []
        while data:
            if self._reader.started or data[0] == STX:
                self._noise = False
                raw, data = self._reader.feed(data)
                if raw is not None:
                    outputs += self._on_frame(raw)
            else:
                outputs += self._on_byte(data[0])
                data = data[1:]
        return outputs

    def timeout(self) -> list[Output]:
        """The line went quiet inside a frame or after noise: NAK (section 3.1)."""
        if not self.mid_frame:
            return []
        self._reader.reset()
        self._noise = False
        return [] if self._faults.silent else [Write(bytes([NAK]))]

    def _on_byte(self, byte: int) -> list[Output]:
        if byte == ENQ:
            if self._pending is None:
                return [Write(bytes([NAK]))]
            return [Write(bytes([ACK])), self._transmit(self._pending)]
        if byte == ACK and self._pending is not None:
            return self._acknowledged()
        if byte not in (ACK, NAK):
            self._noise = True
        return []  # a NAK keeps the answer for the next ENQ

    def _on_frame(self, raw: bytes) -> list[Output]:
        try:
            frame = decode_frame(raw)
        except (FrameError, ChecksumError):
            return [Write(bytes([NAK]))]
        self._emulator.note(frame)
        if self._faults.take("nak_frames"):
            return [Write(bytes([NAK]))]
        self._commands += 1
        self._pending = encode_frame(self._emulator.execute(frame.body))
        return [Write(bytes([ACK])), self._transmit(self._pending)]

    def _transmit(self, answer: bytes) -> Write:
        faults = self._faults
        if faults.take("wrong_lrc_answers"):
            answer = answer[:-1] + bytes([answer[-1] ^ 0x55])
        if faults.take("cut_answers"):
            answer = answer[: max(2, len(answer) // 2)]
        rng = self._emulator.rng
        noise = bytes(rng.randrange(0x20, 0x7F) for _ in range(faults.garbage_before_stx))
        delay = faults.slow_answer_s + (BUSY_DELAY_S if faults.busy_printing else 0.0)
        return Write(noise + answer, delay)

    def _acknowledged(self) -> list[Output]:
        self._pending = None
        outputs: list[Output] = []
        stray = self._faults.stray_ff
        if stray or (stray is None and self._transport == "tcp"):
            outputs.append(Write(bytes([STRAY])))
        limit = self._faults.disconnect_after
        if limit is not None and self._commands >= limit:
            outputs.append(Close())
        return outputs
