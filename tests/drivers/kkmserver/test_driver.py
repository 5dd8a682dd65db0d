"""The kkmserver driver end to end over HTTP against the fake server (KkmserverApp).

Every test runs the real driver against ``HttpFakeServer[KkmserverApp]`` on 127.0.0.1 and checks the
snapshot it publishes and the requests the fake recorded. Failures every vendor shares
(a silent register, answers that stay garbled, a server down or answering 5xx, a wrong
password) are in ``tests/drivers/test_contract.py``.
"""

from __future__ import annotations

import json
import logging
import ssl
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from pki import make_pki

from kktmon.drivers.base import DriverOptions
from kktmon.drivers.kkmserver import driver as driver_module
from kktmon.drivers.kkmserver.driver import KkmserverDriver
from kktmon.protocol.errors import ConfigError, KktmonError
from kktmon.protocol.health import (
    FnPhase,
    FnPhaseInfo,
    HealthSnapshot,
    LinkState,
    PaperState,
    ShiftState,
)
from kktmon.protocol.kkmserver import requests as kkm
from kktmon.simulators.http_server import HttpFakeServer, HttpReply, HttpRequest
from kktmon.simulators.kkmserver.app import KkmserverApp
from kktmon.simulators.scenario import DeviceState, default_state, load_builtin

FAST = DriverOptions(answer_timeout_s=1, poll_deadline_s=5)
PASSWORD = "kkmserver-pw"


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


def _base(server: HttpFakeServer[Any], query: str, password: str = PASSWORD) -> str:
    host, port = server.address
    return f"kkmserver://User:{password}@{host}:{port}/?{query}"


def _bodies(server: HttpFakeServer[KkmserverApp]) -> list[dict[str, Any]]:
    return [r.json() for r in server.recorded() if r.method == "POST"]


def _commands(server: HttpFakeServer[Any]) -> list[str]:
    return [body["Command"] for body in _bodies(server)]


def _assert_facts(snapshot: HealthSnapshot, state: DeviceState) -> None:
    assert not snapshot.stale and snapshot.link.state is LinkState.OK
    assert snapshot.device.serial == state.serial and snapshot.device.rnm == state.rnm
    assert snapshot.device.inn == state.inn and snapshot.device.firmware == state.firmware
    assert snapshot.device.ffd.registered == state.ffd.registered
    assert snapshot.fn.serial == state.fn.serial
    assert snapshot.fn.valid_until == state.fn.valid_until
    assert snapshot.ofd.unsent_count == state.ofd.unsent_count
    assert snapshot.shift.number == state.shift.number
    assert snapshot.shift.state == ShiftState(state.shift.state)


# ------------------------------------------------------------------ main paths


def test_device_by_number(server: HttpFakeServer[KkmserverApp], state: DeviceState) -> None:
    snapshot = KkmserverDriver(server.url, FAST).read_health()
    _assert_facts(snapshot, state)
    assert snapshot.device.vendor == "shtrih"  # KkmStrihM
    assert snapshot.device.transport == "kkmserver+http"
    assert snapshot.fn.phase is not None and snapshot.fn.phase.raw == 0x03
    assert snapshot.printer.paper is PaperState.OK and snapshot.printer.cover_open is None
    assert snapshot.fn.last_document_number is None  # CheckNumber is not the FD number
    assert snapshot.shift.opened_at is None and snapshot.ofd.first_unsent_number is None
    assert snapshot.clock.device_time is not None
    data = _bodies(server)[-1]
    assert data["Command"] == "GetDataKKT" and data["NumDevice"] == 1
    assert data["KktNumber"] == state.serial and 1 <= data["Timeout"] <= 60
    assert all(r.path == "/Execute" for r in server.recorded())


def test_list_runs_once_and_each_poll_has_a_fresh_id(server: HttpFakeServer[KkmserverApp]) -> None:
    driver = KkmserverDriver(server.url, FAST)
    for _ in range(3):
        assert not driver.read_health().stale
    assert _commands(server) == ["List", "GetDataKKT", "GetDataKKT", "GetDataKKT"]
    ids = [body["IdCommand"] for body in _bodies(server)]
    assert len(set(ids)) == len(ids)


