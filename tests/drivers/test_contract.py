"""The driver contract, once for every registered vendor: trouble is a state, never a crash.

``drivers/base.py`` promises (NUT's poll contract, STYLE.md example 7): ``read_health()``
never raises for device or link trouble; a failed poll returns the last good snapshot
marked ``stale``, with ``link.state`` (``busy``, ``unreachable``, ``garbled``) and a typed
``link.last_error``; ``identify()`` raises a typed :class:`KktmonError` instead. Each
behaviour below runs through every vendor :func:`kktmon.drivers.registry.vendors` knows:

* wire vendors through their emulator over TCP and over a pty (real pyserial), the fault
  switched on in the shared :class:`~kktmon.simulators.scenario.Faults`;
* driver-server vendors (atol-web, kkmserver) through their fake server over HTTP, the
  fault through the fake's own equivalent (a stalled queue, a body that is not JSON) or,
  where no fake has one (a 5xx, a dropped connection), through :class:`HttpFaults`;
* ``VARIANTS``: set-ups of one vendor that meet trouble by another path (ATOL's 2.4 link
  layer, the job queue of ATOL's older web server) run every behaviour too.

A behaviour that cannot happen for a kind of vendor is a skipped parameter with the
reason; a test that leaves out a carrier (a pty cannot hang up) says why in its
docstring. Where vendors report the same trouble differently, the expectation tables
name the vendor: each such row is a known difference, written down once, here.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace
from typing import Any, Literal, NamedTuple, TypeVar

import pytest
import serial
from _pytest.mark import ParameterSet
from driver_servers import password_apart

from kktmon.drivers.base import Driver, DriverOptions, error_code
from kktmon.drivers.registry import driver_class, vendors
from kktmon.protocol.atol_web.requests import ALLOWED_TASKS
from kktmon.protocol.errors import KktmonError
from kktmon.protocol.health import HealthSnapshot, LinkState
from kktmon.simulators.atol import AtolEmulator
from kktmon.simulators.atol_web import AtolWebApp
from kktmon.simulators.http_server import HttpApp, HttpFakeServer, HttpReply, HttpRequest
from kktmon.simulators.kkmserver import KkmserverApp
from kktmon.simulators.registry import (
    make_emulator,
    make_server_app,
    server_vendors,
    wire_vendors,
)
from kktmon.simulators.scenario import DeviceState, default_state
from kktmon.simulators.server import DeviceEmulator, PtyServer, TcpServer

FAST = DriverOptions(
    control_timeout_s=0.1,
    byte_timeout_s=0.1,
    answer_timeout_s=0.5,
    archive_timeout_s=0.5,
    enq_tries=5,
    poll_deadline_s=10,  # only a slow machine comes near it: no test waits for it
)
#: Silence costs a job-queue server the poll's whole deadline, so a shorter one; with
#: room for kkmserver's shortest wait for its register (a 1 s command ``Timeout``), or
#: the server's "queued" (busy) becomes our own TIMEOUT.
SILENCE = FAST.model_copy(update={"enq_tries": 2, "poll_deadline_s": 2.0})

Carrier = Literal["tcp", "pty", "http"]
Kind = Literal["wire", "server"]
CARRIERS: dict[Kind, tuple[Carrier, ...]] = {"wire": ("tcp", "pty"), "server": ("http",)}
WIRE: Kind = "wire"
SERVER: Kind = "server"
KINDS: dict[str, Kind] = dict.fromkeys(wire_vendors(), WIRE) | dict.fromkeys(
    server_vendors(), SERVER
)


def _atol_legacy(simulator: object) -> None:
    assert isinstance(simulator, AtolEmulator)
    simulator.link_layer = "legacy"  # the "2.4" ENQ/ACK/EOT link instead of FE packets


def _atol_web_g1(simulator: object) -> None:
    assert isinstance(simulator, AtolWebApp)
    simulator.generation = 1  # the DTO10 web server: every read is a queued job


def _atol_web_quick(simulator: object) -> None:
    assert isinstance(simulator, AtolWebApp)
    simulator.operation_stall_s = 0.1  # a stalled operation's 408, in test time


#: vendor -> variant name -> how its simulator is set up for it.
VARIANTS: dict[str, dict[str, Callable[[object], None]]] = {
    "atol": {"legacy": _atol_legacy},
    "atol-web": {"g1": _atol_web_g1},
}
#: vendor -> how its simulator is made to fit FAST (stalls a real server holds longer).
QUICK: dict[str, Callable[[object], None]] = {"atol-web": _atol_web_quick}


@dataclass(frozen=True)
class Setup:
    """One way to reach a simulated register: vendor, variant ("" = default), carrier."""

    vendor: str
    variant: str
    carrier: Carrier

    @property
    def name(self) -> str:
        return f"{self.vendor}[{self.variant}]" if self.variant else self.vendor

    @property
    def kind(self) -> Kind:
        return KINDS[self.vendor]


def setups(
    carriers: Collection[Carrier] = ("tcp", "pty", "http"),
    not_for: Mapping[Kind, str] | None = None,
) -> list[ParameterSet]:
    """Every registered vendor and variant on each of ``carriers`` its kind is reached by.

    ``not_for``: kind -> why the behaviour cannot happen there (one skipped parameter per
    vendor). A vendor with no simulator is a skipped parameter too, never left out.
    """
    params = []
    for vendor in vendors():
        kind = KINDS.get(vendor)
        if kind is None:
            reason = f"{vendor}: no simulator registered, so its contract cannot run"
            params.append(pytest.param(None, id=vendor, marks=pytest.mark.skip(reason=reason)))
            continue
        if not_for and kind in not_for:
            skip = pytest.mark.skip(reason=not_for[kind])
            params.append(pytest.param(None, id=vendor, marks=skip))
            continue
        for variant in ["", *VARIANTS.get(vendor, {})]:
            for carrier in CARRIERS[kind]:
                if carrier in carriers:
                    setup = Setup(vendor, variant, carrier)
                    params.append(pytest.param(setup, id=f"{setup.name}-{carrier}"))
    return params


class Outcome(NamedTuple):
    """What a failed poll reports: ``link.state`` and ``link.last_error``."""

    state: LinkState
    error: str


Row = TypeVar("Row", Outcome, Outcome | None)


def expected(table: Mapping[str, Row], setup: Setup) -> Row:
    """The row of the variant, else of the vendor, else of the vendor's kind."""
    for key in (setup.name, setup.vendor, setup.kind):
        if key in table:
            return table[key]
    pytest.fail(f"no expected outcome for {setup.name}: add its row to the table")


