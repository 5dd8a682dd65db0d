"""One queued job of read-only tasks on an ATOL driver server (atol-dto10.md 3.3).

A job is added with a fresh uuid (a reused one is refused, Q9), polled until every task
is done, and — only if it is still ours to cancel, i.e. waiting — deleted at its
deadline. Our jobs share the register's FIFO with the cashier's receipts (Q2), so a job
that never started is :class:`ServerBusyError` (DEVICE_BUSY), not a fault.
"""

from __future__ import annotations

import itertools
import time
import uuid as uuids
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Protocol

from kktmon.drivers.http import HttpAnswer
from kktmon.protocol.atol_web import records as rec
from kktmon.protocol.atol_web.requests import VENDOR, job
from kktmon.protocol.errors import (
    DeviceError,
    KktmonError,
    MalformedAnswerError,
    ServerBusyError,
    ServerRefusedError,
)

JOB_SHARE = 0.75  # of the poll's remaining time, leaving room to cancel and re-read
POLL_INTERVAL_S = 0.3
FIRST_LOOK_S = 0.1


class EndpointCall(Protocol):
    """Call one allowlisted endpoint by name (``add_job``, ``job_result``, ``cancel_job``)."""

    def __call__(self, name: str, *, uuid: str | None = ..., body: Any = ...) -> HttpAnswer: ...


#: Task type and its ready result -> the fact (the driver's field-tolerant reading).
FactParser = Callable[[str, Any], Any]


class QueuedJob:
    """Run one job through ``call``; ``ready_at`` is the host time its result arrived."""

    def __init__(
        self,
        call: EndpointCall,
        refusal: Callable[[HttpAnswer, str], KktmonError],
        remaining: Callable[[], float],
        clock: Callable[[], datetime],
        where: str,
        *,
        parse: FactParser,
    ) -> None:
        self._call, self._refusal, self._parse = call, refusal, parse
        self._remaining, self._clock, self._where = remaining, clock, where
        self.uuid = str(uuids.uuid4())  # fresh for every job: never reused (Q9)
        self.ready_at: datetime | None = None

    def run(self, tasks: Sequence[str], limit_s: float) -> dict[str, Any]:
        """Task name -> parsed result for the tasks that completed."""
        answer = self._call("add_job", body=job(self.uuid, tasks))
        # 409: our own POST, re-sent after a broken answer, is already queued.
        if answer.status not in (200, 201, 409):
            raise self._refusal(answer, "add job")
        return self._facts(tasks, self._wait(limit_s))

    def _wait(self, limit_s: float) -> rec.JobResults:
        deadline = time.monotonic() + min(limit_s, self._remaining() * JOB_SHARE)
        for attempt in itertools.count(1):
            results = self._fetch()
            if not results.pending:
                self.ready_at = self._clock()
                return results
            left = deadline - time.monotonic()
            if left <= 0:
                return self._abandon(results)
            # A read job usually runs within ~0.1 s: look early, then every 0.3 s.
            time.sleep(min(POLL_INTERVAL_S, FIRST_LOOK_S * attempt, left))
        raise AssertionError("unreachable")  # itertools.count never ends

    def _fetch(self) -> rec.JobResults:
        answer = self._call("job_result", uuid=self.uuid)
        if answer.status == 404 and rec.http_error(answer.body) is not None:
            raise ServerRefusedError("job_not_found", f"{self._where}: job {self.uuid} gone")
        if answer.status != 200:
            raise self._refusal(answer, "job result")
        return rec.JobResults.parse(answer.body)

    def _abandon(self, last: rec.JobResults) -> rec.JobResults:
        """Cancel our job at its deadline; a job that started gets one more look."""
        running = any(item.status == "inProgress" for item in last.results)
        answer = self._call("cancel_job", uuid=self.uuid)
        if answer.status == 409:
            results = self._fetch()
            if not results.pending:
                self.ready_at = self._clock()
                return results
            running = True
        reason = "job_running" if running else "job_waiting"
        raise ServerBusyError(
            reason, f"{self._where}: our job is still {reason[4:]} at its deadline"
        )

    def _facts(self, tasks: Sequence[str], results: rec.JobResults) -> dict[str, Any]:
        if len(results.results) != len(tasks):
            raise MalformedAnswerError(
                f"{self._where}: {len(results.results)} results for {len(tasks)} tasks"
            )
        for task, item in zip(tasks, results.results, strict=True):
            if item.status == "error":
                raise DeviceError(VENDOR, task, item.error.code, item.error.description)
            if item.status in ("canceled", "blocked"):
                raise ServerBusyError(f"job_{item.status}", f"{self._where}: {task}")
        # ``interrupted`` tasks follow an error, so only ready ones are left here.
        return {
            task: self._parse(task, item.result)
            for task, item in zip(tasks, results.results, strict=True)
            if item.status == "ready"
        }
