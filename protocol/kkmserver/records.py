"""kkmserver answers as pydantic models (reference kkmserver.md sections 4-6). Pure.

Every answer is an envelope (``Command``, ``IdCommand``, ``Status``, ``Error`` ...) plus a
command's payload; a 200 without the payload still parses as the bare envelope
(section 5). Unknown keys are ignored: servers add fields from version to version.

Values as the server writes them (section 6):

* date-times are local wall-clock time without an offset (``2017-01-13T14:56:00``) and
  stay naive here; ``0001-01-01T00:00:00`` (.NET's ``DateTime.MinValue``) means "none"
  and becomes None; ``AddDate`` carries 7 fractional digits and an offset and stays aware;
* serial, РНМ (registration number) and ФН (fiscal drive) numbers are strings with
  leading zeros — a number in their place is turned into text, never the other way;
* misspellings are the real keys: ``FN_MemOverflowl``, ``Rezult``; ``List`` spells
  ``OnOff`` also ``OnOf``;
* versions (``FFDVersion*``, ``Firmware_Version``, ``ServerVersion``) come as strings or
  numbers (``1.05``) and are read as text.

Parsing is tolerant per field (:mod:`kktmon.protocol.tolerant`): a field that does not
validate is read as null and the rest of the answer stands; only an answer without a
usable envelope (no object, no ``Status``) is :class:`MalformedAnswerError`.

``Status`` 2 carries the server's ``Error`` text; :func:`busy_reason` tells from it
whether the register is merely held (its port by another program, or the device busy),
which is a state to report and retry, not a fault.
"""

from __future__ import annotations

import enum
import re
from datetime import datetime
from typing import Annotated, Any, TypeVar

from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field

from kktmon.protocol.tolerant import Version, validate_tolerant


class Status(enum.IntEnum):
    """``Status`` of an answer (section 4)."""

    OK = 0
    RUN = 1  # started, not finished within Timeout: poll GetRezult
    ERROR = 2  # see Error
    NOT_FOUND = 3  # command or device not found / switched off in the server
    NOT_RUN = 4  # queued behind other work for the device
    EARLIER = 5  # the same IdCommand ran before: this is the stored result
    EGAIS_ERROR = 6


#: Statuses whose payload is the command's result.
DONE = frozenset({Status.OK, Status.EARLIER})
#: Statuses that mean "still queued or running": ask again with GetRezult.
PENDING = frozenset({Status.RUN, Status.NOT_RUN})


class Busy(enum.Enum):
    """What a Status 2 ``Error`` text says holds the register (see :func:`busy_kind`)."""

    PORT_HELD = "port_held"  # another program has the register's port open
    DEVICE_BUSY = "device_busy"  # the device is busy with other work


# Status 2 texts, matched case-insensitively on the words, not one exact phrase: the
# server passes on its drivers' and the OS's texts, which vary by version and locale
# ("порт используется другой программой", "порт COM3 занят", .NET's "Доступ к порту
# 'COM3' запрещен" for a port another process holds, English variants).
_PORT_HELD = re.compile(
    r"\bпорт\w*\b[^.;]{0,40}?(?:использ\w*\s+(?:друг|ин)|занят)"
    r"|доступ\w*\s+к\s+порту"
    r"|\bport\b[^.;]{0,40}?(?:\bin\s+use\b|\bbusy\b|used\s+by\s+another)"
    r"|access\s+to\s+the\s+port",
    re.IGNORECASE,
)
_DEVICE_BUSY = re.compile(
    r"\b(?:устройство|ккт|ккм|касса|фр|регистратор|принтер)\w*\s+(?:сейчас\s+|уже\s+)?занят"
    r"|\bdevice\s+(?:is\s+)?(?:currently\s+)?busy\b",
    re.IGNORECASE,
)


def busy_kind(error: str) -> Busy | None:
    """Whether a Status 2 ``Error`` says the register is held rather than faulty.

    The port held by another program (usually the POS) is checked first: "Устройство
    занято: порт используется другой программой" names the cause, not just the state.
    """
    text = " ".join(error.replace("ё", "е").replace("Ё", "Е").split())
    if _PORT_HELD.search(text):
        return Busy.PORT_HELD
    if _DEVICE_BUSY.search(text):
        return Busy.DEVICE_BUSY
    return None


