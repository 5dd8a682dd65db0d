"""A fake kkmserver (kkmserver.ru driver server) serving one register from a DeviceState.

Reference kkmserver.md. Run it with :class:`~kktmon.simulators.http_server.HttpFakeServer`.
Serves ``POST /Execute`` and ``/Execute/sync`` (``sync_only``: an old server on which
``/Execute`` is 404), ``HEAD /`` without credentials, HTTP Basic auth on the rest (401
otherwise). Answers are built from ``state`` when they are given, so a test may change
the register while the server runs. Commands are stored by ``IdCommand``: a reused id
answers Status 5 with the stored result, ``GetRezult`` returns it under ``Rezult``.

App faults (plain attributes, settable while serving):

* ``queued_polls`` / ``running``: the next ``GetDataKKT`` answers Status 4 / 1 and
  ``GetRezult`` keeps answering so for that many more calls, then 0 with the data;
* ``device_missing``: Status 3 with the live server's text (example K4);
* ``device_error``: Status 2 with this text;
* ``device_busy`` / ``port_held``: Status 2 saying the device is busy
  (:data:`DEVICE_BUSY_TEXT`) / its port is used by another program
  (:data:`PORT_HELD_TEXT`), as servers answer while the POS holds the register;
* ``bare_data``: ``GetDataKKT`` answers Status 0 with the bare envelope, no ``Info``
  (a public kkmserver emulator does this); ``List`` still describes the register;
* ``info_overrides``: keys replaced in ``GetDataKKT``'s ``Info`` (odd values: a version
  as a number, a serial as a number, a date in another format);
* ``malformed``: the next n answers are not JSON.

Generic ``state.faults``: ``silent`` -> the server waits the request's ``Timeout``, then
Status 4 forever; ``slow_answer_s`` -> the answer stalls (Status 1 when longer than
``Timeout``); ``cut_answers`` / ``wrong_lrc_answers`` -> a truncated / non-JSON body;
``busy_printing`` -> Status 4 for a couple of calls (the POS holds the register).

A command off the read-only allowlist is answered as the real server would (a known
one "succeeds", an unknown one is HTTP 501) and recorded in ``violations``.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from kktmon.protocol.kkmserver import requests as kkm
from kktmon.simulators.http_server import HttpReply, HttpRequest
from kktmon.simulators.kkmserver import answers
from kktmon.simulators.scenario import DeviceState

NOT_FOUND_TEXT = "Устройство (с параметрами NumDevice={n}) не найдено: не настроено или отключено."
#: Status 2 texts of a register held by the POS (the wording of issue 13's reports).
DEVICE_BUSY_TEXT = "Устройство занято. Повторите команду позже."
PORT_HELD_TEXT = "Ошибка открытия порта COM3: порт используется другой программой"
SILENT_STALL_CAP_S = 60.0
BUSY_PRINTING_CALLS = 2
_STATUS_RUN, _STATUS_NOT_RUN = 1, 4


@dataclass
class _Command:
    """One stored command: its request, and how many more GetRezult calls stay pending."""

    request: dict[str, Any]
    status: int  # 0 done, 1 running, 4 queued
    countdown: int  # GetRezult calls still answered with ``status``; -1 = forever
    answer: dict[str, Any] | None = None


class KkmserverApp:
    """The fake server; one register, device number ``num_device``."""

    adapter = "kkmserver"

    def __init__(
        self,
        state: DeviceState,
        *,
        num_device: int = 1,
        user: str = "User",
        password: str = "kkmserver-pw",
        id_type_device: str = "KkmStrihM",
        sync_only: bool = False,
        newer_keys: bool = True,
    ) -> None:
        self.state = state
        self.num_device = num_device
        self.user = user
        self.password = password
        self.id_type_device = id_type_device
        self.sync_only = sync_only
        self.newer_keys = newer_keys
        self.queued_polls = 0
        self.running = 0
        self.device_missing = False
        self.device_error: str | None = None
        self.device_busy = False
        self.port_held = False
        self.bare_data = False
        self.info_overrides: dict[str, Any] = {}
        self.malformed = 0
        self.violations: list[str] = []
        self.commands: dict[str, _Command] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)

    def url(self, host: str, port: int, *, https: bool = False) -> str:
        who = f"{quote(self.user, safe='')}:{quote(self.password, safe='')}"
        scheme = "kkmserver+https" if https else "kkmserver"
        where = f"{host}:{port}/?device={self.num_device}&serial={self.state.serial}"
        return f"{scheme}://{who}@{where}"

    # ------------------------------------------------------------------ HTTP

    def handle(self, request: HttpRequest) -> HttpReply:
        refusal = self._refusal(request)
        if refusal is not None:
            return refusal
        try:
            body = request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return HttpReply(400, raw=b"Bad JSON")
        with self._lock:
            reply = self._command(body)
        return self._damaged(reply)

    def _refusal(self, request: HttpRequest) -> HttpReply | None:
        """What the server says before it reads a command: liveness, 404, 401, 405."""
        if request.method == "HEAD" and request.path == "/":
            return HttpReply(200)
        paths = ("/Execute/sync",) if self.sync_only else ("/Execute", "/Execute/sync")
        if request.path not in paths:
            return HttpReply(404, raw=b"Not Found", headers={"Content-Type": "text/plain"})
        if request.credentials != (self.user, self.password):
            return HttpReply(401, raw=b"", headers={"WWW-Authenticate": 'Basic realm="kkm"'})
        if request.method != "POST":
            return HttpReply(405, raw=b"")
        return None

    def _damaged(self, reply: HttpReply) -> HttpReply:
        faults = self.state.faults
        if self.malformed > 0:
            self.malformed -= 1
            return HttpReply(200, raw=b"<html>Internal error</html>")
        if faults.take("cut_answers"):
            return HttpReply(200, raw=reply.payload()[:20], delay_s=reply.delay_s)
        if faults.take("wrong_lrc_answers"):
            return HttpReply(200, raw=b"\x00\xffnot json", delay_s=reply.delay_s)
        return reply

    def _command(self, body: dict[str, Any]) -> HttpReply:
        name = str(body.get("Command", ""))
        if not kkm.is_allowed(name):
            self.violations.append(name)
            if name in kkm.NEVER_SEND:  # the real server would run it
                return HttpReply(200, self._envelope(body, 0))
            return HttpReply(501, raw=b"Not Implemented", headers={"Content-Type": "text/plain"})
        if body.get("NumDevice") == 0:
            self.violations.append(f"{name} NumDevice=0")
        handlers = {
            kkm.GET_REZULT: self._rezult,
            kkm.GET_DATA_KKT: self._data_kkt,
            kkm.LIST: self._list,
            kkm.GET_SERVER_DATA: self._server_data,
            kkm.GET_LINE_LENGTH: self._line_length,
        }
        return handlers[name](body)

    # ------------------------------------------------------------------ commands

    def _envelope(self, body: dict[str, Any], status: int, error: str = "") -> dict[str, Any]:
        ident = body.get("IdCommand") or f"fake-{next(self._ids)}"
        answer = {"Command": body.get("Command", ""), "IdCommand": ident, "Status": status}
        answer.update({"Error": error, "Warning": "", "Message": "", "MessageFrom": "KkmServer"})
        if "NumDevice" in body:
            answer["NumDevice"] = body["NumDevice"]
        return answer

    def _missing(self, body: dict[str, Any]) -> dict[str, Any] | None:
        number = body.get("NumDevice")
        serial = body.get("KktNumber") or self.state.serial
        wrong = number not in (0, None, self.num_device) or serial != self.state.serial
        if self.device_missing or wrong:
            text = NOT_FOUND_TEXT.format(n=number if number is not None else 0)
            return self._envelope(body, 3, text)
        return None

    def _data_kkt(self, body: dict[str, Any]) -> HttpReply:
        ident = str(body.get("IdCommand", ""))
        stored = self.commands.get(ident)
        if stored is not None:
            return HttpReply(200, self._stored(stored, earlier=True))
        failed = self._missing(body)
        error = self._device_error_text()
        if failed is None and error is not None:
            failed = self._envelope(body, 2, error)
        if failed is not None:
            return HttpReply(200, failed)
        command = self._queue(body)
        if ident:
            self.commands[ident] = command
        return HttpReply(200, self._stored(command, earlier=False), delay_s=self._stall(body))

    def _device_error_text(self) -> str | None:
        if self.port_held:
            return PORT_HELD_TEXT
        if self.device_busy:
            return DEVICE_BUSY_TEXT
        return self.device_error

    def _queue(self, body: dict[str, Any]) -> _Command:
        faults = self.state.faults
        if faults.silent:
            return _Command(body, _STATUS_NOT_RUN, -1)
        if self.queued_polls > 0:
            command = _Command(body, _STATUS_NOT_RUN, self.queued_polls)
            self.queued_polls = 0
            return command
        if self.running > 0:
            command = _Command(body, _STATUS_RUN, self.running)
            self.running = 0
            return command
        if faults.busy_printing:
            return _Command(body, _STATUS_NOT_RUN, BUSY_PRINTING_CALLS)
        if faults.slow_answer_s > _timeout(body):
            return _Command(body, _STATUS_RUN, 1)
        return _Command(body, 0, 0)

    def _stall(self, body: dict[str, Any]) -> float:
        """The server holds the request until the register answers or Timeout runs out."""
        if self.state.faults.silent:
            return min(_timeout(body), SILENT_STALL_CAP_S)
        return min(self.state.faults.slow_answer_s, _timeout(body))

    def _stored(self, command: _Command, *, earlier: bool) -> dict[str, Any]:
        if command.status != 0:
            return self._envelope(command.request, command.status)
        if command.answer is None:  # the register answered now: today's facts
            command.answer = {**self._envelope(command.request, 0), **self._device_data()}
        return {**command.answer, "Status": 5 if earlier else 0}

    def _rezult(self, body: dict[str, Any]) -> HttpReply:
        ident = str(body.get("IdCommand", ""))
        command = self.commands.get(ident)
        if command is None:
            return HttpReply(
                200, self._envelope(body, 3, f"Команда с IdCommand={ident} не найдена")
            )
        if command.countdown > 0:
            command.countdown -= 1
        elif command.countdown == 0 or not self.state.faults.silent:
            command.status = 0  # -1: queued while the register stays silent
        inner = self._stored(command, earlier=False)
        outer = self._envelope(body, inner["Status"])
        return HttpReply(200, {**outer, "Rezult": inner})

    def _list(self, body: dict[str, Any]) -> HttpReply:
        return HttpReply(200, {**self._envelope(body, 0), "ListUnit": self._units(body)})

    def _line_length(self, body: dict[str, Any]) -> HttpReply:
        missing = self._missing(body)
        if missing is not None:
            return HttpReply(200, missing)
        return HttpReply(200, {**self._envelope(body, 0), "LineLength": 48})

    # ------------------------------------------------------------------ payloads

    def _device_data(self) -> dict[str, Any]:
        if self.bare_data:
            return {}
        data = answers.device_data(self.state, newer_keys=self.newer_keys)
        data["Info"].update(self.info_overrides)
        return data

    def _units(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        unit = answers.list_unit(
            self.state, self.num_device, self.id_type_device, active=not self.device_missing
        )
        wanted = {k: body[k] for k in ("Active", "OnOff", "FN_IsFiscal") if k in body}
        return [unit] if all(unit[k] == v for k, v in wanted.items()) else []

    def _server_data(self, body: dict[str, Any]) -> HttpReply:
        return HttpReply(200, {**self._envelope(body, 0), "ServerData": answers.server_data()})


def _timeout(body: dict[str, Any]) -> float:
    value = body.get("Timeout")
    return float(value) if isinstance(value, int | float) and value > 0 else 60.0
