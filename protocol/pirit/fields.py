"""Pirit field types (pirit.md 2.4) and a cursor over a reply's values.

Every value is CP866 text. Integers and bit masks are decimal (mask 0x12 arrives as
``18``, quirk 8) and an empty integer is 0; dates are ``ddmmyy`` (or ``ddmmyyyy``) with
``000000``, ``010100`` and empty meaning "no date" (quirk 9); times are ``hhmmss``.
Anything else raises :class:`MalformedAnswerError`. Datetimes are naive register
wall-clock time; drivers attach the zone.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time
from typing import Protocol, overload

from kktmon.protocol.errors import MalformedAnswerError
from kktmon.protocol.pirit.commands import answer_fields, command_name
from kktmon.protocol.pirit.frame import Reply

NO_DATE = frozenset({"", "000000", "010100", "00000000"})
MAX_DIGITS = 20  # far above any counter; keeps int() away from huge digit strings

_DIGITS = re.compile(r"[0-9]+")


def to_int(value: str, what: str) -> int:
    text = value.strip()
    if not text:
        return 0
    if len(text) > MAX_DIGITS or not _DIGITS.fullmatch(text):
        raise MalformedAnswerError(f"{what}: {value!r} is not a decimal integer")
    return int(text)


def to_date(value: str, what: str) -> date | None:
    text = value.strip()
    if text in NO_DATE:
        return None
    if len(text) not in (6, 8) or not _DIGITS.fullmatch(text):
        raise MalformedAnswerError(f"{what}: {value!r} is not ddmmyy")
    year = int(text[4:]) + (2000 if len(text) == 6 else 0)
    try:
        return date(year, int(text[2:4]), int(text[:2]))
    except ValueError as exc:
        raise MalformedAnswerError(f"{what}: impossible date {value!r}") from exc


def to_time(value: str, what: str) -> time:
    text = value.strip() or "000000"
    if len(text) != 6 or not _DIGITS.fullmatch(text):
        raise MalformedAnswerError(f"{what}: {value!r} is not hhmmss")
    try:
        return time(int(text[:2]), int(text[2:4]), int(text[4:]))
    except ValueError as exc:
        raise MalformedAnswerError(f"{what}: impossible time {value!r}") from exc


class Values:
    """Cursor over the values of a checked reply; raises typed errors when short."""

    def __init__(self, values: tuple[str, ...], what: str) -> None:
        self.values = values
        self.pos = 0
        self.what = what

    @classmethod
    def of(cls, reply: Reply, command: int, sub: int | None = None) -> Values:
        """Check the reply (:func:`answer_fields`) and open a cursor after the echo."""
        return cls(answer_fields(reply, command, sub), command_name(command, sub))

    def has(self, count: int = 1) -> bool:
        return self.pos + count <= len(self.values)

    def raw(self) -> str:
        if not self.has():
            raise MalformedAnswerError(
                f"{self.what}: answer has {len(self.values)} values, needs {self.pos + 1}"
            )
        self.pos += 1
        return self.values[self.pos - 1]

    def text(self) -> str:
        """A string value, padding spaces trimmed (quirk 13)."""
        return self.raw().strip()

    def integer(self) -> int:
        return to_int(self.raw(), self.what)

    def opt_integer(self) -> int | None:
        """An integer that older firmware leaves out (quirk 10): None when absent."""
        return self.integer() if self.has() else None

    def day(self) -> date | None:
        return to_date(self.raw(), self.what)

    def moment(self) -> datetime | None:
        """A Date value followed by a Time value; None for a "no date" placeholder."""
        day, at = self.day(), to_time(self.raw(), self.what)
        return None if day is None else datetime.combine(day, at)


class _HasRaw(Protocol):
    @property
    def raw(self) -> int: ...


class Bit:
    """One bit of a record's ``raw`` mask as a read-only bool attribute.

    ``shift_open = Bit(2)`` in a record with ``raw: int`` reads ``raw`` bit 2.
    """

    def __init__(self, bit: int) -> None:
        self.bit = bit

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> Bit: ...

    @overload
    def __get__(self, obj: _HasRaw, owner: type | None = None) -> bool: ...

    def __get__(self, obj: _HasRaw | None, owner: type | None = None) -> bool | Bit:
        return self if obj is None else bool(obj.raw >> self.bit & 1)
