"""kkmserver codecs against the reference (kkmserver.md): examples K1-K6, the gate, dates.

The example JSON is pasted verbatim from section 7; the never-send names are transcribed
independently from section 3.2, so a name slipping into the allowlist shows up here.
"""

# ruff: noqa: E501 - the examples are pasted verbatim, long lines included

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kktmon.protocol.errors import CommandNotAllowedError, ConfigError, MalformedAnswerError
from kktmon.protocol.kkmserver import records as rec
from kktmon.protocol.kkmserver import requests as kkm

K1_REQUEST = (
    '{"Command": "List", "IdCommand": "2b1f6a3e-8f7e-4d1e-9b8a-1c2d3e4f5a6b", "Active": true}'
)
K1_ANSWER = r"""{"ListUnit": [
  {"NumDevice": 1, "IdDevice": "ed567786-c4df-4eb3-8367-42d2bbaab771", "OnOff": true, "Active": true,
   "TypeDevice": "Фискальный регистратор", "IdTypeDevice": "KkmStrihM", "Firmware_Version": "A4",
   "IP": "", "NameDevice": "Касса 1", "UnitName": "", "KktNumber": "0149060006000651",
   "FnNumber": "9999078900002287", "RegNumber": "0149060006035849", "INN": "504404744207",
   "NameOrganization": "ООО \"Рога и Копыта\"", "TaxVariant": "0", "AddDate": "2017-08-29T06:21:07.9218823+00:00",
   "OFD_Error": "", "OFD_NumErrorDoc": 0, "OFD_DateErrorDoc": "0001-01-01T00:00:00",
   "FN_DateEnd": "2027-02-15T00:00:00", "FN_MemOverflowl": false, "FN_IsFiscal": true, "PaperOver": false}],
 "Command": "List", "IdCommand": "2b1f6a3e-8f7e-4d1e-9b8a-1c2d3e4f5a6b", "Status": 0, "Error": ""}"""

K2_REQUEST = """{"Command": "GetDataKKT", "IdCommand": "5d0c5f1e-2d7b-4c1f-8a3e-9f4b6c7d8e90", "NumDevice": 1,
 "KktNumber": "0149060006000651", "Timeout": 30}"""
K2_ANSWER = r"""{"CheckNumber": 8, "SessionNumber": 24, "LineLength": 48, "URL": "",
 "Info": {"UrlServerOfd": "connect.ofd-ya.ru", "PortServerOfd": "7790", "NameOFD": "ООО \"Ярус\" (\"ОФД-Я\")",
          "UrlOfd": "", "InnOfd": "504404744207", "NameOrganization": "ООО \"Рога и Копыта\"",
          "TaxVariant": "0,3,5", "AddressSettle": "109097, Москва, ул. Ильинка, 9",
          "EncryptionMode": false, "OfflineMode": true, "AutomaticMode": false, "InternetMode": false,
          "BSOMode": false, "ServiceMode": true, "InnOrganization": "504404744207",
          "KktNumber": "0149060006000651", "FnNumber": "99078900002287", "RegNumber": "0149060006035849",
          "Command": "", "FN_IsFiscal": true, "OFD_Error": "", "OFD_NumErrorDoc": 32,
          "OFD_DateErrorDoc": "2017-01-13T14:56:00", "FN_DateEnd": "2018-02-01T00:00:00", "SessionState": 2},
 "Command": "GetDataKKT", "Error": "", "Status": 0}"""

K3_QUEUED = """{"Command": "GetDataKKT", "IdCommand": "5d0c5f1e-2d7b-4c1f-8a3e-9f4b6c7d8e90", "NumDevice": 1,
 "Status": 4, "Error": ""}"""
K3_REQUEST = '{"Command": "GetRezult", "IdCommand": "5d0c5f1e-2d7b-4c1f-8a3e-9f4b6c7d8e90"}'
K3_ANSWER = """{"Rezult": {"Command": "GetDataKKT", "IdCommand": "5d0c5f1e-2d7b-4c1f-8a3e-9f4b6c7d8e90", "NumDevice": 1,
            "Status": 0, "Error": "", "CheckNumber": 8, "SessionNumber": 24, "URL": "",
            "Info": {"KktNumber": "0149060006000651", "SessionState": 2}},
 "Command": "GetRezult", "IdCommand": "5d0c5f1e-2d7b-4c1f-8a3e-9f4b6c7d8e90", "Status": 0, "Error": ""}"""

