"""The vendor-neutral health model every driver produces (DESIGN.md section 3).

Field names are the MQTT contract: consumers at the service centre read them, so they
change only with the ``schema`` version. Booleans decoded from vendor flag bytes always
travel beside the raw byte, so a later reader can re-decode what we did not understand.

Datetimes are timezone-aware ISO 8601 in JSON. Registers keep local wall-clock time;
drivers attach the host's zone, because DESIGN.md compares both clocks in one zone.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from kktmon.protocol.problems import BlockReason, Owner, Severity

__all__ = [
    "OFD_BLOCK_AFTER",
    "SCHEMA_VERSION",
    "SHIFT_BLOCK_AFTER",
    "ClockInfo",
    "DeviceInfo",
    "FfdVersions",
    "FnHealth",
    "FnPhase",
    "FnPhaseInfo",
    "FnWarnings",
    "HealthSnapshot",
    "LinkInfo",
    "LinkState",
    "OfdExchangeStatus",
    "OfdQueue",
    "Owner",
    "PaperState",
    "PrinterInfo",
    "Problem",
    "Severity",
    "ShiftInfo",
    "ShiftState",
    "earliest_block",
]

SCHEMA_VERSION = 1

#: After this long without an OFD confirmation the FN refuses to sign (54-ФЗ, FN error 15h).
OFD_BLOCK_AFTER = timedelta(days=30)
#: A shift may stay open at most this long (FN error 16h).
SHIFT_BLOCK_AFTER = timedelta(hours=24)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", use_enum_values=False)


class FnPhase(StrEnum):
    """Life phase of the fiscal drive, decoded from its bit mask."""

    SETUP = "setup"
    READY = "ready"
    FISCAL = "fiscal"
    POST_FISCAL = "post_fiscal"
    ARCHIVE_READ = "archive_read"
    #: A source that can only say "not fiscal" (kkmserver's ``FN_IsFiscal`` false), not
    #: whether the drive is in setup or ready: either way the register cannot sell.
    NOT_FISCAL = "not_fiscal"
    UNKNOWN = "unknown"


class ShiftState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    EXPIRED = "expired"


class PaperState(StrEnum):
    OK = "ok"
    NEAR_END = "near_end"
    OUT = "out"


class LinkState(StrEnum):
    OK = "ok"
    BUSY = "busy"
    UNREACHABLE = "unreachable"
    GARBLED = "garbled"


class BusyReason:
    """``link.busy_reason`` values (DESIGN.md section 3); the last two take a suffix."""

    PORT_HELD = "port_held"  # another program (usually the POS) holds the port
    PRINTING = "printing"  # the register refuses reads while printing or in a mode
    NO_ANSWER = "no_answer"  # answers the link check, not the read, even when re-asked
    QUEUE_BLOCKED = "queue_blocked:"  # + the server's reason: it stopped the queue
    SERVER_BUSY = "server_busy:"  # + the server's words: our read waits behind others


class FfdVersions(_Model):
    """Fiscal data format versions: what the device, the drive and the registration use."""

    device: str | None = None
    fn: str | None = None
    registered: str | None = None


class DeviceInfo(_Model):
    vendor: str
    model: str | None = None
    serial: str | None = None
    firmware: str | None = None
    rnm: str | None = None
    inn: str | None = None
    ffd: FfdVersions = Field(default_factory=FfdVersions)
    transport: str | None = None


class FnWarnings(_Model):
    """The FN warning-flags byte (fiscal-health.md 1.3), decoded and raw."""

    urgent_replacement: bool = False
    resource_exhausting: bool = False
    memory_90: bool = False
    ofd_timeout: bool = False
    critical_error: bool = False
    raw: int = 0

    @classmethod
    def from_byte(cls, raw: int) -> FnWarnings:
        return cls(
            urgent_replacement=bool(raw & 0x01),
            resource_exhausting=bool(raw & 0x02),
            memory_90=bool(raw & 0x04),
            ofd_timeout=bool(raw & 0x08),
            critical_error=bool(raw & 0x80),
            raw=raw,
        )


class FnPhaseInfo(_Model):
    name: FnPhase
    #: The drive's phase byte; null where the source gives none (``not_fiscal``).
    raw: int | None = None

    @classmethod
    def from_byte(cls, raw: int) -> FnPhaseInfo:
        return cls(name=_PHASES.get(raw, FnPhase.UNKNOWN), raw=raw)


_PHASES = {
    0x00: FnPhase.SETUP,
    0x01: FnPhase.READY,
    0x03: FnPhase.FISCAL,
    0x07: FnPhase.POST_FISCAL,
    0x0F: FnPhase.ARCHIVE_READ,
}


class FnHealth(_Model):
    serial: str | None = None
    phase: FnPhaseInfo | None = None
    valid_until: date | None = None
    days_left: int | None = None
    registrations_left: int | None = None
    warnings: FnWarnings = Field(default_factory=FnWarnings)
    last_document_number: int | None = None
    last_document_at: datetime | None = None
    memory_used_pct: float | None = None
    documents_left: int | None = None
    storage_30d_free_kb: int | None = None
    firmware: str | None = None


class OfdExchangeStatus(_Model):
    """OFD exchange status bits (fiscal-health.md 2.2)."""

    transport_connected: bool = False
    message_pending: bool = False
    awaiting_receipt: bool = False
    command_from_ofd: bool = False
    settings_changed: bool = False
    awaiting_command_answer: bool = False
    raw: int = 0

    @classmethod
    def from_byte(cls, raw: int) -> OfdExchangeStatus:
        return cls(
            transport_connected=bool(raw & 0x01),
            message_pending=bool(raw & 0x02),
            awaiting_receipt=bool(raw & 0x04),
            command_from_ofd=bool(raw & 0x08),
            settings_changed=bool(raw & 0x10),
            awaiting_command_answer=bool(raw & 0x20),
            raw=raw,
        )


class OfdQueue(_Model):
    unsent_count: int | None = None
    first_unsent_number: int | None = None
    first_unsent_at: datetime | None = None
    oldest_unsent_age_h: float | None = None
    exchange: OfdExchangeStatus | None = None
    #: The register reaches the OFD through the host PC (ATOL pushes OFD packets to the
    #: driver): documents reach the OFD only while the PC-side sender runs. Null: unknown.
    via_host: bool | None = None


class ShiftInfo(_Model):
    state: ShiftState | None = None
    number: int | None = None
    opened_at: datetime | None = None
    hours_open: float | None = None


class PrinterInfo(_Model):
    paper: PaperState | None = None
    cover_open: bool | None = None
    fault: bool | None = None
    raw: dict[str, int] = Field(default_factory=dict)


class ClockInfo(_Model):
    device_time: datetime | None = None
    skew_s: float | None = None


class LinkInfo(_Model):
    state: LinkState = LinkState.OK
    duration_ms: float = 0.0
    bytes_tx: int = 0
    bytes_rx: int = 0
    retries: int = 0
    last_error: str | None = None
    #: Why the register or its driver server is busy (null unless ``state`` is busy):
    #: ``port_held``, ``printing``, ``no_answer``, ``queue_blocked:<reason>`` or
    #: ``server_busy:<text>``. DEVICE_BUSY's severity follows it.
    busy_reason: str | None = None


class Problem(_Model):
    """One problem of a register; ``code`` is a :class:`~kktmon.protocol.problems.ProblemCode`
    value, kept a string so a newer agent's code does not invalidate the payload."""

    code: str
    severity: Severity
    owner: Owner
    message: str
    since: datetime | None = None
    facts: dict[str, str | int | float | bool | None] = Field(default_factory=dict)


