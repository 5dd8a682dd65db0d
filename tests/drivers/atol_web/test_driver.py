"""The atol-web driver end to end over HTTP against the fake ATOL driver server.

Every scenario runs the real driver against :class:`AtolWebApp` in an
:class:`HttpFakeServer` on 127.0.0.1; the ``served`` helper also audits each server's
recorded requests against the read-only allowlist (and the last test walks them all).
Failures every vendor shares (a silent register on G3 and G1, garbled bodies, a server
down or answering 5xx, a wrong password) are in ``tests/drivers/test_contract.py``.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from pki import make_pki

from kktmon.drivers.atol_web.driver import AtolWebDriver
from kktmon.drivers.base import DriverOptions
from kktmon.drivers.registry import driver_class
from kktmon.protocol.atol_web.requests import ALLOWED_TASKS, is_allowed_call
from kktmon.protocol.errors import ConfigError, ServerAuthError
from kktmon.protocol.health import FnPhase, HealthSnapshot, LinkState, PaperState, ShiftState
from kktmon.simulators.atol_web.app import AtolWebApp
from kktmon.simulators.http_server import HttpFakeServer, HttpReply, HttpRequest
from kktmon.simulators.registry import simulated_register
from kktmon.simulators.scenario import default_state, load_builtin

FAST = DriverOptions(answer_timeout_s=1, poll_deadline_s=5)
SHORT = DriverOptions(answer_timeout_s=1, poll_deadline_s=2)  # job deadline 1.5 s
PASSWORD = "Kktmon-Secret1"
RECORDED: list[HttpRequest] = []  # every request of every scenario, for the final walk


@contextmanager
def served(
    app: AtolWebApp, *, tls: ssl.SSLContext | None = None
) -> Iterator[HttpFakeServer[AtolWebApp]]:
    with HttpFakeServer(app, tls=tls) as server:
        yield server
    RECORDED.extend(server.recorded())
    assert app.violations == []
    assert all(is_allowed_call(r.method, r.path) for r in server.recorded())


def poll(app: AtolWebApp, options: DriverOptions = FAST, **url: str) -> HealthSnapshot:
    with served(app) as server:
        extra = "".join(f"&{key}={value}" for key, value in url.items())
        return AtolWebDriver(server.url + extra, options).read_health()


def paths(server: HttpFakeServer[Any]) -> list[str]:
    return [f"{r.method} {r.path.split('/requests/')[0]}" for r in server.recorded()]


# ------------------------------------------------------------------ the main path


@pytest.mark.parametrize("generation", [1, 2, 3])
def test_every_generation_reads_the_state(generation: int) -> None:
    state = default_state()
    snapshot = poll(AtolWebApp(state, generation=generation))
    assert snapshot.link.state is LinkState.OK and not snapshot.stale
    device = snapshot.device
    assert (device.vendor, device.transport) == ("atol", "atol-web+http")
    assert (device.model, device.serial) == (state.model, state.serial[-14:])
    assert (device.inn, device.rnm, device.firmware) == (state.inn, state.rnm, state.firmware)
    assert (device.ffd.device, device.ffd.fn, device.ffd.registered) == ("1.2", "1.2", "1.2")
    fn = snapshot.fn
    assert fn.serial == state.fn.serial and fn.phase is not None
    assert (fn.phase.name, fn.phase.raw) == (FnPhase.FISCAL, 3)
    assert (fn.valid_until, fn.registrations_left) == (state.fn.valid_until, 11)
    assert fn.last_document_number == state.fn.last_document_number
    assert fn.last_document_at is None  # the server does not tell: never guessed
    assert (snapshot.ofd.unsent_count, snapshot.ofd.first_unsent_number) == (0, None)
    assert snapshot.ofd.exchange is None
    shift = snapshot.shift
    assert (shift.state, shift.number) == (ShiftState.OPEN, state.shift.number)
    assert state.shift.opened_at is not None and shift.opened_at is not None
    assert abs(shift.opened_at.replace(tzinfo=None) - state.shift.opened_at) < timedelta(seconds=2)
    assert (snapshot.printer.paper, snapshot.printer.cover_open) == (PaperState.OK, False)
    assert snapshot.clock.skew_s is not None and abs(snapshot.clock.skew_s) < 5


@pytest.mark.parametrize("generation", [1, 3])
def test_the_register_keeps_its_name_when_the_shop_moves_to_the_server(generation: int) -> None:
    """DESIGN 3: ``device.vendor`` is the family (``atol``), the path is in
    ``device.transport``, so ``<vendor>-<serial>`` (its MQTT name) stays the same."""
    state = default_state()
    with simulated_register("atol", state.model_copy(deep=True)) as wire:
        on_the_wire = driver_class("atol")(wire.url, FAST).read_health()
    app = AtolWebApp(state.model_copy(deep=True), generation=generation)
    with served(app) as server:
        driver = AtolWebDriver(server.url, FAST)
        through_the_server = driver.read_health()
        identified = driver.identify()
    assert not on_the_wire.stale and not through_the_server.stale
    assert through_the_server.kkt_id == on_the_wire.kkt_id == f"atol-{state.serial[-14:]}"
    assert (on_the_wire.device.transport, through_the_server.device.transport) == (
        "socket",
        "atol-web+http",
    )
    assert (identified.vendor, identified.transport) == ("atol", "atol-web+http")
    assert driver.vendor == "atol-web"  # the adapter (URL scheme, registry name) stays


def test_generation_is_remembered_until_a_path_answers_404() -> None:
    # A login set up on the old server, so the upgraded one (auth mandatory) lets us in.
    app = AtolWebApp(default_state(), generation=1, auth=True)
    with served(app) as server:
        driver = AtolWebDriver(server.url, FAST)
        assert driver.read_health().link.state is LinkState.OK
        first = len(server.recorded())
        assert driver.read_health().link.state is LinkState.OK
        second = paths(server)[first:]
        assert second[0] == "GET /stat/requests"  # no probing again
        app.generation = 3  # the shop upgraded to Web Requests
        snapshot = driver.read_health()
        assert snapshot.link.state is LinkState.OK
        assert "POST /api/v2/operations/queryFnInfo" in paths(server)


def test_https_with_a_private_ca(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(pki.path("server.crt"), pki.path("server.key"))
    with served(AtolWebApp(default_state()), tls=tls) as server:
        url = f"{server.url}&ca={pki.path('ca.crt')}"
        assert url.startswith("atol-web+https://")
        snapshot = AtolWebDriver(url, FAST).read_health()
    assert snapshot.link.state is LinkState.OK
    assert snapshot.device.transport == "atol-web+https"


def test_identify_reads_registration_through_a_job_on_g3() -> None:
    state = default_state()
    with served(AtolWebApp(state)) as server:
        driver = AtolWebDriver(server.url, FAST)
        info = driver.identify()
        assert (info.serial, info.inn, info.rnm) == (state.serial[-14:], state.inn, state.rnm)
        adds = paths(server).count("POST /api/v2/requests")
        for _ in range(3):
            assert driver.read_health().device.inn == state.inn
        assert paths(server).count("POST /api/v2/requests") == adds  # cached between reads


def test_g3_registration_is_refreshed_every_nth_poll() -> None:
    with served(AtolWebApp(default_state())) as server:
        driver = AtolWebDriver(server.url, FAST)
        driver.registration_every = 2  # type: ignore[misc]
        for _ in range(5):
            assert driver.read_health().link.state is LinkState.OK
        adds = paths(server).count("POST /api/v2/requests")
    assert adds == 3  # polls 1, 3 and 5


def test_g3_registration_cache_belongs_to_one_register() -> None:
    state = default_state()
    with served(AtolWebApp(state)) as server:
        driver = AtolWebDriver(server.url, FAST)  # no serial= : the default device answers
        assert driver.read_health().device.inn == state.inn
        state.serial, state.inn = "0000106100123456", "7707083893"  # another register now
        snapshot = driver.read_health()
        adds = paths(server).count("POST /api/v2/requests")
    assert (snapshot.device.serial, snapshot.device.inn) == ("00106100123456", "7707083893")
    assert adds == 2  # its registration was read, not the previous register's reused


def test_g3_busy_queue_keeps_the_poll_but_not_the_registration() -> None:
    app = AtolWebApp(default_state())
    app.pos_jobs_ahead = 3
    with served(app) as server:
        snapshot = AtolWebDriver(server.url, SHORT).read_health()
        asked = paths(server)
    assert snapshot.link.state is LinkState.OK and not snapshot.stale
    assert (snapshot.device.inn, snapshot.device.rnm) == (None, None)  # unknown, not guessed
    assert snapshot.fn.last_document_number == 425
    assert asked[-1] == "DELETE /api/v2"  # our own waiting job, cancelled


def test_without_a_device_id_the_default_device_answers() -> None:
    app = AtolWebApp(default_state(), generation=2)
    with served(app) as server:
        url = server.url.replace("?device=KKT_1", "")
        snapshot = AtolWebDriver(url, FAST).read_health()
        queries = [r.query for r in server.recorded()]
    assert snapshot.link.state is LinkState.OK
    assert all("deviceID" not in query for query in queries)


def test_g3_without_operations_reads_through_one_job() -> None:
    app = AtolWebApp(default_state())
    app.no_operations = True
    with served(app) as server:
        snapshot = AtolWebDriver(server.url, FAST).read_health()
        jobs = [r.json() for r in server.recorded() if r.path == "/api/v2/requests"]
    assert snapshot.link.state is LinkState.OK and snapshot.fn.last_document_number == 425
    assert len(jobs) == 1 and len(jobs[0]["request"]) == 7


@pytest.mark.parametrize(
    ("scenario", "check"),
    [
        ("paper_out", lambda s: s.printer.paper is PaperState.OUT),
        ("shift_expired", lambda s: s.shift.state is ShiftState.EXPIRED),
        ("not_fiscal", lambda s: s.fn.phase is not None and s.fn.phase.name is not FnPhase.FISCAL),
        ("ofd_stale", lambda s: (s.ofd.unsent_count or 0) > 0 and s.ofd.first_unsent_at),
        ("fn_expiring", lambda s: (s.fn.days_left or 999) < 30),
    ],
)
@pytest.mark.parametrize("generation", [2, 3])
def test_scenarios_map_like_the_wire_driver(scenario: str, check: object, generation: int) -> None:
    state = load_builtin(scenario)
    snapshot = poll(AtolWebApp(state, generation=generation))
    assert snapshot.link.state is LinkState.OK
    assert callable(check) and check(snapshot)
    if state.ofd.unsent_count:
        assert snapshot.ofd.first_unsent_number == state.first_unsent_number()


def test_fn_warnings_and_clock_offset_are_reported() -> None:
    state = default_state()
    state.fn.warnings = 0x8B
    state.clock_offset_s = -120.0
    snapshot = poll(AtolWebApp(state))
    assert snapshot.fn.warnings.raw == 0x8B and snapshot.fn.warnings.critical_error
    assert snapshot.clock.skew_s is not None and -125 < snapshot.clock.skew_s < -115


@pytest.mark.parametrize("auth", [False, True])
@pytest.mark.parametrize("generation", [1, 2])
def test_dto10_web_server_with_or_without_a_login(generation: int, auth: bool) -> None:
    app = AtolWebApp(default_state(), generation=generation, auth=auth)
    with served(app) as server:
        assert ("@" in server.url) is auth  # the URL carries a login only when one is set
        snapshot = AtolWebDriver(server.url, FAST).read_health()
        sent = {"authorization" in r.headers for r in server.recorded()}
    assert snapshot.link.state is LinkState.OK and not snapshot.stale
    assert sent == {auth}


def test_a_login_the_server_wants_but_the_url_lacks() -> None:
    app = AtolWebApp(default_state(), generation=2, auth=True)
    with served(app) as server:
        url = server.url.replace("kktmon:Kktmon-Secret1@", "")
        snapshot = AtolWebDriver(url, FAST).read_health()
    _failed(snapshot, LinkState.UNREACHABLE, "AUTH_FAILED")


def test_the_driver_never_asks_for_settings_or_the_home_page() -> None:
    app = AtolWebApp(default_state(), generation=2)
    app.polls_to_ready = 0
    with served(app) as server:
        driver = AtolWebDriver(server.url, FAST)
        assert driver.read_health().link.state is LinkState.OK
        driver.identify()
        asked = {r.path for r in server.recorded()}
    assert not asked & {"/", "/api/v2/settings", "/settings"}


@pytest.mark.parametrize("generation", [2, 3])
def test_a_task_the_servers_driver_does_not_know(generation: int) -> None:
    """An older DTO10 under the server fails a task it does not know (error 501, the
    rest of the job interrupted): a typed device error, never a result made up."""
    state = default_state()
    app = AtolWebApp(state, generation=generation)
    app.driver_lacks = {"getRegistrationInfo"}
    snapshot = poll(app)
    if generation == 2:  # one job for everything: the job fails
        _failed(snapshot, LinkState.GARBLED, "DEVICE_ERROR_1F5")
        return
    # G3 reads the registration in a job of its own: the rest of the poll stands.
    assert snapshot.link.state is LinkState.OK and not snapshot.stale
    assert snapshot.device.serial == state.serial[-14:]
    assert (snapshot.device.inn, snapshot.device.rnm) == (None, None)


@pytest.mark.parametrize("generation", [2, 3])
def test_ofd_through_the_pc_is_told_as_the_wire_driver_tells_it(generation: int) -> None:
    """The registration's OFD channel says what the wire driver learns from relay packets:
    ``proto`` (and ``usb``) go through the PC, so ``ofd.via_host`` (OFD_VIA_HOST)."""
    own_channel = poll(AtolWebApp(default_state(), generation=generation))
    assert own_channel.ofd.via_host is False
    state = default_state()
    state.ofd.via_host = True
    assert poll(AtolWebApp(state, generation=generation)).ofd.via_host is True
    app = AtolWebApp(default_state(), generation=generation)
    app.odd_fields = {"getRegistrationInfo": {"device.ofdChannel": "usb"}}
    assert poll(app).ofd.via_host is True
    app.odd_fields = {"getRegistrationInfo": {"device.ofdChannel": "pigeon"}}
    with served(app) as server:
        driver = AtolWebDriver(server.url, FAST)
        snapshot = driver.read_health()
    assert snapshot.ofd.via_host is None and not snapshot.stale  # not told: unknown
    assert driver.invalid_fields == 1


# ------------------------------------------------------------------ one odd field (DESIGN 3)


@pytest.mark.parametrize("generation", [2, 3])
def test_versions_as_numbers_read_as_text(generation: int) -> None:
    """The vendor's own OpenAPI mock sends ``"ffdVersion": 1.05``: nothing is lost."""
    app = AtolWebApp(default_state(), generation=generation)
    app.odd_fields = {
        "getDeviceInfo": {"deviceInfo.ffdVersion": 1.05, "deviceInfo.fnFfdVersion": 1.1},
        "getRegistrationInfo": {"device.ffdVersion": 1.2},
    }
    with served(app) as server:
        driver = AtolWebDriver(server.url, FAST)
        snapshot = driver.read_health()
    assert snapshot.link.state is LinkState.OK and not snapshot.stale
    ffd = snapshot.device.ffd
    assert (ffd.device, ffd.fn, ffd.registered) == ("1.05", "1.1", "1.2")
    assert driver.invalid_fields == 0  # read, not dropped


