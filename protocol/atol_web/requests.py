"""ATOL driver servers over HTTP ("Веб-сервер ККТ", "АТОЛ. Web Requests"): requests.

Both servers wrap ATOL's driver DTO v10 (ДТО — "драйвер торгового оборудования"): a
client queues a *job* (a JSON array of driver *tasks*) for one register and polls its
result by uuid; the newer server also answers a few reads synchronously
(``/api/v2/operations/query*``). Three generations (atol-dto10.md section 2):

* G1 — "Веб-сервер ККТ" of DTO <= 10.6: ``/requests``, ``/stat/requests``, flat errors;
* G2 — the same server from DTO 10.7: everything under ``/api/v2``, nested errors;
* G3 — "АТОЛ. Web Requests" 1.0.x: G2 plus ``serverInfo`` and ``operations``.

This module is the read-only gate: a task type or HTTP call that is not on the
allowlist raises :class:`CommandNotAllowedError` before any request exists. Some
tasks that sound harmless are not: ``reportOfdExchangeStatus`` prints a fiscal
document. The answer models live in :mod:`kktmon.protocol.atol_web.records`. Pure, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from enum import IntEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from kktmon.protocol.errors import CommandNotAllowedError

VENDOR = "atol-web"
DEVICE_ID = re.compile(r"^[a-zA-Z0-9_\-]{1,16}$")
MAX_UUID_LENGTH = 63  # atol-dto10.md Q9: keep uuids under 64 characters


class Generation(IntEnum):
    G1 = 1
    G2 = 2
    G3 = 3


#: The only task types kktmon ever puts into a job (section 7).
ALLOWED_TASKS: frozenset[str] = frozenset(
    {
        "getDeviceStatus",
        "getDeviceInfo",
        "getShiftStatus",
        "getFnInfo",
        "getFnStatus",
        "ofdExchangeStatus",
        "getRegistrationInfo",
        "ismExchangeStatus",
        "getLicenses",
    }
)

#: The synchronous reads of G3 (section 3.2); other operations are not for a monitor.
ALLOWED_OPERATIONS: frozenset[str] = frozenset(
    {
        "queryDeviceStatus",
        "queryDeviceInfo",
        "queryShiftStatus",
        "queryFnInfo",
        "queryFnStatus",
        "queryOfdExchangeStatus",
        "queryIsmExchangeStatus",
        "queryLicenses",
    }
)

_V2 = "/api/v2"
#: Endpoint name -> generation -> (method, path template); ``{uuid}``/``{id}`` filled in.
_ENDPOINTS: dict[str, dict[Generation, tuple[str, str]]] = {
    "server_info": {Generation.G3: ("GET", f"{_V2}/serverInfo")},
    "device": {Generation.G3: ("GET", f"{_V2}/devices/{{id}}")},
    "queue_status": {
        Generation.G1: ("GET", "/stat/requests"),
        Generation.G2: ("GET", f"{_V2}/getRequestsQueueStatus"),
        Generation.G3: ("GET", f"{_V2}/getRequestsQueueStatus"),
    },
    "add_job": {
        Generation.G1: ("POST", "/requests"),
        Generation.G2: ("POST", f"{_V2}/requests"),
        Generation.G3: ("POST", f"{_V2}/requests"),
    },
    "job_result": {
        Generation.G1: ("GET", "/requests/{uuid}"),
        Generation.G2: ("GET", f"{_V2}/requests/{{uuid}}"),
        Generation.G3: ("GET", f"{_V2}/requests/{{uuid}}"),
    },
    # Only for a job kktmon itself created and that is still waiting (section 3.3).
    # G1's DELETE is inferred from the 1C module, not documented [L].
    "cancel_job": {
        Generation.G1: ("DELETE", "/requests/{uuid}"),
        Generation.G2: ("DELETE", f"{_V2}/requests/{{uuid}}"),
        Generation.G3: ("DELETE", f"{_V2}/requests/{{uuid}}"),
    },
}
for _name in ALLOWED_OPERATIONS:
    _ENDPOINTS[_name] = {Generation.G3: ("POST", f"{_V2}/operations/{_name}")}

#: Calls that change the server or take the register from the POS (section 7).
FORBIDDEN_ENDPOINTS: tuple[tuple[str, str], ...] = (
    ("PUT", f"{_V2}/settings"),
    ("GET", f"{_V2}/settings"),
    ("POST", f"{_V2}/devices"),
    ("PUT", f"{_V2}/devices/KKT_1"),
    ("DELETE", f"{_V2}/devices/KKT_1"),
    ("POST", f"{_V2}/activateDevice"),
    ("POST", f"{_V2}/deactivateDevice"),
    ("POST", f"{_V2}/setDefaultDevice"),
    ("POST", f"{_V2}/operations/queryDeviceSettings"),
    ("POST", f"{_V2}/operations/queryShiftTotals"),
    ("POST", f"{_V2}/operations/queryIncomeTotals"),
    ("POST", f"{_V2}/operations/queryOutcomeTotals"),
    ("POST", f"{_V2}/operations/queryReceiptTotals"),
    ("PUT", f"{_V2}/requests/x"),
)


def endpoint(generation: Generation, name: str, *, uuid: str | None = None) -> tuple[str, str]:
    """``(method, path)`` of an allowed call; anything else is refused before it exists."""
    paths = _ENDPOINTS.get(name)
    if paths is None or generation not in paths:
        raise CommandNotAllowedError(VENDOR, f"{name} (G{int(generation)})")
    method, template = paths[generation]
    if "{uuid}" in template:
        if not uuid or not _safe_id(uuid):
            raise CommandNotAllowedError(VENDOR, f"{name} without a valid uuid")
        return method, template.replace("{uuid}", uuid)
    if "{id}" in template:
        return method, template.replace("{id}", uuid or "default")
    return method, template


def _safe_id(text: str) -> bool:
    return len(text) <= MAX_UUID_LENGTH and re.fullmatch(r"[A-Za-z0-9_\-]+", text) is not None


_ALLOWED_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (method, re.compile("^" + re.sub(r"\\\{\w+\\\}", "[A-Za-z0-9_\\-]+", re.escape(path)) + "$"))
    for paths in _ENDPOINTS.values()
    for method, path in paths.values()
)


def is_allowed_call(method: str, path: str) -> bool:
    """True when ``method path`` is one of the calls a monitor may make (any generation).

    Used by the fake server and the tests to audit every recorded request; whether a
    DELETE names kktmon's own job is for the server side to judge.
    """
    return any(m == method and p.match(path) for m, p in _ALLOWED_PATTERNS)


class Task(BaseModel):
    """One driver task of a job; only allowlisted types can be constructed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: str

    @field_validator("type")
    @classmethod
    def _allowed(cls, value: str) -> str:
        if value not in ALLOWED_TASKS:
            # Not a ValueError: pydantic must not wrap it, the gate is a typed error.
            raise CommandNotAllowedError(VENDOR, value)
        return value