def test_device_by_serial_is_found_with_list(state: DeviceState) -> None:
    app = KkmserverApp(state, num_device=3)
    with HttpFakeServer(app) as server:
        driver = KkmserverDriver(_base(server, f"serial={state.serial}"), FAST)
        _assert_facts(driver.read_health(), state)
        _assert_facts(driver.read_health(), state)
        assert _commands(server) == ["List", "GetDataKKT", "GetDataKKT"]
        assert _bodies(server)[-1]["NumDevice"] == 3
    assert app.violations == []


def test_device_by_inn(state: DeviceState) -> None:
    app = KkmserverApp(state, num_device=2)
    with HttpFakeServer(app) as server:
        snapshot = KkmserverDriver(_base(server, f"inn={state.inn}"), FAST).read_health()
        _assert_facts(snapshot, state)
        assert _bodies(server)[-1]["NumDevice"] == 2
        assert _bodies(server)[-1]["KktNumber"] == ""


def test_unknown_serial_is_not_configured(server: HttpFakeServer[KkmserverApp]) -> None:
    snapshot = KkmserverDriver(_base(server, "serial=0000000000000001"), FAST).read_health()
    assert snapshot.stale and snapshot.link.state is LinkState.UNREACHABLE
    assert snapshot.link.last_error == "DEVICE_NOT_CONFIGURED"
    assert _commands(server) == ["List"]


def test_a_serial_the_server_lists_later_is_found(state: DeviceState) -> None:
    wanted, state.serial = state.serial, "0000000000000001"  # not configured there yet
    with HttpFakeServer(KkmserverApp(state)) as server:
        driver = KkmserverDriver(_base(server, f"serial={wanted}"), FAST)
        assert driver.read_health().link.last_error == "DEVICE_NOT_CONFIGURED"
        state.serial = wanted
        assert not driver.read_health().stale
        assert _commands(server) == ["List", "List", "GetDataKKT"]


@pytest.mark.parametrize("query", ["", "device=0", "device=x", "device=-1", "colour=red"])
def test_bad_urls_are_config_errors(query: str) -> None:
    with pytest.raises(ConfigError) as caught:
        KkmserverDriver(f"kkmserver://User:{PASSWORD}@127.0.0.1:1/?{query}", FAST)
    assert PASSWORD not in str(caught.value)


def test_execute_sync_fallback_is_remembered(state: DeviceState) -> None:
    app = KkmserverApp(state, sync_only=True)
    with HttpFakeServer(app) as server:
        driver = KkmserverDriver(server.url, FAST)
        _assert_facts(driver.read_health(), state)
        _assert_facts(driver.read_health(), state)
        paths = [r.path for r in server.recorded()]
    assert paths[-3:] == ["/Execute/sync", "/Execute/sync", "/Execute/sync"]
    assert set(paths[:-3]) == {"/Execute"}  # tried (and retried) once, then remembered


def test_https_with_ca(tmp_path: Path, state: DeviceState) -> None:
    pki = make_pki(tmp_path / "pki")
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(pki.path("server.crt"), pki.path("server.key"))
    with HttpFakeServer(KkmserverApp(state), tls=tls) as server:
        assert server.url.startswith("kkmserver+https://")
        url = f"{server.url}&ca={pki.path('ca.crt')}"
        snapshot = KkmserverDriver(url, FAST).read_health()
    _assert_facts(snapshot, state)
    assert snapshot.device.transport == "kkmserver+https"


def test_emulator_is_read_but_flagged(state: DeviceState) -> None:
    with HttpFakeServer(KkmserverApp(state, id_type_device="KktEmulator")) as server:
        driver = KkmserverDriver(server.url, FAST)
        snapshot = driver.read_health()
    assert driver.emulator and not snapshot.stale
    assert snapshot.device.vendor == "kkmserver" and snapshot.device.model == "KktEmulator"


def test_older_server_without_newer_keys(state: DeviceState) -> None:
    with HttpFakeServer(KkmserverApp(state, newer_keys=False)) as server:
        snapshot = KkmserverDriver(server.url, FAST).read_health()
    assert not snapshot.stale and snapshot.fn.serial == state.fn.serial
    assert snapshot.printer.paper is None and snapshot.clock.device_time is None
    assert snapshot.device.ffd.registered is None and snapshot.device.firmware is None


