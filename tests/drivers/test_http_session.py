"""The HTTP plumbing both driver-server adapters share: URLs, errors, retries, proxies."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from kktmon.drivers.base import DriverOptions
from kktmon.drivers.http import HttpSession, parse_server_url, tls_verification
from kktmon.protocol.errors import (
    ConfigError,
    MalformedAnswerError,
    ServerAuthError,
    ServerDownError,
)
from kktmon.protocol.settings import redact_url, split_password
from kktmon.simulators.http_server import HttpFakeServer, HttpReply, HttpRequest
from kktmon.simulators.scenario import DeviceState, default_state

FAST = DriverOptions(answer_timeout_s=2, poll_deadline_s=5)


@dataclass
class Scripted:
    """A server that answers from a script of replies, then 200 ``{"ok": true}``."""

    replies: list[HttpReply] = field(default_factory=list)
    state: DeviceState = field(default_factory=default_state)
    adapter: str = "test"

    def handle(self, request: HttpRequest) -> HttpReply:
        if request.credentials != ("user", "Secret-9"):
            return HttpReply(401, {"code": 505, "description": "unauthorized"})
        return self.replies.pop(0) if self.replies else HttpReply(200, {"ok": True})

    def url(self, host: str, port: int, *, https: bool = False) -> str:
        return f"test://user:Secret-9@{host}:{port}/"


@pytest.fixture
def fake() -> Iterator[HttpFakeServer[Scripted]]:
    with HttpFakeServer(Scripted()) as server:
        yield server


def session(url: str) -> HttpSession:
    server = parse_server_url(url, "test", 1, options=FAST)
    return HttpSession(server, FAST, verify=tls_verification(server))


def test_url_forms_and_redaction() -> None:
    url = "test://u:p%40ss@10.0.0.7/?device=1"
    plain = parse_server_url(url, "test", 16732, allowed_options=frozenset({"device"}))
    assert (plain.host, plain.port, plain.https) == ("10.0.0.7", 16732, False)
    assert plain.password == "p@ss"
    assert plain.base_url == "http://10.0.0.7:16732"
    assert plain.redacted == "test://u:***@10.0.0.7:16732/?device=1"
    assert "p@ss" not in repr(plain)
    secure = parse_server_url("test+https://u@[::1]:443/", "test", 1)
    assert secure.https and secure.base_url == "https://[::1]:443"


def test_a_password_comes_out_of_a_url_whole() -> None:
    assert split_password("test://u:p%40ss@h:1/?device=1") == ("test://u@h:1/?device=1", "p@ss")
    assert split_password("socket://h:7778") == ("socket://h:7778", None)
    assert redact_url("test://u:p%40ss@h:1/") == "test://u:***@h:1/"


def test_password_from_the_options_when_the_url_has_none() -> None:
    options = DriverOptions(connection_password="from-file")
    server = parse_server_url("test://u@h/", "test", 1, options=options)
    assert server.password == "from-file"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://h/", "must start with test://"),
        ("test:///", "names no host"),
        ("test://h:99999/", "test URL"),
        ("test://h/?colour=red", "unknown option colour"),
        ("test+https://h/?insecure=maybe", "not a yes/no value"),
        ("test+https://h/?ca=/no/such/ca.pem", "cannot load CA file"),
    ],
)
def test_bad_urls_are_config_errors(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        tls_verification(parse_server_url(url, "test", 1))


def test_a_text_error_page_keeps_its_status(fake: HttpFakeServer[Scripted]) -> None:
    fake.app.replies.append(HttpReply(502, raw=b"<html>Bad Gateway</html>"))
    http = session(fake.url)
    try:
        answer = http.call("GET", "/x")
    finally:
        http.close()
    assert answer.status == 502 and answer.body is None
    assert http.retries == 0


def test_a_garbled_success_is_retried_then_malformed(fake: HttpFakeServer[Scripted]) -> None:
    app = fake.app
    app.replies.append(HttpReply(200, raw=b'{"cut'))
    http = session(fake.url)
    try:
        assert http.call("POST", "/x", body={"a": "б"}).body == {"ok": True}
        assert http.retries == 1 and http.bytes_tx > 0 and http.bytes_rx > 0
        app.replies.extend([HttpReply(200, raw=b"not json")] * FAST.exchange_attempts)
        with pytest.raises(MalformedAnswerError, match="not JSON"):
            http.call("GET", "/x")
    finally:
        http.close()
    assert [r.json() for r in fake.recorded() if r.method == "POST"] == [{"a": "б"}] * 2


def test_wrong_password_and_no_server(
    fake: HttpFakeServer[Scripted], refusing_address: tuple[str, int]
) -> None:
    wrong = session(fake.url.replace("Secret-9", "nope"))
    with pytest.raises(ServerAuthError) as caught:
        wrong.call("GET", "/x")
    wrong.close()
    assert "nope" not in str(caught.value) and "Secret-9" not in str(caught.value)
    host, port = refusing_address
    down = session(f"test://user:Secret-9@{host}:{port}/")
    with pytest.raises(ServerDownError, match="cannot connect"):
        down.call("GET", "/x")
    down.close()


def test_a_system_proxy_is_not_used(
    fake: HttpFakeServer[Scripted], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Credentials must go to the driver server on the LAN, never through a proxy.
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:9")
    http = session(fake.url)
    try:
        assert http.call("GET", "/x").status == 200
    finally:
        http.close()