class Odd(NamedTuple):
    """One answer field in another type than documented, and what the snapshot shows."""

    task: str
    path: str
    value: object
    check: Callable[[HealthSnapshot], object]


ODD_ANSWERS = [
    pytest.param(  # a number where text belongs
        Odd(
            "getDeviceInfo",
            "deviceInfo.modelName",
            61,
            lambda s: s.device.model is None and s.device.serial is not None,
        ),
        id="number-for-text",
    ),
    pytest.param(  # a date that is no date
        Odd(
            "getDeviceStatus",
            "deviceStatus.currentDateTime",
            "31.02.2026 25:61",
            lambda s: s.clock.device_time is None and s.printer.paper is PaperState.OK,
        ),
        id="bad-date",
    ),
    pytest.param(  # a phase name this code does not know
        Odd(
            "getFnInfo",
            "fnInfo.livePhase",
            "quantumMode",
            lambda s: s.fn.phase is None and s.fn.serial is not None and s.fn.valid_until,
        ),
        id="unknown-enum",
    ),
    pytest.param(  # a count that is no number
        Odd(
            "ofdExchangeStatus",
            "status.notSentCount",
            "many",
            lambda s: s.ofd.unsent_count is None and s.fn.last_document_number == 425,
        ),
        id="count-as-text",
    ),
]


