"""ATOL driver-server requests and answers: the reference examples E1-E10 as golden
inputs (atol-dto10.md section 8), and the read-only allowlist (section 7)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from kktmon.protocol.atol_web import records as rec
from kktmon.protocol.atol_web.requests import (
    ALLOWED_OPERATIONS,
    ALLOWED_TASKS,
    FORBIDDEN_ENDPOINTS,
    Generation,
    Task,
    endpoint,
    is_allowed_call,
    job,
    operation_for,
    task,
)
from kktmon.protocol.errors import CommandNotAllowedError, MalformedAnswerError

MSK = timezone(timedelta(hours=3))

# ------------------------------------------------------------------ E1-E10, verbatim

E1_BODY = """{"uuid": "6c2f3a52-2b0e-4c51-9f7b-8d1f0f0a9a11",
 "request": [{"type": "getDeviceInfo"}, {"type": "getDeviceStatus"}, {"type": "getShiftStatus"},
             {"type": "getFnInfo"}, {"type": "ofdExchangeStatus"}]}"""
E1_ANSWER = """{"number": 1, "uuid": "6c2f3a52-2b0e-4c51-9f7b-8d1f0f0a9a11", "isBlocked": false, "blockedUUID": "", "blockReason": ""}"""  # noqa: E501

E2_WAITING = """{"results": [
  {"error": {"code": 0, "description": "Ошибок нет"}, "status": "inProgress"},
  {"error": {"code": 0, "description": "Ошибок нет"}, "status": "wait"}]}"""
E2_READY = """{"results": [
  {"error": {"code": 0, "description": "Ошибок нет"}, "status": "ready",
   "result": {"deviceInfo": {"model": 61, "modelName": "АТОЛ 30Ф", "serial": "00106100123456",
     "firmwareVersion": "5.8.15", "configurationVersion": "60", "receiptLineLength": 32,
     "receiptLineLengthPix": 384, "ffdVersion": "1.2", "fnFfdVersion": "1.2"}}},
  {"error": {"code": 0, "description": "Ошибок нет"}, "status": "ready",
   "result": {"deviceStatus": {"currentDateTime": "2026-03-11T14:05:09+03:00", "shift": "opened",
     "blocked": false, "coverOpened": false, "paperPresent": true, "fiscal": true, "fnFiscal": true,
     "fnPresent": true, "cashDrawerOpened": false}}},
  {"error": {"code": 0, "description": "Ошибок нет"}, "status": "ready",
   "result": {"shiftStatus": {"state": "opened", "number": 214, "expiredTime": "2026-03-12T08:58:31+03:00"}}},
  {"error": {"code": 0, "description": "Ошибок нет"}, "status": "ready",
   "result": {"fnInfo": {"serial": "7281440500123456", "version": "fn v 2.13", "execution": "",
     "numberOfRegistrations": 1, "registrationsRemaining": 29, "validityDate": "2027-02-15T00:00:00+03:00",
     "ffdVersion": "1.2", "fnFfdVersion": "1.2", "fnContainsKeysUpdaterServerUri": true,
     "livePhase": "fiscalMode",
     "warnings": {"memoryOverflow": false, "needReplacement": false, "ofdTimeout": false,
                  "resourceExhausted": false, "criticalError": false}}}},
  {"error": {"code": 0, "description": "Ошибок нет"}, "status": "ready",
   "result": {"status": {"notSentCount": 3, "notSentFirstDocNumber": 5120,
                         "notSentFirstDocDateTime": "2026-03-11T13:40:00+03:00",
                         "lastSuccessKeysUpdate": "2026-01-20T10:00:00+03:00"},
              "errors": {"network": {"code": 0, "description": "Ошибок нет"},
                         "ofd": {"code": 0, "description": "Ошибок нет"},
                         "fn": {"code": 0, "description": "Ошибок нет"},
                         "documentNumber": 0, "fnCommandCode": 0,
                         "lastSuccessConnectionDateTime": "2026-03-11T13:39:12+03:00"}}}]}"""  # noqa: E501
E3 = """{"results": [{"error": {"code": 0, "description": "Ошибок нет"}, "status": "ready",
  "result": {"status": {"notSentCount": 46, "notSentFirstDocDateTime": "2018-02-04T11:24:00+03:00",
                        "notSentFirstDocNumber": 111},
             "errors": {"documentNumber": 111, "fnCommandCode": 0,
                        "fn": {"code": 0, "description": "Ошибок нет"},
                        "ofd": {"code": 0, "description": "Ошибок нет"},
                        "network": {"code": 13617, "description": "Отсутствует физический канал связи"}},
             "fiscalParams": {"fiscalDocumentNumber": 157, "fnNumber": "9999078900000961",
                              "registrationNumber": "0000000001035160", "shiftNumber": 28},
             "warnings": {"notPrinted": false}}}]}"""  # noqa: E501
E4 = """{"number": 2, "canceled": 0, "ready": 1873, "isBlocked": true,
 "blockReason": "connectionError", "blockedUUID": "b1"}"""
E5_409 = """{"error": {"code": 505, "description": "Не удалось добавить задание с UUID [u2], задание с таким UUID уже есть"}}"""  # noqa: E501
E5_404 = """{"error": {"code": 505, "description": "Задание с UUID [nope] для устройства [1] не найдено"}}"""  # noqa: E501
E5_401 = """{"code": 505, "description": "unauthorized"}"""
E6 = """{"results": [
  {"error": {"code": 0, "description": "Ошибок нет"}, "status": "ready", "result": {"…": "…"}},
  {"error": {"code": 501, "description": "Ошибка парсинга запроса"}, "status": "error"},
  {"error": {"code": 502, "description": "Выполнение прервано из-за предыдущих ошибок"}, "status": "interrupted"}]}"""  # noqa: E501
E7 = """{"fnInfo": {"serial": "9999078900008855", "livePhase": "fiscalMode", "ffdVersion": "1.05",
            "fnFfdVersion": "1.1",
            "validity": {"numberOfRegistrations": 1, "registrationsRemaining": 11,
                         "validityDate": "2027-06-30T00:00:00+03:00"},
            "warnings": {"criticalError": false, "memoryOverflow": false, "needReplacement": false,
                         "ofdTimeout": false, "resourceExhausted": false}}}"""
E8 = """{"shiftStatus":{"state":"expired","number":57,"expiredTime":"2026-03-10T21:14:02+03:00"}}"""
E9_RESULT = """{"results": [{"status": "ready", "errorCode": 0, "errorDescription": "Ошибок нет",
                                        "result": {"deviceStatus": {"currentDateTime": "2026-03-11 14:05:09+03:00"}}}]}"""  # noqa: E501
E9_STAT = """{"is_blocked": false}"""
E10 = """{"serverVersion": "1.0.4.0", "driverVersion": "10.10.7.0", "os": "linux", "currentDateTime": "2026-03-11T14:05:10+03:00"}"""  # noqa: E501


def fact(task_type: str, body: object) -> Any:
    """A fact that reads whole: every field validated."""
    value, dropped = rec.parse_fact(task_type, body)
    assert dropped == []
    return value


def test_e1_job_body_and_its_201_answer() -> None:
    wanted = json.loads(E1_BODY)
    types = [item["type"] for item in wanted["request"]]
    assert job(wanted["uuid"], types) == wanted
    added = rec.AddResult.model_validate(json.loads(E1_ANSWER))
    assert (added.number, added.uuid, added.is_blocked, added.block_reason) == (
        1,
        wanted["uuid"],
        False,
        "",
    )


def test_e2_waiting_job_is_pending() -> None:
    results = rec.JobResults.parse(json.loads(E2_WAITING))
    assert results.pending
    assert [item.status for item in results.results] == ["inProgress", "wait"]
    assert all(item.result is None for item in results.results)


def _e2_facts() -> dict[str, object]:
    results = rec.JobResults.parse(json.loads(E2_READY))
    assert not results.pending
    tasks = ("getDeviceInfo", "getDeviceStatus", "getShiftStatus", "getFnInfo", "ofdExchangeStatus")
    assert all(item.error.code == 0 for item in results.results)
    return {
        name: fact(name, item.result) for name, item in zip(tasks, results.results, strict=True)
    }


def test_e2_device_info_and_status() -> None:
    facts = _e2_facts()
    info = facts["getDeviceInfo"]
    assert isinstance(info, rec.RegisterIdentity)
    assert (info.model, info.model_name, info.serial) == (61, "АТОЛ 30Ф", "00106100123456")
    assert (info.firmware, info.ffd_version, info.fn_ffd_version) == ("5.8.15", "1.2", "1.2")
    status = facts["getDeviceStatus"]
    assert isinstance(status, rec.DeviceStatus)
    assert status.current_date_time == datetime(2026, 3, 11, 14, 5, 9, tzinfo=MSK)
    assert (status.shift, status.paper_present, status.cover_opened) == ("opened", True, False)
    assert (status.fiscal, status.fn_fiscal, status.fn_present) == (True, True, True)


def test_e2_shift_fn_and_ofd() -> None:
    facts = _e2_facts()
    shift = facts["getShiftStatus"]
    assert isinstance(shift, rec.ShiftStatus)
    assert (shift.state, shift.number) == ("opened", 214)
    assert shift.expired_at == datetime(2026, 3, 12, 8, 58, 31, tzinfo=MSK)
    fn = facts["getFnInfo"]
    assert isinstance(fn, rec.FnInfo)
    assert (fn.serial, fn.phase, fn.warnings.byte) == ("7281440500123456", 0x03, 0)
    assert (fn.number_of_registrations, fn.registrations_remaining) == (1, 29)
    assert fn.validity_date == datetime(2027, 2, 15, tzinfo=MSK)
    ofd = facts["ofdExchangeStatus"]
    assert isinstance(ofd, rec.OfdExchange)
    assert (ofd.status.not_sent_count, ofd.status.first_number) == (3, 5120)
    assert ofd.status.first_at == datetime(2026, 3, 11, 13, 40, tzinfo=MSK)
    assert ofd.errors.last_success == datetime(2026, 3, 11, 13, 39, 12, tzinfo=MSK)


def test_e3_vendor_ofd_block_with_a_network_error() -> None:
    item = rec.JobResults.parse(json.loads(E3)).results[0]
    ofd = fact("ofdExchangeStatus", item.result)
    assert (ofd.status.not_sent_count, ofd.status.first_number) == (46, 111)
    assert ofd.status.first_at == datetime(2018, 2, 4, 11, 24, tzinfo=MSK)
    assert ofd.errors.network == rec.ErrorInfo(
        code=13617, description="Отсутствует физический канал связи"
    )
    assert (ofd.errors.ofd.code, ofd.errors.fn.code, ofd.errors.document_number) == (0, 0, 111)


def test_e4_blocked_queue() -> None:
    queue = rec.QueueStatus.model_validate(json.loads(E4))
    assert queue.is_blocked
    assert (queue.block_reason, queue.blocked_uuid) == ("connectionError", "b1")
    assert (queue.number, queue.canceled, queue.ready) == (2, 0, 1873)


@pytest.mark.parametrize(
    ("body", "code", "start"),
    [
        (E5_409, 505, "Не удалось добавить задание с UUID [u2]"),
        (E5_404, 505, "Задание с UUID [nope]"),
        (E5_401, 505, "unauthorized"),
    ],
)
def test_e5_wrapped_and_bare_error_bodies(body: str, code: int, start: str) -> None:
    error = rec.http_error(json.loads(body))
    assert error is not None
    assert error.code == code
    assert error.description.startswith(start)


def test_e5_bodies_without_an_error_give_none() -> None:
    assert rec.http_error(None) is None
    assert rec.http_error({"results": []}) is None
    assert rec.http_error("text") is None


def test_e6_a_failing_task_interrupts_the_rest() -> None:
    results = rec.JobResults.parse(json.loads(E6)).results
    assert [item.status for item in results] == ["ready", "error", "interrupted"]
    assert (results[1].error.code, results[1].error.description) == (501, "Ошибка парсинга запроса")
    assert results[2].error.code == 502


def test_e7_operation_fn_info_nests_validity() -> None:
    fn = fact("getFnInfo", json.loads(E7))
    assert (fn.serial, fn.live_phase, fn.phase) == ("9999078900008855", "fiscalMode", 0x03)
    assert (fn.number_of_registrations, fn.registrations_remaining) == (1, 11)
    assert fn.validity_date == datetime(2027, 6, 30, tzinfo=MSK)


def test_e8_in_process_task_result_has_the_same_shape() -> None:
    shift = fact("getShiftStatus", json.loads(E8))
    assert (shift.state, shift.number) == ("expired", 57)
    assert shift.expired_at == datetime(2026, 3, 10, 21, 14, 2, tzinfo=MSK)


def test_e9_g1_flat_errors_and_stat() -> None:
    item = rec.JobResults.parse(json.loads(E9_RESULT)).results[0]
    assert item.status == "ready"
    assert item.error == rec.ErrorInfo(code=0, description="Ошибок нет")
    status = fact("getDeviceStatus", item.result)
    assert status.current_date_time == datetime(2026, 3, 11, 14, 5, 9, tzinfo=MSK)  # Q10: space
    assert rec.QueueStatus.model_validate(json.loads(E9_STAT)).is_blocked is False
    flat = {"status": "error", "errorCode": 3, "errorDescription": "Порт занят"}
    assert rec.TaskResult.parse(flat).error == rec.ErrorInfo(code=3, description="Порт занят")
    assert rec.http_error({"errorCode": 505, "errorDescription": "x"}) == rec.ErrorInfo(
        code=505, description="x"
    )


def test_e10_server_info() -> None:
    info = rec.ServerInfo.model_validate(json.loads(E10))
    assert (info.server_version, info.driver_version, info.os) == ("1.0.4.0", "10.10.7.0", "linux")
    assert info.current_date_time == datetime(2026, 3, 11, 14, 5, 10, tzinfo=MSK)


# ------------------------------------------------------------------ other shapes


def test_g3_operation_shapes_rename_fields() -> None:
    shift = fact(
        "getShiftStatus",
        {"shiftStatus": {"state": "opened", "number": 3, "expiredAt": "2026-03-12 08:00:00+03:00"}},
    )
    assert shift.expired_at == datetime(2026, 3, 12, 8, tzinfo=MSK)
    ofd = fact(
        "ofdExchangeStatus",
        {"ofdExchangeStatus": {"notSentCount": 0}, "ofdExchangeErrors": {"documentNumber": 0}},
    )
    assert ofd.status.not_sent_count == 0
    info = fact(
        "getDeviceInfo",
        {
            "deviceInfo": {
                "serial": "00106100123456",
                "firmwareVersion": "1245",
                "appVersion": "5.7.0",
            }
        },
    )
    assert (info.firmware, info.firmware_version) == ("5.7.0", "1245")


def test_q11_numbers_kept_as_strings_with_leading_zeros() -> None:
    registration = fact(
        "getRegistrationInfo",
        {"organization": {"vatin": 9706048530}, "device": {"registrationNumber": 1035160}},
    )
    assert registration.organization.vatin == "9706048530"
    assert registration.device.registration_number == "1035160"
    info = fact("getDeviceInfo", {"deviceInfo": {"serial": "00106100123456"}})
    assert info.serial == "00106100123456"


@pytest.mark.parametrize(
    ("channel", "via_host"),
    [
        ("usb", True),
        ("proto", True),
        ("ethernet", False),
        ("wifi", False),
        ("gsm", False),
        ("tcpipOsStack", False),
    ],
)
def test_ofd_channel_tells_whether_the_ofd_is_reached_through_the_pc(
    channel: str, via_host: bool
) -> None:
    registration = fact("getRegistrationInfo", {"device": {"ofdChannel": channel}})
    assert registration.device.ofd_via_host is via_host
    assert fact("getRegistrationInfo", {"device": {}}).device.ofd_via_host is None


@pytest.mark.parametrize(
    ("phase", "raw"),
    [
        ("init", 0),
        ("configured", 1),
        ("fiscalMode", 3),
        ("postFiscalMode", 7),
        ("accessArchive", 15),
        ("unknown", rec.UNKNOWN_PHASE),
    ],
)
def test_live_phase_maps_to_the_phase_byte(phase: str, raw: int) -> None:
    assert fact("getFnInfo", {"fnInfo": {"livePhase": phase}}).phase == raw
    assert fact("getFnInfo", {"fnInfo": {}}).phase is None  # no phase: not guessed


@given(st.lists(st.booleans(), min_size=5, max_size=5))
def test_warning_booleans_give_the_fn_warning_byte(flags: list[bool]) -> None:
    names = [
        "needReplacement",
        "resourceExhausted",
        "memoryOverflow",
        "ofdTimeout",
        "criticalError",
    ]
    byte = rec.FnWarningFlags.model_validate(dict(zip(names, flags, strict=True))).byte
    for flag, mask in zip(flags, (0x01, 0x02, 0x04, 0x08, 0x80), strict=True):
        assert bool(byte & mask) == flag
    assert byte & 0x70 == 0


def test_garbage_answers_are_malformed() -> None:
    with pytest.raises(MalformedAnswerError):
        rec.JobResults.parse({"result": []})
    with pytest.raises(MalformedAnswerError):
        rec.parse_fact("getDeviceInfo", {"fnInfo": {}})  # the fact's wrapper is missing
    with pytest.raises(MalformedAnswerError):
        rec.parse_fact("getDeviceInfo", {"deviceInfo": {"serial": {"no": 1}}})  # no identity
    with pytest.raises(MalformedAnswerError):
        rec.parse_fact("getShiftStatus", {"shiftStatus": "opened"})
    with pytest.raises(MalformedAnswerError):
        rec.TaskResult.parse({"status": "exploded"})


# ------------------------------------------------------------------ one odd field (DESIGN 3)


@pytest.mark.parametrize(
    ("value", "text"), [(1.05, "1.05"), (1.1, "1.1"), (1.2, "1.2"), (2, "2"), ("1.05", "1.05")]
)
def test_versions_are_read_from_numbers_and_strings(value: object, text: str) -> None:
    """The vendor's own OpenAPI mock sends ``ffdVersion`` as a JSON number."""
    info = fact(
        "getDeviceInfo",
        {"deviceInfo": {"serial": "00106100123456", "ffdVersion": value, "fnFfdVersion": value}},
    )
    assert (info.ffd_version, info.fn_ffd_version) == (text, text)
    registration = fact("getRegistrationInfo", {"device": {"ffdVersion": value}})
    assert registration.device.ffd_version == text
    server = rec.ServerInfo.model_validate({"serverVersion": value, "driverVersion": value})
    assert (server.server_version, server.driver_version) == (text, text)


