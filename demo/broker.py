"""The demo's MQTT broker: a private Mosquitto on a free loopback port.

The ticketing service needs MQTT 5 (shared subscriptions, session expiry, manual
acknowledgements), so the pure-Python brokers on PyPI, which speak MQTT 3.1.1 only, cannot
stand in; ``scripts/demo`` installs Mosquitto when it is missing. The broker runs from a
generated configuration in the demo's temporary folder, never touching a system broker.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Self

from kktmon.protocol.errors import KktmonError

START_TIMEOUT_S = 10.0
START_ATTEMPTS = 3  # a free port can be taken by someone else before Mosquitto binds it
INSTALL_HINT = "install Mosquitto (apt-get install mosquitto), or run ./scripts/demo as root"


def mosquitto_binary() -> str | None:
    """The ``mosquitto`` executable (Debian puts it in /usr/sbin, often not on PATH)."""
    found = shutil.which("mosquitto")
    if found is None and os.access("/usr/sbin/mosquitto", os.X_OK):
        found = "/usr/sbin/mosquitto"
    return found


_handed_out: set[int] = set()
_handed_out_lock = threading.Lock()


def free_port() -> int:
    """A loopback port that was free a moment ago and that this process has not handed out
    before: the kernel may give two probes in a row the same ephemeral port, and a broker
    with two listeners (or a demo with a broker and simulators) needs distinct ones."""
    with _handed_out_lock:
        for _ in range(1000):
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                port: int = probe.getsockname()[1]
            if port not in _handed_out:
                _handed_out.add(port)
                return port
    raise OSError("no loopback port left that this process has not used already")


class EmbeddedBroker:
    """One anonymous, non-persistent Mosquitto listening on ``127.0.0.1:port``."""

    host = "127.0.0.1"

    def __init__(self, folder: Path, binary: str | None = None) -> None:
        found = binary or mosquitto_binary()
        if found is None:
            raise KktmonError(f"the demo needs an MQTT 5 broker: {INSTALL_HINT}")
        self.binary = found
        self.folder = folder
        self.log_path = folder / "mosquitto.log"
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        folder.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def start(self) -> None:
        for attempt in range(1, START_ATTEMPTS + 1):
            self.port = free_port()
            if self._start_once():
                return
            if attempt == START_ATTEMPTS:
                raise KktmonError(f"Mosquitto did not start:\n{self.log_tail()}")

    def _start_once(self) -> bool:
        conf = self.folder / "mosquitto.conf"
        conf.write_text(
            # As root, Mosquitto would switch to a 'mosquitto' user that may not exist.
            f"user {getpass.getuser()}\n"
            f"listener {self.port} {self.host}\n"
            "allow_anonymous true\n"
            "persistence false\n"
            f"log_dest file {self.log_path}\n"
            "log_type error\nlog_type warning\nlog_type notice\n",
            encoding="utf-8",
        )
        with self.log_path.open("ab") as log:
            # Its own session: a Ctrl-C in the terminal reaches only the demo, which then
            # stops the agent before the broker, so the agent can say goodbye.
            self._process = subprocess.Popen(
                [self.binary, "-c", str(conf)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self._process = None
                return False
            try:
                socket.create_connection((self.host, self.port), timeout=0.2).close()
                return True
            except OSError:
                time.sleep(0.02)
        self.stop()
        return False

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)

    def version(self) -> str:
        """``mosquitto version 2.0.11`` -> ``Mosquitto 2.0.11``."""
        try:
            out = subprocess.run(
                [self.binary, "-h"], capture_output=True, text=True, timeout=5, check=False
            ).stdout
        except (OSError, subprocess.TimeoutExpired):
            return "Mosquitto"
        words = out.split("\n", 1)[0].split()
        return f"Mosquitto {words[-1]}" if len(words) == 3 else "Mosquitto"

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-2000:]
        except OSError:
            return ""

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