@pytest.mark.parametrize("odd", ODD_ANSWERS)
@pytest.mark.parametrize("generation", [2, 3])
def test_one_odd_field_is_null_and_the_poll_stands(
    generation: int, odd: Odd, caplog: pytest.LogCaptureFixture
) -> None:
    task, path, check = odd.task, odd.path, odd.check
    if generation == 3 and task == "ofdExchangeStatus":
        path = path.replace("status.", "ofdExchangeStatus.")  # the operation's shape
    app = AtolWebApp(default_state(), generation=generation)
    app.odd_fields = {task: {path: odd.value}}
    with served(app) as server:
        driver = AtolWebDriver(server.url, FAST)
        first = driver.read_health()
        second = driver.read_health()
    for snapshot in (first, second):
        assert snapshot.link.state is LinkState.OK and not snapshot.stale  # published
        assert check(snapshot)  # that field null, the rest read
    assert driver.invalid_fields == 2  # counted at every poll
    field = path.split(".", 1)[1]
    logged = [r for r in caplog.records if field in r.getMessage() and task in r.getMessage()]
    assert len(logged) == 1  # logged once per register


# ------------------------------------------------------------------ fault paths


def _failed(snapshot: HealthSnapshot, state: LinkState, error: str) -> None:
    assert snapshot.stale
    assert (snapshot.link.state, snapshot.link.last_error) == (state, error)


