"""Read an ATOL register through ATOL's HTTP driver server (atol-dto10.md).

URL::

    atol-web://user:password@host:16732/?device=KKT_1&serial=00106100123456
    atol-web+https://user@host:16732/?device=KKT_1&ca=/etc/kktmon/ca.pem

* ``device`` — the server's device id (``deviceID``), sent on every queue and operation
  call; without it the server's *default* device answers, which an operator can change
  (Q8), so set ``serial`` too;
* ``serial`` — the expected ЗН ККТ (register serial); another serial is a WrongRegisterError
  and nothing of that register is published.

One poll (section 4): find the server generation (G3 ``serverInfo``, else G2's queue
status, else G1's ``/stat/requests``; remembered until a call answers 404 for a path),
read the queue status and stop if it is blocked, then read either through the G3
synchronous operations or through ONE queued job of read-only tasks, polled until ready
and cancelled (only our own job, only while waiting) at its deadline. Our jobs share the
FIFO with the cashier's receipts (Q2): a waiting job is DEVICE_BUSY, never a fault.

G3 has no registration operation, so ИНН/РНМ come from a one-task job at ``identify``,
on the first poll and every ``registration_every`` polls after, cached in between; a
registration job that cannot run (queue busy) keeps the cached facts.

Answers are read field by field (DESIGN.md section 3): a field that does not validate
(``"modelName": 61``, a date that is no date, a phase name we do not know) is null,
counted in :attr:`~kktmon.drivers.http.HttpDriver.invalid_fields` and logged once, and
the poll stands; versions are read from numbers too (``"ffdVersion": 1.05``).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, ClassVar

from kktmon.drivers.atol_web.job import QueuedJob
from kktmon.drivers.atol_web.mapping import WebReads, build_snapshot, device_info
from kktmon.drivers.http import HttpAnswer, HttpDriver, HttpSession
from kktmon.protocol.atol_web import records as rec
from kktmon.protocol.atol_web.requests import (
    DEVICE_ID,
    VENDOR,
    Generation,
    endpoint,
    operation_for,
)
from kktmon.protocol.errors import (
    ConfigError,
    DeviceError,
    KktmonError,
    MalformedAnswerError,
    ServerBusyError,
    ServerRefusedError,
    WrongRegisterError,
)
from kktmon.protocol.health import DeviceInfo, HealthSnapshot, LinkState

log = logging.getLogger(__name__)

JOB_DEADLINE_S = 15.0  # section 3.3: give a queued job at most this long
#: G3 registration jobs are a side read: never let one hold a poll for long.
REGISTRATION_JOB_S = 5.0
OPERATION_TIMEOUT_S = 35.0  # operations hold up to 30 s before 408 (section 3.5)
#: G3 reads in section 4 order: identity first, so the serial is checked before the rest.
OPERATION_READS = (
    "getDeviceInfo",
    "getDeviceStatus",
    "getShiftStatus",
    "getFnInfo",
    "getFnStatus",
    "ofdExchangeStatus",
)
JOB_READS = (*OPERATION_READS, "getRegistrationInfo")
#: Driver codes of a lost link to the register (Q7): the register is out of reach.
UNREACHABLE_CODES = frozenset({1, 2, 4, 241})


class AtolWebDriver(HttpDriver):
    vendor: ClassVar[str] = VENDOR
    default_port: ClassVar[int] = 16732
    url_options: ClassVar[frozenset[str]] = frozenset({"device", "serial"})
    #: Port busy (3) and RPC server busy (601): another client has the register now.
    busy_device_codes: ClassVar[frozenset[int]] = frozenset({3, 601})
    registration_every: ClassVar[int] = 10

    def setup(self) -> None:
        super().setup()
        device = self.server.options.get("device")
        if device is not None and not DEVICE_ID.match(device):
            raise ConfigError(
                f"{self.server.redacted}: device={device!r} is not a server device id "
                "(1-16 of A-Z a-z 0-9 _ -)"
            )
        self._params = {"deviceID": device} if device else {}
        self._expected_serial = self.server.options.get("serial") or None
        self._generation: Generation | None = None
        #: The last registration read, with the serial of the register it belongs to
        #: (a server's default device can change between polls).
        self._registration: tuple[str, rec.RegistrationInfo] | None = None
        self._polls_since_registration = 0

    # ------------------------------------------------------------------ contract

    def _identify(self, session: HttpSession) -> DeviceInfo:
        return device_info(self._read(session, identify=True), self.transport_name)

    def _poll(self, session: HttpSession) -> HealthSnapshot:
        reads = self._read(session, identify=False)
        return build_snapshot(reads, host_time=self.clock(), transport=self.transport_name)

    def _link_state(self, exc: KktmonError) -> LinkState:
        if isinstance(exc, DeviceError) and exc.code in UNREACHABLE_CODES:
            return LinkState.UNREACHABLE
        return super()._link_state(exc)

    # ------------------------------------------------------------------ one read

    def _read(self, session: HttpSession, *, identify: bool) -> WebReads:
        cached = self._generation is not None
        try:
            return self._read_once(session, identify)
        except ServerRefusedError as exc:
            if exc.reason != "path_not_found" or not cached:
                raise
            log.debug("%s: the server changed, probing its generation again", self.server.redacted)
            return self._read_once(session, identify)

    def _read_once(self, session: HttpSession, identify: bool) -> WebReads:
        generation, server_time = self._server(session)
        if generation is Generation.G3:
            facts = self._operations(session)
            if facts is not None:
                serial = facts["getDeviceInfo"].serial
                facts["getRegistrationInfo"] = self._g3_registration(session, identify, serial)
                return self._reads(facts, server_time)
        job = self._queued(session, generation)
        facts = job.run(JOB_READS, JOB_DEADLINE_S)
        # The register's clock was read when the job ran, not when this poll ends.
        return self._reads(facts, job.ready_at)

    def _reads(self, facts: dict[str, Any], clock_reference: datetime | None) -> WebReads:
        device, status = facts.get("getDeviceInfo"), facts.get("getDeviceStatus")
        if device is None or status is None:
            raise MalformedAnswerError(f"{self.server.redacted}: no device info or status")
        self._check_serial(device)
        registration = facts.get("getRegistrationInfo") or self._cached_registration(device.serial)
        if registration is not None:
            self._registration = (device.serial, registration)
        return WebReads(
            device=device,
            status=status,
            shift=facts.get("getShiftStatus"),
            fn_info=facts.get("getFnInfo"),
            fn_status=facts.get("getFnStatus"),
            ofd=facts.get("ofdExchangeStatus"),
            registration=registration,
            clock_reference=clock_reference,
        )

    def _check_serial(self, device: rec.RegisterIdentity) -> None:
        expected = self._expected_serial
        if expected is not None and device.serial.lstrip("0") != expected.lstrip("0"):
            raise WrongRegisterError(
                f"{self.server.redacted}: the server's device reports ЗН ККТ {device.serial}, "
                f"expected {expected}; not reading another register"
            )

    # ------------------------------------------------------------------ generation, queue

    def _server(self, session: HttpSession) -> tuple[Generation, datetime | None]:
        """The generation, the server PC's clock (G3) and a checked queue status."""
        server_time = None
        if self._generation in (None, Generation.G3):
            answer = self._call(session, Generation.G3, "server_info", params={})
            if answer.status == 200:
                self._generation = Generation.G3
                info = self._validated(rec.ServerInfo, answer.body, "serverInfo")
                server_time = info.current_date_time
            else:
                self._lost(answer, probing=self._generation is None)
        queue = self._queue_status(session)
        if queue.is_blocked:
            reason = queue.block_reason or "unknown"
            raise ServerBusyError(
                f"queue_blocked:{reason}",
                f"{self.server.redacted}: the server's queue is blocked ({reason})",
            )
        assert self._generation is not None  # set by _queue_status
        return self._generation, server_time

    def _queue_status(self, session: HttpSession) -> rec.QueueStatus:
        order = [self._generation] if self._generation else [Generation.G2, Generation.G1]
        for generation in order:
            assert generation is not None
            answer = self._call(session, generation, "queue_status")
            if answer.status == 200:
                self._generation = generation
                log.debug("%s: server generation G%d", self.server.redacted, generation)
                return self._validated(rec.QueueStatus, answer.body, "queue status")
            if answer.status != 404 or rec.http_error(answer.body) is not None:
                raise self._refusal(answer, "queue status")
        self._generation = None
        raise ServerRefusedError(
            "path_not_found" if len(order) == 1 else "not_an_atol_server",
            f"{self.server.redacted}: no ATOL queue status at this address",
        )

    def _lost(self, answer: HttpAnswer, *, probing: bool) -> None:
        """A G3 ``serverInfo`` that did not answer 200: older server, or a refusal."""
        if answer.status != 404:
            raise self._refusal(answer, "serverInfo")
        if not probing:
            self._generation = None
            raise ServerRefusedError("path_not_found", f"{self.server.redacted}: no serverInfo")

    def _call(
        self,
        session: HttpSession,
        generation: Generation,
        name: str,
        *,
        uuid: str | None = None,
        body: Any = None,
        params: dict[str, str] | None = None,
        timeout_s: float | None = None,
    ) -> HttpAnswer:
        method, path = endpoint(generation, name, uuid=uuid)
        query = self._params if params is None else params
        return session.call(method, path, params=query, body=body, timeout_s=timeout_s)

    def _queued(self, session: HttpSession, generation: Generation) -> QueuedJob:
        def call(name: str, **keys: Any) -> HttpAnswer:
            return self._call(session, generation, name, **keys)

        where = self.server.redacted
        return QueuedJob(
            call, self._refusal, session.remaining, self.clock, where, parse=self._fact
        )

    def _refusal(self, answer: HttpAnswer, what: str) -> KktmonError:
        """The error for a status the read cannot go on with (section 3.2)."""
        error = rec.http_error(answer.body)
        words = f"{self.server.redacted} {what}: HTTP {answer.status}" + (
            f" ({error.code}: {error.description})" if error else ""
        )
        if answer.status == 403:
            return ServerRefusedError("device_not_activated", words)
        if answer.status == 404 and error is not None:
            return ServerRefusedError("device_not_found", words)
        if answer.status == 404:
            self._generation = None
            return ServerRefusedError("path_not_found", words)
        if answer.status == 408:
            return ServerBusyError("http_408", words)
        if answer.status == 420 and error is not None:
            return DeviceError(VENDOR, what, error.code, error.description)
        return ServerRefusedError(f"http_{answer.status}", words)

    # ------------------------------------------------------------------ G3 operations

    def _operations(self, session: HttpSession) -> dict[str, Any] | None:
        """The synchronous reads; None when the server has no operations (404)."""
        facts: dict[str, Any] = {}
        for task in OPERATION_READS:
            name = operation_for(task)
            answer = self._call(session, Generation.G3, name, timeout_s=OPERATION_TIMEOUT_S)
            if answer.status == 404 and rec.http_error(answer.body) is None:
                log.debug("%s: no %s, reading through a job", self.server.redacted, name)
                return None
            if answer.status != 200:
                raise self._refusal(answer, name)
            facts[task] = self._fact(task, answer.body)
            if task == "getDeviceInfo":
                self._check_serial(facts[task])
        return facts

    def _fact(self, task: str, body: Any) -> Any:
        """A task's or operation's fact; a field that does not validate is null, counted
        and logged once (:meth:`HttpDriver._validated`), and the rest of the fact stands."""
        model, data = rec.fact_input(task, body)
        return self._validated(model, data, task)

    def _cached_registration(self, serial: str) -> rec.RegistrationInfo | None:
        cached = self._registration
        return cached[1] if cached is not None and cached[0] == serial else None

    def _g3_registration(
        self, session: HttpSession, identify: bool, serial: str
    ) -> rec.RegistrationInfo | None:
        due = self._polls_since_registration >= self.registration_every
        cached = self._cached_registration(serial)
        if identify or due or cached is None:
            try:
                facts = self._queued(session, Generation.G3).run(
                    ("getRegistrationInfo",), REGISTRATION_JOB_S
                )
            except (ServerBusyError, DeviceError) as exc:
                log.debug("%s: registration not read now: %s", self.server.redacted, exc)
            else:
                cached = facts.get("getRegistrationInfo")
                self._polls_since_registration = 0
        self._polls_since_registration += 1
        return cached
