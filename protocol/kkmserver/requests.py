"""kkmserver (kkmserver.ru) command layer: the read-only allowlist and request builders.

kkmserver is a commercial HTTP service that drives many brands of ККТ (cash registers)
and takes one JSON object per command on ``POST /Execute`` (reference kkmserver.md
sections 2-3). :func:`build_request` is the single gate: a ``Command`` off
:data:`ALLOWLIST` is refused with :class:`CommandNotAllowedError` before any request
exists, so a fiscal or printing command (``RegisterCheck``, ``OfdReport``, which prints
despite its name, ``GetDataCheck``, which may print a copy) can never reach the server::

    body = get_data_kkt(num_device=1, kkt_number="0149060006000651", timeout_s=30)
    ... POST body to /Execute ...
    answer = kkmserver_records.parse_data_kkt(json_body)

Every builder takes an ``id_command``; without one a fresh uuid4 is drawn (the
server stores results per ``IdCommand`` and answers a reused id with the stored
result, quirk Q3). ``NumDevice`` 0 means "the first non-blocked device" to the server
(quirk Q2) and is refused here: a monitor must name its register.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from kktmon.protocol.errors import CommandNotAllowedError, ConfigError

VENDOR = "kkmserver"

GET_SERVER_DATA = "GetServerData"
LIST = "List"
GET_DATA_KKT = "GetDataKKT"
GET_REZULT = "GetRezult"  # sic: the vendor's spelling
GET_LINE_LENGTH = "GetLineLength"

#: Section 3.1: the only commands kktmon ever sends.
ALLOWLIST = frozenset({GET_SERVER_DATA, LIST, GET_DATA_KKT, GET_REZULT, GET_LINE_LENGTH})

#: Section 3.2, known commands that print, register, switch or pay. Listed so tests and
#: the fake can name them; the gate itself denies by default, not by this list.
NEVER_SEND = frozenset(
    {
        "RegisterCheck",
        "OpenShift",
        "CloseShift",
        "ZReport",
        "XReport",
        "OfdReport",
        "DepositingCash",
        "PaymentCash",
        "PrintDocument",
        "PrintLineLength",
        "ContinuePrint",
        "GetDataCheck",
        "OpenCashDrawer",
        "PrintOpenCashDrawer",
        "OutputOnCustomerDisplay",
        "ClearCustomerDisplay",
        "OptionsCustomerDisplay",
        "KkmRegOfd",
        "OnOffUnut",
        "PayByPaymentCard",
        "ReturnPaymentByPaymentCard",
        "CancelPaymentByPaymentCard",
        "AuthorisationByPaymentCard",
        "AuthConfirmationByPaymentCard",
        "CancelAuthorisationByPaymentCard",
        "EmergencyReversal",
        "Settlement",
        "TerminalReport",
        "TransactionDetails",
        "PrintSlipOnTerminal",
        "ValidationMarkingCode",
        "GetGoodCodeData",
        "GetWeight",
        "Calibrate",
        "GetCommand",
        # Probably read-only but unconfirmed (section 3.1): both spellings stay out.
        "GetCounters",
        "GetСounters",  # the Cyrillic «С», as on the vendor forum
    }
)

#: The vendor allows ``IdCommand`` up to 40 characters (a uuid4 string has 36).
MAX_ID_LENGTH = 40
#: ``Timeout`` 0 or absent means 60 s on the server; one typing reads 1 as "async" [L].
DEFAULT_TIMEOUT_S = 60


def new_id_command() -> str:
    """A fresh, unique ``IdCommand``: one per command, reused only for ``GetRezult``."""
    return str(uuid.uuid4())


def is_allowed(command: str) -> bool:
    return command in ALLOWLIST


def build_request(
    command: str,
    *,
    id_command: str | None = None,
    num_device: int | None = None,
    kkt_number: str | None = None,
    inn_kkm: str | None = None,
    timeout_s: int | None = None,
    filters: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON envelope of one command (section 2); refuses anything off the allowlist."""
    if command not in ALLOWLIST:
        raise CommandNotAllowedError(VENDOR, command)
    ident = id_command if id_command is not None else new_id_command()
    if not ident or len(ident) > MAX_ID_LENGTH:
        raise ConfigError(f"kkmserver IdCommand must be 1..{MAX_ID_LENGTH} characters")
    body: dict[str, Any] = {"Command": command, "IdCommand": ident}
    if num_device is not None:
        if num_device < 1:
            # 0 = "first non-blocked device" (quirk Q2): never right for a monitor.
            raise ConfigError(f"kkmserver NumDevice must be 1 or more, got {num_device}")
        body["NumDevice"] = num_device
    if kkt_number is not None:
        body["KktNumber"] = kkt_number
    if inn_kkm is not None:
        body["InnKkm"] = inn_kkm
    if timeout_s is not None:
        if timeout_s < 0:
            raise ConfigError(f"kkmserver Timeout must not be negative, got {timeout_s}")
        body["Timeout"] = timeout_s
    for key, value in (filters or {}).items():
        if key in body:
            raise ConfigError(f"kkmserver {command}: filter {key} would replace the envelope")
        body[key] = value
    return body


def get_data_kkt(
    *,
    num_device: int,
    kkt_number: str | None = None,
    timeout_s: int | None = None,
    id_command: str | None = None,
) -> dict[str, Any]:
    """``GetDataKKT`` for one register: always by number, and by serial when known."""
    return build_request(
        GET_DATA_KKT,
        id_command=id_command,
        num_device=num_device,
        kkt_number=kkt_number or "",
        timeout_s=timeout_s,
    )


def get_rezult(id_command: str) -> dict[str, Any]:
    """``GetRezult`` for an earlier command: the SAME id, never a new one."""
    return build_request(GET_REZULT, id_command=id_command)


def list_devices(
    filters: Mapping[str, Any] | None = None, *, id_command: str | None = None
) -> dict[str, Any]:
    """``List``, optionally filtered (section 4.2: ``Active``, ``OnOff``, ``FN_IsFiscal``...)."""
    return build_request(LIST, id_command=id_command, filters=filters)


def get_server_data(*, id_command: str | None = None) -> dict[str, Any]:
    return build_request(GET_SERVER_DATA, id_command=id_command)


def get_line_length(*, num_device: int, id_command: str | None = None) -> dict[str, Any]:
    return build_request(GET_LINE_LENGTH, id_command=id_command, num_device=num_device)
