"""Pirit records -> HealthSnapshot, from the golden replies of pirit.md section 6.

No link: the worked examples are decoded and parsed by the codec, then mapped. Facts
the reference does not exemplify come from constructed replies (``pirit_vectors.reply``).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta, timezone

import pirit_vectors as pv
import pytest

from kktmon.drivers.pirit.mapping import (
    PiritFacts,
    PiritIdentity,
    build_snapshot,
    device_info,
    ffd_versions,
    model_name,
    shift_is_open,
)
from kktmon.protocol.health import FnPhase, HealthSnapshot, PaperState, ShiftState
from kktmon.protocol.pirit import fn_records as fnr
from kktmon.protocol.pirit import records as rec
from kktmon.protocol.pirit.frame import Reply, decode_reply_frame

MSK = timezone(timedelta(hours=3))
HOST = datetime(2024, 3, 15, 10, 30, tzinfo=MSK)  # the day of example 6's first unsent FD


def golden(name: str) -> Reply:
    """The reply frame of the worked example whose name starts with ``name``."""
    vector = next(v for v in pv.VECTORS if v.name.startswith(name))
    assert vector.reply is not None
    return decode_reply_frame(vector.reply)


STATUS_CLEAR = rec.parse_status(golden("Ex3"))
STATUS_SHIFT_OPEN = rec.parse_status(golden("Ex4"))
FN_STATUS = fnr.parse_fn_status(golden("Ex5"))
OFD_QUEUE = fnr.parse_ofd_queue(golden("Ex6"))
SHIFT_OPENED = rec.parse_shift_opened_at(golden("Ex7"))
PRINTER_OK = rec.parse_printer_status(pv.reply(0x04, "0"))

IDENTITY = PiritIdentity(
    serial="00000000123456",
    model=rec.parse_model(pv.reply(0x02, "21", "3")),
    firmware_version="665.2.14",
    inn="7701234567",
    rnm="0000000001012345",
    versions=fnr.parse_fn_versions(pv.reply(0x78, "14", "fn v 2.13", "1", "4", "3.0", "4")),
)
FACTS = PiritFacts(
    status=STATUS_SHIFT_OPEN,
    printer=PRINTER_OK,
    fn_status=FN_STATUS,
    device_time=datetime(2024, 3, 15, 10, 31, 40),
    fn_serial="9999078902004111",
    last_fd_number=1240,
    last_fiscal_at=datetime(2024, 3, 15, 10, 29),
    ofd=OFD_QUEUE,
    fn_shift=fnr.parse_fn_shift(pv.reply(0x78, "6", "17", "1", "12")),
    shift_opened_at=SHIFT_OPENED,
    expiry=rec.parse_fn_expiry(pv.reply(0x02, "14", "310325")),
)


def snapshot(
    facts: PiritFacts = FACTS, identity: PiritIdentity = IDENTITY, host: datetime = HOST
) -> HealthSnapshot:
    device = device_info(identity, "serial")
    return build_snapshot(identity=identity, device=device, facts=facts, host_time=host)


def test_golden_poll_maps_field_for_field() -> None:
    snap = snapshot()
    assert snap.taken_at == HOST
    device = snap.device
    assert (device.vendor, device.model, device.serial) == (
        "pirit",
        "Viki Print 57",
        "00000000123456",
    )
    assert (device.firmware, device.inn, device.rnm) == (
        "665.2.14",
        "7701234567",
        "0000000001012345",
    )
    assert (device.ffd.device, device.ffd.registered, device.ffd.fn) == ("1.2", "1.2", None)
    fn = snap.fn
    assert fn.serial == "9999078902004111" and fn.firmware == "fn v 2.13"
    assert fn.phase is not None and (fn.phase.name, fn.phase.raw) == (FnPhase.FISCAL, 3)
    assert fn.warnings.raw == 2 and fn.warnings.resource_exhausting
    assert not (fn.warnings.memory_90 or fn.warnings.urgent_replacement)
    assert fn.valid_until == date(2025, 3, 31) and fn.days_left == 381
    assert fn.last_document_number == 1240
    assert fn.last_document_at == datetime(2024, 3, 15, 10, 29, tzinfo=MSK)
    assert fn.registrations_left is None, "Pirit has no such counter"
    assert (fn.memory_used_pct, fn.documents_left, fn.storage_30d_free_kb) == (None, None, None)


def test_golden_ofd_queue_example_6() -> None:
    ofd = snapshot().ofd
    assert (ofd.unsent_count, ofd.first_unsent_number) == (3, 1234)
    assert ofd.first_unsent_at == datetime(2024, 3, 15, 10, 15, 30, tzinfo=MSK)
    assert ofd.oldest_unsent_age_h == 0.24
    assert ofd.exchange is not None and ofd.exchange.raw == 2
    assert ofd.exchange.message_pending and not ofd.exchange.transport_connected


def test_empty_ofd_queue_has_age_zero() -> None:
    empty = fnr.parse_ofd_queue(pv.reply(0x78, "7", "1", "", "", "000000", "000000"))
    ofd = snapshot(replace(FACTS, ofd=empty)).ofd
    assert (ofd.unsent_count, ofd.first_unsent_number, ofd.first_unsent_at) == (0, None, None)
    assert ofd.oldest_unsent_age_h == 0.0
    assert ofd.exchange is not None and ofd.exchange.transport_connected


def test_shift_from_examples_4_and_7_expires_by_the_clock() -> None:
    """Flags say "open, not over 24 h", but 02h/17 says it began 26 hours ago."""
    shift = snapshot().shift
    assert shift.opened_at == datetime(2024, 3, 14, 8, 30, 12, tzinfo=MSK)
    assert shift.hours_open == 26.0 and shift.number == 17
    assert shift.state is ShiftState.EXPIRED
    young = snapshot(host=datetime(2024, 3, 14, 12, 30, tzinfo=MSK)).shift
    assert young.state is ShiftState.OPEN and young.hours_open == 4.0


def test_shift_over_24h_flag_means_expired_even_without_opened_at() -> None:
    flags = rec.parse_status(pv.reply(0x00, "0", str(4 + 8), "0"))
    shift = snapshot(replace(FACTS, status=flags, shift_opened_at=None)).shift
    assert shift.state is ShiftState.EXPIRED and shift.opened_at is None
    assert shift.hours_open is None


def test_closed_shift_from_example_3() -> None:
    closed_fn = fnr.parse_fn_status(pv.reply(0x78, "2", "3", "0", "0"))
    fn_shift = fnr.parse_fn_shift(pv.reply(0x78, "6", "17", "0", "0"))
    facts = replace(FACTS, status=STATUS_CLEAR, fn_status=closed_fn, fn_shift=fn_shift)
    assert not shift_is_open(facts)
    shift = snapshot(facts).shift
    assert (shift.state, shift.number, shift.opened_at) == (ShiftState.CLOSED, 17, None)
    assert snapshot(facts).block_reason is None


def test_fn_view_of_an_open_shift_wins_over_a_closed_flag() -> None:
    facts = replace(FACTS, status=STATUS_CLEAR, fn_shift=None)  # FN_STATUS: bit 5 set
    assert shift_is_open(facts)


@pytest.mark.parametrize(
    ("mask", "paper", "cover", "fault"),
    [
        (0, PaperState.OK, False, False),
        (2, PaperState.OUT, False, False),
        (4, PaperState.OK, True, False),
        (1, PaperState.OK, False, True),  # not ready
        (1 + 2, PaperState.OUT, False, True),
        (8, PaperState.OK, False, True),  # cutter
        (128, PaperState.OK, False, True),  # mechanism link lost
    ],
)
def test_printer_bits(mask: int, paper: PaperState, cover: bool, fault: bool) -> None:
    printer = rec.parse_printer_status(pv.reply(0x04, str(mask)))
    info = snapshot(replace(FACTS, printer=printer)).printer
    assert (info.paper, info.cover_open, info.fault) == (paper, cover, fault)
    assert info.raw == {"printer": mask, "fatal": 0, "flags": 4, "document": 0}


def test_clock_skew_device_minus_host() -> None:
    clock = snapshot().clock
    assert clock.device_time == datetime(2024, 3, 15, 10, 31, 40, tzinfo=MSK)
    assert clock.skew_s == 100.0
    assert snapshot(replace(FACTS, device_time=None)).clock.skew_s is None


def test_punix_memory_gives_documents_left_and_fill() -> None:
    memory = fnr.parse_fn_memory(pv.reply(0x78, "18", "3760", "512"))
    fn = snapshot(replace(FACTS, memory=memory)).fn
    assert (fn.documents_left, fn.storage_30d_free_kb) == (3760, 512)
    assert fn.memory_used_pct == 24.8


def test_no_document_in_the_fn_has_no_last_document_date() -> None:
    fn = snapshot(replace(FACTS, last_fd_number=0)).fn
    assert (fn.last_document_number, fn.last_document_at) == (0, None)


def test_memory_90_bit_without_0x78_18_keeps_the_figures_null() -> None:
    status = fnr.parse_fn_status(pv.reply(0x78, "2", "35", "0", "4"))
    fn = snapshot(replace(FACTS, fn_status=status)).fn
    assert fn.warnings.memory_90 and fn.memory_used_pct is None and fn.documents_left is None


def test_expiry_from_ffd_12_firmware_and_days_left_fallback() -> None:
    both = rec.parse_fn_expiry(pv.reply(0x02, "14", "200324", "5"))
    fn = snapshot(replace(FACTS, expiry=both)).fn
    assert fn.valid_until == date(2024, 3, 20) and fn.days_left == 5
    days_only = rec.parse_fn_expiry(pv.reply(0x02, "14", "000000", "12"))
    fn = snapshot(replace(FACTS, expiry=days_only)).fn
    assert (fn.valid_until, fn.days_left) == (None, 12)
    assert snapshot(replace(FACTS, expiry=None)).fn.days_left is None


def test_block_deadline_is_the_earliest_the_register_reports() -> None:
    snap = snapshot().with_block_deadline()
    assert snap.block_reason == "shift_24_hours"
    assert snap.block_at == datetime(2024, 3, 15, 8, 30, 12, tzinfo=MSK)


def test_phases_and_unknown_phase() -> None:
    for state, phase in ((1, FnPhase.READY), (7, FnPhase.POST_FISCAL), (5, FnPhase.UNKNOWN)):
        status = fnr.parse_fn_status(pv.reply(0x78, "2", str(state), "0", "0"))
        fn = snapshot(replace(FACTS, fn_status=status)).fn
        assert fn.phase is not None and (fn.phase.name, fn.phase.raw) == (phase, state)


def test_model_names() -> None:
    assert model_name(rec.Model(9, "Pirit 2SF")) == "Pirit 2SF"
    assert model_name(rec.Model(77, None)) == "Pirit model 77"
    assert model_name(None) is None


def test_ffd_versions_from_both_sources() -> None:
    long = fnr.parse_fn_versions(pv.reply(0x78, "14", "fn", "1", "4", "3.0", "4", "2", "4"))
    assert ffd_versions(PiritIdentity(versions=long)).model_dump() == {
        "device": "1.2",
        "fn": "1.2",
        "registered": "1.2",
    }
    short = fnr.parse_fn_versions(pv.reply(0x78, "14", "fn", "1", "2", "3.0", "2"))
    support = fnr.parse_ffd_support(pv.reply(0x78, "22", "2", "4"))
    mixed = ffd_versions(PiritIdentity(versions=short, ffd_support=support))
    assert (mixed.device, mixed.fn, mixed.registered) == ("1.05", "1.2", "1.05")
    no_1209 = fnr.parse_fn_versions(pv.reply(0x78, "14", "fn", "1", "", "3.0", "4", "2", "4"))
    assert ffd_versions(PiritIdentity(versions=no_1209)).registered == "1.05"
    assert ffd_versions(PiritIdentity()).model_dump() == dict.fromkeys(
        ("device", "fn", "registered")
    )


def test_firmware_falls_back_to_the_firmware_id() -> None:
    identity = PiritIdentity(serial="1", firmware_id=565)
    assert device_info(identity, "tcp").firmware == "565"
    assert device_info(PiritIdentity(), None).model_dump(exclude={"ffd"}) == {
        "vendor": "pirit",
        "model": None,
        "serial": None,
        "firmware": None,
        "rnm": None,
        "inn": None,
        "transport": None,
    }