# ------------------------------------------------------------------ simulated registers


class HttpFaults:
    """A fake driver server with the HTTP faults no fake offers itself (5xx, hang-ups)."""

    def __init__(self, app: HttpApp) -> None:
        self.app = app
        self.state = app.state
        self.adapter = app.adapter
        #: Answer every request with this status and a text page (None: the fake answers).
        self.status: int | None = None
        self._lock = threading.Lock()
        self._handled = 0
        self._drop_at = 0

    def drop_answer(self, nth: int) -> None:
        """Hang up without answering the ``nth`` request from now (it is still handled)."""
        with self._lock:
            self._drop_at = self._handled + nth

    def handle(self, request: HttpRequest) -> HttpReply:
        if self.status is not None:
            return HttpReply(self.status, raw=f"HTTP {self.status}".encode())
        reply = self.app.handle(request)
        with self._lock:
            self._handled += 1
            drop = self._handled == self._drop_at
        return replace(reply, drop=True) if drop else reply

    def url(self, host: str, port: int, *, https: bool = False) -> str:
        return self.app.url(host, port, https=https)


Runner = TcpServer[DeviceEmulator] | PtyServer[DeviceEmulator] | HttpFakeServer[HttpFaults]


@dataclass
class Register:
    """A running simulated register reached the way ``setup`` says."""

    setup: Setup
    state: DeviceState
    simulator: object  # the wire emulator or the fake server app, for vendor knobs
    runner: Runner

    @property
    def url(self) -> str:
        return self.runner.url

    @property
    def http(self) -> HttpFaults:
        assert isinstance(self.runner, HttpFakeServer), f"{self.setup.name} is not a server"
        return self.runner.app

    def driver(self, options: DriverOptions = FAST) -> Driver[Any]:
        return driver_class(self.setup.vendor)(self.url, options)

    def off_allowlist(self) -> list[object]:
        """What reached the register that the vendor's allowlist forbids."""
        name = "forbidden_received" if self.setup.kind == "wire" else "violations"
        found: list[object] = getattr(self.simulator, name)
        return found