class Job(BaseModel):
    """The body of ``POST /requests``: a fresh uuid and an array of allowed tasks."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    uuid: str = Field(min_length=1, max_length=MAX_UUID_LENGTH)
    request: tuple[Task, ...] = Field(min_length=1)

    def body(self) -> dict[str, Any]:
        return {"uuid": self.uuid, "request": [{"type": task.type} for task in self.request]}


def task(name: str) -> Task:
    """A task of type ``name``; raises :class:`CommandNotAllowedError` when not allowed."""
    if name not in ALLOWED_TASKS:
        raise CommandNotAllowedError(VENDOR, name)
    return Task(type=name)


def job(uuid: str, tasks: Sequence[str]) -> dict[str, Any]:
    """The JSON body of a job; every task type is checked before the body exists."""
    checked = tuple(task(name) for name in tasks)
    if not checked:
        raise CommandNotAllowedError(VENDOR, "an empty job")
    return Job(uuid=uuid, request=checked).body()


def operation_for(task_type: str) -> str:
    """The G3 operation that answers the same read as ``task_type`` (``getFnInfo``...)."""
    name = "query" + task_type.removeprefix("get")[:1].upper() + task_type.removeprefix("get")[1:]
    if name not in ALLOWED_OPERATIONS:
        raise CommandNotAllowedError(VENDOR, name)
    return name
