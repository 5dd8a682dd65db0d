"""Registers behind driver servers: kkmserver's List and ATOL Web Requests' default device.

The servers are the fakes of :mod:`kktmon.simulators.kkmserver` and
:mod:`kktmon.simulators.atol_web` over real HTTP on loopback; each records every call
off its read-only allowlist in ``violations``, which every test asserts empty.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from scan_rig import distinct_state

from kktmon.drivers.base import DriverOptions
from kktmon.drivers.scan import Finding, Source, Status
from kktmon.drivers.scan.servers import ATOL_WEB, KKMSERVER, ServerSpec, probe_server
from kktmon.simulators.atol_web import AtolWebApp
from kktmon.simulators.http_server import HttpFakeServer
from kktmon.simulators.kkmserver import KkmserverApp

SERIAL = "0044444444444444"
OPTIONS = DriverOptions(answer_timeout_s=5.0)


def _probe(spec: ServerSpec) -> list[Finding]:
    return probe_server(spec, OPTIONS, time.monotonic() + 30)


@pytest.fixture
def kkmserver() -> Iterator[HttpFakeServer[KkmserverApp]]:
    with HttpFakeServer(KkmserverApp(distinct_state(SERIAL), num_device=3)) as server:
        yield server
    assert server.app.violations == []


@pytest.fixture
def atol_web(request: pytest.FixtureRequest) -> Iterator[HttpFakeServer[AtolWebApp]]:
    generation = getattr(request, "param", 3)
    app = AtolWebApp(distinct_state(SERIAL), generation=generation, auth=True)
    with HttpFakeServer(app) as server:
        yield server
    assert server.app.violations == []


def _root(url: str) -> str:
    """A fake's URL without the register it names: what a user gives ``--kkmserver``."""
    return url.split("/?", 1)[0] + "/"


def test_kkmserver_lists_its_registers_and_each_is_identified(
    kkmserver: HttpFakeServer[KkmserverApp],
) -> None:
    (finding,) = _probe(ServerSpec(KKMSERVER, _root(kkmserver.url), explicit=True))
    assert finding.status is Status.FOUND, finding.problem
    assert (finding.vendor, finding.family, finding.found_by) == (
        "kkmserver",
        "shtrih",
        Source.KKMSERVER,
    )
    assert finding.serial == SERIAL and finding.fn_serial == kkmserver.state.fn.serial
    host, port = kkmserver.address
    assert finding.url == f"kkmserver://User@{host}:{port}/?device=3&serial={SERIAL}"
    assert kkmserver.app.password not in finding.model_dump_json()


def test_kkmserver_with_a_register_busy_for_the_pos_is_listed_busy(
    kkmserver: HttpFakeServer[KkmserverApp],
) -> None:
    kkmserver.app.queued_polls = 1000
    (finding,) = _probe(ServerSpec(KKMSERVER, _root(kkmserver.url), explicit=True))
    assert finding.status is Status.BUSY
    assert finding.serial == SERIAL, "List's facts stay"
    assert finding.fix and "DEVICE_BUSY" in finding.fix


def test_kkmserver_emulator_is_found_but_flagged(kkmserver: HttpFakeServer[KkmserverApp]) -> None:
    kkmserver.app.id_type_device = "KktEmulator"
    (finding,) = _probe(ServerSpec(KKMSERVER, _root(kkmserver.url), explicit=True))
    assert finding.family == "kkmserver"
    assert finding.problem and "emulator" in finding.problem


def test_a_wrong_login_says_how_to_give_one(kkmserver: HttpFakeServer[KkmserverApp]) -> None:
    wrong = _root(kkmserver.url).replace(kkmserver.app.password, "wrong")
    (finding,) = _probe(ServerSpec(KKMSERVER, wrong, explicit=True))
    assert finding.status is Status.REFUSED
    assert finding.fix and finding.fix.startswith("give the server's login: --kkmserver")


def test_atol_web_reports_its_default_device_with_its_id(
    atol_web: HttpFakeServer[AtolWebApp],
) -> None:
    (finding,) = _probe(ServerSpec(ATOL_WEB, _root(atol_web.url), explicit=True))
    assert finding.status is Status.FOUND, finding.problem
    assert (finding.vendor, finding.family, finding.found_by) == (
        "atol-web",
        "atol",
        Source.ATOL_WEB,
    )
    assert finding.serial and SERIAL.endswith(finding.serial)
    assert finding.fn_serial == atol_web.state.fn.serial
    host, port = atol_web.address
    assert finding.url == (f"atol-web://kktmon@{host}:{port}/?device=KKT_1&serial={finding.serial}")


@pytest.mark.parametrize("atol_web", [1], indirect=True)
def test_an_older_atol_server_names_its_register_by_serial(
    atol_web: HttpFakeServer[AtolWebApp],
) -> None:
    (finding,) = _probe(ServerSpec(ATOL_WEB, _root(atol_web.url), explicit=True))
    assert finding.status is Status.FOUND, finding.problem
    assert finding.url is not None and "device=" not in finding.url
    assert f"serial={finding.serial}" in finding.url


def test_atol_web_without_a_login_is_refused_with_the_fix(
    atol_web: HttpFakeServer[AtolWebApp],
) -> None:
    host, port = atol_web.address
    (finding,) = _probe(ServerSpec(ATOL_WEB, f"atol-web://{host}:{port}/"))
    assert finding.status is Status.REFUSED
    assert finding.fix and "--atol-web atol-web://USER:PASSWORD@" in finding.fix


def test_a_server_that_is_not_running_is_no_finding_unless_named(
    refusing_address: tuple[str, int],
) -> None:
    host, port = refusing_address
    url = f"kkmserver://User@{host}:{port}/"
    assert _probe(ServerSpec(KKMSERVER, url)) == []
    (finding,) = _probe(ServerSpec(KKMSERVER, url, explicit=True))
    assert finding.status is Status.UNREACHABLE and finding.fix