def _tweak(setup: Setup, simulator: object) -> None:
    for tweak in (QUICK.get(setup.vendor), VARIANTS.get(setup.vendor, {}).get(setup.variant)):
        if tweak is not None:
            tweak(simulator)


def _app(setup: Setup) -> HttpApp:
    app = make_server_app(setup.vendor, default_state())
    _tweak(setup, app)
    return app


def start(setup: Setup) -> Register:
    if setup.kind == "server":
        app = _app(setup)
        return Register(setup, app.state, app, HttpFakeServer(HttpFaults(app)).start())
    emulator = make_emulator(setup.vendor)
    _tweak(setup, emulator)
    runner = TcpServer(emulator) if setup.carrier == "tcp" else PtyServer(emulator)
    return Register(setup, emulator.state, emulator, runner)


@pytest.fixture
def register(request: pytest.FixtureRequest) -> Iterator[Register]:
    """The running register of the test's ``Setup`` (parametrised indirectly)."""
    simulated = start(request.param)
    try:
        yield simulated
    finally:
        simulated.runner.close()
    assert simulated.off_allowlist() == [], "a contract path sent what the allowlist forbids"


def facts(snapshot: HealthSnapshot) -> dict[str, Any]:
    """What a poll read from the register, without what depends on the moment it ran."""
    return {
        "device": snapshot.device.model_dump(),
        "fn": snapshot.fn.model_dump(exclude={"days_left"}),
        "ofd": snapshot.ofd.model_dump(exclude={"oldest_unsent_age_h"}),
        "shift": snapshot.shift.model_dump(exclude={"hours_open"}),
        "printer": snapshot.printer.model_dump(),
    }


#: What a failed poll replaces in the last good snapshot; everything else is kept.
REPLACED_ON_FAILURE = {"taken_at", "link", "stale", "problems"}


def assert_failed(snapshot: HealthSnapshot, outcome: Outcome) -> None:
    assert snapshot.stale, "a failed poll is marked stale"
    assert (snapshot.link.state, snapshot.link.last_error) == outcome


def assert_kept(stale: HealthSnapshot, good: HealthSnapshot, outcome: Outcome) -> None:
    """A failed poll after ``good``: stale, the outcome, and the last good facts."""
    assert_failed(stale, outcome)
    assert good.last_good_at == good.taken_at and not good.stale
    assert stale.last_good_at == good.taken_at and stale.taken_at >= good.taken_at
    kept = stale.model_dump(exclude=REPLACED_ON_FAILURE)
    assert kept == good.model_dump(exclude=REPLACED_ON_FAILURE), "the last good facts are kept"


def assert_fresh(snapshot: HealthSnapshot) -> None:
    assert not snapshot.stale and snapshot.link.state is LinkState.OK
    assert snapshot.link.last_error is None and snapshot.fn.serial is not None


def assert_identify_raises(driver: Driver[Any], outcome: Outcome) -> None:
    """``identify()`` raises the typed error ``read_health()`` reports as ``last_error``."""
    with pytest.raises(KktmonError) as caught:
        driver.identify()
    assert error_code(caught.value) == outcome.error


# ------------------------------------------------------------------ silence

SILENT: dict[str, Outcome] = {
    "wire": Outcome(LinkState.UNREACHABLE, "TIMEOUT"),
    # A driver server stays up while its register is silent: our read waits in its
    # queue (a register that cannot sell right now), it is not a dead line.
    "atol-web": Outcome(LinkState.BUSY, "SERVER_BUSY:http_408"),  # the operation stalls
    "atol-web[g1]": Outcome(LinkState.BUSY, "SERVER_BUSY:job_waiting"),  # never starts
    "kkmserver": Outcome(LinkState.BUSY, "SERVER_BUSY:status_4"),  # queued, not run
}


@pytest.mark.parametrize("register", setups(), indirect=True)
def test_silent_register_is_stale_with_the_last_good_facts(register: Register) -> None:
    outcome = expected(SILENT, register.setup)
    driver = register.driver(SILENCE)
    good = driver.read_health()
    assert_fresh(good)
    register.state.faults.silent = True
    assert_kept(driver.read_health(), good, outcome)
    assert_identify_raises(driver, outcome)
    register.state.faults.silent = False
    assert_fresh(driver.read_health())


# ------------------------------------------------------------------ a port held by another program

