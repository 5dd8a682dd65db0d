"""Registers behind the driver servers of this PC: kkmserver and ATOL Web Requests.

A shop whose POS software talks to its register through a driver server has the
register's port held by that server; kktmon then reads the register through the
server. The scan asks each server on its default local port (or the URLs given):

* kkmserver (kkmserver.md section 4.2): ``List`` names every register the server has,
  with its number, serial, FN serial and driver; each is then identified through
  :class:`~kktmon.drivers.kkmserver.driver.KkmserverDriver` (one ``GetDataKKT``);
* ATOL Web Requests (atol-dto10.md section 3.2): the server's default device, identified
  through :class:`~kktmon.drivers.atol_web.driver.AtolWebDriver`, and its device id
  from ``GET /api/v2/devices/default`` (G3; older servers have no id to give, and
  their URL names the register by serial only).

HTTP goes through :mod:`kktmon.drivers.http` (one client, one error translation) and
only calls on the servers' read-only allowlists. A server that is not running is not a
finding, unless the user named it. The configuration URL keeps the user and drops the
password, which the caller writes to ``connection_password`` instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from kktmon.drivers.atol_web.driver import AtolWebDriver
from kktmon.drivers.base import DriverOptions
from kktmon.drivers.http import HttpSession, parse_server_url, tls_verification
from kktmon.drivers.kkmserver import mapping as kkm_mapping
from kktmon.drivers.kkmserver.driver import EXECUTE, EXECUTE_SYNC, KkmserverDriver
from kktmon.drivers.scan.result import Finding, Source, Status
from kktmon.protocol.atol_web.requests import Generation, endpoint
from kktmon.protocol.errors import (
    KktmonError,
    LinkTimeoutError,
    ServerAuthError,
    ServerBusyError,
    ServerDownError,
    ServerRefusedError,
)
from kktmon.protocol.kkmserver import records as rec
from kktmon.protocol.kkmserver import requests as kkm
from kktmon.protocol.settings import split_password
from kktmon.protocol.tolerant import validate_tolerant

KKMSERVER = "kkmserver"
ATOL_WEB = "atol-web"
#: Where a scan looks when not told: each server's default port on this PC, and the
#: account a monitor uses (kkmserver.md section 2: ``User``, empty password by default).
DEFAULT_URLS = {
    KKMSERVER: f"kkmserver://User@127.0.0.1:{KkmserverDriver.default_port}/",
    ATOL_WEB: f"atol-web://127.0.0.1:{AtolWebDriver.default_port}/",
}
#: A driver server waits for its register; a scan gives it at most this long per read.
SERVER_BUDGET_S = 15.0


@dataclass(frozen=True)
class ServerSpec:
    """A driver server to ask: its adapter, URL, and whether the user named it."""

    adapter: str
    url: str
    explicit: bool = False

    def check(self) -> None:
        """A malformed URL is the user's to fix before the scan starts (ConfigError)."""
        driver = AtolWebDriver if self.adapter == ATOL_WEB else KkmserverDriver
        parse_server_url(
            self.url, self.adapter, driver.default_port, allowed_options=driver.url_options
        )

    @property
    def label(self) -> str:
        parts = urlsplit(split_password(self.url)[0])
        return f"{self.adapter} {parts.hostname}:{parts.port or _default_port(self.adapter)}"


def _default_port(adapter: str) -> int:
    return AtolWebDriver.default_port if adapter == ATOL_WEB else KkmserverDriver.default_port


def probe_server(spec: ServerSpec, options: DriverOptions, until: float) -> list[Finding]:
    """The registers behind one server; [] when a server nobody named is not running."""
    started = time.monotonic()
    budget = _budget(options, until)
    try:
        if spec.adapter == KKMSERVER:
            findings = _kkmserver(spec, budget)
        else:
            findings = [_atol_web(spec, budget)]
    except ServerDownError as exc:
        if not spec.explicit:
            return []
        findings = [_failed(spec, Status.UNREACHABLE, exc)]
    except KktmonError as exc:
        findings = [_failed(spec, server_outcome(exc), exc)]
    seconds = round(time.monotonic() - started, 3)
    return [finding.model_copy(update={"seconds": seconds}) for finding in findings]


def server_outcome(exc: KktmonError) -> Status:
    if isinstance(exc, ServerBusyError):
        return Status.BUSY
    if isinstance(exc, ServerAuthError | ServerRefusedError):
        return Status.REFUSED
    if isinstance(exc, ServerDownError):
        return Status.UNREACHABLE
    if isinstance(exc, LinkTimeoutError):
        return Status.SILENT
    return Status.ERROR


def _budget(options: DriverOptions, until: float) -> Callable[[], DriverOptions]:
    def fresh() -> DriverOptions:
        left = min(until - time.monotonic(), SERVER_BUDGET_S)
        return options.model_copy(update={"poll_deadline_s": max(left, 0.05)})

    return fresh


def _failed(spec: ServerSpec, status: Status, exc: KktmonError) -> Finding:
    fix = (
        f"give the server's login: --{spec.adapter} {spec.adapter}://USER:PASSWORD@host:port/"
        if isinstance(exc, ServerAuthError)
        else _SERVER_FIXES.get(status)
    )
    source = Source.KKMSERVER if spec.adapter == KKMSERVER else Source.ATOL_WEB
    return Finding(
        port=spec.label,
        found_by=source,
        status=status,
        vendor=spec.adapter,
        problem=str(exc),
        fix=fix,
    )