@pytest.mark.parametrize(
    ("task", "body", "dropped", "check"),
    [
        (  # a number where text belongs
            "getDeviceInfo",
            {"deviceInfo": {"serial": "00106100123456", "modelName": 61, "model": 61}},
            ["modelName"],
            lambda f: f.model_name is None and f.model == 61,
        ),
        (  # a date that is no date
            "getDeviceStatus",
            {"deviceStatus": {"currentDateTime": "yesterday", "paperPresent": True}},
            ["currentDateTime"],
            lambda f: f.current_date_time is None and f.paper_present is True,
        ),
        (  # a state this code does not know
            "getShiftStatus",
            {"shiftStatus": {"state": "suspended", "number": 5}},
            ["state"],
            lambda f: f.state is None and f.number == 5,
        ),
        (  # a phase this code does not know: null, not "unknown"
            "getFnInfo",
            {"fnInfo": {"livePhase": "quantum", "serial": "7281440500123456"}},
            ["livePhase"],
            lambda f: f.phase is None and f.serial == "7281440500123456",
        ),
        (  # G3's nested validity: the odd date only
            "getFnInfo",
            {"fnInfo": {"validity": {"validityDate": "31.02.2027", "registrationsRemaining": 9}}},
            ["validityDate"],
            lambda f: f.validity_date is None and f.registrations_remaining == 9,
        ),
        (
            "ofdExchangeStatus",
            {"status": {"notSentCount": "three", "notSentFirstDocNumber": 7}},
            ["status.notSentCount"],
            lambda f: f.status.not_sent_count is None and f.status.first_number == 7,
        ),
    ],
)
def test_one_odd_field_is_null_and_the_fact_stands(
    task: str, body: object, dropped: list[str], check: Any
) -> None:
    value, paths = rec.parse_fact(task, body)
    assert paths == dropped
    assert check(value)


