"""``deploy/nginx/kktmon-console.conf``: the TLS reverse proxy in front of the console.

Without nginx: the example forwards to the console's default ``[console] listen``, speaks
TLS only (plain HTTP redirects) and passes the client address and scheme. With nginx
installed (``scripts/test`` installs it as root): the shipped file, with only ports and
certificate paths rewritten, is checked by ``nginx -t`` and then run in front of a real
console; a login through it over HTTPS gets a ``Secure`` cookie, and the console counts
failed logins against the address nginx forwarded.
"""

from __future__ import annotations

import re
import shutil
import signal
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from console_rig import PASSWORD, ConsoleProcess, console_config, csrf_of
from mqtt_broker import free_port
from pki import make_pki

from kktmon.ticketing.console_config import DEFAULT_LISTEN

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "deploy" / "nginx" / "kktmon-console.conf"
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)


def test_the_example_proxies_the_default_listen_over_tls_only() -> None:
    text = SHIPPED.read_text(encoding="utf-8")
    assert re.search(rf"server {re.escape(DEFAULT_LISTEN)};", text)
    assert "listen 443 ssl" in text and "return 301 https://" in text
    assert "proxy_set_header X-Forwarded-Proto $scheme;" in text
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in text
    assert "ssl_protocols TLSv1.2 TLSv1.3;" in text


def _site(tmp_path: Path, console_port: int, http: int, https: int) -> Path:
    """The shipped file with this test's ports and certificates, and no IPv6 listeners."""
    pki = make_pki(tmp_path / "pki")
    text = SHIPPED.read_text(encoding="utf-8")
    text = text.replace(DEFAULT_LISTEN, f"127.0.0.1:{console_port}")
    text = "\n".join(line for line in text.splitlines() if "listen [::]" not in line)
    text = text.replace("listen 80;", f"listen 127.0.0.1:{http};")
    text = text.replace("listen 443 ssl", f"listen 127.0.0.1:{https} ssl")
    text = text.replace("/etc/ssl/kktmon/console.crt", str(pki.path("server.crt")))
    text = text.replace("/etc/ssl/kktmon/console.key", str(pki.path("server.key")))
    site = tmp_path / "site.conf"
    site.write_text(text, encoding="utf-8")
    main = tmp_path / "nginx.conf"
    temp = tmp_path / "temp"
    temp.mkdir()
    main.write_text(
        f"daemon off;\nuser root;\npid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\n"
        "events {}\nhttp {\n  access_log off;\n"
        f"  client_body_temp_path {temp}/body;\n  proxy_temp_path {temp}/proxy;\n"
        f"  fastcgi_temp_path {temp}/fcgi;\n  uwsgi_temp_path {temp}/uwsgi;\n"
        f"  scgi_temp_path {temp}/scgi;\n  include {site};\n}}\n",
        encoding="utf-8",
    )
    return main


@pytest.fixture
def proxied(sqlite_url: str, tmp_path: Path) -> Iterator[tuple[str, Path, int]]:
    """A console behind the shipped nginx config: its https base URL, the CA to trust
    and nginx's plain HTTP port."""
    if NGINX is None:
        pytest.skip("nginx is not installed (apt-get install nginx; scripts/test does as root)")
    config = console_config(tmp_path / "ticketing.toml", sqlite_url)
    with ConsoleProcess(config) as console:
        port = int(console.url.rsplit(":", 1)[1])
        http, https = free_port(), free_port()
        main = _site(tmp_path, port, http, https)
        check = subprocess.run(
            [NGINX, "-t", "-p", str(tmp_path), "-c", str(main)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert check.returncode == 0, check.stderr
        nginx = subprocess.Popen([NGINX, "-p", str(tmp_path), "-c", str(main)])
        try:
            base = f"https://127.0.0.1:{https}"
            _wait(base, tmp_path / "pki" / "ca.crt", nginx)
            yield base, tmp_path / "pki" / "ca.crt", http
        finally:
            nginx.send_signal(signal.SIGQUIT)
            nginx.wait(15)


def _trust(ca: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca))


def _wait(base: str, ca: Path, nginx: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while True:
        try:
            httpx.get(base + "/healthz", verify=_trust(ca), timeout=2)
            return
        except httpx.TransportError:
            assert nginx.poll() is None, "nginx exited"
            assert time.monotonic() < deadline, "nginx did not answer"
            time.sleep(0.1)


def test_through_the_proxy_the_cookie_is_secure_and_the_address_is_the_clients(
    proxied: tuple[str, Path, int],
) -> None:
    base, ca, http = proxied
    plain = httpx.get(f"http://127.0.0.1:{http}/tickets")
    assert plain.status_code == 301 and plain.headers["location"].startswith("https://")
    with httpx.Client(base_url=base, verify=_trust(ca)) as browser:
        page = browser.get("/login")
        form = {"username": "ivanov", "password": PASSWORD["ivanov"], "csrf": csrf_of(page.text)}
        answer = browser.post("/login", data=form)
        assert answer.status_code == 303
        cookie = answer.headers["set-cookie"].lower()
        assert "secure" in cookie and "httponly" in cookie and "samesite=lax" in cookie
        assert browser.get("/").status_code == 200
        # nginx overwrites what a client claims as its address: a forged X-Forwarded-For
        # cannot spread guesses over made-up addresses.
        for n in range(5):
            forged = {"X-Forwarded-For": f"10.9.9.{n}"}
            denied = httpx.get(
                base + "/api/me", auth=(f"guess{n}", "x"), headers=forged, verify=_trust(ca)
            )
            assert denied.status_code == 401
    right = ("ivanov", PASSWORD["ivanov"])
    blocked = httpx.get(base + "/api/me", auth=right, verify=_trust(ca))  # no cookie: Basic
    assert blocked.status_code == 429
