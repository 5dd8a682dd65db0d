"""Vendor-neutral, scriptable state of a simulated cash register, loaded from TOML.

Every fact a driver reads lives here once; the ATOL, Pirit and Shtrih-M emulators only
encode it. A scenario file names the facts that differ from the packaged
``scenarios/default.toml`` (a healthy fiscal register with an open shift); it is merged
over that file key by key, so ``[fn] valid_until = "+5d"`` alone is a valid scenario::

    [fn]
    phase = 3                      # raw FN phase: 0, 1, 3 fiscal, 7 post-fiscal, 15
    valid_until = "+5d"            # relative to load time, or "2026-12-31"
    [ofd]
    unsent_count = 40
    first_unsent_at = "-29d"
    [faults]
    nak_frames = 2

Times are naive local wall-clock time, as a register keeps them. A string of the form
``[+-]<number><s|m|h|d|w>`` (``"-3d"``, ``"+20d"``, ``"-5h"``) or ``"now"`` is resolved
once at load against the ``now`` passed in. Faults are mutable while a simulator runs.
"""

from __future__ import annotations

import re
import threading
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    model_validator,
)
from pydantic_core import PydanticCustomError

from kktmon.protocol.errors import ConfigError

_RELATIVE = re.compile(r"^([+-])(\d+(?:\.\d+)?)([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_relative(text: str) -> timedelta | None:
    """``"-3d"`` -> ``-timedelta(days=3)``; ``"now"`` -> zero; anything else -> None."""
    if text.strip() == "now":
        return timedelta(0)
    match = _RELATIVE.match(text.strip())
    if match is None:
        return None
    sign, amount, unit = match.groups()
    delta = timedelta(**{_UNITS[unit]: float(amount)})
    return -delta if sign == "-" else delta


def _load_time(info: ValidationInfo) -> datetime:
    context = info.context or {}
    now = context.get("now")
    return now if isinstance(now, datetime) else datetime.now()


def _relative(value: Any) -> timedelta | None:
    if not isinstance(value, str):
        return None
    delta = parse_relative(value)
    if delta is None and value.strip()[:1] in ("+", "-"):
        raise ValueError(f"{value!r} is not a relative time like '-3d', '+20d', '-5h', '-30m'")
    return delta


def _resolve_datetime(value: Any, info: ValidationInfo) -> Any:
    delta = _relative(value)
    return value if delta is None else _load_time(info) + delta


def _resolve_date(value: Any, info: ValidationInfo) -> Any:
    delta = _relative(value)
    return value if delta is None else (_load_time(info) + delta).date()


def _naive_local(value: datetime) -> datetime:
    # A register has no time zone: an aware time in a file means "this moment, here".
    return value if value.tzinfo is None else value.astimezone().replace(tzinfo=None)


LocalTime = Annotated[datetime, BeforeValidator(_resolve_datetime), AfterValidator(_naive_local)]
LocalDate = Annotated[date, BeforeValidator(_resolve_date)]
Byte = Annotated[int, Field(ge=0, le=0xFF)]
Word = Annotated[int, Field(ge=0, le=0xFFFF)]
Dword = Annotated[int, Field(ge=0, le=0xFFFF_FFFF)]
Digits16 = Annotated[str, Field(pattern=r"^\d{16}$")]
FfdVersion = Literal["1.0", "1.05", "1.1", "1.2"]
_COMMAND_NAME = r"^[0-9A-Fa-f]{2}([0-9A-Fa-f]{2})?(/\d{1,3})?$"  # DeviceState.unsupported


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class Ffd(_Model):
    device: FfdVersion
    fn: FfdVersion
    registered: FfdVersion


class FnState(_Model):
    serial: Digits16
    phase: Byte
    valid_until: LocalDate
    registrations_left: Byte
    registrations_done: Byte
    warnings: Byte
    last_document_number: Dword
    last_document_at: LocalTime
    documents_left: Dword
    storage_30d_free_kb: Dword
    marking_fill_pct: Byte | None = None
    firmware: Annotated[str, Field(max_length=16, pattern=r"^[ -~]*$")]
    release_firmware: bool


class OfdState(_Model):
    unsent_count: Word
    first_unsent_number: Dword | None = None  # None: the oldest of the last documents
    first_unsent_at: LocalTime | None = None
    exchange_status: Byte
    server: str
    port: Word
    # The OFD channel runs through host software (ATOL Ethernet-over-USB/-transport and
    # its twins): an agent holding the port can stop documents from leaving (quirk Q3).
    via_host: bool = False


class ShiftModel(_Model):
    state: Literal["closed", "open", "expired"]
    number: Word  # the open shift, or the last closed one
    opened_at: LocalTime | None = None
    receipts: Word  # receipts in the shift (FN numbering)

    @property
    def is_open(self) -> bool:
        return self.state != "closed"


class Printer(_Model):
    paper: Literal["ok", "near_end", "out"]
    cover_open: bool
    fault: bool
    # The paper ran out in the middle of a document: the register prints nothing more
    # until the host sends its "continue printing" command (Shtrih B0h), paper back or
    # not. A register that runs out while ``faults.busy_printing`` sets it itself.
    suspended: bool = False


class RegistrationState(_Model):
    registered_at: LocalTime
    tax_systems: Byte
    work_mode: Byte
    fd_number: Dword
    fiscal_sign: Dword
    ofd_inn: Annotated[str, Field(pattern=r"^\d{10}(\d{2})?$")]


_faults_lock = threading.Lock()


class Faults(_Model):
    """Link faults a test switches on; counters count down as they fire."""

    silent: bool = False
    garbage_before_stx: int = Field(0, ge=0)
    nak_frames: int = Field(0, ge=0)
    slow_answer_s: float = Field(0.0, ge=0)
    cut_answers: int = Field(0, ge=0)
    wrong_lrc_answers: int = Field(0, ge=0)
    busy_printing: bool = False
    disconnect_after: int | None = Field(None, ge=1)
    stray_ff: bool | None = None  # None: on for TCP, off for serial (quirk 11.1)
    pending_answer: bool = False
    lost_answers: int = Field(0, ge=0)  # the next n answers sent never reach the host

    def take(
        self,
        counter: Literal["nak_frames", "cut_answers", "wrong_lrc_answers", "lost_answers"],
    ) -> bool:
        """Use up one shot of a counted fault; False when none is left."""
        with _faults_lock:
            left: int = getattr(self, counter)
            if left <= 0:
                return False
            setattr(self, counter, left - 1)
            return True


class DeviceState(_Model):
    """Everything a simulated register knows about itself."""

    model: str
    model_code: Byte | None = None  # vendor's numeric model id; None: the emulator's default
    serial: Digits16
    rnm: Annotated[str, Field(pattern=r"^\d{1,20}$")]
    inn: Annotated[str, Field(pattern=r"^\d{10}(\d{2})?$")]
    organisation: str
    firmware: str
    firmware_build: Word
    firmware_date: date
    ffd: Ffd
    fn: FnState
    ofd: OfdState
    shift: ShiftModel
    printer: Printer
    registration: RegistrationState
    clock_offset_s: float  # device clock minus host clock
    # Hex command code ("FF63", "78"), or hex command "/" decimal sub-request ("78/18").
    unsupported: list[Annotated[str, Field(pattern=_COMMAND_NAME)]]
    faults: Faults = Field(default_factory=Faults)

    @model_validator(mode="after")
    def _consistent(self) -> DeviceState:
        # Checked when a whole state is validated (loading), not on every assignment, so
        # a test may change related facts one at a time while a simulator runs.
        needed = self.shift.receipts + (1 if self.shift.is_open else 2)
        if self.shift.is_open and self.shift.opened_at is None:
            problem = "shift.opened_at: required when the shift is open or expired"
        elif self.ofd.unsent_count and self.ofd.first_unsent_at is None:
            problem = "ofd.first_unsent_at: required when ofd.unsent_count > 0"
        elif self.fn.phase & 0x02 and self.fn.last_document_number < needed:
            # The shift-open document sits at last_document_number - receipts (FF0Ah).
            problem = (
                f"fn.last_document_number: must be at least {needed} to hold "
                f"shift.receipts = {self.shift.receipts} and the shift documents"
            )
        else:
            return self
        raise PydanticCustomError("inconsistent_state", problem)

    def lacks(self, code: int, sub: int | None = None) -> bool:
        """True when the model does not implement command ``code`` (``unsupported``).

        ``"78"`` names the command with every sub-request; ``"78/18"`` only sub 18, so
        it matches ``lacks(0x78, 18)`` and never ``lacks(0x78)``.
        """
        for name in self.unsupported:
            command, _, wanted = name.partition("/")
            if int(command, 16) == code and (not wanted or int(wanted) == sub):
                return True
        return False

    def first_unsent_number(self) -> int:
        if not self.ofd.unsent_count:
            return 0
        if self.ofd.first_unsent_number is not None:
            return self.ofd.first_unsent_number
        return max(1, self.fn.last_document_number - self.ofd.unsent_count + 1)

    def archive_document(self, number: int) -> FnDocument | None:
        return synthesise_document(self, number)


# ------------------------------------------------------------------ FN archive

DOC_REGISTRATION = 1
DOC_SHIFT_OPEN = 2
DOC_RECEIPT = 3
DOC_SHIFT_CLOSE = 5
_STEP = timedelta(minutes=10)  # spacing of documents older than the current shift


@dataclass(frozen=True)
class FnDocument:
    """One document of the synthesised FN archive (archive type codes, not FF01h's)."""

    number: int
    doc_type: int
    at: datetime
    fiscal_sign: int
    ofd_confirmed: bool
    shift_number: int | None = None
    amount: int = 0  # kopecks, receipts only


def synthesise_document(state: DeviceState, number: int) -> FnDocument | None:
    """Document ``number`` of an archive consistent with the state, or None.

    Document 1 is the registration; the current shift's opening document sits at
    ``last_document_number - receipts`` dated ``shift.opened_at`` and receipts follow it
    up to the last document; a closed shift ends with its closing document.
    """
    last = state.fn.last_document_number
    if not 1 <= number <= last:
        return None
    kind, at, shift_number = _document_facts(state, number)
    unsent_from = state.first_unsent_number() or last + 1
    return FnDocument(
        number=number,
        doc_type=kind,
        at=at,
        fiscal_sign=number * 2654435761 % 0xFFFF_FFFF,
        ofd_confirmed=number < unsent_from,
        shift_number=shift_number,
        amount=10_000 + number % 97 * 100 if kind == DOC_RECEIPT else 0,
    )


def _document_facts(state: DeviceState, number: int) -> tuple[int, datetime, int | None]:
    fn, shift = state.fn, state.shift
    last = fn.last_document_number
    open_no = last - shift.receipts - (0 if shift.is_open else 1)
    opened_at = shift.opened_at if shift.is_open else None
    if opened_at is None:
        opened_at = fn.last_document_at - _STEP * (last - open_no)
    if number == 1:
        return DOC_REGISTRATION, state.registration.registered_at, None
    if number == open_no:
        return DOC_SHIFT_OPEN, opened_at, shift.number
    if number == last and not shift.is_open:
        return DOC_SHIFT_CLOSE, fn.last_document_at, shift.number
    if number > open_no:
        span = fn.last_document_at - opened_at
        return DOC_RECEIPT, opened_at + span * (number - open_no) / (last - open_no), None
    at = opened_at - _STEP * (open_no - number)
    if number == open_no - 1 and shift.number > 1:
        return DOC_SHIFT_CLOSE, at, shift.number - 1
    return DOC_RECEIPT, at, None


# ------------------------------------------------------------------ loading


def _merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _read_toml(source: Path | Traversable) -> dict[str, Any]:
    try:
        with source.open("rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"scenario {source}: cannot read: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"scenario {source}: not valid TOML: {exc}") from exc


def _scenario_file(name: str) -> Traversable:
    return resources.files("kktmon.simulators").joinpath("scenarios", f"{name}.toml")


def _default_file() -> Traversable:
    return _scenario_file("default")


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"])
        problems.append(f"{key}: {error['msg']}" if key else error["msg"])
    return "; ".join(problems)


def state_from_mapping(data: Mapping[str, Any], now: datetime | None = None) -> DeviceState:
    """Validate scenario data (already merged); relative times resolve against ``now``."""
    try:
        return DeviceState.model_validate(data, context={"now": now or datetime.now()})
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from exc


def load_scenario(path: str | Path | Traversable, now: datetime | None = None) -> DeviceState:
    """Load a scenario file merged over the packaged default; raises :class:`ConfigError`."""
    source = Path(path) if isinstance(path, str) else path
    data = _merge(_read_toml(_default_file()), _read_toml(source))
    try:
        return state_from_mapping(data, now)
    except ConfigError as exc:
        raise ConfigError(f"scenario {source}: {exc}") from exc


def builtin_scenarios() -> list[str]:
    """Names of the scenario files shipped in ``kktmon.simulators/scenarios``."""
    folder = resources.files("kktmon.simulators").joinpath("scenarios")
    return sorted(
        p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml")
    )


def load_builtin(name: str, now: datetime | None = None) -> DeviceState:
    if name not in builtin_scenarios():
        raise ConfigError(f"no built-in scenario {name!r}; known: {', '.join(builtin_scenarios())}")
    return load_scenario(_scenario_file(name), now)


def default_state(now: datetime | None = None) -> DeviceState:
    """A healthy fiscal register with an open shift (``scenarios/default.toml``)."""
    return state_from_mapping(_read_toml(_default_file()), now)