NO_DATE = "0001-01-01"
_FRACTION = re.compile(r"\.(\d{6})\d+")  # .NET writes 7 digits; Python 3.11 reads 6


def parse_datetime(value: Any) -> datetime | None:
    """A server date-time: naive when written without offset, None for the sentinel."""
    if value is None or isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise ValueError(f"date-time expected, got {type(value).__name__}")
    text = value.strip()
    if not text or text.startswith(NO_DATE):
        return None
    return datetime.fromisoformat(_FRACTION.sub(r".\1", text.replace("Z", "+00:00")))


def _text(value: Any) -> Any:
    # A serial sent as a JSON number would lose nothing we can restore; keep it as text.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


KkmDateTime = Annotated[datetime | None, BeforeValidator(parse_datetime)]
Text = Annotated[str, BeforeValidator(_text)]


class _Answer(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)


class Envelope(_Answer):
    """Fields every answer carries (section 4)."""

    command: str = Field("", alias="Command")
    id_command: str | None = Field(None, alias="IdCommand")
    status: Status = Field(alias="Status")
    error: str = Field("", alias="Error")
    warning: str | None = Field(None, alias="Warning")
    message: str | None = Field(None, alias="Message")
    num_device: int | None = Field(None, alias="NumDevice")
    unit_name: str | None = Field(None, alias="UnitName")


class KktInfo(_Answer):
    """``Info`` of ``GetDataKKT`` (section 4.1); every field may be missing."""

    kkt_number: Text | None = Field(None, alias="KktNumber")
    reg_number: Text | None = Field(None, alias="RegNumber")
    fn_number: Text | None = Field(None, alias="FnNumber")
    inn_organization: Text | None = Field(None, alias="InnOrganization")
    name_organization: str | None = Field(None, alias="NameOrganization")
    fn_is_fiscal: bool | None = Field(None, alias="FN_IsFiscal")
    fn_date_end: KkmDateTime = Field(None, alias="FN_DateEnd")
    fn_date_start: KkmDateTime = Field(None, alias="FN_DateStart")
    fn_mem_overflow: bool | None = Field(None, alias="FN_MemOverflowl")
    ofd_error: str | None = Field(None, alias="OFD_Error")
    ofd_num_error_doc: int | None = Field(None, alias="OFD_NumErrorDoc")
    ofd_date_error_doc: KkmDateTime = Field(None, alias="OFD_DateErrorDoc")
    session_state: int | None = Field(None, alias="SessionState")
    paper_over: bool | None = Field(None, alias="PaperOver")
    date_time_kkt: KkmDateTime = Field(None, alias="DateTimeKKT")
    ffd_version: Version | None = Field(None, alias="FFDVersion")
    ffd_version_fn: Version | None = Field(None, alias="FFDVersionFN")
    ffd_version_kkt: Version | None = Field(None, alias="FFDVersionKKT")
    firmware_version: Version | None = Field(None, alias="Firmware_Version")
    firmware_status: int | None = Field(None, alias="Firmware_Status")
    on_off: bool | None = Field(None, validation_alias=AliasChoices("OnOff", "OnOf"))
    active: bool | None = Field(None, alias="Active")
    balance_cash: float | None = Field(None, alias="BalanceCash")
    license_expiration: KkmDateTime = Field(None, alias="LicenseExpirationDate")
    tax_variant: Text | None = Field(None, alias="TaxVariant")
    url_server_ofd: str | None = Field(None, alias="UrlServerOfd")
    port_server_ofd: Text | None = Field(None, alias="PortServerOfd")
    inn_ofd: Text | None = Field(None, alias="InnOfd")
    name_ofd: str | None = Field(None, alias="NameOFD")


class DataKktAnswer(Envelope):
    """``GetDataKKT``: the register's state; ``CheckNumber`` counts receipts, not FDs."""

    check_number: int | None = Field(None, alias="CheckNumber")
    session_number: int | None = Field(None, alias="SessionNumber")
    line_length: int | None = Field(None, alias="LineLength")
    url: str | None = Field(None, alias="URL")
    info: KktInfo | None = Field(None, alias="Info")


