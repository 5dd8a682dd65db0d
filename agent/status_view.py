"""Human-readable rendering of a :class:`HealthSnapshot` for ``kktmon status``."""

from __future__ import annotations

from datetime import datetime

from kktmon.protocol.health import HealthSnapshot

#: What to check, by ``link.last_error`` (prefix match), in one line.
HINTS: tuple[tuple[str, str], ...] = (
    ("PORT_BUSY", "the port is held by another program (the POS software?); retry later"),
    ("TIMEOUT", "no answer: check power, cable, port name, baud rate and --vendor"),
    ("UNREACHABLE", "cannot open the port: check the device path or host:port"),
    ("CLOSED", "the register closed the connection: is another client connected?"),
    ("CHECKSUM", "garbled answers: check the baud rate, the cable and --vendor"),
    ("FRAME", "garbled answers: check the baud rate, the cable and --vendor"),
    ("MALFORMED", "answers make no sense: is this the right --vendor?"),
    ("UNEXPECTED", "answers to other commands: is another program talking to it?"),
    ("DEVICE_ERROR_4F", "wrong password: pass the system administrator's with --password"),
    ("DEVICE_ERROR", "the register refused a read command; see the error code"),
    ("SERVER_DOWN", "the driver server does not accept connections: is it running, host:port?"),
    ("SERVER_BUSY", "the driver server is busy with the POS or its queue is blocked; retry later"),
    ("AUTH_FAILED", "the driver server rejects the user or password (--connection-password)"),
    ("DEVICE_NOT_ACTIVATED", "the register is not activated in the driver server's settings"),
    ("DEVICE_NOT", "the driver server does not know that register: check device= in the URL"),
    ("WRONG_REGISTER", "the server's device is another register: check device= and serial="),
    ("NOT_AN_ATOL_SERVER", "no ATOL web server answers there: check host:port and --vendor"),
    ("COMMAND_NOT_IMPLEMENTED", "the driver server is too old for this read; update it"),
    ("HTTP_", "the driver server failed; see its log"),
)


def failure_hint(last_error: str | None) -> str:
    for prefix, hint in HINTS:
        if last_error and last_error.startswith(prefix):
            return hint
    return "check the connection and --vendor"


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "-"


def _val(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(getattr(value, "value", value))


def render_table(snapshot: HealthSnapshot) -> str:
    """Sections of ``label  value`` lines, the way an engineer reads a register."""
    d, fn, ofd, shift = snapshot.device, snapshot.fn, snapshot.ofd, snapshot.shift
    warnings = [name for name, on in fn.warnings.model_dump().items() if on is True]
    sections: list[tuple[str, list[tuple[str, object]]]] = [
        (
            "Register",
            [
                ("vendor / model", f"{d.vendor} / {_val(d.model)}"),
                ("serial", d.serial),
                ("RNM", d.rnm),
                ("INN", d.inn),
                ("firmware", d.firmware),
                ("FFD", d.ffd.device),
                ("transport", d.transport),
            ],
        ),
        (
            "Fiscal drive (FN)",
            [
                ("serial", fn.serial),
                ("phase", fn.phase.name if fn.phase else None),
                ("valid until", fn.valid_until),
                ("days left", fn.days_left),
                ("warnings", ", ".join(warnings) or "none"),
                (
                    "last document",
                    f"{_val(fn.last_document_number)} at {_when(fn.last_document_at)}",
                ),
                ("memory used %", fn.memory_used_pct),
                ("documents left", fn.documents_left),
            ],
        ),
        (
            "OFD queue",
            [
                ("unsent", ofd.unsent_count),
                ("first unsent", ofd.first_unsent_number),
                ("first unsent at", _when(ofd.first_unsent_at)),
                ("oldest age, h", ofd.oldest_unsent_age_h),
            ],
        ),
        (
            "Shift",
            [
                ("state", shift.state),
                ("number", shift.number),
                ("opened at", _when(shift.opened_at)),
                ("hours open", shift.hours_open),
            ],
        ),
        (
            "Printer",
            [
                ("paper", snapshot.printer.paper),
                ("cover open", snapshot.printer.cover_open),
                ("fault", snapshot.printer.fault),
            ],
        ),
        (
            "Clock",
            [
                ("register time", _when(snapshot.clock.device_time)),
                ("skew, s", snapshot.clock.skew_s),
            ],
        ),
        (
            "Link",
            [
                ("state", snapshot.link.state),
                ("duration, ms", snapshot.link.duration_ms),
                ("bytes tx / rx", f"{snapshot.link.bytes_tx} / {snapshot.link.bytes_rx}"),
                ("retries", snapshot.link.retries),
                ("last error", snapshot.link.last_error),
            ],
        ),
        (
            "Deadline",
            [
                ("blocks at", _when(snapshot.block_at)),
                ("because", snapshot.block_reason),
            ],
        ),
    ]
    lines: list[str] = []
    for title, rows in sections:
        lines.append(title)
        lines.extend(f"  {label:<16} {_val(value)}" for label, value in rows)
    if snapshot.problems:
        lines.append("Problems")
        lines.extend(f"  {p.severity.value:<8} {p.code}: {p.message}" for p in snapshot.problems)
    if snapshot.stale:
        lines.append(f"STALE: last good poll at {_when(snapshot.last_good_at)}")
    return "\n".join(lines)