# ------------------------------------------------------------------ allowlist (section 7)

NEVER = [
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
]


def test_the_allowlist_is_the_reference_list() -> None:
    assert {
        "getDeviceStatus",
        "getDeviceInfo",
        "getShiftStatus",
        "getFnInfo",
        "getFnStatus",
        "ofdExchangeStatus",
        "getRegistrationInfo",
        "ismExchangeStatus",
        "getLicenses",
    } == ALLOWED_TASKS
    assert not set(NEVER) & ALLOWED_TASKS


@pytest.mark.parametrize("name", NEVER)
def test_every_forbidden_task_is_refused_before_a_request_exists(name: str) -> None:
    with pytest.raises(CommandNotAllowedError) as caught:
        task(name)
    assert (caught.value.vendor, caught.value.command) == ("atol-web", name)
    with pytest.raises(CommandNotAllowedError):
        Task(type=name)
    with pytest.raises(CommandNotAllowedError):
        job("6c2f3a52-2b0e-4c51-9f7b-8d1f0f0a9a11", ["getDeviceInfo", name])


@given(st.text(min_size=1, max_size=30).filter(lambda s: s not in ALLOWED_TASKS))
def test_any_other_task_name_is_refused(name: str) -> None:
    with pytest.raises(CommandNotAllowedError):
        job("u1", [name])


