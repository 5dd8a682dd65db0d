"""The facts an ATOL driver server reports, built from a :class:`DeviceState` at answer time.

Each function returns one JSON object in the shape of atol-dto10.md sections 5-6: the
*task* result (queued jobs) or, with ``operation=True``, the G3 ``/operations`` shape.
Register serial: the last 14 digits of ``state.serial`` (ATOL serials have 14), as the
wire emulator does; the FN serial is the full 16. Dates carry the host's UTC offset.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, time, timedelta
from typing import Any

from kktmon.simulators.scenario import DeviceState

DEFAULT_MODEL_CODE = 61  # АТОЛ 30Ф, as in the wire emulator
SHIFT_LIMIT = timedelta(hours=24)
SERVER_VERSION = "1.0.4.0"
DRIVER_VERSION = "10.10.7.0"
OK = {"code": 0, "description": "Ошибок нет"}
_PHASE_NAMES = {
    0x00: "init",
    0x01: "configured",
    0x03: "fiscalMode",
    0x07: "postFiscalMode",
    0x0F: "accessArchive",
}
# A register reports a placeholder, not nothing, when no document is unsent [L].
_NO_DATE = datetime(2000, 1, 1)

Answer = dict[str, Any]

#: ``GET /api/v2/settings`` (G2/G3): the server's global settings with their defaults, as
#: the DTO10 web server keeps them (``global_settings``) and Web Requests answers them.
GLOBAL_SETTINGS: Answer = {
    "scriptsPath": "",
    "invertCashDrawerStatus": False,
    "additionalHeaderLines": "",
    "additionalFooterLines": "",
    "blockQueueOnPrintErrors": False,
    "deleteRequestsAfter": 43200,  # minutes: finished jobs are kept 30 days
    "validateRequestsOnAdd": False,
}

#: Task types the driver knows besides the reads below (atol-dto10.md sections 5.8 and 7):
#: a server runs them; the fake answers them ``ready`` without a result it could invent.
#: Any other type is not a DTO10 task at all, and the driver fails it.
OTHER_KNOWN_TASKS: frozenset[str] = frozenset(
    {
        "getDeviceParameters",
        "getCashDrawerStatus",
        "getMcu",
        "getShiftTotals",
        "getOverallTotals",
        "getFnDocument",
        "sell",
        "sellReturn",
        "buy",
        "buyReturn",
        "sellCorrection",
        "sellReturnCorrection",
        "buyCorrection",
        "buyReturnCorrection",
        "openShift",
        "closeShift",
        "reportX",
        "reportOfdExchangeStatus",
        "reportDepartments",
        "reportFnRegistrations",
        "printFnDocument",
        "printLastReceiptCopy",
        "printDocumentsFromJournal",
        "nonFiscal",
        "continuePrint",
        "cashIn",
        "cashOut",
        "registration",
        "changeRegistrationParameters",
        "fnChange",
        "closeArchive",
        "setDateTime",
        "setDeviceParameters",
        "openCashDrawer",
        "beginMarkingCodeValidation",
        "getMarkingCodeValidationStatus",
        "acceptMarkingCode",
        "declineMarkingCode",
        "cancelMarkingCodeValidation",
        "clearMarkingCodeValidationResult",
        "checkMarkingCodeValidationsReady",
        "validateMarks",
        "addMarksToBuffer",
        "checkImcWorkState",
        "checkImcTime",
        "pingIsm",
    }
)
#: The driver's answer to a task type it does not know (LIBFPTR_ERROR_RECEIPT_PARSE_ERROR,
#: the task parser's error; the code a failing unknown task gets in example E6).
UNKNOWN_TASK = (501, "Ошибка парсинга запроса")


def stamp(moment: datetime) -> str:
    """Naive local time -> ISO 8601 with the host's offset (``2026-03-11T14:05:09+03:00``)."""
    return moment.replace(microsecond=0).astimezone().isoformat()


def server_info() -> Answer:
    return {
        "serverVersion": SERVER_VERSION,
        "driverVersion": DRIVER_VERSION,
        "os": "linux",
        "currentDateTime": stamp(datetime.now()),
    }


def device_info(state: DeviceState, operation: bool = False) -> Answer:
    info: Answer = {
        "model": state.model_code if state.model_code is not None else DEFAULT_MODEL_CODE,
        "modelName": state.model,
        "serial": state.serial[-14:],
        "firmwareVersion": state.firmware,
        "configurationVersion": str(state.firmware_build),
        "receiptLineLength": 48,
        "receiptLineLengthPix": 576,
        "ffdVersion": state.ffd.device,
        "fnFfdVersion": state.ffd.fn,
    }
    if operation:  # G3: firmwareVersion is a build number, the version is appVersion
        info |= {"firmwareVersion": str(state.firmware_build), "appVersion": state.firmware}
    return {"deviceInfo": info}


def _shift_word(state: DeviceState) -> str:
    return {"open": "opened"}.get(state.shift.state, state.shift.state)


def device_status(state: DeviceState, operation: bool = False) -> Answer:
    now = datetime.now() + timedelta(seconds=state.clock_offset_s)
    return {
        "deviceStatus": {
            "currentDateTime": stamp(now),
            "shift": _shift_word(state),
            "blocked": False,
            "coverOpened": state.printer.cover_open,
            "paperPresent": state.printer.paper != "out",
            "fiscal": state.fn.phase == 0x03,
            "fnFiscal": state.fn.phase == 0x03,
            "fnPresent": True,
            "cashDrawerOpened": False,
        }
    }


