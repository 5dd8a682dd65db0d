"""How the ticketing worker's loops survive what goes wrong: rate-limited logs, outages, retries.

* :class:`Throttle` logs a recurring complaint at most once per interval per key and says
  how many it held back, so a broker down for a day or a poison message redelivered in a
  loop cannot fill the journal;
* :func:`is_outage` tells a store that is unavailable (connection lost, database locked,
  disk full: nothing to do with the message; hold the message and retry) from a store
  that refuses this message (a bug or bad data: isolate it and dead-letter it);
* :class:`Retry` is the pause between attempts: doubling from ``first_s`` to ``max_s``.
"""

from __future__ import annotations

import logging
import sqlite3
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

#: Words of SQLite errors that say the database, not the statement, is the problem.
_SQLITE_OUTAGE = ("locked", "busy", "unable to open", "disk i/o", "disk is full", "readonly")


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc``, or what it was raised from (``raise ... from``), says the store
    is unavailable. Only explicit causes count: an exception that merely happened while
    another was handled says nothing about the store."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _unavailable(current):
            return True
        current = current.__cause__
    return False


def _unavailable(exc: BaseException) -> bool:
    if isinstance(exc, (OSError, TimeoutError, ConnectionError)):
        return True
    if isinstance(exc, sqlite3.OperationalError):
        text = str(exc).lower()
        return any(word in text for word in _SQLITE_OUTAGE)
    psycopg = sys.modules.get("psycopg")  # only a loaded psycopg can have raised
    if psycopg is not None:
        return isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError))
    return False


@dataclass
class Retry:
    """Pauses between attempts: ``first_s``, doubling to at most ``max_s``."""

    first_s: float = 1.0
    max_s: float = 60.0
    failures: int = 0

    def next_s(self) -> float:
        """Count a failure; the pause before the next attempt."""
        self.failures += 1
        return min(self.first_s * 2.0 ** min(self.failures - 1, 32), self.max_s)

    def reset(self) -> None:
        self.failures = 0


@dataclass
class Throttle:
    """At most one log line per ``interval_s`` per key; the rest counted and reported."""

    interval_s: float = 30.0
    _last: dict[str, float] = field(default_factory=dict)
    _held: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def log(
        self,
        logger: logging.Logger,
        level: int,
        key: str,
        message: str,
        *args: object,
        exc_info: bool = False,
    ) -> bool:
        """Log ``message % args`` unless ``key`` was logged less than ``interval_s`` ago."""
        now = time.monotonic()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.interval_s:
                self._held[key] += 1
                return False
            self._last[key] = now
            held = self._held.pop(key, 0)
        if held:
            message += f" ({held} more like this since the last report)"
        logger.log(level, message, *args, exc_info=exc_info)
        return True
