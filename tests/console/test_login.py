"""Logging in to the console: the session cookie's flags, CSRF on every form, logout that
ends the session, the login limit per user and per client address (429 with Retry-After),
and HTTP Basic on the API. A real ``kktmon console`` on an empty SQLite store; client
addresses other than loopback come as the proxy sends them (``X-Forwarded-For``, which
uvicorn trusts from 127.0.0.1 only).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from console_rig import PASSWORD, ConsoleProcess, console_config, csrf_of, login, session


@pytest.fixture
def console(sqlite_url: str, tmp_path: Path) -> Iterator[ConsoleProcess]:
    with ConsoleProcess(console_config(tmp_path / "ticketing.toml", sqlite_url)) as running:
        yield running


def _from(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


def _try(client: httpx.Client, user: str, password: str, address: str) -> httpx.Response:
    page = client.get("/login", headers=_from(address))
    form = {"username": user, "password": password, "csrf": csrf_of(page.text), "next": "/"}
    return client.post("/login", data=form, headers=_from(address), follow_redirects=False)


def test_a_page_without_a_session_goes_to_the_login_form_and_back(
    console: ConsoleProcess,
) -> None:
    with session(console.url) as browser:
        first = browser.get("/tickets?state=all", follow_redirects=False)
        assert first.status_code == 303
        assert first.headers["location"] == "/login?next=/tickets%3Fstate%3Dall"
        answer = login(browser, "ivanov", next_path="/tickets?state=all")
        assert answer.headers["location"] == "/tickets?state=all"
        assert browser.get("/tickets?state=all").status_code == 200
    with session(console.url) as other:  # only paths on this site: never another host
        assert login(other, "ivanov", next_path="//evil.example/").headers["location"] == "/"


def test_the_session_cookie_is_httponly_lax_and_secure_behind_tls(
    console: ConsoleProcess,
) -> None:
    with session(console.url) as browser:
        plain = login(browser, "ivanov").headers["set-cookie"].lower()
    assert "httponly" in plain and "samesite=lax" in plain and "secure" not in plain
    # Through the TLS proxy: the cookie is Secure (so a client that is not on https keeps
    # it to itself; here it is sent back by hand, as the browser would over https).
    tls = {"X-Forwarded-Proto": "https"}
    with httpx.Client(base_url=console.url) as browser:
        page = browser.get("/login", headers=tls)
        anonymous = page.headers["set-cookie"]
        assert "secure" in anonymous.lower()
        form = {"username": "ivanov", "password": PASSWORD["ivanov"], "csrf": csrf_of(page.text)}
        headers = {**tls, "Cookie": anonymous.split(";")[0]}
        answer = browser.post("/login", data=form, headers=headers)
    assert answer.status_code == 303
    cookie = answer.headers["set-cookie"].lower()
    assert "secure" in cookie and "httponly" in cookie


def test_cookie_secure_always_marks_it_over_plain_http(sqlite_url: str, tmp_path: Path) -> None:
    config = console_config(tmp_path / "ticketing.toml", sqlite_url)
    with ConsoleProcess(config, "--cookie-secure", "always") as running:
        page = httpx.get(running.url + "/login")
    assert "; secure" in page.headers["set-cookie"].lower()


def test_wrong_passwords_and_unknown_users_get_the_form_again(console: ConsoleProcess) -> None:
    with session(console.url) as browser:
        for user in ("ivanov", "nobody"):
            answer = login(browser, user, "nope")
            assert answer.status_code == 401 and "Wrong user name or password." in answer.text
        assert browser.get("/", follow_redirects=False).status_code == 303


def test_forms_need_the_sessions_csrf_token(console: ConsoleProcess) -> None:
    good = {"username": "ivanov", "password": PASSWORD["ivanov"]}
    with session(console.url) as stranger:  # another site's form: no token, or its own
        assert stranger.post("/login", data=good).status_code == 403
        stranger.get("/login")
        assert stranger.post("/login", data={**good, "csrf": "guessed"}).status_code == 403
    with session(console.url, "ivanov") as browser:
        refused = browser.post("/logout", data={}, follow_redirects=False)
        assert refused.status_code == 403 and "form expired" in refused.text
        assert browser.get("/", follow_redirects=False).status_code == 200  # still logged in


def test_logout_ends_the_session_even_for_a_kept_copy_of_the_cookie(
    console: ConsoleProcess,
) -> None:
    with session(console.url, "ivanov") as browser:
        kept = dict(browser.cookies)
        token = csrf_of(browser.get("/").text)
        out = browser.post("/logout", data={"csrf": token}, follow_redirects=False)
        assert (out.status_code, out.headers["location"]) == (303, "/login")
    with httpx.Client(base_url=console.url, cookies=kept) as replay:
        assert replay.get("/", follow_redirects=False).status_code == 303
        assert replay.get("/api/registers").status_code == 401


def test_five_failures_for_a_user_block_that_user_from_any_address(
    console: ConsoleProcess,
) -> None:
    with session(console.url) as browser:
        for n in range(5):
            assert _try(browser, "ivanov", "wrong", f"10.0.1.{n}").status_code == 401
        blocked = _try(browser, "ivanov", PASSWORD["ivanov"], "10.0.1.99")
        assert blocked.status_code == 429
        assert 1 <= int(blocked.headers["retry-after"]) <= 300
        assert "too many failed logins" in blocked.text
        # Another user from another address is not held up.
        assert _try(browser, "acme-it", PASSWORD["acme-it"], "10.0.1.98").status_code == 303
    basic = httpx.get(f"{console.url}/api/registers", auth=("ivanov", PASSWORD["ivanov"]))
    assert basic.status_code == 429 and int(basic.headers["retry-after"]) >= 1


def test_five_failures_from_an_address_block_that_address_for_every_user(
    console: ConsoleProcess,
) -> None:
    with session(console.url) as browser:
        for n in range(5):
            assert _try(browser, f"guess{n}", "wrong", "10.0.2.7").status_code == 401
        assert _try(browser, "ivanov", PASSWORD["ivanov"], "10.0.2.7").status_code == 429
        assert _try(browser, "ivanov", PASSWORD["ivanov"], "10.0.2.8").status_code == 303


def test_http_basic_failures_count_too(console: ConsoleProcess) -> None:
    url = f"{console.url}/api/registers"
    for _ in range(5):
        answer = httpx.get(url, auth=("beta-it", "wrong"), headers=_from("10.0.3.1"))
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"].startswith("Basic")
    again = httpx.get(url, auth=("beta-it", PASSWORD["beta-it"]), headers=_from("10.0.3.2"))
    assert again.status_code == 429


def test_the_api_without_credentials_asks_for_them(console: ConsoleProcess) -> None:
    answer = httpx.get(f"{console.url}/api/tickets")
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == 'Basic realm="kktmon console", charset="UTF-8"'
    assert answer.json()["detail"].startswith("log in")
    me = httpx.get(f"{console.url}/api/me", auth=("acme-it", PASSWORD["acme-it"])).json()
    assert me == {
        "name": "acme-it",
        "role": "client",
        "client": "acme",
        "sites": ["acme-1", "acme-2"],
    }


def test_pages_carry_headers_that_forbid_scripts_and_framing(console: ConsoleProcess) -> None:
    with session(console.url, "ivanov") as browser:
        answer = browser.get("/")
    policy = answer.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
    assert answer.headers["x-frame-options"] == "DENY"
    assert answer.headers["cache-control"] == "no-store"
    assert "server" not in answer.headers
