"""Field fidelity (issue 13): odd but real kkmserver answers, end to end over HTTP.

The real driver reads the fake server (``HttpFakeServer[KkmserverApp]`` on 127.0.0.1) set
to answer as servers and emulators nobody here wrote were seen to answer, and the
snapshot goes through the agent's checks: what must be reported still is.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from kktmon.agent.config import RulesConfig
from kktmon.agent.rules import evaluate
from kktmon.drivers.base import DriverOptions
from kktmon.drivers.kkmserver.driver import KkmserverDriver
from kktmon.protocol.health import (
    BusyReason,
    FfdVersions,
    FnPhase,
    HealthSnapshot,
    LinkState,
    Severity,
)
from kktmon.protocol.problems import BlockReason, ProblemCode
from kktmon.simulators.http_server import HttpFakeServer, HttpReply, HttpRequest
from kktmon.simulators.kkmserver.app import DEVICE_BUSY_TEXT, PORT_HELD_TEXT, KkmserverApp
from kktmon.simulators.scenario import DeviceState, default_state, load_builtin

FAST = DriverOptions(answer_timeout_s=1, poll_deadline_s=5)
NOW = datetime.now().astimezone().replace(microsecond=0)
RULES = RulesConfig()


@pytest.fixture
def state() -> DeviceState:
    return default_state()


@pytest.fixture
def app(state: DeviceState) -> KkmserverApp:
    return KkmserverApp(state)


@pytest.fixture
def server(app: KkmserverApp) -> Iterator[HttpFakeServer[KkmserverApp]]:
    with HttpFakeServer(app) as fake:
        yield fake
    assert app.violations == []


def _driver(server: HttpFakeServer[Any]) -> KkmserverDriver:
    return KkmserverDriver(server.url, FAST, clock=lambda: NOW)


def _commands(server: HttpFakeServer[Any]) -> list[str]:
    return [r.json()["Command"] for r in server.recorded() if r.method == "POST"]


def _problems(snapshot: HealthSnapshot) -> dict[str, Severity]:
    return {p.code: p.severity for p in evaluate(snapshot, RULES, now=NOW)}


# ------------------------------------------------------------------ item 2: no Info


def test_an_answer_without_info_reports_lists_facts_and_the_expired_drive(
    server: HttpFakeServer[KkmserverApp], app: KkmserverApp, state: DeviceState
) -> None:
    state.fn.valid_until = NOW.date() - timedelta(days=3)
    app.bare_data = True
    snapshot = _driver(server).read_health()
    assert not snapshot.stale and snapshot.link.state is LinkState.OK
    assert snapshot.fn.valid_until == state.fn.valid_until and snapshot.fn.days_left == -3
    assert snapshot.fn.serial == state.fn.serial and snapshot.device.serial == state.serial
    assert snapshot.device.rnm == state.rnm and snapshot.device.inn == state.inn
    assert snapshot.ofd.unsent_count == state.ofd.unsent_count
    assert snapshot.fn.phase is not None and snapshot.fn.phase.name is FnPhase.FISCAL
    assert snapshot.block_reason is BlockReason.FN_EXPIRY
    assert _problems(snapshot)[ProblemCode.FN_EXPIRING] is Severity.BLOCKED
    assert _commands(server) == ["List", "GetDataKKT"]  # this poll's List is reused


def test_a_later_answer_without_info_asks_list_again(
    server: HttpFakeServer[KkmserverApp], app: KkmserverApp, state: DeviceState
) -> None:
    driver = _driver(server)
    assert driver.read_health().fn.valid_until == state.fn.valid_until
    app.bare_data = True
    state.fn.valid_until = NOW.date() + timedelta(days=5)  # only a fresh List tells this
    snapshot = driver.read_health()
    assert not snapshot.stale and snapshot.fn.valid_until == state.fn.valid_until
    assert _problems(snapshot)[ProblemCode.FN_EXPIRING] is Severity.CRITICAL
    assert _commands(server) == ["List", "GetDataKKT", "GetDataKKT", "List"]


def test_an_answer_without_info_and_no_list_still_publishes(state: DeviceState) -> None:
    class NoList(KkmserverApp):
        def handle(self, request: HttpRequest) -> HttpReply:
            if request.method == "POST" and request.json().get("Command") == "List":
                return HttpReply(501, raw=b"Not Implemented")
            return super().handle(request)

    app = NoList(state)
    app.bare_data = True
    with HttpFakeServer(app) as server:
        snapshot = _driver(server).read_health()
    assert not snapshot.stale and snapshot.device.serial == state.serial
    assert snapshot.fn.valid_until is None and snapshot.fn.phase is None


# ------------------------------------------------------------------ item 3: held by the POS


@pytest.mark.parametrize(
    ("fault", "reason", "error"),
    [
        ("device_busy", f"{BusyReason.SERVER_BUSY}{DEVICE_BUSY_TEXT}", "SERVER_BUSY:"),
        ("port_held", BusyReason.PORT_HELD, "PORT_BUSY:"),
    ],
)
def test_a_register_held_by_the_pos_is_busy_not_unreachable(
    server: HttpFakeServer[KkmserverApp], app: KkmserverApp, fault: str, reason: str, error: str
) -> None:
    driver = _driver(server)
    good = driver.read_health()
    setattr(app, fault, True)
    snapshot = driver.read_health()
    text = DEVICE_BUSY_TEXT if fault == "device_busy" else PORT_HELD_TEXT
    assert snapshot.stale and snapshot.link.state is LinkState.BUSY
    assert snapshot.link.busy_reason == reason and snapshot.link.last_error == error + text
    assert snapshot.device == good.device  # the last good facts, marked stale
    assert set(_problems(snapshot)) == {ProblemCode.DEVICE_BUSY}
    assert driver.pending_id is None  # a refused command is not waited for
    setattr(app, fault, False)
    assert not driver.read_health().stale


def test_a_port_busy_text_from_the_servers_driver_is_port_held(
    server: HttpFakeServer[KkmserverApp], app: KkmserverApp
) -> None:
    app.device_error = "Ошибка связи с ККТ:\n порт COM3 занят"
    snapshot = _driver(server).read_health()
    assert snapshot.link.state is LinkState.BUSY
    assert snapshot.link.busy_reason == BusyReason.PORT_HELD
    assert snapshot.link.last_error == "PORT_BUSY:Ошибка связи с ККТ: порт COM3 занят"


# ------------------------------------------------------------------ item 5: family, phase


@pytest.mark.parametrize(
    ("id_type_device", "model", "vendor"),
    [
        ("KkmStrihM", "Касса 1", "shtrih"),
        ("KkmAtol", "Касса 1", "atol"),
        ("KkmPirit", "Касса 1", "pirit"),
        ("KkmOther", "АТОЛ 30Ф", "atol"),
        ("KkmMercury", "Касса 1", "kkmserver"),
        ("KktEmulator", "ШТРИХ-ЛАЙТ-02Ф", "kkmserver"),
    ],
)
def test_device_vendor_is_the_registers_family(
    state: DeviceState, id_type_device: str, model: str, vendor: str
) -> None:
    state.model = model
    with HttpFakeServer(KkmserverApp(state, id_type_device=id_type_device)) as server:
        snapshot = _driver(server).read_health()
    assert not snapshot.stale and snapshot.device.vendor == vendor
    assert snapshot.device.transport == "kkmserver+http"
    assert snapshot.kkt_id == f"{vendor}-{state.serial}"


def test_a_drive_that_is_not_fiscal_raises_fn_not_fiscal() -> None:
    state = load_builtin("not_fiscal")
    with HttpFakeServer(KkmserverApp(state)) as server:
        snapshot = _driver(server).read_health()
    assert snapshot.fn.phase is not None and snapshot.fn.phase.name is FnPhase.NOT_FISCAL
    assert snapshot.fn.phase.raw is None
    assert _problems(snapshot)[ProblemCode.FN_NOT_FISCAL] is Severity.WARNING


# ------------------------------------------------------------------ item 1: odd fields


ODD_INFO = {
    "FFDVersion": 1.05,  # versions as numbers: read as text, not dropped
    "FFDVersionFN": 1.1,
    "FFDVersionKKT": 1.2,
    "NameOrganization": 42,  # a number where a string is expected
    "FN_DateEnd": "15.02.2027",  # a date in a local format
    "SessionState": "open",  # a word where a number is expected
}
DROPPED = ("Info.NameOrganization", "Info.FN_DateEnd", "Info.SessionState")


def test_odd_fields_are_null_counted_and_logged_once(
    server: HttpFakeServer[KkmserverApp],
    app: KkmserverApp,
    state: DeviceState,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    app.info_overrides = ODD_INFO
    driver = _driver(server)
    first = driver.read_health()
    assert not first.stale and first.link.state is LinkState.OK
    assert first.device.ffd == FfdVersions(device="1.2", fn="1.1", registered="1.05")
    assert first.fn.valid_until is None and first.shift.state is None
    assert first.fn.serial == state.fn.serial and first.device.serial == state.serial
    assert driver.invalid_fields == len(DROPPED)
    assert not driver.read_health().stale
    assert driver.invalid_fields == 2 * len(DROPPED)
    logged = [r.getMessage() for r in caplog.records if "does not validate" in r.getMessage()]
    assert len(logged) == len(DROPPED)
    assert all(any(path in line for line in logged) for path in DROPPED)


def test_an_odd_serial_falls_back_to_the_one_list_gave(
    server: HttpFakeServer[KkmserverApp], app: KkmserverApp, state: DeviceState
) -> None:
    app.info_overrides = {"KktNumber": [state.serial]}
    driver = _driver(server)
    snapshot = driver.read_health()
    assert not snapshot.stale and snapshot.device.serial == state.serial
    assert snapshot.kkt_id == f"shtrih-{state.serial}" and driver.invalid_fields == 1


def test_an_odd_field_in_list_is_null_and_counted(state: DeviceState) -> None:
    class OddList(KkmserverApp):
        def _units(self, body: dict[str, Any]) -> list[dict[str, Any]]:
            return [unit | {"FN_IsFiscal": "maybe"} for unit in super()._units(body)]

    with HttpFakeServer(OddList(state)) as server:
        driver = _driver(server)
        snapshot = driver.read_health()
    assert not snapshot.stale and snapshot.device.vendor == "shtrih"
    assert driver.invalid_fields == 1