@pytest.mark.parametrize("generation", [1, 2, 3])
def test_blocked_queue_is_busy_and_adds_no_job(generation: int) -> None:
    app = AtolWebApp(default_state(), generation=generation)
    app.blocked_reason = "connectionError"
    with served(app) as server:
        snapshot = AtolWebDriver(server.url, FAST).read_health()
        assert not [r for r in server.recorded() if r.method == "POST"]
    reason = "connectionError" if generation == 3 else "unknown"  # only G3 names it
    _failed(snapshot, LinkState.BUSY, f"SERVER_BUSY:queue_blocked:{reason}")


def test_job_behind_the_cashier_is_cancelled_and_busy() -> None:
    app = AtolWebApp(default_state(), generation=2)
    app.pos_jobs_ahead = 2
    with served(app) as server:
        snapshot = AtolWebDriver(server.url, SHORT).read_health()
        deletes = [r for r in server.recorded() if r.method == "DELETE"]
    _failed(snapshot, LinkState.BUSY, "SERVER_BUSY:job_waiting")
    assert len(deletes) == 1


def test_job_that_started_is_not_cancelled_and_reports_running() -> None:
    app = AtolWebApp(default_state(), generation=2)
    app.polls_to_ready = 10**6
    _failed(poll(app, SHORT), LinkState.BUSY, "SERVER_BUSY:job_running")


