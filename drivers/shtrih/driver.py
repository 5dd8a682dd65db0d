"""Shtrih-M driver: the read-only command sequence and its mapping to the health model.

One poll sends, in order: 11h (clock, mode, flags), 10h (last print result), FF01h
(FN status), FF03h (validity), FF39h (OFD queue), FF40h (shift), FF09h (registration),
FF63h (FN resource, where supported) and, once per shift, a bounded FF0Ah walk back to
the shift-open document for ``opened_at``. Identity (FCh, F7h 01h, table 18, FFD table,
FF04h) is read on the first poll and again whenever the FN serial changes.

Commands a model lacks (error 37h) and FN archive reads the drive cannot serve
(02h wrong phase, 08h no data) degrade to nulls and are not asked again.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from kktmon.drivers.base import Session, WireDriver
from kktmon.drivers.shtrih.mapping import build_snapshot, normalise_model_name
from kktmon.protocol.errors import DeviceError, UnsupportedCommandError
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
from kktmon.protocol.shtrih.frame import Frame, split_command
from kktmon.protocol.shtrih.link import HostLink, LinkLimits

T = TypeVar("T")

FFD_CODES = {1: "1.0", 2: "1.05", 3: "1.1", 4: "1.2"}
FIELD_SERIAL, FIELD_RNM = 1, 3
CLASSIC_FFD_TABLE, CLASSIC_FFD_FIELD = 17, 17


class ShtrihDriver(WireDriver):
    """Shtrih-M registers over serial, USB-CDC or TCP (port 7778)."""

    vendor = "shtrih"
    busy_device_codes = frozenset({STILL_PRINTING, 0x72, 0x73})  # printing, wrong submode/mode

    def setup(self) -> None:
        self._identity: DeviceInfo | None = None
        self._identity_fn_serial: str | None = None
        self._unsupported: set[int] = set()
        self._shift_opened: dict[int, datetime | None] = {}
        self._fn_firmware: str | None = None

    # ------------------------------------------------------------------ the poll

    def _identify(self, session: Session) -> DeviceInfo:
        device_type = self._ask(session, cmd.request_device_type(), rec.parse_device_type)
        params = self._optional(session, cmd.request_model_parameters(), rec.parse_model_parameters)
        fs_table = params.fs_table if params else 18
        serial = self._table_text(session, fs_table, FIELD_SERIAL)
        if serial is None:
            status = self._ask(session, self._pwd(cmd.request_long_status), rec.parse_long_status)
            serial = str(status.serial_low | (status.serial_high or 0) << 32)
        fn_firmware = self._optional(session, self._pwd_fn(0xFF04), rec.parse_fn_firmware)
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
        long_status = self._ask(session, self._pwd(cmd.request_long_status), rec.parse_long_status)
        host_time = self.clock()
        short_status = self._ask(
            session, self._pwd(cmd.request_short_status), rec.parse_short_status
        )
        fn_status = self._ask(session, self._pwd_fn(0xFF01), rec.parse_fn_status)
        if self._identity is None or fn_status.serial != self._identity_fn_serial:
            self._identity = self._identify(session)
            self._identity_fn_serial = fn_status.serial
        shift = self._optional(session, self._pwd_fn(0xFF40), rec.parse_shift_parameters)
        facts = {
            "validity": self._optional(session, self._pwd_fn(0xFF03), rec.parse_fn_validity),
            "ofd": self._optional(session, self._pwd_fn(0xFF39), rec.parse_ofd_status),
            "registration": self._optional(session, self._pwd_fn(0xFF09), rec.parse_registration),
            "resource": self._optional(session, self._pwd_fn(0xFF63), rec.parse_fn_resource),
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
        last = fn_status.last_document_number
        for number in range(last, max(last - self.options.shift_walk_limit, 0), -1):
            request = cmd.request_archive_document(number, self.options.password)
            document = self._optional(session, request, rec.parse_archive_document, slow=True)
            if document is None:
                return None
            if document.doc_type == rec.DOC_SHIFT_OPEN and document.shift_number == shift.number:
                return document.at
            if document.doc_type == rec.DOC_SHIFT_CLOSE:
                return None  # walked past this shift's start without finding it
        return None

    # ------------------------------------------------------------------ helpers

    def _pwd(self, builder: Callable[[int], bytes]) -> bytes:
        return builder(self.options.password)

    def _pwd_fn(self, code: int) -> bytes:
        return cmd.request_fn(code, self.options.password)

    def _table_text(self, session: Session, table: int, field: int) -> str | None:
        request = cmd.request_table_field(table, 1, field, self.options.password)
        raw = self._optional(session, request, rec.parse_table_value)
        return (rec.table_text(raw) or None) if raw is not None else None

    def _ffd_version(self, session: Session, params: rec.ModelParameters | None) -> str | None:
        table = params.ffd_table if params and params.ffd_table else CLASSIC_FFD_TABLE
        field = params.ffd_field if params and params.ffd_field else CLASSIC_FFD_FIELD
        request = cmd.request_table_field(table, 1, field, self.options.password)
        raw = self._optional(session, request, rec.parse_table_value)
        return FFD_CODES.get(rec.table_int(raw)) if raw else None

    def _ask(
        self, session: Session, request: bytes, parse: Callable[[Frame], T], slow: bool = False
    ) -> T:
        """One command that must succeed for the poll to mean anything."""
        return session.retrying(lambda: parse(self._exchange(session, request, slow)))

    def _optional(
        self, session: Session, request: bytes, parse: Callable[[Frame], T], slow: bool = False
    ) -> T | None:
        """A command whose absence degrades a field to null instead of failing the poll."""
        code = split_command(request[2:-1]).code  # between STX LEN and LRC
        if code in self._unsupported:
            return None
        try:
            return self._ask(session, request, parse, slow)
        except UnsupportedCommandError:
            self._unsupported.add(code)
            return None
        except DeviceError as exc:
            if exc.code in (WRONG_FN_STATE, NO_DATA_IN_FN, TABLE_NOT_DEFINED, BAD_PARAMETERS):
                return None
            raise

    def _exchange(self, session: Session, request: bytes, slow: bool) -> Frame:
        link = HostLink(request, LinkLimits(enq_tries=self.options.enq_tries))
        return session.run_link(link, lambda kind: self.options.timeout_for(kind, slow))
