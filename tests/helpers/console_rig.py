"""What the console tests share: a config with users, the console as a real process, logins.

:func:`console_config` writes a ticketing config with ``[console]`` on a free loopback
port, two clients and three users (an engineer, one user per client), with cheap scrypt
parameters (the tests check the logic, not the cost). :class:`ConsoleProcess` runs
``kktmon console --config F`` as a user would and waits until ``/healthz`` answers.
:func:`login` goes through the form as a browser does (CSRF token included).
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from mqtt_broker import free_port

from kktmon.ticketing.passwords import hash_password

PASSWORD = {"ivanov": "engineer-pw", "acme-it": "acme-pw", "beta-it": "beta-pw"}
ACME_SITES = ("acme-1", "acme-2")
BETA_SITES = ("beta-1",)
#: Cheap scrypt parameters: these tests check who gets in, not what a guess costs.
FAST = {"n": 2**4, "r": 1, "p": 1}


def users_toml(
    acme_sites: tuple[str, ...] = ACME_SITES, beta_sites: tuple[str, ...] = BETA_SITES
) -> str:
    """``[[clients]]`` acme and beta, and a user for the engineer and for each client."""

    def hashed(name: str) -> str:
        return hash_password(PASSWORD[name], **FAST)

    def sites(names: tuple[str, ...]) -> str:
        return ", ".join(f'"{s}"' for s in names)

    return (
        f'[[clients]]\nid = "acme"\nname = "ООО «Акме»"\nsites = [{sites(acme_sites)}]\n'
        f'[[clients]]\nid = "beta"\nname = "Beta <Retail>"\nsites = [{sites(beta_sites)}]\n'
        f'[[console.users]]\nname = "ivanov"\nrole = "engineer"\n'
        f'password_hash = "{hashed("ivanov")}"\n'
        f'[[console.users]]\nname = "acme-it"\nrole = "client"\nclient = "acme"\n'
        f'password_hash = "{hashed("acme-it")}"\n'
        f'[[console.users]]\nname = "beta-it"\nrole = "client"\nclient = "beta"\n'
        f'password_hash = "{hashed("beta-it")}"\n'
    )


def console_config(
    path: Path,
    store_url: str,
    base: str = "",
    port: int | None = None,
    acme_sites: tuple[str, ...] = ACME_SITES,
) -> Path:
    """``base`` (another config's text, e.g. the ticketing rig's) plus ``[console]`` on a
    free port and :func:`users_toml`; written to ``path``."""
    port = port or free_port()
    head = base or f'[ticketing]\nstore = "{store_url}"\n'
    console = f'\n[console]\nlisten = "127.0.0.1:{port}"\nsla_margin_h = 24\n'
    text = head + console + users_toml(acme_sites)
    path.write_text(text, encoding="utf-8")
    return path


class ConsoleProcess:
    """``kktmon console --config F`` as a process; ``url`` once ``/healthz`` answers."""

    def __init__(self, config: Path, *args: str, expect_store: bool = True) -> None:
        text = config.read_text(encoding="utf-8")
        port = re.search(r'listen = "127\.0\.0\.1:(\d+)"', text)
        assert port, "the config has no [console] listen on 127.0.0.1"
        self.url = f"http://127.0.0.1:{port.group(1)}"
        self.log_path = config.parent / "console.log"
        command = [sys.executable, "-m", "kktmon.cli", "console", "--config", str(config), *args]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        self._wait_up(expect_store)

    def _wait_up(self, expect_store: bool, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                answer = httpx.get(f"{self.url}/healthz", timeout=2)
                if answer.status_code == 200 or not expect_store:
                    return
            except httpx.TransportError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"the console did not come up:\n{self.log()[-3000:]}")
            time.sleep(0.1)

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> int | None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return self.process.returncode

    def __enter__(self) -> ConsoleProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)


def login(
    client: httpx.Client, user: str, password: str | None = None, next_path: str = "/"
) -> httpx.Response:
    """Log ``client`` in through the form (GET for the token, POST); the POST's answer."""
    page = client.get("/login")
    assert page.status_code == 200, page.text
    form = {
        "username": user,
        "password": PASSWORD[user] if password is None else password,
        "csrf": csrf_of(page.text),
        "next": next_path,
    }
    return client.post("/login", data=form, follow_redirects=False)


@contextmanager
def session(base_url: str, user: str | None = None) -> Iterator[httpx.Client]:
    """An HTTP client for the console, logged in as ``user`` when given."""
    with httpx.Client(base_url=base_url, timeout=30) as client:
        if user is not None:
            answer = login(client, user)
            assert answer.status_code == 303, answer.text
        yield client
