"""One health scenario through every vendor: the snapshots must tell the same story.

Each registered vendor's simulator is loaded with the same scenario file and read by its
own driver over TCP: the wire emulators in the register's own protocol, the fake driver
servers (atol-web, kkmserver) over HTTP. The vendor-neutral facts of the snapshots must
agree. A field a vendor cannot report is null (never a different value): that is the one
allowed difference. Where a path reports a fact only coarsely (a driver server cannot
tell "paper near end" from "paper ok"), the exact fact is listed in ``COARSE`` for it and
a coarse fact that every vendor reports is compared instead.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from kktmon.drivers.base import DriverOptions
from kktmon.drivers.registry import driver_class, vendors
from kktmon.protocol.health import HealthSnapshot, PaperState
from kktmon.simulators.registry import simulated_register, simulated_vendors
from kktmon.simulators.scenario import DeviceState, builtin_scenarios, load_builtin

VENDORS = sorted(set(vendors()) & set(simulated_vendors()))
FAST = DriverOptions(
    control_timeout_s=0.3,
    answer_timeout_s=1.0,
    byte_timeout_s=0.3,
    archive_timeout_s=2.0,
    poll_deadline_s=20,
)


def _minute(value: datetime | None) -> datetime | None:
    return value.replace(second=0, microsecond=0) if value else None


FACTS: dict[str, Callable[[HealthSnapshot], Any]] = {
    "fn serial": lambda s: s.fn.serial,
    "fn phase": lambda s: s.fn.phase.raw if s.fn.phase else None,
    "fn valid until": lambda s: s.fn.valid_until,
    "fn days left": lambda s: s.fn.days_left,
    "fn warnings": lambda s: s.fn.warnings.raw,
    "last document": lambda s: s.fn.last_document_number,
    "unsent": lambda s: s.ofd.unsent_count,
    "first unsent": lambda s: s.ofd.first_unsent_number,
    "first unsent at": lambda s: _minute(s.ofd.first_unsent_at),
    "shift state": lambda s: s.shift.state,
    "shift number": lambda s: s.shift.number,
    "shift opened at": lambda s: _minute(s.shift.opened_at),
    "paper": lambda s: s.printer.paper,
    "paper out": lambda s: None if s.printer.paper is None else s.printer.paper is PaperState.OUT,
    "fn memory 90 %": lambda s: s.fn.warnings.memory_90,
    "cover open": lambda s: s.printer.cover_open,
    "inn": lambda s: s.device.inn,
    "rnm": lambda s: s.device.rnm,
    "block reason": lambda s: s.block_reason,
}


#: Facts a path reports only coarsely, so they are left out of its comparison.
COARSE: dict[str, set[str]] = {
    # paperPresent / PaperOver are one bit: "near end" reads as "ok".
    "atol-web": {"paper"},
    # FN_MemOverflowl is the only warning bit kkmserver passes on (raw byte bit 2), and
    # without the shift's opening time the earliest block may be another deadline.
    "kkmserver": {"paper", "fn warnings", "block reason"},
}


def _read(vendor: str, state: DeviceState) -> HealthSnapshot:
    with simulated_register(vendor, state.model_copy(deep=True)) as server:
        snapshot = driver_class(vendor)(server.url, FAST).read_health()
    assert not snapshot.stale, f"{vendor}: {snapshot.link.last_error}"
    return snapshot


@pytest.mark.skipif(len(VENDORS) < 2, reason="needs two simulated vendors")
@pytest.mark.parametrize("scenario", builtin_scenarios())
def test_every_vendor_reports_the_same_facts(scenario: str) -> None:
    # Loaded once: relative times ("-2h") resolved twice could straddle a minute.
    state = load_builtin(scenario)
    snapshots = {vendor: _read(vendor, state) for vendor in VENDORS}
    reference_vendor = VENDORS[0]
    disagreements = []
    for name, fact in FACTS.items():
        values = {
            vendor: fact(snapshot)
            for vendor, snapshot in snapshots.items()
            if name not in COARSE.get(vendor, set())
        }
        known = {vendor: value for vendor, value in values.items() if value is not None}
        if len({repr(value) for value in known.values()}) > 1:
            disagreements.append(f"{name}: {values}")
    assert not disagreements, f"{scenario} read through {VENDORS}:\n" + "\n".join(disagreements)
    assert all(s.fn.serial for s in snapshots.values()), reference_vendor