def test_busy_printing_holds_our_job() -> None:
    state = default_state()
    state.faults.busy_printing = True
    _failed(poll(AtolWebApp(state, generation=2), SHORT), LinkState.BUSY, "SERVER_BUSY:job_waiting")


@pytest.mark.parametrize(
    ("attribute", "state", "error"),
    [
        ("operations_busy", LinkState.BUSY, "SERVER_BUSY:http_408"),
        ("not_activated", LinkState.UNREACHABLE, "DEVICE_NOT_ACTIVATED"),
    ],
)
def test_server_refusals(attribute: str, state: LinkState, error: str) -> None:
    app = AtolWebApp(default_state())
    setattr(app, attribute, True)
    _failed(poll(app), state, error)


def test_unknown_device_id() -> None:
    app = AtolWebApp(default_state(), device_id="KKT_2")
    with served(app) as server:
        url = server.url.replace("device=KKT_2", "device=KKT_9")
        snapshot = AtolWebDriver(url, FAST).read_health()
    _failed(snapshot, LinkState.UNREACHABLE, "DEVICE_NOT_FOUND")


@pytest.mark.parametrize(
    ("generation", "code", "state"),
    [
        (2, 3, LinkState.BUSY),  # port busy
        (1, 601, LinkState.BUSY),  # RPC server busy
        (2, 2, LinkState.UNREACHABLE),  # no connection
        (2, 241, LinkState.UNREACHABLE),  # connection lost
        (2, 166, LinkState.GARBLED),  # FN not found: a failed read, default state
        (3, 3, LinkState.BUSY),  # G3: HTTP 420 with the driver code
        (3, 44, LinkState.GARBLED),  # no paper: a printer error on a read
    ],
)
def test_driver_error_codes(generation: int, code: int, state: LinkState) -> None:
    app = AtolWebApp(default_state(), generation=generation)
    app.task_error = {"getFnInfo": code}
    _failed(poll(app), state, f"DEVICE_ERROR_{code:02X}")


