"""One odd field never loses a poll on the wire either (DESIGN.md section 3).

A register whose FN validity record carries an impossible date (31 February) still
gives a snapshot: validity is
null, the oddity is counted in ``invalid_fields`` and logged once, the rest stands.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from kktmon.drivers.base import DriverOptions
from kktmon.drivers.shtrih.driver import ShtrihDriver
from kktmon.protocol.health import LinkState
from kktmon.simulators.scenario import default_state
from kktmon.simulators.server import PtyServer, TcpServer
from kktmon.simulators.shtrih import emulator as shtrih
from kktmon.simulators.shtrih.answers import Context

FAST = DriverOptions(control_timeout_s=0.3, answer_timeout_s=1.0, poll_deadline_s=20)
FN_VALIDITY = 0xFF03
STATE = default_state()


def impossible_validity(_ctx: Context, _params: bytes) -> bytes:
    return bytes([26, 2, 31, 30, 1])  # YY MM DD = 31 Feb 2026; 30 left, 1 done


@pytest.fixture(params=["tcp", "pty"])
def odd_register(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TcpServer[shtrih.ShtrihEmulator] | PtyServer[shtrih.ShtrihEmulator]]:
    command = shtrih.COMMANDS[FN_VALIDITY]
    odd = shtrih.Command(impossible_validity, command.password, command.params)
    monkeypatch.setitem(shtrih.COMMANDS, FN_VALIDITY, odd)
    emulator = shtrih.ShtrihEmulator(STATE)
    runner = TcpServer(emulator) if request.param == "tcp" else PtyServer(emulator)
    with runner:
        yield runner


def test_an_impossible_date_is_null_counted_and_logged_once(
    odd_register: TcpServer[shtrih.ShtrihEmulator] | PtyServer[shtrih.ShtrihEmulator],
    caplog: pytest.LogCaptureFixture,
) -> None:
    driver = ShtrihDriver(odd_register.url, FAST)
    with caplog.at_level(logging.WARNING, logger="kktmon.drivers.base"):
        first, second = driver.read_health(), driver.read_health()
    for snapshot in (first, second):
        assert not snapshot.stale and snapshot.link.state is LinkState.OK
        assert snapshot.fn.valid_until is None
        assert snapshot.fn.serial == STATE.fn.serial  # the rest stands
        assert snapshot.ofd.unsent_count == STATE.ofd.unsent_count
    assert driver.invalid_fields == 2  # counted every poll
    logged = [r for r in caplog.records if "FF03h" in r.getMessage()]
    assert len(logged) == 1, "logged once per register, not every poll"
