"""kkmserver adapter: read a register's health through kkmserver.ru (HTTP/JSON).

Reference kkmserver.md. URL (``NumDevice`` is the device number in the server, 1...)::

    kkmserver://User:password@host:5893/?device=1&serial=0149060006000651
    kkmserver://User@host/?serial=0149060006000651      found once with List, cached
    kkmserver://User@host/?inn=7700000000               the register of this ИНН (tax id)
    kkmserver+https://User@host:5893/?device=1&ca=/etc/kktmon/ca.pem

One poll is one ``GetDataKKT`` (fresh ``IdCommand``, ``NumDevice`` and ``KktNumber``,
a ``Timeout`` that fits the poll deadline) on ``POST /Execute`` (``/Execute/sync`` when
the server answers 404 there, remembered). A register queued behind the POS (Status 4)
or still running (Status 1) is polled with ``GetRezult`` under the SAME id a few
times; still not done, the poll reports ``SERVER_BUSY:status_4`` and the next poll
starts with ``GetRezult`` for that id rather than queueing a second command (quirk Q3),
until the id is older than :data:`PENDING_MAX_AGE_S`.

Answers are read tolerantly: a field that does not validate is null, counted in
:attr:`~kktmon.drivers.http.HttpDriver.invalid_fields` and logged once; a ``GetDataKKT``
with ``Status`` 0 but no ``Info`` is reported from ``List``'s entry for the register
(asked again in that poll), so its drive's validity and queue are not lost.

``device.vendor`` is the register's family (``shtrih``, ``atol``, ``pirit``) told from
``List``'s ``IdTypeDevice`` or ``NameDevice``, ``kkmserver`` when unknown;
``device.transport`` is ``kkmserver+http`` or ``kkmserver+https``.

Failure -> ``link``: Status 3 -> unreachable ``DEVICE_NOT_CONFIGURED`` (a device found
by serial/INN is looked up again next poll); Status 2 whose text says another program
holds the register's port -> busy ``PORT_BUSY:<server's text>`` (``busy_reason``
``port_held``), says the device is busy -> busy ``SERVER_BUSY:<server's text>``
(``server_busy:<text>``); any other Status 2 -> garbled ``DEVICE_ERROR_02:<server's
text>``; HTTP 501 -> ``COMMAND_NOT_IMPLEMENTED``; other HTTP errors -> ``HTTP_<code>``;
an answer for another register (serial or ИНН) -> unreachable ``WRONG_REGISTER``. A
device whose ``IdTypeDevice`` is ``KktEmulator`` (the server's built-in emulator, quirk
Q5) is read, but flagged: ``device.vendor`` stays ``kkmserver``, ``device.model`` is
``KktEmulator`` and :attr:`KkmserverDriver.emulator` is true (a warning is logged once).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, ClassVar

from kktmon.drivers.http import HttpDriver, HttpSession
from kktmon.drivers.kkmserver import mapping
from kktmon.protocol.errors import (
    ConfigError,
    DeviceError,
    KktmonError,
    LinkTimeoutError,
    PortBusyError,
    ServerAuthError,
    ServerBusyError,
    ServerRefusedError,
    TransportClosedError,
    WrongRegisterError,
)
from kktmon.protocol.health import DeviceInfo, HealthSnapshot
from kktmon.protocol.kkmserver import records as rec
from kktmon.protocol.kkmserver import requests as kkm

log = logging.getLogger(__name__)

EXECUTE = "/Execute"
EXECUTE_SYNC = "/Execute/sync"
#: A queued command older than this is forgotten and a fresh one sent.
PENDING_MAX_AGE_S = 600.0
#: ``GetRezult`` calls per poll for a queued or running command.
REZULT_POLLS = 3
REZULT_PAUSE_S = 0.2
#: The server's ``Timeout`` for one command; the HTTP read waits this + 10 s.
MAX_TIMEOUT_S = 60
READ_MARGIN_S = 10
ERROR_TEXT_MAX = 100


class PortHeldError(PortBusyError):
    """Status 2 whose text says another program holds the register's port: ``text`` is
    the server's words, kept in ``link.last_error`` for the technician."""

    def __init__(self, text: str, message: str) -> None:
        super().__init__(message)
        self.text = text


@dataclass(frozen=True)
class _Pending:
    """A ``GetDataKKT`` the server holds: its id and when it was sent (monotonic)."""

    id_command: str
    sent_at: float