def test_another_register_is_never_published() -> None:
    state = default_state()
    app = AtolWebApp(state)
    with served(app) as server:
        good = AtolWebDriver(server.url + f"&serial={state.serial[-14:]}", FAST).read_health()
        assert good.link.state is LinkState.OK
        wrong = AtolWebDriver(server.url + "&serial=00106100999999", FAST).read_health()
        asked = paths(server)
    _failed(wrong, LinkState.UNREACHABLE, "WRONG_REGISTER")
    assert wrong.device.serial is None and wrong.fn.serial is None
    assert asked[-1] == "POST /api/v2/operations/queryDeviceInfo"  # nothing read after it


def test_lost_add_answer_is_resent_and_the_409_means_queued() -> None:
    app = AtolWebApp(default_state(), generation=2)
    app.lost_add_answers = 1
    with served(app) as server:
        snapshot = AtolWebDriver(server.url, FAST).read_health()
        adds = [r.json()["uuid"] for r in server.recorded() if r.method == "POST"]
    assert snapshot.link.state is LinkState.OK
    assert len(adds) == 2 and adds[0] == adds[1]  # the same job re-sent, answered 409


def test_slow_server_times_out() -> None:
    state = default_state()
    state.faults.slow_answer_s = 3
    _failed(poll(AtolWebApp(state)), LinkState.UNREACHABLE, "TIMEOUT")


class NothingHere:
    """A web server that is not ATOL's: every path is unknown."""

    adapter = "atol-web"

    def __init__(self) -> None:
        self.state = default_state()

    def handle(self, request: HttpRequest) -> HttpReply:
        return HttpReply(404)

    def url(self, host: str, port: int, *, https: bool = False) -> str:
        return f"atol-web://{host}:{port}/?device=KKT_1"


def test_not_an_atol_server_at_all() -> None:
    with HttpFakeServer(NothingHere()) as server:
        snapshot = AtolWebDriver(server.url, FAST).read_health()
        asked = paths(server)
    _failed(snapshot, LinkState.UNREACHABLE, "NOT_AN_ATOL_SERVER")
    assert asked == [
        "GET /api/v2/serverInfo",
        "GET /api/v2/getRequestsQueueStatus",
        "GET /stat/requests",
    ]


@pytest.mark.parametrize(
    "url",
    [
        "atol-web://h/?device=bad id",
        "atol-web://h/?device=" + "x" * 17,
        "atol-web://h/?deviceID=KKT_1",
        "kkmserver://h/?device=KKT_1",
    ],
)
def test_bad_urls_are_config_errors(url: str) -> None:
    with pytest.raises(ConfigError):
        AtolWebDriver(url)


def test_default_port_and_options() -> None:
    driver = AtolWebDriver(
        "atol-web://kktmon@10.0.0.5/?device=KKT_1", DriverOptions(connection_password=PASSWORD)
    )
    assert driver.server.port == 16732
    assert driver.server.password == PASSWORD
    assert PASSWORD not in driver.server.redacted


def test_credentials_never_reach_logs_messages_or_snapshots(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    app = AtolWebApp(default_state())
    app.blocked_reason = "fnError"
    texts: list[str] = []
    with served(app) as server:
        driver = AtolWebDriver(server.url, FAST)
        texts.append(driver.read_health().to_json())
        app.blocked_reason = ""
        texts.append(driver.read_health().to_json())
        bad = AtolWebDriver(server.url.replace(PASSWORD, PASSWORD + "x"), FAST)
        texts.append(bad.read_health().to_json())
        with pytest.raises(ServerAuthError) as caught:
            bad.identify()
        texts += [str(caught.value), repr(driver.server), driver.server.redacted]
    texts += [record.getMessage() for record in caplog.records]
    assert caplog.records  # the driver and httpx did log at DEBUG
    assert not [text for text in texts if PASSWORD in text]


def test_every_recorded_request_is_on_the_allowlist() -> None:
    """The walk over every scenario above (when the file runs as a whole)."""
    for request in RECORDED:
        assert is_allowed_call(request.method, request.path), (request.method, request.path)
        if request.method == "POST" and request.path.endswith("/requests"):
            body = request.json()
            assert {task["type"] for task in body["request"]} <= ALLOWED_TASKS
            assert len(body["uuid"]) < 64
    uuids = [r.json()["uuid"] for r in RECORDED if r.method == "POST" and r.body]
    resent = {u for u in uuids if uuids.count(u) > 1}
    assert len(resent) <= 1  # only the lost-answer scenario re-sends its own job
    deleted = {r.path.rsplit("/", 1)[1] for r in RECORDED if r.method == "DELETE"}
    assert deleted <= set(uuids)  # only our own jobs were ever cancelled