K4_ANSWER = """{"Command": "GetDataKKT", "IdCommand": "c1e4…", "Status": 3,
 "Error": "Устройство (с параметрами NumDevice=9) не найдено: не настроено или отключено."}"""

K5_ANSWER = """{"ServerData": {"ServerName": "KkmServer", "ServerVersion": "2.1.38.11", "ServerDateStart": "2026-03-11T08:00:02",
                "ServerUpTime": "06:05:07", "LicenseExpirationDate": "2027-01-01T00:00:00", "LicenseCount": 2,
                "OSVersion": "Unix 5.10.0", "OSPlatform": "Unix", "OSVersionString": "Unix 5.10.0.0",
                "OSName": "Linux", "OSDateStart": "2026-03-10T22:14:00", "OSUpTime": "15:51:09",
                "OSCurDateTime": "2026-03-11T14:05:09", "PCServerName": "pos-1", "PCUserName": "kkmserver",
                "PCPhysicalMemory": "8 GB", "PCFreePhysicalMemory": "5 GB", "PCProcessorName": "Intel",
                "PCNumberOfCores": "4"},
 "Command": "GetServerData", "IdCommand": "0f3e…", "Status": 0, "Error": ""}"""

# Section 3.2, transcribed by hand, plus the unconfirmed GetCounters in both spellings.
_NEVER_SEND_TEXT = """
RegisterCheck OpenShift CloseShift ZReport XReport OfdReport DepositingCash PaymentCash
PrintDocument PrintLineLength ContinuePrint GetDataCheck OpenCashDrawer PrintOpenCashDrawer
OutputOnCustomerDisplay ClearCustomerDisplay OptionsCustomerDisplay KkmRegOfd OnOffUnut
PayByPaymentCard ReturnPaymentByPaymentCard CancelPaymentByPaymentCard
AuthorisationByPaymentCard AuthConfirmationByPaymentCard CancelAuthorisationByPaymentCard
EmergencyReversal Settlement TerminalReport TransactionDetails PrintSlipOnTerminal
ValidationMarkingCode GetGoodCodeData GetWeight Calibrate GetCommand GetCounters
Get\u0421ounters
"""  # the last one with a Cyrillic capital Es, as on the vendor forum
REFERENCE_NEVER_SEND = _NEVER_SEND_TEXT.split()
REFERENCE_SAFE = {"GetServerData", "List", "GetDataKKT", "GetRezult", "GetLineLength"}


# ------------------------------------------------------------------ K1-K6


def test_k1_list_request_and_answer() -> None:
    expected = json.loads(K1_REQUEST)
    body = kkm.list_devices({"Active": True}, id_command=expected["IdCommand"])
    assert body == expected
    answer = rec.parse_list(json.loads(K1_ANSWER))
    assert answer.status is rec.Status.OK and answer.error == ""
    (unit,) = answer.units
    assert unit.num_device == 1 and unit.id_type_device == "KkmStrihM"
    assert unit.kkt_number == "0149060006000651" and unit.inn == "504404744207"
    assert unit.fn_number == "9999078900002287" and unit.on_off is True
    assert unit.ofd_date_error_doc is None  # the sentinel
    assert unit.fn_date_end == datetime(2027, 2, 15)
    assert unit.add_date == datetime(2017, 8, 29, 6, 21, 7, 921882, tzinfo=UTC)
    assert unit.fn_mem_overflow is False and unit.fn_is_fiscal is True


def test_k2_get_data_kkt_request_and_vendor_sample() -> None:
    expected = json.loads(K2_REQUEST)
    body = kkm.get_data_kkt(
        num_device=1,
        kkt_number="0149060006000651",
        timeout_s=30,
        id_command=expected["IdCommand"],
    )
    assert body == expected
    answer = rec.parse_data_kkt(json.loads(K2_ANSWER))
    assert answer.status is rec.Status.OK
    assert answer.check_number == 8 and answer.session_number == 24
    info = answer.info
    assert info is not None
    assert info.kkt_number == "0149060006000651" and info.reg_number == "0149060006035849"
    assert info.fn_number == "99078900002287" and info.inn_organization == "504404744207"
    assert info.fn_is_fiscal is True and info.session_state == 2
    assert info.ofd_num_error_doc == 32
    assert info.ofd_date_error_doc == datetime(2017, 1, 13, 14, 56)
    assert info.fn_date_end == datetime(2018, 2, 1)
    assert info.port_server_ofd == "7790" and info.tax_variant == "0,3,5"
    # Keys of newer servers are simply absent from the sample.
    assert info.fn_mem_overflow is None and info.paper_over is None
    assert info.date_time_kkt is None and info.ffd_version is None


