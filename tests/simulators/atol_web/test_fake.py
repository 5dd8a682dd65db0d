"""The fake ATOL driver server's own behaviour, spoken to with a plain HTTP client."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from kktmon.simulators.atol_web.app import AtolWebApp
from kktmon.simulators.http_server import HttpFakeServer
from kktmon.simulators.scenario import default_state

AUTH = ("kktmon", "Kktmon-Secret1")
Q = {"deviceID": "KKT_1"}


@pytest.fixture
def app() -> AtolWebApp:
    return AtolWebApp(default_state())


@pytest.fixture
def client(app: AtolWebApp) -> Iterator[httpx.Client]:
    with HttpFakeServer(app) as server:
        host, port = server.address
        with httpx.Client(base_url=f"http://{host}:{port}", auth=AUTH, timeout=5) as http:
            yield http


def add(client: httpx.Client, uuid: str, *tasks: str, base: str = "/api/v2") -> httpx.Response:
    body = {"uuid": uuid, "request": [{"type": name} for name in tasks or ["getDeviceInfo"]]}
    return client.post(f"{base}/requests", params=Q, json=body)


def statuses(client: httpx.Client, uuid: str, base: str = "/api/v2") -> list[str]:
    answer = client.get(f"{base}/requests/{uuid}", params=Q)
    assert answer.status_code == 200
    return [item["status"] for item in answer.json()["results"]]


def test_url_carries_credentials_and_device(app: AtolWebApp) -> None:
    assert app.url("127.0.0.1", 1) == "atol-web://kktmon:Kktmon-Secret1@127.0.0.1:1/?device=KKT_1"
    assert app.url("h", 2, https=True).startswith("atol-web+https://")


def test_g3_server_info_needs_no_auth_but_the_queue_does(client: httpx.Client) -> None:
    info = client.get("/api/v2/serverInfo", auth=None)
    assert info.status_code == 200 and info.json()["serverVersion"] == "1.0.4.0"
    assert datetime.fromisoformat(info.json()["currentDateTime"]).tzinfo is not None
    refused = client.get("/api/v2/getRequestsQueueStatus", params=Q, auth=None)
    assert refused.status_code == 401
    assert refused.json() == {"code": 505, "description": "unauthorized"}  # E5: bare
    wrong = client.get("/api/v2/getRequestsQueueStatus", params=Q, auth=("kktmon", "nope"))
    assert wrong.status_code == 401


@pytest.mark.parametrize(
    ("generation", "body"),
    [
        (2, {"error": {"code": 505, "description": "unauthorized"}}),
        (1, {"errorCode": 505, "errorDescription": "unauthorized"}),
    ],
)
def test_older_generations_error_shapes(generation: int, body: dict[str, Any]) -> None:
    app = AtolWebApp(default_state(), generation=generation, auth=True)
    with HttpFakeServer(app) as server:
        host, port = server.address
        with httpx.Client(base_url=f"http://{host}:{port}") as http:
            queue = "/stat/requests" if generation == 1 else "/api/v2/getRequestsQueueStatus"
            assert http.get(queue).json() == body
            assert http.get("/api/v2/serverInfo").status_code == 404
            assert http.post("/api/v2/operations/queryFnInfo").status_code == 404


def test_job_lifecycle_and_uuid_bookkeeping(app: AtolWebApp, client: httpx.Client) -> None:
    app.polls_to_ready = 2
    added = add(client, "u1", "getDeviceInfo", "getFnInfo")
    assert added.status_code == 201
    assert added.json() == {
        "number": 1,
        "uuid": "u1",
        "isBlocked": False,
        "blockedUUID": "",
        "blockReason": "",
    }
    again = add(client, "u1")
    assert again.status_code == 409
    assert "задание с таким UUID уже есть" in again.json()["error"]["description"]
    assert statuses(client, "u1") == ["inProgress", "wait"]
    assert statuses(client, "u1") == ["inProgress", "wait"]
    assert statuses(client, "u1") == ["ready", "ready"]
    result = client.get("/api/v2/requests/u1", params=Q).json()["results"]
    assert result[0]["result"]["deviceInfo"]["serial"] == app.state.serial[-14:]
    assert result[1]["result"]["fnInfo"]["serial"] == app.state.fn.serial
    assert result[1]["error"] == {"code": 0, "description": "Ошибок нет"}
    missing = client.get("/api/v2/requests/nope", params=Q)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == 505
    assert app.violations == []


def test_delete_only_a_waiting_job(app: AtolWebApp, client: httpx.Client) -> None:
    app.pos_jobs_ahead = 1
    add(client, "waiting")
    assert statuses(client, "waiting") == ["wait"]
    assert client.delete("/api/v2/requests/waiting", params=Q).status_code == 200
    assert statuses(client, "waiting") == ["canceled"]
    app.pos_jobs_ahead = 0
    app.polls_to_ready = 5
    add(client, "running")
    assert statuses(client, "running") == ["inProgress"]
    assert client.delete("/api/v2/requests/running", params=Q).status_code == 409
    assert client.delete("/api/v2/requests/not-ours", params=Q).status_code == 404
    assert app.violations == ["DELETE of a job nobody created here: not-ours"]


def test_task_error_interrupts_the_rest(app: AtolWebApp, client: httpx.Client) -> None:
    app.polls_to_ready = 0
    app.task_error = {"getShiftStatus": 3}
    add(client, "e", "getDeviceInfo", "getShiftStatus", "getFnInfo")
    results = client.get("/api/v2/requests/e", params=Q).json()["results"]
    assert [item["status"] for item in results] == ["ready", "error", "interrupted"]
    assert results[1]["error"]["code"] == 3 and results[2]["error"]["code"] == 502
    operation = client.post("/api/v2/operations/queryShiftStatus", params=Q)
    assert operation.status_code == 420 and operation.json()["error"]["code"] == 3


def test_forbidden_tasks_and_calls_are_recorded(app: AtolWebApp, client: httpx.Client) -> None:
    assert add(client, "x", "reportOfdExchangeStatus").status_code == 201  # a real server would
    client.put("/api/v2/settings", json={})
    client.post("/api/v2/deactivateDevice", params=Q)
    client.post("/api/v2/operations/queryShiftTotals", params=Q)
    assert app.violations == [
        "task reportOfdExchangeStatus",
        "call PUT /api/v2/settings",
        "call POST /api/v2/deactivateDevice",
        "call POST /api/v2/operations/queryShiftTotals",
    ]


def test_queue_block_device_and_activation(app: AtolWebApp, client: httpx.Client) -> None:
    app.blocked_reason = "paperError"
    queue = client.get("/api/v2/getRequestsQueueStatus", params=Q).json()
    assert (queue["isBlocked"], queue["blockReason"]) == (True, "paperError")
    assert add(client, "b").json()["isBlocked"] is True
    assert statuses(client, "b") == ["wait"]
    other = client.get("/api/v2/getRequestsQueueStatus", params={"deviceID": "KKT_2"})
    assert other.status_code == 404
    app.not_activated = True
    assert client.post("/api/v2/operations/queryFnInfo", params=Q).status_code == 403
    app.not_activated, app.operations_busy = False, True
    assert client.post("/api/v2/operations/queryFnInfo", params=Q).status_code == 408


def test_g1_paths_and_flat_results() -> None:
    app = AtolWebApp(default_state(), generation=1)
    app.polls_to_ready = 0
    with HttpFakeServer(app) as server:
        host, port = server.address
        with httpx.Client(base_url=f"http://{host}:{port}") as http:
            assert http.get("/stat/requests").json()["is_blocked"] is False
            assert add(http, "g1", "getDeviceStatus", base="").status_code == 201
            item = http.get("/requests/g1").json()["results"][0]
            assert (item["status"], item["errorCode"]) == ("ready", 0)
            assert "deviceStatus" in item["result"]
            assert http.get("/api/v2/getRequestsQueueStatus").status_code == 404


def test_operation_shapes_come_from_the_state(app: AtolWebApp, client: httpx.Client) -> None:
    state = app.state
    info = client.post("/api/v2/operations/queryDeviceInfo", params=Q).json()["deviceInfo"]
    assert (info["appVersion"], info["firmwareVersion"]) == (state.firmware, "7196")
    fn = client.post("/api/v2/operations/queryFnInfo", params=Q).json()["fnInfo"]
    assert fn["validity"]["registrationsRemaining"] == state.fn.registrations_left
    assert datetime.fromisoformat(fn["validity"]["validityDate"]).date() == state.fn.valid_until
    shift = client.post("/api/v2/operations/queryShiftStatus", params=Q).json()["shiftStatus"]
    assert shift["state"] == "opened" and "expiredAt" in shift
    ofd = client.post("/api/v2/operations/queryOfdExchangeStatus", params=Q).json()
    assert ofd["ofdExchangeStatus"]["notSentCount"] == 0
    state.printer.paper = "out"
    status = client.post("/api/v2/operations/queryDeviceStatus", params=Q).json()
    assert status["deviceStatus"]["paperPresent"] is False  # derived at answer time


def test_broken_bodies(app: AtolWebApp, client: httpx.Client) -> None:
    app.malformed = 1
    broken = client.get("/api/v2/serverInfo")
    assert broken.status_code == 200
    with pytest.raises(ValueError):
        broken.json()
    app.state.faults.cut_answers = 1
    with pytest.raises(ValueError):
        client.get("/api/v2/serverInfo").json()
    assert client.get("/api/v2/serverInfo").json()["os"] == "linux"


# ------------------------------------------------------------------ as the real servers are


def _plain(server: HttpFakeServer[AtolWebApp]) -> httpx.Client:
    host, port = server.address
    return httpx.Client(base_url=f"http://{host}:{port}", timeout=5)


@pytest.mark.parametrize("generation", [1, 2])
def test_dto10_web_server_runs_without_auth_by_default(generation: int) -> None:
    app = AtolWebApp(default_state(), generation=generation)
    queue = "/stat/requests" if generation == 1 else "/api/v2/getRequestsQueueStatus"
    with HttpFakeServer(app) as server, _plain(server) as http:
        assert http.get(queue).status_code == 200
        assert "@" not in server.url  # nothing to log in with
        app.auth = True  # a shop that set a login
        assert http.get(queue).status_code == 401
        assert http.get(queue, auth=AUTH).status_code == 200
        assert "kktmon:Kktmon-Secret1@" in server.url


def test_web_requests_cannot_switch_auth_off() -> None:
    with pytest.raises(ValueError, match="authentication"):
        AtolWebApp(default_state(), generation=3, auth=False)


@pytest.mark.parametrize("generation", [2, 3])
def test_settings_answer_the_global_settings(generation: int) -> None:
    app = AtolWebApp(default_state(), generation=generation, auth=True)
    with HttpFakeServer(app) as server, _plain(server) as http:
        assert http.get("/api/v2/settings").status_code == 401
        settings = http.get("/api/v2/settings", auth=AUTH)
        assert settings.status_code == 200
        assert settings.json() == {
            "scriptsPath": "",
            "invertCashDrawerStatus": False,
            "additionalHeaderLines": "",
            "additionalFooterLines": "",
            "blockQueueOnPrintErrors": False,
            "deleteRequestsAfter": 43200,
            "validateRequestsOnAdd": False,
        }
        changed = http.put("/api/v2/settings", json={"deleteRequestsAfter": 60}, auth=AUTH)
        assert changed.status_code == 200
        assert http.get("/api/v2/settings", auth=AUTH).json()["deleteRequestsAfter"] == 60
        wrong = http.put("/api/v2/settings", json={"deleteRequestsAfter": "x"}, auth=AUTH)
        assert wrong.status_code == 400 and wrong.json()["error"]["code"] == 505
    # A monitor never asks: each call is on the record.
    asked = ["GET", "GET", "PUT", "GET", "PUT"]
    assert app.violations == [f"call {method} /api/v2/settings" for method in asked]


def test_g1_has_no_settings_api() -> None:
    with HttpFakeServer(AtolWebApp(default_state(), generation=1)) as server, _plain(server) as h:
        assert h.get("/api/v2/settings").status_code == 404


@pytest.mark.parametrize(
    ("generation", "title"),
    [(1, "ДТО WEB-сервер"), (2, "ДТО WEB-сервер"), (3, "АТОЛ. Web Requests")],
)
def test_home_page_answers_without_auth(generation: int, title: str) -> None:
    app = AtolWebApp(default_state(), generation=generation, auth=True)
    with HttpFakeServer(app) as server, _plain(server) as http:
        page = http.get("/")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert f"<title>{title}</title>" in page.text
        assert http.head("/").status_code == 200


@pytest.mark.parametrize("generation", [1, 2, 3])
def test_unknown_task_type_fails_in_the_driver(generation: int) -> None:
    app = AtolWebApp(default_state(), generation=generation)
    app.polls_to_ready = 0
    base = "" if generation == 1 else "/api/v2"
    with HttpFakeServer(app) as server, _plain(server) as http:
        body = {
            "uuid": "u",
            "request": [{"type": t} for t in ("getDeviceInfo", "noSuch", "getFnInfo")],
        }
        # A login sent to a server without one is ignored (G1/G2), and G3 wants it.
        assert http.post(f"{base}/requests", json=body, auth=AUTH).status_code == 201
        results = http.get(f"{base}/requests/u", auth=AUTH).json()["results"]
    assert [item["status"] for item in results] == ["ready", "error", "interrupted"]
    codes = [item["errorCode"] if generation == 1 else item["error"]["code"] for item in results]
    assert codes == [0, 501, 502]
    assert "result" not in results[1]  # nothing invented for a task nobody knows
    assert app.violations == ["task noSuch"]


def test_known_tasks_still_run_and_unknown_operations_are_404(
    app: AtolWebApp, client: httpx.Client
) -> None:
    app.polls_to_ready = 0
    add(client, "k", "reportX")
    assert statuses(client, "k") == ["ready"]  # a real server would print it
    assert client.post("/api/v2/operations/queryNothing", params=Q).status_code == 404
    assert client.post("/api/v2/operations/queryShiftTotals", params=Q).status_code == 200