def shift_status(state: DeviceState, operation: bool = False) -> Answer:
    shift: Answer = {"state": _shift_word(state), "number": state.shift.number}
    if state.shift.is_open and state.shift.opened_at is not None:
        key = "expiredAt" if operation else "expiredTime"
        shift[key] = stamp(state.shift.opened_at + SHIFT_LIMIT)
    return {"shiftStatus": shift}


def _warnings(byte: int) -> Answer:
    return {
        "needReplacement": bool(byte & 0x01),
        "resourceExhausted": bool(byte & 0x02),
        "memoryOverflow": bool(byte & 0x04),
        "ofdTimeout": bool(byte & 0x08),
        "criticalError": bool(byte & 0x80),
    }


def fn_info(state: DeviceState, operation: bool = False) -> Answer:
    fn = state.fn
    validity = {
        "numberOfRegistrations": fn.registrations_done,
        "registrationsRemaining": fn.registrations_left,
        "validityDate": stamp(datetime.combine(fn.valid_until, time())),
    }
    info: Answer = {
        "serial": fn.serial,
        "livePhase": _PHASE_NAMES.get(fn.phase, "unknown"),
        "ffdVersion": state.ffd.device,
        "fnFfdVersion": state.ffd.fn,
        "warnings": _warnings(fn.warnings),
    }
    if operation:
        info["validity"] = validity
    else:
        info |= validity | {"version": fn.firmware, "execution": ""}
    return {"fnInfo": info}


def fn_status(state: DeviceState, operation: bool = False) -> Answer:
    return {
        "fnStatus": {
            "fiscalDocumentNumber": state.fn.last_document_number,
            "fiscalReceiptNumber": state.shift.receipts,
            "warnings": _warnings(state.fn.warnings),
        }
    }


def ofd_exchange(state: DeviceState, operation: bool = False) -> Answer:
    ofd, count = state.ofd, state.ofd.unsent_count
    first_at = ofd.first_unsent_at if count and ofd.first_unsent_at else _NO_DATE
    last_good = first_at if count else state.fn.last_document_at
    status = {
        "notSentCount": count,
        "notSentFirstDocNumber": state.first_unsent_number(),
        "notSentFirstDocDateTime": stamp(first_at),
    }
    errors = {
        "network": OK,
        "ofd": OK,
        "fn": OK,
        "documentNumber": 0,
        "fnCommandCode": 0,
        "lastSuccessConnectionDateTime": stamp(last_good),
    }
    if operation:
        return {"ofdExchangeStatus": status, "ofdExchangeErrors": errors}
    return {"status": status, "errors": errors}


def registration_info(state: DeviceState, operation: bool = False) -> Answer:
    return {
        "organization": {"name": state.organisation, "vatin": state.inn, "address": ""},
        "device": {
            "registrationNumber": state.rnm,
            "ffdVersion": state.ffd.registered,
            "offlineMode": False,
            "encryption": False,
            # Setting 276 as the driver names it: EoT through the PC, or the register's own.
            "ofdChannel": "proto" if state.ofd.via_host else "ethernet",
        },
        "ofd": {
            "name": "",
            "vatin": state.registration.ofd_inn,
            "host": state.ofd.server,
            "port": state.ofd.port,
        },
    }


def ism_exchange(state: DeviceState, operation: bool = False) -> Answer:
    return {"status": {"notSentCount": 0}}


def licenses(state: DeviceState, operation: bool = False) -> Answer:
    return {"licenses": []}


Builder = Callable[[DeviceState, bool], Answer]

#: Task type -> its answer; the G3 operation of the same read uses the same builder.
TASKS: dict[str, Builder] = {
    "getDeviceInfo": device_info,
    "getDeviceStatus": device_status,
    "getShiftStatus": shift_status,
    "getFnInfo": fn_info,
    "getFnStatus": fn_status,
    "ofdExchangeStatus": ofd_exchange,
    "getRegistrationInfo": registration_info,
    "ismExchangeStatus": ism_exchange,
    "getLicenses": licenses,
}
#: The other operations of the vendor's OpenAPI (not for a monitor): a server answers them
#: with the register's data; the fake with an empty object. Any other name is 404.
OTHER_OPERATIONS: frozenset[str] = frozenset(
    {
        "queryShiftTotals",
        "queryIncomeTotals",
        "queryOutcomeTotals",
        "queryReceiptTotals",
        "queryDeviceSettings",
    }
)
OPERATIONS: dict[str, Builder] = {
    "queryDeviceInfo": device_info,
    "queryDeviceStatus": device_status,
    "queryShiftStatus": shift_status,
    "queryFnInfo": fn_info,
    "queryFnStatus": fn_status,
    "queryOfdExchangeStatus": ofd_exchange,
    "queryIsmExchangeStatus": ism_exchange,
    "queryLicenses": licenses,
}


def home_page(generation: int) -> bytes:
    """``GET /``: the server's own web page (a settings UI), as a small HTML shell.

    The DTO10 web server (G1/G2) serves its "ДТО WEB-сервер" page there, Web Requests
    (G3) its own console; both are script pages that then call the API.
    """
    title = "АТОЛ. Web Requests" if generation == 3 else "ДТО WEB-сервер"
    return (
        '<!DOCTYPE html>\n<html lang="ru"><head><meta charset="utf-8">'
        f"<title>{title}</title></head>\n"
        "<body><noscript>Для работы данного приложения необходима поддержка JavaScript"
        '</noscript><div id="app"></div></body></html>\n'
    ).encode()