def test_k3_queued_then_rezult() -> None:
    queued = rec.parse_data_kkt(json.loads(K3_QUEUED))
    assert queued.status is rec.Status.NOT_RUN and queued.status in rec.PENDING
    assert queued.info is None  # a bare envelope parses
    assert kkm.get_rezult(queued.id_command or "") == json.loads(K3_REQUEST)
    answer = rec.parse_rezult(json.loads(K3_ANSWER))
    assert answer.command == "GetRezult" and answer.inner_status() is rec.Status.OK
    assert answer.rezult is not None
    inner = rec.parse_data_kkt(answer.rezult)
    assert inner.id_command == queued.id_command and inner.session_number == 24
    assert inner.info is not None and inner.info.kkt_number == "0149060006000651"


def test_k4_device_not_found() -> None:
    answer = rec.parse_data_kkt(json.loads(K4_ANSWER))
    assert answer.status is rec.Status.NOT_FOUND and answer.info is None
    assert answer.error.startswith("Устройство (с параметрами NumDevice=9)")


def test_k5_server_data() -> None:
    answer = rec.parse_server_data(json.loads(K5_ANSWER))
    assert answer.data is not None
    assert answer.data.server_version == "2.1.38.11" and answer.data.license_count == 2
    assert answer.data.os_cur_date_time == datetime(2026, 3, 11, 14, 5, 9)
    assert kkm.get_server_data(id_command="0f3e…") == {
        "Command": "GetServerData",
        "IdCommand": "0f3e…",
    }


def test_k6_an_unknown_command_is_never_built() -> None:
    with pytest.raises(CommandNotAllowedError) as caught:
        kkm.build_request("Foo")
    assert caught.value.vendor == "kkmserver" and caught.value.command == "Foo"


# ------------------------------------------------------------------ the gate


def test_allowlist_is_exactly_section_3_1() -> None:
    assert kkm.ALLOWLIST == REFERENCE_SAFE
    assert "Get\u0421ounters" in REFERENCE_NEVER_SEND and "GetCounters" in REFERENCE_NEVER_SEND
    assert not kkm.ALLOWLIST & set(REFERENCE_NEVER_SEND)


@pytest.mark.parametrize("name", REFERENCE_NEVER_SEND)
def test_every_never_send_name_is_refused(name: str) -> None:
    with pytest.raises(CommandNotAllowedError):
        kkm.build_request(name, num_device=1)
    assert not kkm.is_allowed(name)


@pytest.mark.parametrize("name", sorted(REFERENCE_SAFE))
def test_case_variants_of_safe_names_are_refused(name: str) -> None:
    for variant in (name.lower(), name.upper(), f" {name}", f"{name} "):
        with pytest.raises(CommandNotAllowedError):
            kkm.build_request(variant)


@given(st.text(max_size=30))
def test_only_allowlisted_names_build(name: str) -> None:
    if name in REFERENCE_SAFE:
        assert kkm.build_request(name)["Command"] == name
    else:
        with pytest.raises(CommandNotAllowedError):
            kkm.build_request(name)


def test_num_device_zero_and_bad_ids_are_refused() -> None:
    with pytest.raises(ConfigError):
        kkm.get_data_kkt(num_device=0)
    with pytest.raises(ConfigError):
        kkm.build_request("List", id_command="x" * 41)
    with pytest.raises(ConfigError):
        kkm.list_devices({"Command": "RegisterCheck"})  # a filter cannot smuggle a command


def test_each_request_gets_a_fresh_uuid_of_at_most_40_characters() -> None:
    first, second = kkm.get_data_kkt(num_device=1), kkm.get_data_kkt(num_device=1)
    assert first["IdCommand"] != second["IdCommand"]
    assert uuid.UUID(first["IdCommand"]).version == 4
    assert len(first["IdCommand"]) <= kkm.MAX_ID_LENGTH
    assert first["NumDevice"] == 1 and first["KktNumber"] == ""


