"""Answers of the ATOL driver servers (atol-dto10.md sections 3-6) as pydantic models.

Both answer shapes are read into one model per fact: the JSON *task* result (queued
jobs, G1-G3) and the synchronous G3 *operation* result, which renames a few fields
(``expiredAt`` for ``expiredTime``, a nested ``validity`` in ``fnInfo``,
``ofdExchangeStatus``/``ofdExchangeErrors`` for ``status``/``errors``). Errors come flat
on G1 (``errorCode``/``errorDescription``), nested on G2/G3 (``error: {code,
description}``), and HTTP error bodies either wrapped or bare (example E5).

Dates carry an offset and use ``T`` or a space (Q10); serials and numbers that look
like integers are kept as strings with their leading zeros (Q11); versions (FFD,
firmware, the server's) are read from strings and numbers alike (the vendor's own
OpenAPI mock sends ``"ffdVersion": 1.05``). ``ФН`` is the fiscal drive, ``ОФД`` the
fiscal data operator, ``ЗН ККТ`` the register's serial, ``РНМ`` its tax registration
number, ``ИНН`` the owner's taxpayer number.

A fact is read field by field (:func:`parse_fact`, DESIGN.md section 3): a field that
does not validate — a number where text belongs, a date that is no date, a state or
phase name this code does not know — is null, and the fact's other fields stand; only a
fact without its wrapper or an identity without a serial is malformed. Pure, no I/O.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from kktmon.protocol.errors import MalformedAnswerError
from kktmon.protocol.tolerant import Version, validate_tolerant


def _datetime(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.strip().replace(" ", "T", 1))
        except ValueError as exc:
            raise ValueError(f"not an ISO 8601 date-time: {value!r}") from exc
    return value


def _text(value: Any) -> Any:
    # Q11: a vendor example prints registrationNumber unquoted; keep it a string.
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


M = TypeVar("M", bound=BaseModel)
Stamp = Annotated[datetime, BeforeValidator(_datetime)]
Text = Annotated[str, BeforeValidator(_text)]


class _Answer(BaseModel):
    # Servers add fields between versions: ignore what we do not read.
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class ErrorInfo(_Answer):
    code: int = 0
    description: str = ""


OK_ERROR = ErrorInfo()

TaskStatus = Literal["wait", "inProgress", "ready", "error", "interrupted", "blocked", "canceled"]
PENDING: frozenset[str] = frozenset({"wait", "inProgress"})


class TaskResult(_Answer):
    """One task's entry of a job result; ``error`` normalised from both shapes."""

    status: TaskStatus
    error: ErrorInfo = OK_ERROR
    result: dict[str, Any] | None = None

    @classmethod
    def parse(cls, data: Any) -> TaskResult:
        if isinstance(data, dict) and "errorCode" in data and "error" not in data:
            flat = ErrorInfo(code=data["errorCode"], description=data.get("errorDescription", ""))
            data = {**data, "error": flat.model_dump()}
        return _validate(cls, data, "task result")


class JobResults(_Answer):
    results: tuple[TaskResult, ...]

    @classmethod
    def parse(cls, data: Any) -> JobResults:
        if not isinstance(data, dict) or not isinstance(data.get("results"), list):
            raise MalformedAnswerError(f"atol-web job result without a results array: {data!r}")
        return cls(results=tuple(TaskResult.parse(item) for item in data["results"]))

    @property
    def pending(self) -> bool:
        return any(item.status in PENDING for item in self.results)


_BLOCKED = AliasChoices("isBlocked", "is_blocked")


class AddResult(_Answer):
    """The 201 answer to ``POST /requests`` (E1)."""

    number: int = 0
    uuid: str = ""
    is_blocked: bool = Field(
        default=False, validation_alias=AliasChoices("isBlocked", "is_blocked")
    )
    blocked_uuid: str = Field(default="", validation_alias="blockedUUID")
    block_reason: str = Field(default="", validation_alias="blockReason")


class QueueStatus(_Answer):
    """``getRequestsQueueStatus`` (G2/G3, E4) or G1's ``/stat/requests`` (``is_blocked``)."""

    number: int = 0
    ready: int = 0
    canceled: int = 0
    is_blocked: bool = Field(
        default=False, validation_alias=AliasChoices("isBlocked", "is_blocked")
    )
    block_reason: str | None = Field(default="", validation_alias="blockReason")
    blocked_uuid: str | None = Field(default="", validation_alias="blockedUUID")


class ServerInfo(_Answer):
    """G3 ``serverInfo`` (E10): versions and the PC's clock."""

    server_version: Version | None = Field(default=None, validation_alias="serverVersion")
    driver_version: Version | None = Field(default=None, validation_alias="driverVersion")
    os: str | None = None
    current_date_time: Stamp | None = Field(default=None, validation_alias="currentDateTime")


