"""The fake kkmserver on its own: HTTP, auth, the command store and every fault.

Requests are written by hand (httpx) against ``HttpFakeServer`` on 127.0.0.1, so the
fake is checked independently of the driver that later trusts it.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from kktmon.simulators.http_server import HttpFakeServer, HttpRequest
from kktmon.simulators.kkmserver.app import DEVICE_BUSY_TEXT, PORT_HELD_TEXT, KkmserverApp
from kktmon.simulators.scenario import DeviceState, default_state

PASSWORD = "kkmserver-pw"
AUTH = ("User", PASSWORD)


@pytest.fixture
def state() -> DeviceState:
    return default_state()


@pytest.fixture
def app(state: DeviceState) -> KkmserverApp:
    return KkmserverApp(state)


@pytest.fixture
def server(app: KkmserverApp) -> Iterator[HttpFakeServer[KkmserverApp]]:
    with HttpFakeServer(app) as fake:
        yield fake


@pytest.fixture
def client(server: HttpFakeServer[KkmserverApp]) -> Iterator[httpx.Client]:
    host, port = server.address
    with httpx.Client(base_url=f"http://{host}:{port}", auth=AUTH, timeout=5) as http:
        yield http


def _call(client: httpx.Client, body: dict[str, Any], path: str = "/Execute") -> Any:
    response = client.post(path, json=body)
    assert response.status_code == 200, response.text
    return response.json()


def _data(client: httpx.Client, ident: str, **extra: Any) -> Any:
    body = {"Command": "GetDataKKT", "IdCommand": ident, "NumDevice": 1, "Timeout": 5, **extra}
    return _call(client, body)


def _rezult(client: httpx.Client, ident: str) -> Any:
    return _call(client, {"Command": "GetRezult", "IdCommand": ident})


def _request(body: dict[str, Any]) -> HttpRequest:
    token = base64.b64encode(f"User:{PASSWORD}".encode()).decode()
    return HttpRequest(
        method="POST",
        path="/Execute",
        query={},
        headers={"authorization": f"Basic {token}"},
        body=json.dumps(body).encode(),
    )


# ------------------------------------------------------------------ HTTP and auth


def test_url_names_device_serial_and_credentials(app: KkmserverApp, state: DeviceState) -> None:
    assert app.url("127.0.0.1", 5893) == (
        f"kkmserver://User:{PASSWORD}@127.0.0.1:5893/?device=1&serial={state.serial}"
    )
    assert app.url("h", 1, https=True).startswith("kkmserver+https://")


def test_head_needs_no_credentials_but_commands_do(server: HttpFakeServer[KkmserverApp]) -> None:
    host, port = server.address
    with httpx.Client(base_url=f"http://{host}:{port}", timeout=5) as anonymous:
        assert anonymous.head("/").status_code == 200
        assert anonymous.post("/Execute", json={"Command": "List"}).status_code == 401
        wrong = anonymous.post("/Execute", json={"Command": "List"}, auth=("User", "x"))
        assert wrong.status_code == 401


def test_sync_only_server_has_no_execute(state: DeviceState) -> None:
    with HttpFakeServer(KkmserverApp(state, sync_only=True)) as server:
        host, port = server.address
        with httpx.Client(base_url=f"http://{host}:{port}", auth=AUTH, timeout=5) as http:
            assert http.post("/Execute", json={"Command": "List"}).status_code == 404
            answer = http.post("/Execute/sync", json={"Command": "List", "IdCommand": "1"})
    assert answer.json()["Status"] == 0


def test_unknown_command_is_501_and_a_violation(client: httpx.Client, app: KkmserverApp) -> None:
    assert client.post("/Execute", json={"Command": "Foo"}).status_code == 501
    answer = _call(client, {"Command": "OfdReport", "IdCommand": "x", "NumDevice": 1})
    assert answer["Status"] == 0  # the real server would print the report
    assert app.violations == ["Foo", "OfdReport"]


def test_num_device_zero_is_a_violation(client: httpx.Client, app: KkmserverApp) -> None:
    assert _data(client, "z", NumDevice=0)["Status"] == 0
    assert app.violations == ["GetDataKKT NumDevice=0"]


# ------------------------------------------------------------------ commands


def test_get_data_kkt_is_built_from_the_state_at_answer_time(
    client: httpx.Client, state: DeviceState
) -> None:
    first = _data(client, "a", KktNumber=state.serial)
    assert first["Status"] == 0 and first["SessionNumber"] == state.shift.number
    info = first["Info"]
    assert info["KktNumber"] == state.serial and info["FnNumber"] == state.fn.serial
    assert info["RegNumber"] == state.rnm and info["InnOrganization"] == state.inn
    assert info["FN_IsFiscal"] is True and info["SessionState"] == 2
    assert info["OFD_DateErrorDoc"] == "0001-01-01T00:00:00"
    assert info["FFDVersion"] == state.ffd.registered and "DateTimeKKT" in info
    state.shift.state = "closed"
    state.printer.paper = "out"
    later = _data(client, "b")["Info"]
    assert later["SessionState"] == 1 and later["PaperOver"] is True


def test_older_server_lacks_the_newer_keys(state: DeviceState) -> None:
    app = KkmserverApp(state, newer_keys=False)
    answer = app.handle(_request({"Command": "GetDataKKT", "IdCommand": "o", "NumDevice": 1}))
    info = answer.body["Info"]
    assert "FN_MemOverflowl" not in info and "PaperOver" not in info
    assert "DateTimeKKT" not in info and info["KktNumber"] == state.serial


def test_reused_id_is_status_5_and_rezult_returns_the_stored_answer(
    client: httpx.Client,
) -> None:
    first = _data(client, "same")
    again = _data(client, "same")
    assert again["Status"] == 5 and again["Info"] == first["Info"]
    stored = _rezult(client, "same")
    assert stored["Command"] == "GetRezult" and stored["Rezult"]["Info"] == first["Info"]
    assert _rezult(client, "never-sent")["Status"] == 3


def test_wrong_device_or_serial_is_status_3(client: httpx.Client, app: KkmserverApp) -> None:
    answer = _data(client, "n", NumDevice=9)
    assert answer["Status"] == 3
    assert answer["Error"] == (
        "Устройство (с параметрами NumDevice=9) не найдено: не настроено или отключено."
    )
    assert _data(client, "s", KktNumber="0000000000000001")["Status"] == 3
    app.device_missing = True
    assert _data(client, "m")["Status"] == 3


def test_list_server_data_and_line_length(client: httpx.Client, state: DeviceState) -> None:
    listing = _call(client, {"Command": "List", "IdCommand": "l"})
    (unit,) = listing["ListUnit"]
    assert unit["NumDevice"] == 1 and unit["KktNumber"] == state.serial
    assert unit["IdTypeDevice"] == "KkmStrihM" and unit["INN"] == state.inn
    inactive = _call(client, {"Command": "List", "IdCommand": "f", "Active": False})
    assert inactive["ListUnit"] == []
    data = _call(client, {"Command": "GetServerData", "IdCommand": "d"})
    assert data["ServerData"]["ServerName"] == "KkmServer"
    width = _call(client, {"Command": "GetLineLength", "IdCommand": "w", "NumDevice": 1})
    assert width["LineLength"] == 48


# ------------------------------------------------------------------ faults


@pytest.mark.parametrize(("attribute", "status"), [("queued_polls", 4), ("running", 1)])
def test_queued_and_running_count_down_in_get_rezult(
    client: httpx.Client, app: KkmserverApp, attribute: str, status: int
) -> None:
    setattr(app, attribute, 2)
    assert _data(client, "q")["Status"] == status
    assert getattr(app, attribute) == 0  # one command takes the fault
    assert [_rezult(client, "q")["Rezult"]["Status"] for _ in range(3)] == [status, status, 0]
    assert _rezult(client, "q")["Rezult"]["Info"]["KktNumber"]
    assert _data(client, "fresh")["Status"] == 0


def test_busy_printing_holds_the_register_for_two_calls(
    client: httpx.Client, state: DeviceState
) -> None:
    state.faults.busy_printing = True
    assert _data(client, "p")["Status"] == 4
    assert [_rezult(client, "p")["Status"] for _ in range(3)] == [4, 4, 0]


def test_device_error_is_status_2_with_the_text(client: httpx.Client, app: KkmserverApp) -> None:
    app.device_error = "Нет связи с ККТ"
    answer = _data(client, "e")
    assert answer["Status"] == 2 and answer["Error"] == "Нет связи с ККТ"


@pytest.mark.parametrize(
    ("attribute", "text"), [("device_busy", DEVICE_BUSY_TEXT), ("port_held", PORT_HELD_TEXT)]
)
def test_a_held_register_is_status_2_with_the_servers_words(
    client: httpx.Client, app: KkmserverApp, attribute: str, text: str
) -> None:
    setattr(app, attribute, True)
    answer = _data(client, attribute)
    assert answer["Status"] == 2 and answer["Error"] == text and "Info" not in answer
    setattr(app, attribute, False)
    assert _data(client, f"{attribute}-later")["Status"] == 0


def test_bare_data_is_status_0_without_info_while_list_still_tells(
    client: httpx.Client, app: KkmserverApp, state: DeviceState
) -> None:
    app.bare_data = True
    answer = _data(client, "bare")
    assert answer["Status"] == 0 and answer["Command"] == "GetDataKKT"
    assert "Info" not in answer and "SessionNumber" not in answer
    assert _rezult(client, "bare")["Rezult"] == answer
    (unit,) = _call(client, {"Command": "List", "IdCommand": "l"})["ListUnit"]
    assert unit["FN_DateEnd"] == f"{state.fn.valid_until.isoformat()}T00:00:00"


def test_info_overrides_put_odd_values_into_info(client: httpx.Client, app: KkmserverApp) -> None:
    app.info_overrides = {"FFDVersion": 1.05, "FN_DateEnd": "31.12.2027"}
    info = _data(client, "odd")["Info"]
    assert info["FFDVersion"] == 1.05 and info["FN_DateEnd"] == "31.12.2027"
    assert info["KktNumber"] == app.state.serial


def test_silent_register_stalls_for_the_timeout_then_stays_queued(state: DeviceState) -> None:
    app = KkmserverApp(state)
    state.faults.silent = True
    body = {"Command": "GetDataKKT", "IdCommand": "s", "NumDevice": 1, "Timeout": 7}
    reply = app.handle(_request(body))
    assert reply.delay_s == 7 and reply.body["Status"] == 4
    rezult = {"Command": "GetRezult", "IdCommand": "s"}
    assert app.handle(_request(rezult)).body["Status"] == 4
    state.faults.silent = False
    assert app.handle(_request(rezult)).body["Rezult"]["Status"] == 0


def test_slow_answer_stalls_and_runs_over_a_short_timeout(state: DeviceState) -> None:
    app = KkmserverApp(state)
    state.faults.slow_answer_s = 3
    body = {"Command": "GetDataKKT", "IdCommand": "a", "NumDevice": 1, "Timeout": 10}
    slow = app.handle(_request(body))
    assert slow.delay_s == 3 and slow.body["Status"] == 0
    over = app.handle(_request({**body, "IdCommand": "b", "Timeout": 2}))
    assert over.delay_s == 2 and over.body["Status"] == 1


def test_body_faults_are_not_json(client: httpx.Client, app: KkmserverApp) -> None:
    app.state.faults.cut_answers = 1
    app.state.faults.wrong_lrc_answers = 1
    app.malformed = 1
    for _ in range(3):
        response = client.post("/Execute", json={"Command": "List", "IdCommand": "x"})
        assert response.status_code == 200
        with pytest.raises(ValueError):
            json.loads(response.content)
    assert _call(client, {"Command": "List", "IdCommand": "y"})["Status"] == 0