class KkmserverDriver(HttpDriver):
    """Health of one register managed by a kkmserver."""

    vendor: ClassVar[str] = "kkmserver"
    default_port: ClassVar[int] = 5893
    url_options: ClassVar[frozenset[str]] = frozenset({"device", "serial", "inn"})

    def setup(self) -> None:
        super().setup()
        options = self.server.options
        self.device_number = _device_option(options.get("device"), self.server.redacted)
        self.serial = options.get("serial") or None
        self.inn = options.get("inn") or None
        if self.device_number is None and self.serial is None and self.inn is None:
            raise ConfigError(
                f"{self.server.redacted}: name the register with device=N, serial= or inn="
            )
        self._found: int | None = None  # device number found with List
        self._listed = False
        self._unit: rec.ListUnit | None = None  # List's entry for the register
        self._id_type_device: str | None = None
        self._bare_logged = False
        self._path = EXECUTE
        self._pending: _Pending | None = None

    @property
    def family(self) -> str:
        """The register's family from List's driver id or name; ``kkmserver`` if unknown
        or the server's emulator (whatever its name, it is no register of a family)."""
        if self.emulator:
            return mapping.UNKNOWN_FAMILY
        name = self._unit.name_device if self._unit else None
        return mapping.register_family(self._id_type_device, name)

    @property
    def emulator(self) -> bool:
        """True when the server's device is its built-in emulator (quirk Q5)."""
        return mapping.is_emulator(self._id_type_device)

    @property
    def pending_id(self) -> str | None:
        return self._pending.id_command if self._pending else None

    # ------------------------------------------------------------------ poll

    def _identify(self, session: HttpSession) -> DeviceInfo:
        return self._poll(session).device

    def _poll(self, session: HttpSession) -> HealthSnapshot:
        listed_earlier = self._listed
        number = self._device(session)
        answer = self._read_state(session, number)
        info = answer.info
        if info is None:
            info = self._listed_info(session, ask_again=listed_earlier)
        info = self._with_serial(info)
        self._check_identity(info)
        identity = mapping.device_info(
            info,
            family=self.family,
            id_type_device=self._id_type_device,
            transport=self.transport_name,
        )
        return mapping.build_snapshot(answer, identity=identity, host_time=self.clock(), info=info)

    def _listed_info(self, session: HttpSession, *, ask_again: bool) -> rec.KktInfo:
        """A ``GetDataKKT`` with Status 0 and no ``Info``: what ``List`` knows instead.

        ``List`` is the server's cached summary, asked again unless this poll just did:
        its ``FN_DateEnd``, unsent count and fiscal flag are what an expired or blocked
        drive is reported from.
        """
        if not self._bare_logged:
            self._bare_logged = True
            log.warning(
                "%s: GetDataKKT answers without Info; reporting List's facts",
                self.server.redacted,
            )
        if ask_again:
            self._discover(session)
        return mapping.info_from_list(self._unit)

    def _with_serial(self, info: rec.KktInfo) -> rec.KktInfo:
        """``Info`` with the register's serial, taken from List or the URL when Info's own
        is missing or did not validate: the serial names the register in MQTT, and the
        server picked the register by it (or List told it for the number)."""
        if info.kkt_number:
            return info
        known = (self._unit.kkt_number if self._unit else None) or self.serial
        return info.model_copy(update={"kkt_number": known}) if known else info

    def _device(self, session: HttpSession) -> int:
        """The register's ``NumDevice``; the first poll asks ``List`` (family, lookup)."""
        if not self._listed:
            self._discover(session)
        number = self.device_number or self._found
        if number is None:
            self._listed = False  # not (or no longer) listed: ask List again next poll
            raise ServerRefusedError(
                "device_not_configured",
                f"{self.server.redacted}: no device with serial={self.serial} inn={self.inn}",
            )
        return number

    def _discover(self, session: HttpSession) -> None:
        try:
            body = self._execute(session, kkm.list_devices())
        except ServerRefusedError as exc:
            if self.device_number is None or isinstance(exc, ServerAuthError):
                raise
            body = {"Status": int(rec.Status.NOT_FOUND)}  # an old server: no List
        listing = self._validated(rec.ListAnswer, body, kkm.LIST)
        unit = next((u for u in listing.units if self._matches(u)), None)
        self._listed = True
        self._unit = unit
        self._found = unit.num_device if unit else None
        self._id_type_device = unit.id_type_device if unit else None
        if self.emulator:
            log.warning("%s: device %s is kkmserver's emulator", self.server.redacted, self._found)

    def _matches(self, unit: rec.ListUnit) -> bool:
        if self.device_number is not None:
            return unit.num_device == self.device_number
        if self.serial is not None and unit.kkt_number != self.serial:
            return False
        return self.inn is None or unit.inn == self.inn

    def _read_state(self, session: HttpSession, number: int) -> rec.DataKktAnswer:
        pending = self._pending
        if pending is not None and time.monotonic() - pending.sent_at > PENDING_MAX_AGE_S:
            log.info("%s: forgetting queued command %s", self.server.redacted, pending.id_command)
            pending = self._pending = None
        body = self._await(session, pending) if pending is not None else None
        if body is None:
            body = self._send_state_command(session, number)
        return self._checked(self._validated(rec.DataKktAnswer, body, kkm.GET_DATA_KKT))

    def _send_state_command(self, session: HttpSession, number: int) -> Any:
        timeout = _command_timeout(session.remaining())
        ident = kkm.new_id_command()
        request = kkm.get_data_kkt(
            num_device=number, kkt_number=self.serial, timeout_s=timeout, id_command=ident
        )
        try:
            body = self._execute(session, request, timeout_s=timeout + READ_MARGIN_S)
        except (LinkTimeoutError, TransportClosedError):
            self._pending = _Pending(ident, time.monotonic())  # it may sit in the queue
            raise
        if rec.parse_envelope(body).status not in rec.PENDING:
            return body
        self._pending = _Pending(ident, time.monotonic())
        result = self._await(session, self._pending)
        if result is None:
            raise ServerRefusedError(
                "result_not_found", f"{self.server.redacted}: GetRezult lost {ident}"
            )
        return result

    def _await(self, session: HttpSession, pending: _Pending) -> Any | None:
        """The finished answer of ``pending``; None when the server forgot the id."""
        status = rec.Status.NOT_RUN
        for attempt in range(REZULT_POLLS):
            if attempt and not _pause(session, REZULT_PAUSE_S * 2 ** (attempt - 1)):
                break
            body = self._execute(session, kkm.get_rezult(pending.id_command))
            answer = self._validated(rec.RezultAnswer, body, kkm.GET_REZULT)
            status = answer.inner_status()
            if status in rec.PENDING:
                continue
            self._pending = None
            if status is rec.Status.NOT_FOUND and answer.rezult is None:
                return None
            return answer.rezult if answer.rezult is not None else answer.model_dump(by_alias=True)
        raise ServerBusyError(
            f"status_{int(status)}",
            f"{self.server.redacted}: register still busy (Status {int(status)}), "
            f"will ask for {pending.id_command} again",
        )

    def _checked(self, answer: rec.DataKktAnswer) -> rec.DataKktAnswer:
        if answer.status in rec.DONE:
            return answer
        text = self._short(answer.error)
        if answer.status is rec.Status.NOT_FOUND:
            if self.device_number is None:
                self._listed = False  # look the serial/INN up again next poll
            raise ServerRefusedError(
                "device_not_configured", f"{self.server.redacted}: GetDataKKT: {text}"
            )
        where = f"{self.server.redacted}: GetDataKKT: {text}"
        if answer.status is rec.Status.ERROR:
            busy = rec.busy_kind(answer.error)
            if busy is rec.Busy.PORT_HELD:
                raise PortHeldError(text, f"{where} (another program holds the port)")
            if busy is rec.Busy.DEVICE_BUSY:
                raise ServerBusyError(text, f"{where} (the register is busy)")
        raise DeviceError(kkm.VENDOR, kkm.GET_DATA_KKT, int(answer.status), text)

    def _check_identity(self, info: rec.KktInfo) -> None:
        """Never publish another register's data: the server may have been reconfigured."""
        wrong_serial = self.serial and info.kkt_number and info.kkt_number != self.serial
        wrong_inn = self.inn and info.inn_organization and info.inn_organization != self.inn
        if wrong_serial or wrong_inn:
            if self.device_number is None:
                self._listed = False
            raise WrongRegisterError(
                f"{self.server.redacted}: the server answered for register "
                f"{info.kkt_number} (ИНН {info.inn_organization})"
            )

    # ------------------------------------------------------------------ HTTP

    def _execute(
        self, session: HttpSession, body: dict[str, Any], timeout_s: float | None = None
    ) -> Any:
        command = body["Command"]
        log.debug("%s: %s %s", self.server.redacted, command, body.get("IdCommand"))
        answer = session.call("POST", self._path, body=body, timeout_s=timeout_s)
        if answer.status == 404 and self._path == EXECUTE:
            log.info("%s: no /Execute, using /Execute/sync", self.server.redacted)
            self._path = EXECUTE_SYNC
            answer = session.call("POST", self._path, body=body, timeout_s=timeout_s)
        where = f"{self.server.redacted} {command}"
        if answer.status == 501:
            raise ServerRefusedError("command_not_implemented", f"{where}: HTTP 501")
        if answer.status != 200:
            raise ServerRefusedError(f"http_{answer.status}", f"{where}: HTTP {answer.status}")
        return answer.body

    # ------------------------------------------------------------------ errors

    def _error_code(self, exc: KktmonError) -> str:
        if isinstance(exc, DeviceError) and exc.vendor == kkm.VENDOR:
            return f"DEVICE_ERROR_{exc.code:02X}:{exc.meaning}"
        if isinstance(exc, PortHeldError):
            return f"PORT_BUSY:{exc.text}"
        return super()._error_code(exc)

    def _short(self, text: str) -> str:
        """The server's ``Error`` for a human: one line, bounded, no credentials."""
        line = " ".join(text.split())[:ERROR_TEXT_MAX]
        if self.server.password:
            line = line.replace(self.server.password, "***")
        return line or "no text"


def _device_option(value: str | None, where: str) -> int | None:
    if value is None or value == "":
        return None
    if not value.isdigit() or int(value) < 1:
        raise ConfigError(f"{where}: device must be a device number 1 or more, got {value!r}")
    return int(value)


def _command_timeout(remaining: float) -> int:
    """Half the poll's time left for the server to wait, the rest for GetRezult."""
    return max(1, min(MAX_TIMEOUT_S, int(remaining / 2)))


def _pause(session: HttpSession, seconds: float) -> bool:
    """Sleep before asking again; False when the poll has no time for another call."""
    left = session.deadline - time.monotonic()
    if left <= seconds + 0.5:
        return False
    time.sleep(seconds)
    return True
