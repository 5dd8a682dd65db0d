"""The problem codes of DESIGN.md section 3 and what each one means, in one table.

A code is a stable identifier on the wire (``Problem.code``, the ``alert/<CODE>`` topic, the
ticket key), so it is spelled here and nowhere else. Per code, :data:`PROBLEMS` says:

* ``severity``: the default, what it is raised at unless its rule grades it; a graded
  rule (days left, hours open, ...) starts here and only goes up;
* ``owner``: who can fix it (fiscal-health.md section 5: STORE, ASC = service, ACCOUNT);
* ``fn_scoped``: its ticket key includes the fiscal drive's serial, so the same problem of
  a new drive is a new ticket (DESIGN.md section 6);
* ``deadline``: which :class:`BlockReason` is its own legal clock: when the register's
  ``block_reason`` names it, the register's ``block_at`` is this problem's SLA deadline;
* ``new_fn``: the fix is a new fiscal drive, so the engineer brings one.

Who raises what is not the table's business: the agent's rules raise most codes,
ticketing raises AGENT_LOST centrally. Pure: stdlib only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType


class Severity(StrEnum):
    """Ordered from least to most severe."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"
    BLOCKED = "blocked"


class Owner(StrEnum):
    """Who can fix a problem."""

    STORE = "store"
    SERVICE = "service"
    ACCOUNT = "account"


class ProblemCode(StrEnum):
    """The stable identifiers of DESIGN.md section 3; each value is its name."""

    FN_EXPIRING = "FN_EXPIRING"
    FN_URGENT_REPLACEMENT = "FN_URGENT_REPLACEMENT"
    FN_RESOURCE_EXHAUSTING = "FN_RESOURCE_EXHAUSTING"
    FN_MEMORY_FULL = "FN_MEMORY_FULL"
    FN_CRITICAL_ERROR = "FN_CRITICAL_ERROR"
    FN_NOT_FISCAL = "FN_NOT_FISCAL"
    FN_ARCHIVE_CLOSED = "FN_ARCHIVE_CLOSED"
    OFD_QUEUE_STALE = "OFD_QUEUE_STALE"
    OFD_TIMEOUT = "OFD_TIMEOUT"
    SHIFT_TOO_LONG = "SHIFT_TOO_LONG"
    PAPER_OUT = "PAPER_OUT"
    COVER_OPEN = "COVER_OPEN"
    PRINTER_FAULT = "PRINTER_FAULT"
    CLOCK_SKEW = "CLOCK_SKEW"
    DEVICE_UNREACHABLE = "DEVICE_UNREACHABLE"
    DEVICE_BUSY = "DEVICE_BUSY"
    FN_REPLACED = "FN_REPLACED"
    REGISTRATION_CHANGED = "REGISTRATION_CHANGED"
    #: The register sends its documents to the OFD through the PC (fiscal-health.md 2.3).
    OFD_VIA_HOST = "OFD_VIA_HOST"
    #: A warning bit of the drive that no specification names (fiscal-health.md 1.3).
    FN_UNKNOWN_FLAG = "FN_UNKNOWN_FLAG"
    #: An agent lost beyond its grace period; raised by ticketing, never by an agent.
    AGENT_LOST = "AGENT_LOST"


class BlockReason(StrEnum):
    """Why a register will stop selling: ``HealthSnapshot.block_reason`` on the wire."""

    #: The drive's end date (``fn.valid_until``).
    FN_EXPIRY = "fn_expiry"
    #: The first unsent document plus 30 days (54-ФЗ).
    OFD_30_DAYS = "ofd_30_days"
    #: The shift's opening plus 24 hours, or a shift the register calls expired.
    SHIFT_24_HOURS = "shift_24_hours"
    #: No documents left, now or projected from the document rate.
    FN_MEMORY_FULL = "fn_memory_full"
    #: The drive left fiscal mode for good (post-fiscal or archive phase).
    FN_ARCHIVE_CLOSED = "fn_archive_closed"
    #: The drive is not fiscalised (yet).
    FN_NOT_FISCAL = "fn_not_fiscal"


@dataclass(frozen=True, slots=True)
class ProblemSpec:
    """What the contract says about one code (see the module docstring)."""

    severity: Severity
    owner: Owner
    fn_scoped: bool
    deadline: BlockReason | None
    new_fn: bool