def http_error(body: Any) -> ErrorInfo | None:
    """The error of an HTTP error body: wrapped ``{"error": {...}}``, bare, or G1 flat."""
    if not isinstance(body, dict):
        return None
    inner = body.get("error")
    if isinstance(inner, dict):
        body = inner
    elif "errorCode" in body:
        body = {"code": body["errorCode"], "description": body.get("errorDescription", "")}
    if "code" not in body:
        return None
    try:
        return ErrorInfo.model_validate(body)
    except ValidationError:
        return None


def _validate(model: type[M], data: Any, what: str) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise MalformedAnswerError(f"atol-web {what}: {exc.errors()[0]['msg']}") from exc


# ------------------------------------------------------------------ task / operation facts


#: The shift states the servers name (G3 adds ``unknown``); any other word is null.
ShiftWord = Literal["closed", "opened", "expired", "unknown"]


class DeviceStatus(_Answer):
    """``deviceStatus`` (section 5.1); the same from the task and the operation."""

    current_date_time: Stamp | None = Field(default=None, validation_alias="currentDateTime")
    shift: ShiftWord | None = None
    blocked: bool | None = None
    cover_opened: bool | None = Field(default=None, validation_alias="coverOpened")
    paper_present: bool | None = Field(default=None, validation_alias="paperPresent")
    fiscal: bool | None = None
    fn_fiscal: bool | None = Field(default=None, validation_alias="fnFiscal")
    fn_present: bool | None = Field(default=None, validation_alias="fnPresent")


class RegisterIdentity(_Answer):
    """``deviceInfo`` (5.2): the register's model, serial (ЗН ККТ), firmware and FFD
    versions; the G3 operation adds ``appVersion`` and friends."""

    model: int | None = None
    model_name: str | None = Field(default=None, validation_alias="modelName")
    serial: Text
    firmware_version: Version | None = Field(default=None, validation_alias="firmwareVersion")
    configuration_version: Version | None = Field(
        default=None, validation_alias="configurationVersion"
    )
    app_version: Version | None = Field(default=None, validation_alias="appVersion")
    ffd_version: Version | None = Field(default=None, validation_alias="ffdVersion")
    fn_ffd_version: Version | None = Field(default=None, validation_alias="fnFfdVersion")

    @property
    def firmware(self) -> str | None:
        """``appVersion`` when present: G3's ``firmwareVersion`` is a build number."""
        return self.app_version or self.firmware_version


class ShiftStatus(_Answer):
    """``shiftStatus`` (5.3): ``expiredTime`` from a task, ``expiredAt`` from G3."""

    state: ShiftWord | None = None
    number: int | None = None
    expired_at: Stamp | None = Field(
        default=None, validation_alias=AliasChoices("expiredTime", "expiredAt")
    )


class FnWarningFlags(_Answer):
    need_replacement: bool = Field(default=False, validation_alias="needReplacement")
    resource_exhausted: bool = Field(default=False, validation_alias="resourceExhausted")
    memory_overflow: bool = Field(default=False, validation_alias="memoryOverflow")
    ofd_timeout: bool = Field(default=False, validation_alias="ofdTimeout")
    critical_error: bool = Field(default=False, validation_alias="criticalError")

    @property
    def byte(self) -> int:
        """The FN warning byte every vendor reports (bits 0-3 and 7)."""
        bits = (
            (self.need_replacement, 0x01),
            (self.resource_exhausted, 0x02),
            (self.memory_overflow, 0x04),
            (self.ofd_timeout, 0x08),
            (self.critical_error, 0x80),
        )
        return sum(mask for flag, mask in bits if flag)


#: ``livePhase`` -> the FN phase byte of every other vendor (section 5.4).
LIVE_PHASES: dict[str, int] = {
    "init": 0x00,
    "configured": 0x01,
    "fiscalMode": 0x03,
    "postFiscalMode": 0x07,
    "accessArchive": 0x0F,
}
UNKNOWN_PHASE = 0xFF  # not a phase byte: decodes as "unknown"
#: The ``livePhase`` names of section 5.4; any other word is null.
LivePhase = Literal[
    "init", "configured", "fiscalMode", "postFiscalMode", "accessArchive", "unknown"
]


class FnInfo(_Answer):
    """``fnInfo`` (5.4); G3 nests the three validity fields in ``validity``."""

    serial: Text | None = None
    live_phase: LivePhase | None = Field(default=None, validation_alias="livePhase")
    validity_date: Stamp | None = Field(default=None, validation_alias="validityDate")
    number_of_registrations: int | None = Field(
        default=None, validation_alias="numberOfRegistrations"
    )
    registrations_remaining: int | None = Field(
        default=None, validation_alias="registrationsRemaining"
    )
    warnings: FnWarningFlags = Field(default_factory=FnWarningFlags)

    @property
    def phase(self) -> int | None:
        """The phase byte; None when the server gave no phase we can read."""
        if self.live_phase is None:
            return None
        return LIVE_PHASES.get(self.live_phase, UNKNOWN_PHASE)


