"""The agent's own health figures, published retained on ``<site>/agent/health``."""

from __future__ import annotations

import os
import resource
import threading
from collections import deque
from datetime import datetime
from statistics import median

from kktmon.agent.outbox import OutboxStats
from kktmon.drivers.base import local_now
from kktmon.protocol.contract import AgentHealth, PublisherStats

POLL_WINDOW = 50  # durations kept per register for the median


def rss_bytes() -> int:
    """Resident set size now (Linux /proc), else the peak the kernel reports."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class AgentFigures:
    """Counters the poll threads update and the health publisher reads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._durations: dict[str, deque[float]] = {}
        self.polls = 0
        self.failed_polls = 0
        self._invalid_fields: dict[str, int] = {}

    def record_poll(self, device: str, duration_ms: float, failed: bool) -> None:
        with self._lock:
            self._durations.setdefault(device, deque(maxlen=POLL_WINDOW)).append(duration_ms)
            self.polls += 1
            self.failed_polls += int(failed)

    def record_invalid_fields(self, device: str, total: int) -> None:
        """The driver's running count of answer fields read as null (since start)."""
        if total:
            with self._lock:
                self._invalid_fields[device] = total

    def snapshot(
        self, started_at: datetime, session: int, outbox: OutboxStats, publisher: PublisherStats
    ) -> AgentHealth:
        with self._lock:
            durations = {k: round(median(v), 1) for k, v in self._durations.items() if v}
            polls, failed = self.polls, self.failed_polls
            invalid = dict(self._invalid_fields)
        cpu = os.times()
        now = local_now()
        return AgentHealth(
            at=now,
            session=session,
            uptime_s=max(round((now - started_at).total_seconds(), 1), 0.0),
            rss_bytes=rss_bytes(),
            cpu_s=round(cpu.user + cpu.system, 2),
            polls=polls,
            failed_polls=failed,
            poll_median_ms=durations,
            invalid_fields=invalid,
            outbox_depth=outbox.depth,
            outbox_oldest_age_s=outbox.oldest_age_s,
            outbox_bytes=outbox.bytes,
            outbox_drops=outbox_losses(outbox),
            publisher=publisher,
        )

    def status_line(self, outbox: OutboxStats) -> str:
        line = f"{self.polls} polls, {self.failed_polls} failed, outbox {outbox.depth} queued"
        return f"{line}, {outbox.rejected} set aside" if outbox.rejected else line


def outbox_losses(outbox: OutboxStats) -> dict[str, int]:
    """``outbox_drops`` of the health payload: the states dropped over the spool's limits
    (by kind), the messages set aside unsent (by reason: ``oversize``, ``refused``,
    ``disconnect``) and those trimmed to fit the broker's limit (``trimmed``)."""
    return {**outbox.drops, **outbox.set_aside, "trimmed": outbox.trimmed}
