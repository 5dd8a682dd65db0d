"""A fake ATOL driver server ("Веб-сервер ККТ" G1/G2, "АТОЛ. Web Requests" G3).

Serves one register (``device_id``) from a :class:`DeviceState`: the queue API with a
FIFO of jobs and real uuid bookkeeping (201, 409 on a reused uuid, 404 for an unknown
one, DELETE of a waiting job, 409 for a started one), the G3 synchronous operations and
``serverInfo`` (no auth), ``GET``/``PUT /api/v2/settings`` (G2/G3) and the server's web
page at ``GET /`` (no auth). Basic auth is mandatory on G3 and cannot be switched off;
on G1/G2 it is optional and off by default (``auth=True`` turns it on); 401 bodies as in
example E5. A job spends ``polls_to_ready`` result polls in ``inProgress`` before it is
``ready``; its results are built from the state when it becomes ready. A task type the
DTO10 driver does not know is accepted with the job and then fails as the driver fails
it: ``error`` with code 501, the job's later tasks ``interrupted``.

Server faults are attributes a test may change while the server runs:
``blocked_reason`` (queue blocked: ``connectionError``/``fnError``/``paperError``),
``pos_jobs_ahead`` (the cashier's jobs ahead of ours: our job waits), ``operations_busy``
(408), ``not_activated`` (403), ``task_error`` (task type -> driver error code; later
tasks of the job are ``interrupted``), ``malformed`` (next n answers are not JSON),
``operation_stall_s`` (how long a stalled operation holds before its 408),
``no_operations`` (a G3 without ``/operations``), ``lost_add_answers`` (the next n job
adds are queued but their answer is lost: the client's re-send meets a 409),
``driver_lacks`` (task types the server's DTO10 driver is too old to know),
``odd_fields`` (task type -> dotted path in its answer -> a value in another type than
the documented one, as third-party servers and mocks write them; the G3 operation of
the same read gets it too). The
register's own faults map as: ``silent`` -> jobs never start and operations stall then
408; ``slow_answer_s`` -> every answer stalls; ``cut_answers`` -> a truncated body;
``wrong_lrc_answers`` -> a body that is not JSON; ``busy_printing`` -> a POS job ahead.

A real server would execute any task it is given, so the fake does too (a known task it
has no answer for is ``ready`` without a result), and records a ``violations`` entry for
every call or task type off the read-only allowlist.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kktmon.protocol.atol_web.requests import (
    ALLOWED_TASKS,
    DEVICE_ID,
    MAX_UUID_LENGTH,
    is_allowed_call,
)
from kktmon.simulators.atol_web import answers
from kktmon.simulators.http_server import HttpReply, HttpRequest
from kktmon.simulators.scenario import DeviceState

V2 = "/api/v2"
Handler = Callable[[HttpRequest], HttpReply]
INTERRUPTED = (502, "Выполнение прервано из-за предыдущих ошибок")
CANCELED = (503, "Задание отменено")


@dataclass
class _Job:
    uuid: str
    tasks: list[str]
    polls_left: int
    started: bool = False
    canceled: bool = False
    results: list[dict[str, Any]] | None = field(default=None)


class AtolWebApp:
    """One ATOL driver server of ``generation`` 1, 2 or 3 serving one register."""

    adapter = "atol-web"

    def __init__(
        self,
        state: DeviceState,
        *,
        generation: int = 3,
        auth: bool | None = None,
        user: str = "kktmon",
        password: str = "Kktmon-Secret1",
        device_id: str = "KKT_1",
    ) -> None:
        if generation not in (1, 2, 3) or not DEVICE_ID.match(device_id):
            raise ValueError(f"bad fake server setup: generation {generation}, id {device_id}")
        if generation == 3 and auth is False:
            raise ValueError("Web Requests (G3) cannot run without authentication")
        self.state = state
        self.generation = generation
        #: Basic auth on G1/G2 (G3 always asks for it): off unless set up, as installed.
        self.auth = generation == 3 if auth is None else auth
        self.user, self.password, self.device_id = user, password, device_id
        self.settings: dict[str, Any] = dict(answers.GLOBAL_SETTINGS)
        self.blocked_reason = ""
        self.pos_jobs_ahead = 0
        self.operations_busy = False
        self.not_activated = False
        self.task_error: dict[str, int] = {}
        self.malformed = 0
        self.polls_to_ready = 1
        self.operation_stall_s = 30.0
        self.no_operations = False
        self.lost_add_answers = 0
        self.driver_lacks: set[str] = set()
        self.odd_fields: dict[str, dict[str, Any]] = {}
        self.violations: list[str] = []
        self._jobs: dict[str, _Job] = {}
        self._lock = threading.Lock()

    @property
    def auth_required(self) -> bool:
        """Whether API calls need the account: G3 always, G1/G2 when ``auth`` is on."""
        return self.auth or self.generation == 3

    def url(self, host: str, port: int, *, https: bool = False) -> str:
        scheme = "atol-web+https" if https else "atol-web"
        who = f"{self.user}:{self.password}@" if self.auth_required else ""
        return f"{scheme}://{who}{host}:{port}/?device={self.device_id}"

    # ------------------------------------------------------------------ dispatch

    def handle(self, request: HttpRequest) -> HttpReply:
        if not is_allowed_call(request.method, request.path):
            self._violation(f"call {request.method} {request.path}")
        with self._lock:
            reply = self._route(request)
        return self._faulted(reply)

    def _route(self, request: HttpRequest) -> HttpReply:
        method, path = request.method, request.path
        if self.generation == 3 and (method, path) == ("GET", f"{V2}/serverInfo"):
            return HttpReply(body=answers.server_info())  # the one call without auth
        if method in ("GET", "HEAD") and path == "/":
            return self._home()  # a static page: served without auth, as the servers do
        handler = self._handler(method, path)
        if handler is None:
            return HttpReply(404)  # a path (or method) this generation does not have
        if not self._authorised(request):
            return self._unauthorised()
        return self._refused(request) or handler(request)

    def _handler(self, method: str, path: str) -> Handler | None:
        tail = path.rsplit("/", 1)[1]
        base = "" if self.generation == 1 else V2
        queue = "/stat/requests" if self.generation == 1 else f"{V2}/getRequestsQueueStatus"
        routes: dict[tuple[str, str], Handler] = {
            ("GET", queue): lambda _r: HttpReply(body=self._queue_status()),
            ("POST", f"{base}/requests"): self._add,
            ("GET", f"{base}/requests/{tail}"): lambda _r: self._result(tail),
            ("DELETE", f"{base}/requests/{tail}"): lambda _r: self._delete(tail),
        }
        if self.generation == 3 and not self.no_operations:
            routes[("POST", f"{V2}/operations/{tail}")] = lambda _r: self._operation(tail)
        if self.generation == 3:
            routes[("GET", f"{V2}/devices/{tail}")] = lambda _r: HttpReply(body=self._device())
        if self.generation > 1:
            routes[("GET", f"{V2}/settings")] = lambda _r: HttpReply(body=dict(self.settings))
            routes[("PUT", f"{V2}/settings")] = self._put_settings
        return routes.get((method, path))

    def _authorised(self, request: HttpRequest) -> bool:
        return not self.auth_required or request.credentials == (self.user, self.password)

    def _unauthorised(self) -> HttpReply:
        # E5: the vendor's own 401 example is a bare error object.
        return self._error(401, 505, "unauthorized", bare=self.generation == 3)

    def _refused(self, request: HttpRequest) -> HttpReply | None:
        wanted = request.query.get("deviceID", self.device_id)
        if self.generation > 1 and wanted != self.device_id:
            return self._error(404, 505, f"Устройство [{wanted}] не найдено")
        if self.not_activated and self.generation > 1:
            return self._error(403, 505, f"Устройство [{wanted}] не активировано")
        return None

    def _error(self, status: int, code: int, text: str, *, bare: bool = False) -> HttpReply:
        if self.generation == 1:
            return HttpReply(status, body={"errorCode": code, "errorDescription": text})
        inner = {"code": code, "description": text}
        return HttpReply(status, body=inner if bare else {"error": inner})

    def _faulted(self, reply: HttpReply) -> HttpReply:
        faults = self.state.faults
        delay = max(reply.delay_s, faults.slow_answer_s)
        raw = reply.raw
        if self._take_malformed() or faults.take("wrong_lrc_answers"):
            raw = b"<html>Internal error</html>"
        elif faults.take("cut_answers"):
            raw = reply.payload()[: max(len(reply.payload()) // 2, 1)]
        return HttpReply(reply.status, reply.body, raw, delay, reply.drop, reply.headers)

    def _take_malformed(self) -> bool:
        with self._lock:
            if self.malformed <= 0:
                return False
            self.malformed -= 1
            return True

    def _violation(self, what: str) -> None:
        with self._lock:
            self.violations.append(what)

    # ------------------------------------------------------------------ queue

    def _held(self) -> bool:
        faults = self.state.faults
        return bool(
            self.blocked_reason or self.pos_jobs_ahead or faults.busy_printing or faults.silent
        )

    def _queue_status(self) -> dict[str, Any]:
        unfinished = sum(1 for job in self._jobs.values() if job.results is None)
        number = unfinished + self.pos_jobs_ahead + int(self.state.faults.busy_printing)
        if self.generation == 1:
            return {"is_blocked": bool(self.blocked_reason), "number": number}
        ready = len(self._jobs) - unfinished
        blocked = {"isBlocked": bool(self.blocked_reason), "blockedUUID": ""}
        blocked["blockedUUID"] = "pos-1" if self.blocked_reason else ""
        return {"number": number, "canceled": 0, "ready": ready, **blocked} | (
            {"blockReason": self.blocked_reason} if self.generation == 3 else {}
        )

    def _add(self, request: HttpRequest) -> HttpReply:
        try:
            body = request.json()
            uuid, tasks = str(body["uuid"]), [str(task["type"]) for task in body["request"]]
        except (ValueError, KeyError, TypeError):
            return self._error(400, 501, "Ошибка парсинга запроса")
        if not uuid or len(uuid) > MAX_UUID_LENGTH or not tasks:
            return self._error(400, 501, "Ошибка парсинга запроса")
        for name in tasks:
            if name not in ALLOWED_TASKS:
                self.violations.append(f"task {name}")
        if uuid in self._jobs:
            text = f"Не удалось добавить задание с UUID [{uuid}], задание с таким UUID уже есть"
            return self._error(409, 505, text)
        self._jobs[uuid] = _Job(uuid, tasks, self.polls_to_ready)
        number = len(self._jobs) + self.pos_jobs_ahead
        blocked = bool(self.blocked_reason)
        added = {"number": number, "uuid": uuid, "isBlocked": blocked, "blockedUUID": ""}
        if self.generation == 3:
            added["blockReason"] = self.blocked_reason
        if self.lost_add_answers > 0:  # queued, but the answer never reaches the client
            self.lost_add_answers -= 1
            return HttpReply(201, body=added, drop=True)
        return HttpReply(201, body=added)

    def _result(self, uuid: str) -> HttpReply:
        job = self._jobs.get(uuid)
        if job is None:
            return self._error(404, 505, f"Задание с UUID [{uuid}] для устройства [1] не найдено")
        if job.results is None and not job.canceled and not self._held():
            job.started = True
            if job.polls_left <= 0:
                job.results = self._run(job.tasks)
            job.polls_left -= 1
        return HttpReply(body={"results": job.results or self._pending(job)})

    def _pending(self, job: _Job) -> list[dict[str, Any]]:
        if job.canceled:
            return [self._entry("canceled", *CANCELED) for _ in job.tasks]
        first = "inProgress" if job.started else "wait"
        return [self._entry(first if i == 0 else "wait") for i in range(len(job.tasks))]

    def _delete(self, uuid: str) -> HttpReply:
        job = self._jobs.get(uuid)
        if job is None:
            self.violations.append(f"DELETE of a job nobody created here: {uuid}")
            return self._error(404, 505, f"Задание с UUID [{uuid}] не найдено")
        if job.started or job.results is not None:
            return self._error(409, 505, f"Задание с UUID [{uuid}] уже выполняется")
        job.canceled = True
        return HttpReply(200, body={})

    def _run(self, tasks: list[str]) -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = []
        failed = False
        for name in tasks:
            code = self.task_error.get(name)
            if failed:
                results.append(self._entry("interrupted", *INTERRUPTED))
            elif code is not None:
                failed = True
                results.append(self._entry("error", code, f"Ошибка драйвера {code}"))
            elif self._knows(name):
                builder = answers.TASKS.get(name)
                result = self._odd(name, builder(self.state, False)) if builder else {}
                results.append(self._entry("ready") | {"result": result})
            else:  # not a DTO10 task: the driver refuses it, the job stops there
                failed = True
                results.append(self._entry("error", *answers.UNKNOWN_TASK))
        return results

    def _knows(self, task: str) -> bool:
        known = task in answers.TASKS or task in answers.OTHER_KNOWN_TASKS
        return known and task not in self.driver_lacks

    def _entry(self, status: str, code: int = 0, text: str = "Ошибок нет") -> dict[str, Any]:
        if self.generation == 1:
            return {"status": status, "errorCode": code, "errorDescription": text}
        return {"status": status, "error": {"code": code, "description": text}}

    # ------------------------------------------------------------------ G3 only

    def _operation(self, name: str) -> HttpReply:
        builder = answers.OPERATIONS.get(name)
        if builder is None and name not in answers.OTHER_OPERATIONS:
            return HttpReply(404)  # no such operation (the servlet's plain 404)
        if builder is None:
            return HttpReply(body={})  # executed as a real server would; recorded above
        if self.state.faults.silent:
            stall = self.operation_stall_s
            return HttpReply(
                408, body={"error": {"code": 505, "description": "timeout"}}, delay_s=stall
            )
        if self.operations_busy:
            return self._error(408, 505, "Не удалось захватить драйвер за 30 секунд")
        task = next((t for t, b in answers.TASKS.items() if b is builder), "")
        code = self.task_error.get(task)
        if code is not None:
            return self._error(420, code, f"Ошибка драйвера {code}")
        return HttpReply(body=self._odd(task, builder(self.state, True)))

    def _odd(self, task: str, answer: dict[str, Any]) -> dict[str, Any]:
        """``answer`` with the odd values set for ``task`` (paths must exist but the last)."""
        for path, value in self.odd_fields.get(task, {}).items():
            *parents, key = path.split(".")
            node = answer
            for step in parents:
                node = node[step]
            node[key] = value
        return answer

    def _device(self) -> dict[str, Any]:
        return {
            "id": self.device_id,
            "name": self.state.model,
            "isActive": not self.not_activated,
            "isDefault": True,
            "hasLicense": True,
        }

    # ------------------------------------------------------------------ server pages

    def _home(self) -> HttpReply:
        headers = {"Content-Type": "text/html; charset=utf-8"}
        return HttpReply(raw=answers.home_page(self.generation), headers=headers)

    def _put_settings(self, request: HttpRequest) -> HttpReply:
        """``PUT /api/v2/settings``: known keys of the right type change, others are kept."""
        try:
            body = request.json()
        except ValueError:
            return self._error(400, 501, "Ошибка парсинга запроса")
        if not isinstance(body, dict):
            return self._error(400, 501, "Ошибка парсинга запроса")
        for key, value in body.items():
            default = answers.GLOBAL_SETTINGS.get(key)
            if default is None:
                continue
            if type(value) is not type(default):
                return self._error(400, 505, f"Некорректное значение поля '{key}'")
        self.settings |= {k: v for k, v in body.items() if k in answers.GLOBAL_SETTINGS}
        return HttpReply(200)