PORT_HELD: dict[str, Outcome] = {
    "wire": Outcome(LinkState.BUSY, "PORT_BUSY"),
    # The server's own port to the register is held: its driver reports error 3.
    "atol-web": Outcome(LinkState.BUSY, "DEVICE_ERROR_03"),
    # kkmserver says so only in the words of its Status 2 ("error"): the driver reads
    # them, and keeps them after the code.
    "kkmserver": Outcome(LinkState.BUSY, "PORT_BUSY:Ошибка связи с ККТ: порт COM3 занят"),
}


@contextmanager
def _port_held_on_the_line(register: Register) -> Iterator[None]:
    with serial.Serial(register.url.removeprefix("serial://"), exclusive=True):
        yield


@contextmanager
def _port_held_behind_atol_web(register: Register) -> Iterator[None]:
    app = register.simulator
    assert isinstance(app, AtolWebApp)
    app.task_error = dict.fromkeys(ALLOWED_TASKS, 3)  # driver error 3: port busy
    yield
    app.task_error = {}


@contextmanager
def _port_held_behind_kkmserver(register: Register) -> Iterator[None]:
    app = register.simulator
    assert isinstance(app, KkmserverApp)
    app.device_error = "Ошибка связи с ККТ:\n порт COM3 занят"
    yield
    app.device_error = None


HOLD_PORT: dict[str, Callable[[Register], AbstractContextManager[None]]] = {
    "wire": _port_held_on_the_line,
    "atol-web": _port_held_behind_atol_web,
    "kkmserver": _port_held_behind_kkmserver,
}


@pytest.mark.parametrize("register", setups(carriers=("pty", "http")), indirect=True)
def test_port_held_by_another_program_is_a_state_not_a_crash(register: Register) -> None:
    """Over TCP a second client waits in the register's backlog: no port to hold there."""
    setup = register.setup
    driver = register.driver()
    good = driver.read_health()
    hold = HOLD_PORT.get(setup.vendor) or HOLD_PORT[setup.kind]
    with hold(register):
        assert_kept(driver.read_health(), good, expected(PORT_HELD, setup))
    assert_fresh(driver.read_health())


# ------------------------------------------------------------------ nobody there

NOBODY: dict[str, Outcome] = {
    "wire": Outcome(LinkState.UNREACHABLE, "UNREACHABLE"),
    "server": Outcome(LinkState.UNREACHABLE, "SERVER_DOWN"),
}


@pytest.fixture
def refused(refusing_address: tuple[str, int]) -> str:
    """``host:port`` where connecting is refused."""
    host, port = refusing_address
    return f"{host}:{port}"


def _nobody_at(setup: Setup, address: str) -> str:
    if setup.carrier == "pty":
        return "serial:///dev/kktmon-no-such-port"
    if setup.carrier == "tcp":
        return f"socket://{address}"
    host, port = address.rsplit(":", 1)
    return _app(setup).url(host, int(port))


@pytest.mark.parametrize("setup", setups())
def test_missing_port_or_server_is_unreachable(setup: Setup, refused: str) -> None:
    """Never a good poll: nothing is invented, only who was asked is said."""
    outcome = expected(NOBODY, setup)
    driver = driver_class(setup.vendor)(_nobody_at(setup, refused), FAST)
    snapshot = driver.read_health()
    assert_failed(snapshot, outcome)
    assert snapshot.last_good_at is None and snapshot.device.vendor == driver.vendor
    assert snapshot.device.serial is None and snapshot.fn.serial is None
    assert_identify_raises(driver, outcome)


@contextmanager
def _refusing(host: str, port: int) -> Iterator[None]:
    """Keep the port just freed bound but not listening: connecting is refused."""
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind((host, port))
        yield


@pytest.mark.parametrize("register", setups(carriers=("tcp", "http")), indirect=True)
def test_register_gone_after_a_good_poll_keeps_its_facts(register: Register) -> None:
    """A pty's number is anyone's once closed, so the gone serial device is the test above."""
    driver = register.driver()
    good = driver.read_health()
    runner = register.runner
    if isinstance(runner, HttpFakeServer):
        host, port = runner.address
    else:
        assert isinstance(runner, TcpServer)
        host, port = runner.host, runner.port
    runner.close()
    with _refusing(host, port):
        assert_kept(driver.read_health(), good, expected(NOBODY, register.setup))


# ------------------------------------------------------------------ garbled answers

