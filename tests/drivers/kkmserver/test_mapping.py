"""kkmserver's GetDataKKT -> the fiscal drive's shared records -> the snapshot.

What kkmserver cannot tell is None in the records (kkmserver.md 4.1) and null or the
"nothing known" value in the snapshot; the driver tests cover the rest end to end.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from kktmon.drivers.kkmserver.mapping import build_snapshot, fn_status, ofd_status
from kktmon.protocol.fn import FnStatus, OfdStatus
from kktmon.protocol.health import DeviceInfo
from kktmon.protocol.kkmserver.records import KktInfo, parse_data_kkt

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
    assert snap.fn.phase is None and snap.fn.warnings.raw == 0
    assert snap.ofd.unsent_count == 2 and snap.ofd.exchange is None
    assert (snap.ofd.first_unsent_at, snap.ofd.oldest_unsent_age_h) == (None, None)
