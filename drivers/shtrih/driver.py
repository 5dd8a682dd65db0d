"""Shtrih-M driver: the read-only command sequence and its mapping to the health model.

One poll sends, in order: 11h (clock, mode, flags), 10h (last print result), FF01h
(FN status), FF40h (shift), FF03h (validity), FF39h (OFD queue), FF09h (registration),
FF63h (FN resource, where supported) and, once per shift, a bounded FF0Ah walk back to
the shift-open document for ``opened_at``. Identity (FCh, F7h 01h, the serial from
table 18 or else 11h, FF04h, the RNM from table 18, the FFD table) is read after FF01h
on the first poll and again whenever the FN serial changes.

Where each fact comes from is :mod:`kktmon.drivers.shtrih.reads`. Commands a model
lacks (error 37h) degrade to nulls and are not asked again; FN reads the drive cannot
serve now (02h wrong phase, 08h no data) and refused tables or parameters (5Dh, 33h)
degrade to nulls for that poll only.

A lost answer is first the link's to recover (ENQ: the register sends a kept answer
again, or NAKs and gets the command again); when the link gives up on a register that
answered every ENQ with ACK or NAK and never sent a frame, the read is asked once more
(:meth:`WireDriver._ask`) and then fails the poll as busy, ``busy_reason`` ``no_answer``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from kktmon.drivers.shtrih import reads
from kktmon.drivers.shtrih.mapping import build_snapshot, normalise_model_name
from kktmon.drivers.wire import Read, Session, WireDriver
from kktmon.protocol.errors import LinkTimeoutError, NoAnswerError
from kktmon.protocol.health import DeviceInfo, FfdVersions, HealthSnapshot
from kktmon.protocol.shtrih import commands as cmd
from kktmon.protocol.shtrih import records as rec
from kktmon.protocol.shtrih.errors import (
    BAD_PARAMETERS,
    NO_DATA_IN_FN,
    STILL_PRINTING,
    TABLE_NOT_DEFINED,
    WRONG_FN_STATE,
)
from kktmon.protocol.shtrih.frame import ACK, NAK, STRAY, Frame
from kktmon.protocol.shtrih.link import HostLink, LinkLimits

FFD_CODES = {1: "1.0", 2: "1.05", 3: "1.1", 4: "1.2"}
FIELD_SERIAL, FIELD_RNM = 1, 3
CLASSIC_FFD_TABLE, CLASSIC_FFD_FIELD = 17, 17
#: What a live register answers the link's ENQs with, when it sends no frame (the
#: stray FFh of TCP bridges included).
LINK_CONTROL = frozenset({ACK, NAK, STRAY})


class ShtrihDriver(WireDriver[Frame]):
    """Shtrih-M registers over serial, USB-CDC or TCP (port 7778)."""

    vendor = "shtrih"
    busy_device_codes = frozenset({STILL_PRINTING, 0x72, 0x73})  # printing, wrong submode/mode
    degrade_codes = frozenset({WRONG_FN_STATE, NO_DATA_IN_FN, TABLE_NOT_DEFINED, BAD_PARAMETERS})

    def setup(self) -> None:
        self._identity: DeviceInfo | None = None
        self._identity_fn_serial: str | None = None
        self._shift_opened: dict[int, datetime | None] = {}
        self._fn_firmware: str | None = None

    # ------------------------------------------------------------------ the poll

    def _identify(self, session: Session) -> DeviceInfo:
        device_type = self._ask(session, reads.DEVICE_TYPE)
        params = self._optional(session, reads.MODEL_PARAMETERS)
        fs_table = params.fs_table if params else 18
        serial = self._table_text(session, fs_table, FIELD_SERIAL)
        if serial is None:
            status = self._ask(session, reads.LONG_STATUS)
            serial = str(status.serial_low | (status.serial_high or 0) << 32)
        fn_firmware = self._optional(session, reads.FN_FIRMWARE)
        self._fn_firmware = fn_firmware.version if fn_firmware else None
        return DeviceInfo(
            vendor=self.vendor,
            model=normalise_model_name(device_type.name),
            serial=serial,
            rnm=self._table_text(session, fs_table, FIELD_RNM),
            ffd=FfdVersions(device=self._ffd_version(session, params)),
            transport=session.transport.kind,
        )

    def _poll(self, session: Session) -> HealthSnapshot:
        long_status = self._ask(session, reads.LONG_STATUS)
        host_time = self.clock()
        short_status = self._ask(session, reads.SHORT_STATUS)
        fn_status = self._ask(session, reads.FN_STATUS)
        if self._identity is None or fn_status.serial != self._identity_fn_serial:
            self._identity = self._identify(session)
            self._identity_fn_serial = fn_status.serial
        shift = self._optional(session, reads.SHIFT)
        facts = {
            "validity": self._optional(session, reads.FN_VALIDITY),
            "ofd": self._optional(session, reads.OFD_STATUS),
            "registration": self._optional(session, reads.REGISTRATION),
            "resource": self._optional(session, reads.FN_RESOURCE),
        }
        opened_at = self._shift_opened_at(session, fn_status, shift)
        return build_snapshot(
            identity=self._identity,
            long_status=long_status,
            short_status=short_status,
            fn_status=fn_status,
            shift=shift,
            shift_opened_at=opened_at,
            host_time=host_time,
            fn_firmware=self._fn_firmware,
            **facts,  # type: ignore[arg-type]
        )

    def _shift_opened_at(
        self, session: Session, fn_status: rec.FnStatus, shift: rec.ShiftParameters | None
    ) -> datetime | None:
        """Walk FF0Ah back to this shift's open document; cached per shift number."""
        if not fn_status.shift_open or shift is None:
            return None
        if shift.number not in self._shift_opened:
            self._shift_opened = {shift.number: self._find_shift_open(session, fn_status, shift)}
        return self._shift_opened[shift.number]

    def _find_shift_open(
        self, session: Session, fn_status: rec.FnStatus, shift: rec.ShiftParameters
    ) -> datetime | None:
        last = fn_status.last_document_number or 0  # FF01h always has it
        for number in range(last, max(last - self.options.shift_walk_limit, 0), -1):
            document = self._optional(session, reads.archive_document(number))
            if document is None:
                return None
            if document.doc_type == rec.DOC_SHIFT_OPEN and document.shift_number == shift.number:
                return document.at
            if document.doc_type == rec.DOC_SHIFT_CLOSE:
                return None  # walked past this shift's start without finding it
        return None

    # ------------------------------------------------------------------ helpers

    def _table_text(self, session: Session, table: int, field: int) -> str | None:
        raw = self._optional(session, reads.table_field(table, field))
        return (rec.table_text(raw) or None) if raw is not None else None

    def _ffd_version(self, session: Session, params: rec.ModelParameters | None) -> str | None:
        table = params.ffd_table if params and params.ffd_table else CLASSIC_FFD_TABLE
        field = params.ffd_field if params and params.ffd_field else CLASSIC_FFD_FIELD
        raw = self._optional(session, reads.table_field(table, field))
        return FFD_CODES.get(rec.table_int(raw)) if raw else None

    def _exchange(self, session: Session, read: Read[Frame, Any]) -> Frame:
        password = self.options.password
        request = cmd.request(read.command, read.sub, read.params, password)
        link = HostLink(request, LinkLimits(enq_tries=self.options.enq_tries))
        try:
            return session.run_link(link, lambda kind: self.options.timeout_for(kind, read.slow))
        except LinkTimeoutError as exc:
            if session.heard_only(LINK_CONTROL):  # ENQ answered, the answer never came
                why = f"{read.command:02X}h: the register answers ENQ, the answer never came"
                raise NoAnswerError(f"{why} ({exc})") from exc
            raise
