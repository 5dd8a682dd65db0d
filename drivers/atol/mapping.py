"""ATOL answers -> the vendor-neutral :class:`HealthSnapshot` (pure functions).

Kept apart from the driver so the mapping reads as a table of facts and can be tested
from golden answers without any link. Register times are local wall-clock time; they
get the host's zone here. A fact the register cannot tell stays null:

* FN memory: only the drive's "90 % full" warning bit, unless the experimental A4h 3Dh
  (free-memory resource, FN-M only) answered; then documents left and the 30-day
  storage are reported as the Shtrih driver reports FF63h, the same FN command.
* Shift opening time: no verified command returns it (atol.md section 5.6). Two
  inferences, both checked against the FN's own document times, never guessed:
  :func:`opened_from_register` (register 12h, whose stamp is the opening or the 24-hour
  expiry [L]) and :func:`opened_from_transition` (the open flag changed between polls).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from kktmon.drivers.mapping import (
    SHIFT_LIMIT_HOURS,
    aware,
    clock_info,
    fn_health,
    fn_shift,
    ofd_queue,
    shift_info,
)
from kktmon.protocol.atol import records as rec
from kktmon.protocol.health import (
    DeviceInfo,
    FfdVersions,
    HealthSnapshot,
    PaperState,
    PrinterInfo,
    ShiftInfo,
)

SHIFT_LIMIT = timedelta(hours=SHIFT_LIMIT_HOURS)
FN_TIME_STEP = timedelta(minutes=1)  # FN dates stop at minutes: an event may lie up to 59 s later


@dataclass(frozen=True)
class PollAnswers:
    """The parsed answers of one poll; ``None`` where the register could not tell."""

    state: rec.DeviceState  # 3Fh
    status: rec.StatusCode | None  # 45h
    fn_status: rec.FnStatus  # A4h 30h
    shift: rec.ShiftParameters | None = None  # A4h 10h
    validity: rec.FnValidity | None = None  # A4h 32h
    ofd: rec.OfdStatus | None = None  # A4h 20h
    registration: rec.FnRegistration | None = None  # A4h 43h
    resource: rec.FnResource | None = None  # A4h 3Dh [L]


def device_info(
    device_type: rec.DeviceType,
    serial: str | None,
    ffd: rec.FfdVersions | None,
    transport: str,
) -> DeviceInfo:
    """Identity from A5h, register 16h (full serial) and register 36h (FFD versions)."""
    return DeviceInfo(
        vendor="atol",
        model=device_type.name or device_type.model_name,
        serial=serial,
        firmware=f"{device_type.version} build {device_type.build}",
        ffd=FfdVersions(device=ffd.kkt if ffd else None, fn=ffd.fn if ffd else None),
        transport=transport,
    )


def build_snapshot(
    *,
    identity: DeviceInfo,
    answers: PollAnswers,
    shift_opened_at: datetime | None,
    host_time: datetime,
    fn_firmware: str | None = None,
) -> HealthSnapshot:
    registration = answers.registration
    device = identity.model_copy(
        update={
            "rnm": registration.rnm if registration and registration.rnm else identity.rnm,
            "inn": registration.inn if registration and registration.inn else identity.inn,
        }
    )
    fn = fn_health(
        answers.fn_status,
        host_time,
        validity=answers.validity,
        resource=answers.resource,
        firmware=fn_firmware,
    )
    return HealthSnapshot(
        taken_at=host_time,
        device=device,
        fn=fn,
        ofd=ofd_queue(answers.ofd, host_time),
        shift=_shift(answers, aware(shift_opened_at, host_time), host_time),
        printer=_printer(answers.state, answers.status),
        clock=clock_info(answers.state.device_time, host_time),
    )


def _fn_shift(answers: PollAnswers) -> tuple[bool, int]:
    """The FN's word (A4h 10h, then A4h 30h); 3Fh's last *closed* shift (quirk Q7) +1
    while one is open when A4h 10h did not answer."""
    return fn_shift(answers.shift, answers.fn_status, answers.state.last_closed_shift)


def _shift(answers: PollAnswers, opened_at: datetime | None, host_time: datetime) -> ShiftInfo:
    return shift_info(*_fn_shift(answers), opened_at, host_time)


def _printer(state: rec.DeviceState, status: rec.StatusCode | None) -> PrinterInfo:
    printer = status.printer if status else None
    if not state.flags.paper_present or (printer is not None and printer.no_paper):
        paper = PaperState.OUT
    elif printer is not None and printer.paper_near_end:
        paper = PaperState.NEAR_END
    else:
        paper = PaperState.OK
    raw = {"flags": state.flags.raw, "mode": state.mode, "submode": state.submode}
    if printer is not None:
        raw["printer_flags"] = printer.raw
    return PrinterInfo(
        paper=paper,
        cover_open=state.flags.cover_open,
        fault=_printer_fault(printer) if printer is not None else None,
        raw=raw,
    )


def _printer_fault(flags: rec.PrinterFlags) -> bool:
    return (
        flags.printer_offline
        or flags.mechanical_error
        or flags.cutter_error
        or flags.overheat
        or flags.paper_jam
        or flags.presenter_error
    )


# ------------------------------------------------------------------ shift opening time


def opened_from_register(
    register: rec.ShiftRegister, last_document_at: datetime | None
) -> datetime | None:
    """Register 12h's stamp as the opening time, whichever meaning the firmware gives it.

    Sources disagree whether the stamp is the opening or the 24-hour expiry [L]. The
    FN's last document decides: the shift-opening report is one of the shift's
    documents, and the FN signs none after the 24 hours, so every document of an open
    shift lies in [opened, opened + 24 h). A stamp no later than the last document is
    the opening; a stamp after it is the expiry. None when neither fits.
    """
    if register.state == 0 or register.stamp is None or last_document_at is None:
        return None
    latest = last_document_at + FN_TIME_STEP
    if register.stamp < latest:
        return register.stamp
    if register.stamp - SHIFT_LIMIT < latest:
        return register.stamp - SHIFT_LIMIT
    return None


@dataclass(frozen=True)
class ShiftSighting:
    """What one poll saw of the shift and the FN's document counter."""

    open: bool
    number: int
    last_document_number: int | None  # A4h 30h always has it; the shared record may not
    last_document_at: datetime | None


def sighting(answers: PollAnswers) -> ShiftSighting:
    fn = answers.fn_status
    return ShiftSighting(*_fn_shift(answers), fn.last_document_number, fn.last_document_at)


def opened_from_transition(before: ShiftSighting | None, now: ShiftSighting) -> datetime | None:
    """The opening time when the shift opened between two polls, else None.

    Only exact when the FN signed nothing but the shift reports in between: one new
    document after a closed shift (the opening report), or two after the previous
    shift (its closing report, then the opening one). The last document is then the
    opening report, and its time is the opening time (to the minute).
    """
    if before is None or not now.open:
        return None
    if now.last_document_number is None or before.last_document_number is None:
        return None
    new_documents = now.last_document_number - before.last_document_number
    if not before.open and new_documents == 1:
        return now.last_document_at
    if before.open and now.number == before.number + 1 and new_documents == 2:
        return now.last_document_at
    return None