def test_job_needs_tasks_and_a_short_uuid() -> None:
    with pytest.raises(CommandNotAllowedError):
        job("u1", [])
    with pytest.raises(ValidationError):
        job("x" * 64, ["getDeviceInfo"])


@pytest.mark.parametrize(("method", "path"), FORBIDDEN_ENDPOINTS)
def test_forbidden_http_calls_are_not_allowed(method: str, path: str) -> None:
    assert not is_allowed_call(method, path)


@pytest.mark.parametrize(
    "name",
    [
        "settings",
        "activateDevice",
        "deactivateDevice",
        "setDefaultDevice",
        "devices_add",
        "queryDeviceSettings",
        "queryShiftTotals",
        "queryReceiptTotals",
        "queryRegistrationInfo",
    ],
)
def test_forbidden_endpoint_names_are_refused(name: str) -> None:
    for generation in Generation:
        with pytest.raises(CommandNotAllowedError):
            endpoint(generation, name)


def test_endpoints_per_generation() -> None:
    assert endpoint(Generation.G1, "queue_status") == ("GET", "/stat/requests")
    assert endpoint(Generation.G2, "queue_status") == ("GET", "/api/v2/getRequestsQueueStatus")
    assert endpoint(Generation.G1, "add_job") == ("POST", "/requests")
    assert endpoint(Generation.G3, "job_result", uuid="u-1") == ("GET", "/api/v2/requests/u-1")
    assert endpoint(Generation.G2, "cancel_job", uuid="u-1") == ("DELETE", "/api/v2/requests/u-1")
    assert endpoint(Generation.G3, "queryFnInfo") == ("POST", "/api/v2/operations/queryFnInfo")
    with pytest.raises(CommandNotAllowedError):
        endpoint(Generation.G2, "queryFnInfo")  # operations exist on G3 only
    with pytest.raises(CommandNotAllowedError):
        endpoint(Generation.G1, "server_info")
    with pytest.raises(CommandNotAllowedError):
        endpoint(Generation.G3, "cancel_job", uuid="../settings")
    with pytest.raises(CommandNotAllowedError):
        endpoint(Generation.G3, "cancel_job")


def test_every_allowed_operation_is_an_allowed_call() -> None:
    for name in ALLOWED_OPERATIONS:
        assert is_allowed_call(*endpoint(Generation.G3, name))
    assert operation_for("getFnInfo") == "queryFnInfo"
    assert operation_for("ofdExchangeStatus") == "queryOfdExchangeStatus"
    with pytest.raises(CommandNotAllowedError):
        operation_for("getRegistrationInfo")  # no such operation: G3 reads it via a job