# ------------------------------------------------------------------ values


def test_dates_local_sentinel_and_dotnet_offset() -> None:
    assert rec.parse_datetime("2024-01-15T16:29:34") == datetime(2024, 1, 15, 16, 29, 34)
    assert rec.parse_datetime("0001-01-01T00:00:00") is None
    assert rec.parse_datetime("") is None
    stamp = rec.parse_datetime("2017-08-29T06:21:07.9218823+03:00")
    assert stamp is not None and stamp.utcoffset() == timedelta(hours=3)
    assert stamp.microsecond == 921882


def test_misspelled_keys_and_numbers_as_text() -> None:
    info = rec.KktInfo.model_validate(
        {"FN_MemOverflowl": True, "OnOf": False, "KktNumber": 149060006000651}
    )
    assert info.fn_mem_overflow is True and info.on_off is False
    assert info.kkt_number == "149060006000651"
    unit = rec.ListUnit.model_validate({"NumDevice": 2, "OnOff": True})
    assert unit.on_off is True


def test_bare_envelope_and_unknown_keys_parse() -> None:
    answer = rec.parse_data_kkt({"Command": "GetDataKKT", "Status": 0, "NewKey": [1]})
    assert answer.info is None and answer.status is rec.Status.OK


@pytest.mark.parametrize("body", [None, [], "text", {"Status": 9}, {"Error": "no status"}])
def test_answers_that_are_no_envelope_are_malformed(body: object) -> None:
    with pytest.raises(MalformedAnswerError):
        rec.parse_envelope(body)


def test_statuses_0_to_6() -> None:
    assert [s.value for s in rec.Status] == list(range(7))
    assert {rec.Status.OK, rec.Status.EARLIER} == rec.DONE


def test_versions_may_be_numbers_and_odd_fields_are_null() -> None:
    info = {
        "FFDVersion": 1.05,
        "FFDVersionFN": 1.1,
        "Firmware_Version": 3,
        "FN_DateEnd": "15.02.2027",
    }
    body = {"Command": "GetDataKKT", "Status": 0, "SessionNumber": "x", "Info": info}
    answer = rec.parse_data_kkt(body)
    assert answer.info is not None and answer.info.ffd_version == "1.05"
    assert answer.info.ffd_version_fn == "1.1" and answer.info.firmware_version == "3"
    assert answer.info.fn_date_end is None and answer.session_number is None
    (unit,) = rec.parse_list(
        {"Status": 0, "ListUnit": [{"NumDevice": 1, "Firmware_Version": 1.2}]}
    ).units
    assert unit.firmware_version == "1.2"


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("Устройство занято…", rec.Busy.DEVICE_BUSY),
        ("Устройство занято другим приложением", rec.Busy.DEVICE_BUSY),
        ("УСТРОЙСТВО ЗАНЯТО. Повторите команду позже.", rec.Busy.DEVICE_BUSY),
        ("ККТ занята: идет печать", rec.Busy.DEVICE_BUSY),
        ("Device is busy", rec.Busy.DEVICE_BUSY),
        ("Ошибка открытия порта COM3: порт используется другой программой", rec.Busy.PORT_HELD),
        ("Порт COM3 используется другим приложением", rec.Busy.PORT_HELD),
        ("Ошибка связи с ККТ:\n порт COM3 занят", rec.Busy.PORT_HELD),
        ("Порт занят", rec.Busy.PORT_HELD),
        ('Доступ к порту "COM3" запрещён.', rec.Busy.PORT_HELD),
        ("Access to the port 'COM3' is denied.", rec.Busy.PORT_HELD),
        ("The port is in use by another application", rec.Busy.PORT_HELD),
        ("Устройство занято: порт используется другой программой", rec.Busy.PORT_HELD),
        ("Не удалось закрыть чек ( 142-ККТ: Нулевой итог чека )", None),
        ("Ошибка связи с ККТ: нет ответа от устройства", None),
        ("Ошибка импорта: файл занят", None),
        ("Устройство (с параметрами NumDevice=9) не найдено: не настроено или отключено.", None),
        ("", None),
    ],
)
def test_status_2_texts_that_say_the_register_is_held(text: str, kind: rec.Busy | None) -> None:
    assert rec.busy_kind(text) is kind