class HealthSnapshot(_Model):
    """One poll's worth of truth about one register."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    schema_version: int = Field(default=SCHEMA_VERSION, alias="schema")
    taken_at: datetime
    device: DeviceInfo
    fn: FnHealth = Field(default_factory=FnHealth)
    ofd: OfdQueue = Field(default_factory=OfdQueue)
    shift: ShiftInfo = Field(default_factory=ShiftInfo)
    printer: PrinterInfo = Field(default_factory=PrinterInfo)
    clock: ClockInfo = Field(default_factory=ClockInfo)
    link: LinkInfo = Field(default_factory=LinkInfo)
    stale: bool = False
    last_good_at: datetime | None = None
    block_at: datetime | None = None
    #: A :class:`~kktmon.protocol.problems.BlockReason` value (a string, like ``Problem.code``).
    block_reason: str | None = None
    problems: list[Problem] = Field(default_factory=list)

    @property
    def kkt_id(self) -> str:
        """``<vendor>-<serial>``: the register's name in MQTT topics."""
        return f"{self.device.vendor}-{self.device.serial or 'unknown'}"

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True)

    def with_block_deadline(self) -> HealthSnapshot:
        """Copy with ``block_at``/``block_reason`` set to the earliest known deadline."""
        deadline = earliest_block(self)
        if deadline is None:
            return self.model_copy(update={"block_at": None, "block_reason": None})
        return self.model_copy(update={"block_at": deadline[0], "block_reason": deadline[1]})


def earliest_block(snapshot: HealthSnapshot) -> tuple[datetime, BlockReason] | None:
    """The earliest moment this register will stop selling, and why.

    Only deadlines the register itself reports are used; projections from document
    rates belong to the agent's rules, which see several polls.
    """
    candidates: list[tuple[datetime, BlockReason]] = []
    if snapshot.fn.valid_until is not None:
        # Conservative: the drive may refuse from the first minute of its end date.
        expiry = datetime.combine(snapshot.fn.valid_until, time(), snapshot.taken_at.tzinfo)
        candidates.append((expiry, BlockReason.FN_EXPIRY))
    if snapshot.ofd.unsent_count and snapshot.ofd.first_unsent_at is not None:
        ofd_block = snapshot.ofd.first_unsent_at + OFD_BLOCK_AFTER
        candidates.append((ofd_block, BlockReason.OFD_30_DAYS))
    if snapshot.shift.state is not ShiftState.CLOSED and snapshot.shift.opened_at is not None:
        shift_block = snapshot.shift.opened_at + SHIFT_BLOCK_AFTER
        candidates.append((shift_block, BlockReason.SHIFT_24_HOURS))
    return min(candidates) if candidates else None
