"""The task buffer of an ATOL register on the FE link (atol.md sections 3.2-3.3, quirk Q5).

Tasks run one after the other against the monotonic clock: a task waits ``QUEUED``
(``A1``) while the printer is busy, runs (``A2``) for ``slow_answer_s``, then is
``DONE`` (``A3``/``A4``) and stays in the buffer until the host acknowledges it. A task
that fails without the IgnoreError flag stops every task queued behind it (``A5``). A
``deferred`` task keeps its result out of the reply to ``C1`` even when it finished at
once: the host learns it from the ``F0`` packet (``A6``/``A7``) or from ``C3``.
:mod:`kktmon.simulators.atol.link` turns these states into packets.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from kktmon.protocol.atol.frame import IGNORE_ERROR, NEED_RESULT, TaskStatus, encode_task_reply
from kktmon.simulators.atol.answers import Answer
from kktmon.simulators.scenario import Faults

CAPACITY = 16  # tasks the buffer holds
BUSY_DELAY_S = 0.1  # a task waits this long behind the document being printed


class Phase(enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    STOPPED = "stopped"


@dataclass
class Task:
    tid: int
    flags: int
    body: bytes
    added_at: float
    phase: Phase = Phase.QUEUED
    started_at: float = 0.0
    answer: Answer | None = None
    stale: bool = False  # left by another connection (pending_answer)
    deferred: bool = False  # its result leaves only as an F0 packet, never in C1's reply

    @property
    def finished(self) -> bool:
        return self.phase in (Phase.DONE, Phase.STOPPED)

    @property
    def carries_answer(self) -> bool:
        """Its status reply holds the command answer (which faults may spoil)."""
        return self.phase is Phase.DONE and bool(self.flags & NEED_RESULT)

    def reply(self) -> bytes:
        """DATA of a status reply about this task (to C1 or C3)."""
        if self.phase is Phase.QUEUED:
            return encode_task_reply(TaskStatus.PENDING)
        if self.phase is Phase.RUNNING:
            return encode_task_reply(TaskStatus.IN_PROGRESS)
        if self.phase is Phase.STOPPED or self.answer is None:
            return encode_task_reply(TaskStatus.STOPPED)
        status = TaskStatus.RESULT if self.answer.ok else TaskStatus.ERROR
        return encode_task_reply(status, self.answer.data if self.flags & NEED_RESULT else b"")

    def added_reply(self) -> bytes:
        """DATA of the reply to the ``C1`` that added it: a deferred task that is already
        done still says ``A2`` there; its result follows as :meth:`async_result`."""
        if self.deferred and self.phase is Phase.DONE:
            return encode_task_reply(TaskStatus.IN_PROGRESS)
        return self.reply()

    @property
    def reports_at_once(self) -> bool:
        """Its result goes out as an F0 packet right behind the reply to ``C1``."""
        return self.deferred and self.phase is Phase.DONE and bool(self.flags & NEED_RESULT)

    def async_result(self) -> bytes:
        ok = self.answer is not None and self.answer.ok
        status = TaskStatus.ASYNC_RESULT if ok else TaskStatus.ASYNC_ERROR
        return encode_task_reply(status, self.answer.data if self.answer else b"", self.tid)


class TaskBuffer:
    """The register's tasks, in the order they were added."""

    def __init__(self) -> None:
        self._tasks: dict[int, Task] = {}

    def __iter__(self) -> Iterator[Task]:
        return iter(list(self._tasks.values()))

    def __contains__(self, tid: int) -> bool:
        return tid in self._tasks

    @property
    def full(self) -> bool:
        return len(self._tasks) >= CAPACITY

    @property
    def busy(self) -> bool:
        """Some task is still queued or running."""
        return any(not task.finished for task in self._tasks.values())

    def get(self, tid: int | None) -> Task | None:
        return None if tid is None else self._tasks.get(tid)

    def add(self, task: Task) -> None:
        self._tasks[task.tid] = task

    def remove(self, tid: int) -> None:
        self._tasks.pop(tid, None)

    def clear(self) -> None:
        self._tasks.clear()

    def advance(self, now: float, faults: Faults, run: Callable[[bytes], Answer]) -> list[Task]:
        """Run the tasks that are due at ``now``; returns those that finished."""
        finished: list[Task] = []
        for task in self:
            if task.finished:
                continue
            if task.phase is Phase.QUEUED:
                if faults.busy_printing and now - task.added_at < BUSY_DELAY_S:
                    break  # the printer is still busy with the document before it
                task.phase, task.started_at = Phase.RUNNING, now
            if now - task.started_at < faults.slow_answer_s:
                break
            task.answer, task.phase = run(task.body), Phase.DONE
            finished.append(task)
            if not task.answer.ok and not task.flags & IGNORE_ERROR:
                self._stop_queued()
        return finished

    def _stop_queued(self) -> None:
        for task in self._tasks.values():  # Q5: a failure stops the tasks queued behind
            if task.phase is Phase.QUEUED:
                task.phase = Phase.STOPPED