def _flat_validity(data: Any) -> Any:
    """G3's ``fnInfo.validity`` fields at the level of the task's ``fnInfo``."""
    if isinstance(data, dict) and isinstance(data.get("validity"), dict):
        return {**data["validity"], **{k: v for k, v in data.items() if k != "validity"}}
    return data


class FnStatus(_Answer):
    """``fnStatus`` (5.5)."""

    fiscal_document_number: int | None = Field(
        default=None, validation_alias="fiscalDocumentNumber"
    )
    fiscal_receipt_number: int | None = Field(default=None, validation_alias="fiscalReceiptNumber")
    warnings: FnWarningFlags = Field(default_factory=FnWarningFlags)


class OfdErrors(_Answer):
    network: ErrorInfo = OK_ERROR
    ofd: ErrorInfo = OK_ERROR
    fn: ErrorInfo = OK_ERROR
    document_number: int | None = Field(default=None, validation_alias="documentNumber")
    last_success: Stamp | None = Field(
        default=None, validation_alias="lastSuccessConnectionDateTime"
    )


class OfdStatus(_Answer):
    not_sent_count: int | None = Field(default=None, validation_alias="notSentCount")
    first_number: int | None = Field(default=None, validation_alias="notSentFirstDocNumber")
    first_at: Stamp | None = Field(default=None, validation_alias="notSentFirstDocDateTime")


class OfdExchange(_Answer):
    """``ofdExchangeStatus`` (5.6): ``status``/``errors``, or G3's longer names."""

    status: OfdStatus = Field(
        default_factory=OfdStatus, validation_alias=AliasChoices("status", "ofdExchangeStatus")
    )
    errors: OfdErrors = Field(
        default_factory=OfdErrors, validation_alias=AliasChoices("errors", "ofdExchangeErrors")
    )


class Organization(_Answer):
    name: str | None = None
    vatin: Text | None = None


#: The register's OFD channel (its setting 276, as the driver's own ``getRegistrationInfo``
#: names it): ``usb`` (Ethernet over USB) and ``proto`` (the transport protocol) reach the
#: OFD through the PC's driver; the others from the register itself.
OfdChannel = Literal["usb", "ethernet", "wifi", "gsm", "proto", "tcpipOsStack"]
OFD_THROUGH_HOST: frozenset[str] = frozenset({"usb", "proto"})


class RegisteredDevice(_Answer):
    registration_number: Text | None = Field(default=None, validation_alias="registrationNumber")
    ffd_version: Version | None = Field(default=None, validation_alias="ffdVersion")
    ofd_channel: OfdChannel | None = Field(default=None, validation_alias="ofdChannel")

    @property
    def ofd_via_host(self) -> bool | None:
        """True when the register sends to the OFD through the PC; None: not told."""
        return None if self.ofd_channel is None else self.ofd_channel in OFD_THROUGH_HOST


class RegistrationInfo(_Answer):
    """``getRegistrationInfo`` (5.7): ИНН, РНМ and the registered FFD."""

    organization: Organization = Field(default_factory=Organization)
    device: RegisteredDevice = Field(default_factory=RegisteredDevice)


Fact = (
    DeviceStatus
    | RegisterIdentity
    | ShiftStatus
    | FnInfo
    | FnStatus
    | OfdExchange
    | RegistrationInfo
)

#: Task type -> (wrapping key of its result, or None when the result is unwrapped; model).
_FACTS: dict[str, tuple[str | None, type[BaseModel]]] = {
    "getDeviceStatus": ("deviceStatus", DeviceStatus),
    "getDeviceInfo": ("deviceInfo", RegisterIdentity),
    "getShiftStatus": ("shiftStatus", ShiftStatus),
    "getFnInfo": ("fnInfo", FnInfo),
    "getFnStatus": ("fnStatus", FnStatus),
    "ofdExchangeStatus": (None, OfdExchange),
    "getRegistrationInfo": (None, RegistrationInfo),
}
FACT_TASKS: tuple[str, ...] = tuple(_FACTS)


def fact_input(task_type: str, body: Any) -> tuple[type[BaseModel], Any]:
    """The model of ``task_type``'s fact and the data to read it from: the task result
    or G3 operation answer unwrapped (``deviceInfo``...) and put in one shape."""
    if task_type not in _FACTS:
        raise MalformedAnswerError(f"atol-web: no parser for {task_type}")
    key, model = _FACTS[task_type]
    if key is not None:
        if not isinstance(body, dict) or not isinstance(body.get(key), dict):
            raise MalformedAnswerError(f"atol-web {task_type}: answer without {key}: {body!r}")
        body = body[key]
    return model, _flat_validity(body) if model is FnInfo else body


def parse_fact(task_type: str, body: Any) -> tuple[Any, list[str]]:
    """The fact of a task result or of the matching G3 operation's answer, and the
    fields that did not validate (read as null; paths inside the unwrapped fact)."""
    model, data = fact_input(task_type, body)
    return validate_tolerant(model, data, what=f"atol-web {task_type}")
