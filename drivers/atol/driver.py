"""ATOL driver: the read-only command sequence and its mapping to the health model.

URLs, link layers and probing are :mod:`kktmon.drivers.atol.link`'s (``?link=fe`` or
``?link=legacy``, else probed: FE first); the layer found is remembered for later polls
and forgotten when a poll times out, so a register switched to the other layer is found
again. The probe's 45h answer serves the first poll.

One poll sends, in order: 3Fh (clock, flags), 45h (printer), A4h 30h (FN status), A4h
32h (validity), A4h 43h (registration), A4h 10h (shift), A4h 20h (OFD queue), A4h 3Dh
(FN resource, experimental) and, once per shift, register 12h for the opening time (see
:mod:`kktmon.drivers.atol.mapping`). Identity (A5h, registers 16h and 36h, A4h 33h) is
read after A4h 30h on the first poll and again whenever the FN serial changes. Where
each fact comes from is :mod:`kktmon.drivers.atol.reads`. Commands a model lacks (7Ah)
are not asked again; FN state errors (D4h, DAh) degrade one answer to null.

Sharing the line (quirk Q3): the driver never sends ``C4`` Abort (it would drop tasks
that are not ours). When the register pushes ``F0`` packets for tasks that are not ours
during several exchanges of one poll, its OFD channel runs through the host: from then
on every good poll says ``ofd.via_host`` (the agent raises OFD_VIA_HOST), and validity and
registration are re-read only every :data:`SLOW_REFRESH_POLLS` polls, to free the port
sooner.

Password: ``DriverOptions.password`` is the 4-digit access password, except that the
shared default 30 (Shtrih's administrator password) means ATOL's factory 0000.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kktmon.drivers.atol import mapping, reads
from kktmon.drivers.atol.link import BUSY_CODES, AtolWire, LinkLayer, split_url
from kktmon.drivers.wire import Read, Session, WireDriver
from kktmon.protocol.atol import commands as cmd
from kktmon.protocol.atol import records as rec
from kktmon.protocol.atol.errors import NO_DATA_IN_FN, WRONG_FN_STATE, WRONG_MODE
from kktmon.protocol.errors import DeviceError, KktmonError, LinkTimeoutError, NoAnswerError
from kktmon.protocol.health import DeviceInfo, HealthSnapshot, LinkState

#: The shared default of ``DriverOptions.password`` (Shtrih's); ATOL's factory access
#: password is 0000, so this value means "the vendor default".
GENERIC_DEFAULT_PASSWORD = 30
#: Exchanges of one poll with F0 packets for other tasks that reveal an OFD relay; one
#: alone may be a result another program left behind (E3).
OFD_RELAY_EXCHANGES = 2
SLOW_REFRESH_POLLS = 10  # with OFD via host: validity and registration every n polls
#: FN state errors (quirk Q6): a finding about the drive, one answer becomes null.
DEGRADE_CODES = frozenset({WRONG_FN_STATE, NO_DATA_IN_FN})


@dataclass(frozen=True)
class _SlowFacts:
    fn_serial: str | None
    age: int  # polls since they were read
    validity: rec.FnValidity | None
    registration: rec.Registration | None


class AtolDriver(WireDriver[bytes]):
    """ATOL registers over serial, USB-CDC or TCP (port 5555), FE or LEGACY link layer."""

    vendor = "atol"
    busy_device_codes = frozenset({WRONG_MODE})
    degrade_codes = DEGRADE_CODES

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
        self._line: AtolWire | None = None  # the open session's link, inside _wire()
        self._slow: _SlowFacts | None = None
        self._opened: dict[int, datetime | None] = {}
        self._sighting: mapping.ShiftSighting | None = None

    def read_health(self) -> HealthSnapshot:
        snapshot = super().read_health()
        if snapshot.stale or not self.ofd_via_host:
            return snapshot
        ofd = snapshot.ofd.model_copy(update={"via_host": True})
        self._last_good = snapshot.model_copy(update={"ofd": ofd})
        return self._last_good

    def _link_state(self, exc: KktmonError) -> LinkState:
        if isinstance(exc, DeviceError) and exc.command in BUSY_CODES:
            return LinkState.BUSY if exc.code in BUSY_CODES[exc.command] else LinkState.GARBLED
        return super()._link_state(exc)

    # ------------------------------------------------------------------ the poll

    def _identify(self, session: Session) -> DeviceInfo:
        with self._wire(session):
            state = self._ask(session, reads.STATE)
            identity = self._read_identity(session, state)
            registration = self._optional(session, reads.FN_REGISTRATION)
        if registration is None:
            return identity
        return identity.model_copy(update={"rnm": registration.rnm, "inn": registration.inn})

    def _poll(self, session: Session) -> HealthSnapshot:
        with self._wire(session) as wire:
            state = self._ask(session, reads.STATE)
            host_time = self.clock()
            status = self._status(session, wire)
            fn_status = self._ask(session, reads.FN_STATUS)
            if self._identity is None or fn_status.serial != self._identity_fn_serial:
                self._identity = self._read_identity(session, state)
                self._identity_fn_serial = fn_status.serial
            validity, registration = self._slow_facts(session, fn_status.serial)
            answers = mapping.PollAnswers(
                state=state,
                status=status,
                fn_status=fn_status,
                shift=self._optional(session, reads.FN_SHIFT),
                validity=validity,
                ofd=self._optional(session, reads.FN_OFD_STATUS),
                registration=registration,
                resource=self._optional(session, reads.FN_RESOURCE),
            )
            return mapping.build_snapshot(
                identity=self._identity,
                answers=answers,
                shift_opened_at=self._shift_opened_at(session, answers),
                host_time=host_time,
                fn_firmware=self._fn_firmware,
            )

    def _read_identity(self, session: Session, state: rec.DeviceState) -> DeviceInfo:
        device_type = self._ask(session, reads.DEVICE_TYPE)
        serial = self._optional(session, reads.SERIAL)
        ffd = self._optional(session, reads.FFD_VERSIONS)
        fn_firmware = self._optional(session, reads.FN_FIRMWARE)
        self._fn_firmware = fn_firmware.version if fn_firmware else None
        kind = session.transport.kind
        return mapping.device_info(device_type, serial or state.serial_low, ffd, kind)

    def _status(self, session: Session, wire: AtolWire) -> rec.StatusCode | None:
        if wire.probe_answer is not None:
            answer, wire.probe_answer = wire.probe_answer, None
            return reads.STATUS_CODE.parse(answer)
        return self._optional(session, reads.STATUS_CODE)

    def _slow_facts(
        self, session: Session, fn_serial: str | None
    ) -> tuple[rec.FnValidity | None, rec.Registration | None]:
        """Validity and registration; read less often once the OFD relies on this port."""
        slow = self._slow
        fresh = slow is not None and slow.fn_serial == fn_serial
        if self.ofd_via_host and slow and fresh and slow.age + 1 < SLOW_REFRESH_POLLS:
            self._slow = _SlowFacts(fn_serial, slow.age + 1, slow.validity, slow.registration)
            return slow.validity, slow.registration
        validity = self._optional(session, reads.FN_VALIDITY)
        registration = self._optional(session, reads.FN_REGISTRATION)
        self._slow = _SlowFacts(fn_serial, 0, validity, registration)
        return validity, registration

    def _shift_opened_at(self, session: Session, answers: mapping.PollAnswers) -> datetime | None:
        """Inferred once per shift number and cached; null rather than a guess."""
        now = mapping.sighting(answers)
        before, self._sighting = self._sighting, now
        if not now.open:
            self._opened = {}
            return None
        if now.number not in self._opened:
            opened = mapping.opened_from_transition(before, now)
            if opened is None:
                register = self._optional(session, reads.SHIFT_REGISTER)
                if register is not None:
                    opened = mapping.opened_from_register(register, now.last_document_at)
            self._opened = {now.number: opened}
        return self._opened[now.number]

    # ------------------------------------------------------------------ the link

    @contextmanager
    def _wire(self, session: Session) -> Iterator[AtolWire]:
        """The session's link, probed when unknown; notes what the exchanges revealed."""
        wire = AtolWire(session, self.options, self.layer or LinkLayer.FE)
        self._line = wire
        try:
            if self.layer is None:
                self.layer = wire.probe(self._request(reads.STATUS_CODE))
            yield wire
        except NoAnswerError:
            raise  # the layer answered: only the read's answer went missing
        except LinkTimeoutError:
            self.layer = self.fixed_layer  # probe again next time: the setting may have changed
            raise
        finally:
            self._line = None
            if wire.foreign_exchanges >= OFD_RELAY_EXCHANGES:
                self.ofd_via_host = True  # a setting of the register: it does not come and go

    def _request(self, read: Read[bytes, Any]) -> cmd.Request:
        return cmd.request(read.command, read.sub, read.params, self.password)

    def _exchange(self, session: Session, read: Read[bytes, Any]) -> bytes:
        wire = self._line
        assert wire is not None and wire.session is session, "ATOL reads run inside _wire()"
        return wire.exchange(self._request(read), slow=read.slow)