_C, _S, _O, _B = ProblemCode, Severity, Owner, BlockReason
_Row = tuple[ProblemCode, Severity, Owner, bool, BlockReason | None, bool]
# fmt: off
_TABLE: tuple[_Row, ...] = (
    # code                       severity     owner       FN     deadline              new FN
    (_C.FN_EXPIRING,             _S.INFO,     _O.SERVICE, True,  _B.FN_EXPIRY,         True),
    (_C.FN_URGENT_REPLACEMENT,   _S.CRITICAL, _O.SERVICE, True,  _B.FN_EXPIRY,         True),
    (_C.FN_RESOURCE_EXHAUSTING,  _S.WARNING,  _O.SERVICE, True,  _B.FN_EXPIRY,         True),
    (_C.FN_MEMORY_FULL,          _S.WARNING,  _O.SERVICE, True,  _B.FN_MEMORY_FULL,    True),
    (_C.FN_CRITICAL_ERROR,       _S.CRITICAL, _O.SERVICE, True,  None,                 True),
    (_C.FN_NOT_FISCAL,           _S.INFO,     _O.SERVICE, True,  _B.FN_NOT_FISCAL,     False),
    (_C.FN_ARCHIVE_CLOSED,       _S.BLOCKED,  _O.SERVICE, True,  _B.FN_ARCHIVE_CLOSED, True),
    (_C.OFD_QUEUE_STALE,         _S.WARNING,  _O.SERVICE, False, _B.OFD_30_DAYS,       False),
    (_C.OFD_TIMEOUT,             _S.WARNING,  _O.SERVICE, False, _B.OFD_30_DAYS,       False),
    (_C.SHIFT_TOO_LONG,          _S.WARNING,  _O.STORE,   False, _B.SHIFT_24_HOURS,    False),
    (_C.PAPER_OUT,               _S.INFO,     _O.STORE,   False, None,                 False),
    (_C.COVER_OPEN,              _S.WARNING,  _O.STORE,   False, None,                 False),
    (_C.PRINTER_FAULT,           _S.WARNING,  _O.SERVICE, False, None,                 False),
    (_C.CLOCK_SKEW,              _S.WARNING,  _O.SERVICE, False, None,                 False),
    (_C.DEVICE_UNREACHABLE,      _S.WARNING,  _O.SERVICE, False, None,                 False),
    (_C.DEVICE_BUSY,             _S.INFO,     _O.SERVICE, False, None,                 False),
    (_C.FN_REPLACED,             _S.INFO,     _O.SERVICE, True,  None,                 False),
    (_C.REGISTRATION_CHANGED,    _S.INFO,     _O.SERVICE, False, None,                 False),
    (_C.OFD_VIA_HOST,            _S.INFO,     _O.SERVICE, False, None,                 False),
    (_C.FN_UNKNOWN_FLAG,         _S.INFO,     _O.SERVICE, True,  None,                 False),
    (_C.AGENT_LOST,              _S.WARNING,  _O.SERVICE, False, None,                 False),
)
# fmt: on
PROBLEMS: Mapping[ProblemCode, ProblemSpec] = MappingProxyType(
    {row[0]: ProblemSpec(*row[1:]) for row in _TABLE}
)
#: Who can fix each code.
OWNERS: Mapping[ProblemCode, Owner] = MappingProxyType(
    {code: spec.owner for code, spec in PROBLEMS.items()}
)
#: Codes whose ticket key includes the drive's serial.
FN_SCOPED = frozenset(code for code, spec in PROBLEMS.items() if spec.fn_scoped)
#: Each code's own legal clock, for the codes that have one.
DEADLINES: Mapping[ProblemCode, BlockReason] = MappingProxyType(
    {code: spec.deadline for code, spec in PROBLEMS.items() if spec.deadline is not None}
)
#: Codes where the engineer brings a new fiscal drive.
NEW_FN_CODES = frozenset(code for code, spec in PROBLEMS.items() if spec.new_fn)


def problem_code(code: str) -> ProblemCode | None:
    """``code`` as a member, or None for a code this version does not know (a newer agent's)."""
    try:
        return ProblemCode(code)
    except ValueError:
        return None


#: The naming rule of DESIGN.md section 3 for the drive's own problems; it decides only for
#: codes this version does not know yet, so a newer agent's drive problem still keys on the
#: drive it concerns (and a drive swap still opens a fresh ticket for it).
FN_FAMILY_PREFIX = "FN_"


def is_fn_scoped(code: str) -> bool:
    """Whether ``code``'s ticket key includes the drive's serial."""
    known = problem_code(code)
    if known is None:
        return code.startswith(FN_FAMILY_PREFIX)
    return known in FN_SCOPED


def deadline_of(code: str) -> BlockReason | None:
    """The block reason that is ``code``'s own deadline, if it has one."""
    known = problem_code(code)
    return DEADLINES.get(known) if known is not None else None