@pytest.mark.parametrize(
    ("scenario", "check"),
    [
        ("paper_out", lambda s: s.printer.paper is PaperState.OUT),
        ("shift_expired", lambda s: s.shift.state is ShiftState.EXPIRED),
        ("not_fiscal", lambda s: s.fn.phase == FnPhaseInfo(name=FnPhase.NOT_FISCAL, raw=None)),
        ("ofd_stale", lambda s: s.ofd.unsent_count and s.ofd.first_unsent_at is not None),
    ],
)
def test_scenarios_map(scenario: str, check: Any) -> None:
    state = load_builtin(scenario)
    with HttpFakeServer(KkmserverApp(state)) as server:
        snapshot = KkmserverDriver(server.url, FAST).read_health()
    assert not snapshot.stale and check(snapshot)


def test_memory_warning_is_bit_2_only(state: DeviceState) -> None:
    state.fn.warnings = 0x04 | 0x01
    with HttpFakeServer(KkmserverApp(state)) as server:
        snapshot = KkmserverDriver(server.url, FAST).read_health()
    assert snapshot.fn.warnings.memory_90 and snapshot.fn.warnings.raw == 0x04


def test_first_unsent_date_keeps_its_minute(state: DeviceState) -> None:
    state.ofd.first_unsent_at = datetime(2026, 1, 2, 3, 4, 5)
    state.ofd.unsent_count = 7
    with HttpFakeServer(KkmserverApp(state)) as server:
        snapshot = KkmserverDriver(server.url, FAST).read_health()
    first = snapshot.ofd.first_unsent_at
    assert first is not None and first.replace(tzinfo=None) == datetime(2026, 1, 2, 3, 4, 5)
    assert snapshot.block_reason == "ofd_30_days"


# ------------------------------------------------------------------ queued commands


def test_queued_command_finishes_with_get_rezult(
    server: HttpFakeServer[KkmserverApp], app: KkmserverApp
) -> None:
    app.queued_polls = 2
    snapshot = KkmserverDriver(server.url, FAST).read_health()
    assert not snapshot.stale
    bodies = _bodies(server)
    assert [b["Command"] for b in bodies] == ["List", "GetDataKKT", *["GetRezult"] * 3]
    assert {b["IdCommand"] for b in bodies[1:]} == {bodies[1]["IdCommand"]}


def test_busy_printing_is_waited_out(
    server: HttpFakeServer[KkmserverApp], app: KkmserverApp, state: DeviceState
) -> None:
    state.faults.busy_printing = True
    assert not KkmserverDriver(server.url, FAST).read_health().stale
    assert _commands(server)[-1] == "GetRezult"


@pytest.mark.parametrize(("attribute", "reason"), [("queued_polls", "4"), ("running", "1")])
def test_pending_id_is_carried_to_the_next_poll(
    server: HttpFakeServer[KkmserverApp], app: KkmserverApp, attribute: str, reason: str
) -> None:
    setattr(app, attribute, 4)
    driver = KkmserverDriver(server.url, FAST)
    first = driver.read_health()
    assert first.stale and first.link.state is LinkState.BUSY
    assert first.link.last_error == f"SERVER_BUSY:status_{reason}"
    ident = driver.pending_id
    assert ident is not None
    second = driver.read_health()
    assert not second.stale and driver.pending_id is None
    bodies = _bodies(server)
    data_commands = [b for b in bodies if b["Command"] == "GetDataKKT"]
    assert len(data_commands) == 1  # never resent under a new id
    rezults = [b for b in bodies if b["Command"] == "GetRezult"]
    assert len(rezults) == 5 and {b["IdCommand"] for b in rezults} == {ident}
    assert bodies[4]["Command"] == "GetRezult"  # the second poll starts with GetRezult


