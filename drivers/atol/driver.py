"""ATOL driver: the read-only command sequence and its mapping to the health model.

URLs, link layers and probing are :mod:`kktmon.drivers.atol.link`'s (``?link=fe`` or
``?link=legacy``, else probed: FE first); the layer found is remembered for later polls
and forgotten when a poll times out, so a register switched to the other layer is found
again. The probe's 45h answer serves the first poll.

One poll sends 3Fh (clock, flags), 45h (printer), A4h 30h (FN status), A4h 10h (shift),
A4h 32h (validity), A4h 20h (OFD queue), A4h 43h (registration), A4h 3Dh (FN resource,
experimental) and, once per shift, register 12h for the opening time (see
:mod:`kktmon.drivers.atol.mapping`). Identity (A5h, registers 16h and 36h, A4h 33h) is
read on the first poll and again whenever the FN serial changes. Commands a model lacks
(7Ah) are not asked again; FN state errors (D4h, DAh) degrade one answer to null.

Sharing the line (quirk Q3): the driver never sends ``C4`` Abort (it would drop tasks
that are not ours). When the register pushes ``F0`` packets for tasks that are not ours
during several exchanges of one poll, its OFD channel runs through the host: from then
on every good poll carries ``OFD_VIA_HOST`` in ``link.last_error``, and validity and
registration are re-read only every :data:`SLOW_REFRESH_POLLS` polls, to free the port
sooner.

Password: ``DriverOptions.password`` is the 4-digit access password, except that the
shared default 30 (Shtrih's administrator password) means ATOL's factory 0000.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from kktmon.drivers.atol import mapping
from kktmon.drivers.atol.link import BUSY_CODES, AtolWire, LinkLayer, split_url
from kktmon.drivers.base import Session, WireDriver
from kktmon.protocol.atol import commands as cmd
from kktmon.protocol.atol import records as rec
from kktmon.protocol.errors import (
    DeviceError,
    KktmonError,
    LinkTimeoutError,
    UnsupportedCommandError,
)
from kktmon.protocol.health import DeviceInfo, HealthSnapshot, LinkState

T = TypeVar("T")

#: The shared default of ``DriverOptions.password`` (Shtrih's); ATOL's factory access
#: password is 0000, so this value means "the vendor default".
GENERIC_DEFAULT_PASSWORD = 30
#: Exchanges of one poll with F0 packets for other tasks that reveal an OFD relay; one
#: alone may be a result another program left behind (E3).
OFD_RELAY_EXCHANGES = 2
SLOW_REFRESH_POLLS = 10  # with OFD via host: validity and registration every n polls
#: FN state errors (quirk Q6): a finding about the drive, one answer becomes null.
DEGRADE_CODES = frozenset({cmd.WRONG_FN_STATE, cmd.NO_DATA_IN_FN})


@dataclass(frozen=True)
class _SlowFacts:
    fn_serial: str
    age: int  # polls since they were read
    validity: rec.FnValidity | None
    registration: rec.Registration | None


class AtolDriver(WireDriver):
    """ATOL registers over serial, USB-CDC or TCP (port 5555), FE or LEGACY link layer."""

    vendor = "atol"
    busy_device_codes = frozenset({cmd.WRONG_MODE})

    def setup(self) -> None:
        self.transport_url, self.fixed_layer = split_url(self.url)
        factory = self._transport_factory
        self._transport_factory = lambda _url: factory(self.transport_url)
        password = self.options.password
        self.password = 0 if password == GENERIC_DEFAULT_PASSWORD else password
        cmd.password_bytes(self.password)  # a bad password is a ConfigError now, not later
        self.layer: LinkLayer | None = self.fixed_layer
        self.ofd_via_host = False
        self._identity: DeviceInfo | None = None
        self._identity_fn_serial: str | None = None
        self._fn_firmware: str | None = None
        self._unsupported: set[tuple[int, int | None]] = set()
        self._slow: _SlowFacts | None = None
        self._opened: dict[int, datetime | None] = {}
        self._sighting: mapping.ShiftSighting | None = None

    def read_health(self) -> HealthSnapshot:
        snapshot = super().read_health()
        if snapshot.stale or not self.ofd_via_host:
            return snapshot
        link = snapshot.link.model_copy(update={"last_error": mapping.OFD_VIA_HOST})
        self._last_good = snapshot.model_copy(update={"link": link})
        return self._last_good

    def _link_state(self, exc: KktmonError) -> LinkState:
        if isinstance(exc, DeviceError) and exc.command in BUSY_CODES:
            return LinkState.BUSY if exc.code in BUSY_CODES[exc.command] else LinkState.GARBLED
        return super()._link_state(exc)

    # ------------------------------------------------------------------ the poll

    def _identify(self, session: Session) -> DeviceInfo:
        with self._wire(session) as wire:
            state = self._ask(wire, cmd.request_state(self.password), rec.parse_state)
            identity = self._read_identity(wire, state)
            registration = self._fn(wire, cmd.FN_REGISTRATION, rec.parse_registration)
        if registration is None:
            return identity
        return identity.model_copy(update={"rnm": registration.rnm, "inn": registration.inn})

    def _poll(self, session: Session) -> HealthSnapshot:
        with self._wire(session) as wire:
            return self._poll_on(wire)

    def _poll_on(self, wire: AtolWire) -> HealthSnapshot:
        pwd = self.password
        state = self._ask(wire, cmd.request_state(pwd), rec.parse_state)
        host_time = self.clock()
        status = self._status(wire)
        fn_status = self._ask(wire, cmd.request_fn(cmd.FN_STATUS, pwd), rec.parse_fn_status)
        if self._identity is None or fn_status.serial != self._identity_fn_serial:
            self._identity = self._read_identity(wire, state)
            self._identity_fn_serial = fn_status.serial
        validity, registration = self._slow_facts(wire, fn_status.serial)
        answers = mapping.PollAnswers(
            state=state,
            status=status,
            fn_status=fn_status,
            shift=self._fn(wire, cmd.FN_SHIFT, rec.parse_shift_parameters),
            validity=validity,
            ofd=self._fn(wire, cmd.FN_OFD_STATUS, rec.parse_ofd_status),
            registration=registration,
            resource=self._fn(wire, cmd.FN_RESOURCE, rec.parse_fn_resource),
        )
        return mapping.build_snapshot(
            identity=self._identity,
            answers=answers,
            shift_opened_at=self._shift_opened_at(wire, answers),
            host_time=host_time,
            fn_firmware=self._fn_firmware,
        )

    def _read_identity(self, wire: AtolWire, state: rec.DeviceState) -> DeviceInfo:
        pwd = self.password
        device_type = self._ask(wire, cmd.request_device_type(pwd), rec.parse_device_type)
        serial_request = cmd.request_register(cmd.REG_SERIAL, pwd)
        serial = self._optional(wire, serial_request, rec.parse_serial_register)
        ffd_request = cmd.request_register(cmd.REG_FFD, pwd)
        ffd = self._optional(wire, ffd_request, rec.parse_ffd_versions)
        fn_firmware = self._fn(wire, cmd.FN_FIRMWARE, rec.parse_fn_firmware)
        self._fn_firmware = fn_firmware.version if fn_firmware else None
        kind = wire.session.transport.kind
        return mapping.device_info(device_type, serial or state.serial_low, ffd, kind)

    def _status(self, wire: AtolWire) -> rec.StatusCode | None:
        if wire.probe_answer is not None:
            answer, wire.probe_answer = wire.probe_answer, None
            return rec.parse_status_code(answer)
        request = cmd.request_status_code(self.password)
        return self._optional(wire, request, rec.parse_status_code)

    def _slow_facts(
        self, wire: AtolWire, fn_serial: str
    ) -> tuple[rec.FnValidity | None, rec.Registration | None]:
        """Validity and registration; read less often once the OFD relies on this port."""
        slow = self._slow
        fresh = slow is not None and slow.fn_serial == fn_serial
        if self.ofd_via_host and slow and fresh and slow.age + 1 < SLOW_REFRESH_POLLS:
            self._slow = _SlowFacts(fn_serial, slow.age + 1, slow.validity, slow.registration)
            return slow.validity, slow.registration
        validity = self._fn(wire, cmd.FN_VALIDITY, rec.parse_fn_validity)
        registration = self._fn(wire, cmd.FN_REGISTRATION, rec.parse_registration)
        self._slow = _SlowFacts(fn_serial, 0, validity, registration)
        return validity, registration

    def _shift_opened_at(self, wire: AtolWire, answers: mapping.PollAnswers) -> datetime | None:
        """Inferred once per shift number and cached; null rather than a guess."""
        now = mapping.sighting(answers)
        before, self._sighting = self._sighting, now
        if not now.open:
            self._opened = {}
            return None
        if now.number not in self._opened:
            opened = mapping.opened_from_transition(before, now)
            if opened is None:
                request = cmd.request_register(cmd.REG_SHIFT, self.password)
                register = self._optional(wire, request, rec.parse_shift_register)
                if register is not None:
                    opened = mapping.opened_from_register(register, now.last_document_at)
            self._opened = {now.number: opened}
        return self._opened[now.number]

    # ------------------------------------------------------------------ the link

    @contextmanager
    def _wire(self, session: Session) -> Iterator[AtolWire]:
        """The session's link, probed when unknown; notes what the exchanges revealed."""
        wire = AtolWire(session, self.options, self.layer or LinkLayer.FE)
        try:
            if self.layer is None:
                self.layer = wire.probe(cmd.request_status_code(self.password))
            yield wire
        except LinkTimeoutError:
            self.layer = self.fixed_layer  # probe again next time: the setting may have changed
            raise
        finally:
            if wire.foreign_exchanges >= OFD_RELAY_EXCHANGES:
                self.ofd_via_host = True  # a setting of the register: it does not come and go

    def _fn(self, wire: AtolWire, sub: int, parse: Callable[[bytes], T]) -> T | None:
        return self._optional(wire, cmd.request_fn(sub, self.password), parse)

    def _ask(self, wire: AtolWire, request: cmd.Request, parse: Callable[[bytes], T]) -> T:
        """One command that must succeed for the poll to mean anything."""
        return wire.session.retrying(lambda: parse(wire.exchange(request)))

    def _optional(
        self, wire: AtolWire, request: cmd.Request, parse: Callable[[bytes], T]
    ) -> T | None:
        """A command whose absence degrades a field to null instead of failing the poll."""
        key = (request.code, request.sub)
        if key in self._unsupported:
            return None
        try:
            return self._ask(wire, request, parse)
        except UnsupportedCommandError:
            self._unsupported.add(key)
            return None
        except DeviceError as exc:
            if exc.command not in BUSY_CODES and exc.code in DEGRADE_CODES:
                return None
            raise