class ListUnit(_Answer):
    """One device of ``List`` (section 4.2): the server's cached summary of it."""

    num_device: int = Field(alias="NumDevice")
    id_device: str | None = Field(None, alias="IdDevice")
    on_off: bool | None = Field(None, validation_alias=AliasChoices("OnOff", "OnOf"))
    active: bool | None = Field(None, alias="Active")
    type_device: str | None = Field(None, alias="TypeDevice")
    id_type_device: str | None = Field(None, alias="IdTypeDevice")
    firmware_version: Version | None = Field(None, alias="Firmware_Version")
    ip: str | None = Field(None, alias="IP")
    name_device: str | None = Field(None, alias="NameDevice")
    kkt_number: Text | None = Field(None, alias="KktNumber")
    fn_number: Text | None = Field(None, alias="FnNumber")
    reg_number: Text | None = Field(None, alias="RegNumber")
    inn: Text | None = Field(None, alias="INN")
    name_organization: str | None = Field(None, alias="NameOrganization")
    tax_variant: Text | None = Field(None, alias="TaxVariant")
    add_date: KkmDateTime = Field(None, alias="AddDate")
    ofd_error: str | None = Field(None, alias="OFD_Error")
    ofd_num_error_doc: int | None = Field(None, alias="OFD_NumErrorDoc")
    ofd_date_error_doc: KkmDateTime = Field(None, alias="OFD_DateErrorDoc")
    fn_date_end: KkmDateTime = Field(None, alias="FN_DateEnd")
    fn_mem_overflow: bool | None = Field(None, alias="FN_MemOverflowl")
    fn_is_fiscal: bool | None = Field(None, alias="FN_IsFiscal")
    paper_over: bool | None = Field(None, alias="PaperOver")


class ListAnswer(Envelope):
    units: list[ListUnit] = Field(default_factory=list, alias="ListUnit")


class RezultAnswer(Envelope):
    """``GetRezult``: ``Rezult`` holds the earlier command's own answer (section 4.3)."""

    rezult: dict[str, Any] | None = Field(None, alias="Rezult")

    def inner_status(self) -> Status:
        """The earlier command's status; the envelope's when no ``Rezult`` came."""
        if self.rezult is None:
            return self.status
        return parse_envelope(self.rezult).status


class ServerData(_Answer):
    server_name: str | None = Field(None, alias="ServerName")
    server_version: Version | None = Field(None, alias="ServerVersion")
    server_date_start: KkmDateTime = Field(None, alias="ServerDateStart")
    server_up_time: str | None = Field(None, alias="ServerUpTime")
    license_expiration: KkmDateTime = Field(None, alias="LicenseExpirationDate")
    license_count: int | None = Field(None, alias="LicenseCount")
    os_name: str | None = Field(None, alias="OSName")
    os_version: str | None = Field(None, alias="OSVersion")
    os_platform: str | None = Field(None, alias="OSPlatform")
    os_cur_date_time: KkmDateTime = Field(None, alias="OSCurDateTime")
    pc_server_name: str | None = Field(None, alias="PCServerName")


class ServerDataAnswer(Envelope):
    data: ServerData | None = Field(None, alias="ServerData")


class LineLengthAnswer(Envelope):
    line_length: int | None = Field(None, alias="LineLength")


M = TypeVar("M", bound=Envelope)


def parse_answer(body: Any, model: type[M]) -> M:
    """Validate one JSON answer, each odd field read as null; no envelope is
    MalformedAnswerError. (Drivers that count the dropped fields call
    :func:`~kktmon.protocol.tolerant.validate_tolerant` themselves.)"""
    return validate_tolerant(model, body, what=f"kkmserver {model.__name__}")[0]


def parse_envelope(body: Any) -> Envelope:
    return parse_answer(body, Envelope)


def parse_data_kkt(body: Any) -> DataKktAnswer:
    return parse_answer(body, DataKktAnswer)


def parse_list(body: Any) -> ListAnswer:
    return parse_answer(body, ListAnswer)


def parse_rezult(body: Any) -> RezultAnswer:
    return parse_answer(body, RezultAnswer)


def parse_server_data(body: Any) -> ServerDataAnswer:
    return parse_answer(body, ServerDataAnswer)


def parse_line_length(body: Any) -> LineLengthAnswer:
    return parse_answer(body, LineLengthAnswer)