def test_old_pending_id_is_dropped(
    server: HttpFakeServer[KkmserverApp], app: KkmserverApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    app.queued_polls = 10
    driver = KkmserverDriver(server.url, FAST)
    assert driver.read_health().stale
    monkeypatch.setattr(driver_module, "PENDING_MAX_AGE_S", -1.0)
    assert not driver.read_health().stale
    assert _commands(server).count("GetDataKKT") == 2


def test_a_forgotten_pending_id_is_replaced(
    server: HttpFakeServer[KkmserverApp], app: KkmserverApp
) -> None:
    app.queued_polls = 10
    driver = KkmserverDriver(server.url, FAST)
    assert driver.read_health().stale
    app.commands.clear()  # the server restarted: GetRezult answers Status 3
    assert not driver.read_health().stale
    tail = _commands(server)[-2:]
    assert tail == ["GetRezult", "GetDataKKT"]


def test_the_server_waits_at_most_half_the_poll(server: HttpFakeServer[KkmserverApp]) -> None:
    """A silent register keeps the server waiting: for half the poll, the rest is GetRezult."""
    KkmserverDriver(server.url, DriverOptions(answer_timeout_s=1, poll_deadline_s=3)).read_health()
    assert _bodies(server)[1]["Command"] == "GetDataKKT"
    assert _bodies(server)[1]["Timeout"] == 1


# ------------------------------------------------------------------ faults


def _poll_after_good(
    server: HttpFakeServer[KkmserverApp],
) -> tuple[KkmserverDriver, HealthSnapshot]:
    driver = KkmserverDriver(server.url, FAST)
    assert not driver.read_health().stale
    return driver, driver.read_health()


def test_device_missing(
    server: HttpFakeServer[KkmserverApp], app: KkmserverApp, state: DeviceState
) -> None:
    app.device_missing = True
    snapshot = KkmserverDriver(server.url, FAST).read_health()
    assert snapshot.stale and snapshot.link.state is LinkState.UNREACHABLE
    assert snapshot.link.last_error == "DEVICE_NOT_CONFIGURED"


def test_status_3_finds_a_serial_device_again(state: DeviceState) -> None:
    app = KkmserverApp(state, num_device=4)
    with HttpFakeServer(app) as server:
        driver = KkmserverDriver(_base(server, f"serial={state.serial}"), FAST)
        assert not driver.read_health().stale
        app.device_missing = True
        assert driver.read_health().link.last_error == "DEVICE_NOT_CONFIGURED"
        app.device_missing = False
        assert not driver.read_health().stale
    assert _commands(server) == ["List", "GetDataKKT", "GetDataKKT", "List", "GetDataKKT"]


def test_device_error_keeps_the_server_text(
    server: HttpFakeServer[KkmserverApp], app: KkmserverApp
) -> None:
    driver = KkmserverDriver(server.url, FAST)
    good = driver.read_health()
    app.device_error = "Ошибка связи с ККТ:\n нет ответа от устройства"
    snapshot = driver.read_health()
    assert snapshot.stale and snapshot.link.state is LinkState.GARBLED
    assert (
        snapshot.link.last_error == "DEVICE_ERROR_02:Ошибка связи с ККТ: нет ответа от устройства"
    )
    assert snapshot.device == good.device  # the last good facts, marked stale


def test_device_error_text_is_bounded(
    server: HttpFakeServer[KkmserverApp], app: KkmserverApp
) -> None:
    app.device_error = "x" * 500
    error = KkmserverDriver(server.url, FAST).read_health().link.last_error
    assert error is not None and len(error) <= len("DEVICE_ERROR_02:") + 100


def test_one_garbled_answer_is_retried_and_served_as_status_5(
    server: HttpFakeServer[KkmserverApp], state: DeviceState
) -> None:
    driver = KkmserverDriver(server.url, FAST)
    assert not driver.read_health().stale
    state.faults.cut_answers = 1
    snapshot = driver.read_health()
    assert not snapshot.stale and snapshot.link.retries == 1
    last_two = _bodies(server)[-2:]
    assert last_two[0] == last_two[1]  # the same IdCommand: the server answered Status 5


class _StatusApp(KkmserverApp):
    """A server that answers GetDataKKT with a fixed HTTP status (or a bare 200)."""

    def __init__(self, state: DeviceState, status: int, body: Any = None) -> None:
        super().__init__(state)
        self.status = status
        self.reply_body = body

    def handle(self, request: HttpRequest) -> HttpReply:
        if request.method == "POST" and request.json().get("Command") == "GetDataKKT":
            raw = None if self.reply_body else f"HTTP {self.status}".encode()
            return HttpReply(self.status, self.reply_body, raw=raw)
        return super().handle(request)


@pytest.mark.parametrize(
    ("status", "body", "link", "error"),
    [
        (501, None, LinkState.UNREACHABLE, "COMMAND_NOT_IMPLEMENTED"),
        (200, {"Command": "GetDataKKT", "Error": ""}, LinkState.GARBLED, "MALFORMED_ANSWER"),
        (200, [{"Status": 0}], LinkState.GARBLED, "MALFORMED_ANSWER"),
    ],
)
def test_http_errors_and_answers_without_an_envelope(
    state: DeviceState, status: int, body: Any, link: LinkState, error: str
) -> None:
    with HttpFakeServer(_StatusApp(state, status, body)) as server:
        snapshot = KkmserverDriver(server.url, FAST).read_health()
    assert snapshot.stale and snapshot.link.state is link
    assert snapshot.link.last_error == error


def test_old_server_without_list_reads_by_number(state: DeviceState) -> None:
    class NoList(KkmserverApp):
        def handle(self, request: HttpRequest) -> HttpReply:
            if request.method == "POST" and request.json().get("Command") == "List":
                return HttpReply(501, raw=b"Not Implemented")
            return super().handle(request)

    with HttpFakeServer(NoList(state)) as server:
        driver = KkmserverDriver(server.url, FAST)
        first, second = driver.read_health(), driver.read_health()
        commands = _commands(server)
    # A text 501 reaches the driver after HttpSession's retries; List is not asked again.
    assert commands[-2:] == ["GetDataKKT", "GetDataKKT"] and set(commands[:-2]) == {"List"}
    assert not first.stale and not second.stale
    assert second.device.vendor == "kkmserver" and second.device.model is None


def test_another_register_is_never_published(state: DeviceState) -> None:
    class IgnoresKktNumber(KkmserverApp):
        def _missing(self, body: dict[str, Any]) -> dict[str, Any] | None:
            return None  # an old server that selects by NumDevice only

    with HttpFakeServer(IgnoresKktNumber(state)) as server:
        url = _base(server, "device=1&serial=0000000000000042")
        snapshot = KkmserverDriver(url, FAST).read_health()
    assert snapshot.stale and snapshot.link.last_error == "WRONG_REGISTER"
    assert snapshot.device.serial is None


def test_inn_mismatch_is_another_register(server: HttpFakeServer[KkmserverApp]) -> None:
    snapshot = KkmserverDriver(_base(server, "device=1&inn=7700000000"), FAST).read_health()
    assert snapshot.stale and snapshot.link.last_error == "WRONG_REGISTER"


# ------------------------------------------------------------------ safety


def test_credentials_are_never_logged(
    server: HttpFakeServer[KkmserverApp], app: KkmserverApp, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    driver = KkmserverDriver(server.url, FAST)
    snapshots = [driver.read_health()]
    app.device_error = f"echo {PASSWORD}"
    snapshots.append(driver.read_health())
    app.device_error = None
    app.queued_polls = 9
    snapshots.append(driver.read_health())
    bad = KkmserverDriver(_base(server, "device=1", "wrong-" + PASSWORD), FAST)
    snapshots.append(bad.read_health())
    messages: list[str] = []
    for query in ("device=0", "colour=red", ""):
        with pytest.raises(ConfigError) as caught:
            KkmserverDriver(_base(server, query), FAST)
        messages.append(str(caught.value))
    with pytest.raises(KktmonError) as failed:
        bad.identify()
    messages.append(str(failed.value))
    text = caplog.text + "".join(messages) + "".join(s.to_json() for s in snapshots)
    assert caplog.records and messages
    assert PASSWORD not in text
    assert repr(driver.server).count(PASSWORD) == 0


def test_every_recorded_request_is_on_the_allowlist(
    server: HttpFakeServer[KkmserverApp], app: KkmserverApp, state: DeviceState
) -> None:
    driver = KkmserverDriver(server.url, FAST)
    driver.identify()
    app.queued_polls = 5
    driver.read_health()
    driver.read_health()
    state.faults.cut_answers = 1
    driver.read_health()
    app.device_missing = True
    driver.read_health()
    bodies = _bodies(server)
    assert len(bodies) > 8
    for body in bodies:
        assert body["Command"] in kkm.ALLOWLIST, json.dumps(body, ensure_ascii=False)
        assert body.get("NumDevice", 1) >= 1
        assert len(body["IdCommand"]) <= kkm.MAX_ID_LENGTH
    assert app.violations == []