#: fault -> how it is switched on; counted faults use up one shot per answer.
GARBLING: dict[str, Callable[[DeviceState, int], None]] = {
    "noise before the frame": lambda s, n: setattr(s.faults, "garbage_before_stx", 7),
    "wrong checksum": lambda s, n: setattr(s.faults, "wrong_lrc_answers", n),
    "answer cut short": lambda s, n: setattr(s.faults, "cut_answers", n),
}
#: An HTTP body is garbled whole: there are no bytes before a frame to skip.
NOT_OVER_HTTP = {"noise before the frame"}


def _garbling_params(carriers: Collection[Carrier]) -> list[ParameterSet]:
    params = []
    for fault in GARBLING:
        for param in setups(carriers):
            setup = param.values[0]
            marks = list(param.marks)
            if isinstance(setup, Setup) and setup.kind == "server" and fault in NOT_OVER_HTTP:
                reason = "an HTTP body is garbled whole: no noise before a frame to skip"
                marks.append(pytest.mark.skip(reason=reason))
            params.append(pytest.param(setup, fault, id=f"{param.id}-{fault}", marks=marks))
    return params


@pytest.mark.parametrize(
    ("register", "fault"), _garbling_params(("tcp", "pty", "http")), indirect=["register"]
)
def test_a_few_garbled_answers_are_retried(register: Register, fault: str) -> None:
    """On from the first byte (probing, identity, the poll), then again on a known path.

    The first poll may spend the fault on answers it can do without (ATOL's G1 server
    answers the probe for newer paths with a 404 page); the second cannot.
    """
    driver = register.driver()
    GARBLING[fault](register.state, 2)
    first = driver.read_health()
    assert_fresh(first)
    GARBLING[fault](register.state, 2)
    second = driver.read_health()
    assert_fresh(second)
    if fault not in NOT_OVER_HTTP:
        assert second.link.retries >= 1
    register.state.faults.garbage_before_stx = 0
    clean = register.driver().read_health()
    assert facts(first) == facts(second) == facts(clean)


STAYS_GARBLED: dict[str, dict[str, Outcome]] = {
    "wrong checksum": {
        "wire": Outcome(LinkState.GARBLED, "CHECKSUM"),
        # The retried exchange meets the register's still pending (garbled) answer and
        # the Shtrih link gives up on that as "keeps reporting a pending answer".
        "shtrih": Outcome(LinkState.UNREACHABLE, "TIMEOUT"),
        "server": Outcome(LinkState.GARBLED, "MALFORMED_ANSWER"),
    },
    "answer cut short": {
        "wire": Outcome(LinkState.GARBLED, "CHECKSUM"),
        # On the 2.4 link the cut answers end the exchange as a register that answered
        # our ENQs but never got ready (NAK, 15h): busy, not garbled.
        "atol[legacy]": Outcome(LinkState.BUSY, "DEVICE_ERROR_15"),
        "pirit": Outcome(LinkState.GARBLED, "FRAME"),
        "shtrih": Outcome(LinkState.UNREACHABLE, "TIMEOUT"),
        "server": Outcome(LinkState.GARBLED, "MALFORMED_ANSWER"),
    },
}


@pytest.mark.parametrize(
    ("register", "fault"),
    [param for param in _garbling_params(("tcp", "http")) if param.values[1] in STAYS_GARBLED],
    indirect=["register"],
)
def test_answers_that_stay_garbled_are_stale_with_the_last_good_facts(
    register: Register, fault: str
) -> None:
    """Over TCP and HTTP: the link code that gives up is the same on a pty."""
    driver = register.driver()
    good = driver.read_health()
    GARBLING[fault](register.state, 1000)
    assert_kept(driver.read_health(), good, expected(STAYS_GARBLED[fault], register.setup))


# ------------------------------------------------------------------ lost answers

#: A register that answers its link check but not the read, even asked again: busy with
#: ``busy_reason`` ``no_answer``, never the POS holding the port nor a dead line.
NO_ANSWER = Outcome(LinkState.BUSY, "NO_ANSWER")
ON_THE_WIRE: dict[Kind, str] = {
    "server": "an HTTP answer is lost with its connection: "
    "test_connection_dropped_mid_poll_is_opened_again"
}
#: Answers lost in a row -> the poll's outcome (None: fresh facts). A lost answer is
#: asked once more, so two cost the read where the link cannot get a lost answer back
#: itself; Shtrih-M's ENQ gets the kept answer sent again and ATOL's FE ``C3`` the
#: result its task buffer keeps, so there two are still the link's to ride out.
LOST_IN_A_ROW: dict[int, dict[str, Outcome | None]] = {
    1: {"wire": None},
    2: {"wire": NO_ANSWER, "shtrih": None, "atol": None, "atol[legacy]": NO_ANSWER},
}