_SERVER_FIXES = {
    Status.BUSY: "the POS is using the register now; the agent reports it as DEVICE_BUSY"
    " and reads it later",
    Status.REFUSED: "see the problem; the server's settings name its registers",
    Status.UNREACHABLE: "check that the server runs and listens on this address",
    Status.SILENT: "the server took the read but gave no answer in time; try again",
}


def config_url(spec: ServerSpec, **query: str) -> str:
    """The server's URL without a password, with the register's options."""
    bare, _ = split_password(spec.url)
    parts = urlsplit(bare)
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    options.update({key: value for key, value in query.items() if value})
    return urlunsplit(parts._replace(path="/", query=urlencode(options)))


def _with_query(spec: ServerSpec, **query: str) -> str:
    """The server's URL with the password kept (for the probe itself)."""
    parts = urlsplit(spec.url)
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    options.update({key: value for key, value in query.items() if value})
    return urlunsplit(parts._replace(path="/", query=urlencode(options)))


# ------------------------------------------------------------------ kkmserver


def _kkmserver(spec: ServerSpec, budget: Callable[[], DriverOptions]) -> list[Finding]:
    units = list_kkmserver(spec.url, budget())
    return [_kkmserver_unit(spec, unit, budget) for unit in units]


def list_kkmserver(url: str, options: DriverOptions) -> list[rec.ListUnit]:
    """Every register a kkmserver has (``List``), through the driver's HTTP session."""
    server = parse_server_url(
        url,
        KKMSERVER,
        KkmserverDriver.default_port,
        allowed_options=KkmserverDriver.url_options,
        options=options,
    )
    session = HttpSession(server, options, verify=tls_verification(server))
    try:
        answer = session.call("POST", EXECUTE, body=kkm.list_devices())
        if answer.status == 404:  # an old server: only /Execute/sync (kkmserver.md 2)
            answer = session.call("POST", EXECUTE_SYNC, body=kkm.list_devices())
    finally:
        session.close()
    if answer.status != 200:
        raise ServerRefusedError(
            f"http_{answer.status}", f"{server.redacted} List: HTTP {answer.status}"
        )
    listing, _dropped = validate_tolerant(rec.ListAnswer, answer.body, what="kkmserver List")
    if listing.status not in rec.DONE:
        raise ServerRefusedError(
            f"status_{int(listing.status)}", f"{server.redacted} List: {listing.error or 'refused'}"
        )
    return listing.units


def _kkmserver_unit(
    spec: ServerSpec, unit: rec.ListUnit, budget: Callable[[], DriverOptions]
) -> Finding:
    query = {"device": str(unit.num_device), "serial": unit.kkt_number or ""}
    finding = Finding(
        port=f"{spec.label} #{unit.num_device}",
        found_by=Source.KKMSERVER,
        status=Status.FOUND,
        vendor=KKMSERVER,
        family=kkm_mapping.register_family(unit.id_type_device, unit.name_device),
        model=unit.name_device or unit.id_type_device,
        serial=unit.kkt_number,
        fn_serial=unit.fn_number,
        firmware=unit.firmware_version,
        url=config_url(spec, **query),
    )
    if kkm_mapping.is_emulator(unit.id_type_device):
        return finding.model_copy(
            update={
                "family": kkm_mapping.UNKNOWN_FAMILY,
                "problem": "this is kkmserver's built-in emulator, not a register",
                "fix": "leave it out of the configuration",
            }
        )
    try:
        KkmserverDriver(_with_query(spec, **query), budget()).identify()
    except KktmonError as exc:
        status = server_outcome(exc)
        return finding.model_copy(
            update={"status": status, "problem": str(exc), "fix": _SERVER_FIXES.get(status)}
        )
    return finding


# ------------------------------------------------------------------ ATOL Web Requests


def _atol_web(spec: ServerSpec, budget: Callable[[], DriverOptions]) -> Finding:
    driver = AtolWebDriver(spec.url, budget())
    info = driver.identify()
    device_id = _default_device_id(spec.url, budget())
    snapshot = AtolWebDriver(spec.url, budget()).read_health()
    url = config_url(spec, device=device_id or "", serial=info.serial or "")
    return Finding(
        port=spec.label,
        found_by=Source.ATOL_WEB,
        status=Status.FOUND,
        vendor=ATOL_WEB,
        family=info.vendor,
        model=info.model,
        serial=info.serial,
        fn_serial=None if snapshot.stale else snapshot.fn.serial,
        firmware=info.firmware,
        url=url,
    )


def _default_device_id(url: str, options: DriverOptions) -> str | None:
    """The default device's id (G3 ``GET /api/v2/devices/default``); None elsewhere."""
    server = parse_server_url(
        url,
        ATOL_WEB,
        AtolWebDriver.default_port,
        allowed_options=AtolWebDriver.url_options,
        options=options,
    )
    method, path = endpoint(Generation.G3, "device")
    session = HttpSession(server, options, verify=tls_verification(server))
    try:
        answer = session.call(method, path)
    finally:
        session.close()
    body: Any = answer.body
    if answer.status != 200 or not isinstance(body, dict):
        return None
    device = body.get("id")
    return device if isinstance(device, str) and device else None
