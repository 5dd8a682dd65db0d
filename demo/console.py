"""The demo's web console: ``kktmon console`` over the demo's store, with two users.

The demo's ticketing config gets a client (``demo-client``, owning the demo's one site),
``[console]`` on a free loopback port, and two users with fresh random passwords: an
engineer, who sees the whole fleet, and the client's user, who sees that client's sites.
The passwords are printed with the URL (they exist only for this run); their hashes go
into the config as ``kktmon console hash-password`` would make them.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
import time
from pathlib import Path

import httpx

from kktmon.demo.broker import free_port
from kktmon.protocol.errors import KktmonError
from kktmon.ticketing.passwords import hash_password

ENGINEER, CLIENT_USER, CLIENT = "engineer", "client", "demo-client"
START_WITHIN_S = 30.0


class DemoConsole:
    """The console's users, its config section and its process."""

    def __init__(self, folder: Path, site: str) -> None:
        self.site = site
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.passwords = {ENGINEER: secrets.token_urlsafe(9), CLIENT_USER: secrets.token_urlsafe(9)}
        self.log_path = folder / "console.log"
        self.process: subprocess.Popen[bytes] | None = None

    def config(self) -> str:
        """The client and ``[console]`` tables appended to the demo's ticketing config."""
        engineer, client = (hash_password(self.passwords[u]) for u in (ENGINEER, CLIENT_USER))
        return (
            f'\n[[clients]]\nid = "{CLIENT}"\nname = "Demo Retail"\nsites = ["{self.site}"]\n'
            f'\n[console]\nlisten = "127.0.0.1:{self.port}"\n'
            f'[[console.users]]\nname = "{ENGINEER}"\nrole = "engineer"\n'
            f'password_hash = "{engineer}"\n'
            f'[[console.users]]\nname = "{CLIENT_USER}"\nrole = "client"\nclient = "{CLIENT}"\n'
            f'password_hash = "{client}"\n'
        )

    def start(self, config: Path) -> None:
        """``kktmon console --config`` as a child in its own session (Ctrl-C reaches the
        demo, which stops it), its output appended to ``console.log``."""
        command = [sys.executable, "-m", "kktmon.cli", "console", "--config", str(config)]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def wait_up(self) -> None:
        """Until ``/healthz`` answers 200; :class:`KktmonError` with the log if it never does."""
        deadline = time.monotonic() + START_WITHIN_S
        while True:
            try:
                if httpx.get(self.url + "healthz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            exited = self.process is None or self.process.poll() is not None
            if exited or time.monotonic() > deadline:
                tail = self.log_path.read_text(encoding="utf-8", errors="replace")[-1500:]
                raise KktmonError(f"FAILED: the console did not start\n{tail}")
            time.sleep(0.1)

    def lines(self) -> list[tuple[str, str]]:
        """What the demo's introduction prints about the console."""
        return [
            ("console", f"kktmon console at {self.url}"),
            ("", f"log in as {ENGINEER} / {self.passwords[ENGINEER]} (the whole fleet)"),
            ("", f"or {CLIENT_USER} / {self.passwords[CLIENT_USER]} ({CLIENT}'s sites only)"),
        ]

    def logins(self) -> str:
        return ", ".join(f"{user} / {password}" for user, password in self.passwords.items())

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
