"""kkmserver's GetDataKKT -> the fiscal drive's shared records -> the snapshot.

What kkmserver cannot tell is None in the records (kkmserver.md 4.1) and null or the
"nothing known" value in the snapshot; the driver tests cover the rest end to end.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from kktmon.drivers.kkmserver.mapping import (
    build_snapshot,
    fn_status,
    info_from_list,
    ofd_status,
    register_family,
)
from kktmon.protocol.fn import FnStatus, OfdStatus
from kktmon.protocol.health import DeviceInfo, FnPhase, FnPhaseInfo
from kktmon.protocol.kkmserver.records import KktInfo, ListUnit, parse_data_kkt

HOST = datetime(2026, 1, 2, 12, 0, tzinfo=timezone(timedelta(hours=3)))


def _info(**fields: object) -> KktInfo:
    return KktInfo.model_validate(fields)


def test_the_records_leave_what_kkmserver_cannot_tell_none() -> None:
    info = _info(FnNumber="9999078902004111", FN_IsFiscal=False, OFD_NumErrorDoc=2)
    assert fn_status(info) == FnStatus(serial="9999078902004111", phase=None, warnings=None)
    assert ofd_status(info) == OfdStatus(None, None, 2, None, None)
    assert fn_status(_info(FN_IsFiscal=True, FN_MemOverflowl=False)).warnings == 0
    assert fn_status(_info(FN_MemOverflowl=True)).warnings == 0x04
    assert ofd_status(_info()) is None


def test_unknown_facts_are_null_in_the_snapshot() -> None:
    info = {"FnNumber": "1", "FN_IsFiscal": False, "OFD_NumErrorDoc": 2}
    answer = parse_data_kkt({"Command": "GetDataKKT", "Status": 0, "Info": info})
    snap = build_snapshot(answer, identity=DeviceInfo(vendor="shtrih"), host_time=HOST)
    assert snap.fn.phase == FnPhaseInfo(name=FnPhase.NOT_FISCAL, raw=None)
    assert snap.fn.warnings.raw == 0
    assert snap.ofd.unsent_count == 2 and snap.ofd.exchange is None
    assert (snap.ofd.first_unsent_at, snap.ofd.oldest_unsent_age_h) == (None, None)


@pytest.mark.parametrize(
    ("names", "family"),
    [
        (("KkmStrihM", None), "shtrih"),
        (("KkmShtrihM", None), "shtrih"),
        (("KkmAtol", None), "atol"),
        (("KkmPirit", None), "pirit"),
        (("KkmVikiPrint", None), "pirit"),
        (("KkmUnknown", "ШТРИХ-МИНИ-01Ф"), "shtrih"),
        (("KkmUnknown", "АТОЛ 30Ф"), "atol"),
        (("KkmMercury", "Касса 1"), "kkmserver"),
        ((None, None), "kkmserver"),
    ],
)
def test_register_family_from_the_driver_id_then_the_name(
    names: tuple[str | None, str | None], family: str
) -> None:
    assert register_family(*names) == family


def test_list_entry_stands_in_for_a_missing_info() -> None:
    unit = ListUnit.model_validate(
        {
            "NumDevice": 1,
            "KktNumber": "0149060006000651",
            "FnNumber": "9999078900002287",
            "INN": "504404744207",
            "FN_DateEnd": "2025-02-15T00:00:00",
            "FN_IsFiscal": True,
            "OFD_NumErrorDoc": 4,
            "OFD_DateErrorDoc": "2025-12-20T10:00:00",
        }
    )
    info = info_from_list(unit)
    assert info.kkt_number == "0149060006000651" and info.inn_organization == "504404744207"
    answer = parse_data_kkt({"Command": "GetDataKKT", "Status": 0})
    snap = build_snapshot(answer, identity=DeviceInfo(vendor="shtrih"), host_time=HOST, info=info)
    assert snap.fn.valid_until == date(2025, 2, 15) and snap.fn.days_left == -321
    assert snap.fn.serial == "9999078900002287" and snap.ofd.unsent_count == 4
    assert snap.shift.state is None and snap.clock.device_time is None
    assert info_from_list(None) == KktInfo()