@pytest.mark.parametrize("lost", sorted(LOST_IN_A_ROW))
@pytest.mark.parametrize("register", setups(("tcp", "pty"), not_for=ON_THE_WIRE), indirect=True)
def test_a_lost_answer_is_asked_again_once(register: Register, lost: int) -> None:
    """Every command we send is a read: asking it again is harmless, and counted."""
    outcome = expected(LOST_IN_A_ROW[lost], register.setup)
    driver = register.driver()
    good = driver.read_health()
    register.state.faults.lost_answers = lost
    polled = driver.read_health()
    assert register.state.faults.lost_answers == 0, "every loss fired"
    assert polled.link.retries >= 1, "a lost answer costs a retry"
    if outcome is None:
        assert_fresh(polled)
        assert facts(polled) == facts(good)
    else:
        assert_kept(polled, good, outcome)
        assert polled.link.busy_reason == "no_answer"


@pytest.mark.parametrize("register", setups(["tcp"], not_for=ON_THE_WIRE), indirect=True)
def test_answers_that_stay_lost_are_no_answer_not_a_held_port(register: Register) -> None:
    """Over TCP: the link code that gives up is the same on a pty (the test above)."""
    driver = register.driver()
    good = driver.read_health()
    register.state.faults.lost_answers = 1_000_000
    stale = driver.read_health()
    assert_kept(stale, good, NO_ANSWER)
    assert stale.link.busy_reason == "no_answer"
    register.state.faults.lost_answers = 0
    assert_fresh(driver.read_health())


# ------------------------------------------------------------------ dropped connections


def _drop_the_line(register: Register) -> None:
    register.state.faults.disconnect_after = 4  # commands, then the register hangs up


def _drop_an_http_answer(register: Register) -> None:
    register.http.drop_answer(2)


DROP: dict[Kind, Callable[[Register], None]] = {
    "wire": _drop_the_line,
    "server": _drop_an_http_answer,
}


@pytest.mark.parametrize("register", setups(carriers=("tcp", "http")), indirect=True)
def test_connection_dropped_mid_poll_is_opened_again(register: Register) -> None:
    """A serial line cannot hang up: TCP and HTTP only."""
    DROP[register.setup.kind](register)
    dropped = register.driver().read_health()
    assert_fresh(dropped)
    assert dropped.link.retries >= 1
    register.state.faults.disconnect_after = None
    assert facts(dropped) == facts(register.driver().read_health())


# ------------------------------------------------------------------ driver servers only

NO_HTTP: dict[Kind, str] = {
    "wire": "no HTTP on the wire: a register's own protocol has no status codes"
}


@pytest.mark.parametrize("status", [500, 503])
@pytest.mark.parametrize("register", setups(not_for=NO_HTTP), indirect=True)
def test_server_error_status_is_unreachable(register: Register, status: int) -> None:
    driver = register.driver()
    good = driver.read_health()
    register.http.status = status
    outcome = Outcome(LinkState.UNREACHABLE, f"HTTP_{status}")
    assert_kept(driver.read_health(), good, outcome)
    register.http.status = None
    assert_fresh(driver.read_health())


NO_SERVER_PASSWORD: dict[Kind, str] = {
    "wire": "a wire register's password travels in its frames: a refusal is its own device "
    "error (vendor tests)"
}


@pytest.mark.parametrize("register", setups(not_for=NO_SERVER_PASSWORD), indirect=True)
def test_wrong_password_is_an_auth_failure(register: Register) -> None:
    bare, password = password_apart(register.url)
    wrong = FAST.model_copy(update={"connection_password": f"not-{password}"})
    driver = driver_class(register.setup.vendor)(bare, wrong)
    outcome = Outcome(LinkState.UNREACHABLE, "AUTH_FAILED")
    snapshot = driver.read_health()
    assert_failed(snapshot, outcome)
    assert snapshot.device.serial is None and snapshot.fn.serial is None
    assert_identify_raises(driver, outcome)
