"""A real Mosquitto process for tests, on a free loopback port (never the system broker)."""

from __future__ import annotations

import getpass
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

import pytest

from kktmon.demo.broker import free_port, mosquitto_binary

__all__ = [
    "DEPLOY",
    "STORES_PASSWD",
    "TICKETING_PASSWD",
    "Broker",
    "free_port",
    "mosquitto_binary",
    "shipped_config",
    "write_passwords",
]

START_TIMEOUT_S = 10.0


class Broker:
    """One Mosquitto process; ``port`` stays the same across :meth:`stop` and :meth:`start`."""

    def __init__(
        self,
        binary: str,
        folder: Path,
        extra: str = "",
        port: int | None = None,
        raw: str | None = None,
    ) -> None:
        self.binary = binary
        self.folder = folder
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.log_path = folder / "mosquitto.log"
        self.conf_path = folder / "mosquitto.conf"
        folder.mkdir(parents=True, exist_ok=True)
        text = self._config(extra) if raw is None else raw
        self.conf_path.write_text(text.format(port=self.port, folder=folder), encoding="utf-8")
        self._process: subprocess.Popen[bytes] | None = None

    def _config(self, extra: str) -> str:
        listener = "" if "listener " in extra else "listener {port} 127.0.0.1\n"
        anonymous = "" if "allow_anonymous" in extra else "allow_anonymous true\n"
        return (
            f"user {getpass.getuser()}\n"  # as root, mosquitto would drop to 'mosquitto'
            f"{listener}{anonymous}"
            "persistence true\n"
            "persistence_location {folder}/\n"
            "autosave_interval 0\n"
            "log_dest file {folder}/mosquitto.log\n"
            "log_type all\n"
            f"{extra}\n"
        )

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [self.binary, "-c", str(self.conf_path)], stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"mosquitto exited at start:\n{self.log()}")
            try:
                socket.create_connection((self.host, self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"mosquitto did not listen on {self.port}:\n{self.log()}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop the broker (SIGTERM saves retained messages; SIGKILL loses the unsaved)."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(sig)
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)

    def signal(self, sig: int) -> None:
        """E.g. SIGSTOP to freeze the broker with connections open (messages go unanswered)."""
        if self._process is not None:
            self._process.send_signal(sig)

    def save(self) -> None:
        """Write the persistence file now (SIGUSR1), so a SIGKILL keeps sessions made so far."""
        db = self.folder / "mosquitto.db"
        before = db.stat().st_mtime_ns if db.exists() else None
        self.signal(signal.SIGUSR1)
        deadline = time.monotonic() + START_TIMEOUT_S
        while not db.exists() or db.stat().st_mtime_ns == before:
            if time.monotonic() > deadline:
                raise RuntimeError("mosquitto did not save its persistence file")
            time.sleep(0.01)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def log(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-4000:]
        except OSError:
            return ""


# -- the shipped central broker (deploy/mosquitto/) --------------------------------------

#: The folder of the shipped ``kktmon.conf`` and its ACL files.
DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto"
#: The password files ``kktmon.conf`` names: the stores' and the ticketing workers'.
STORES_PASSWD = "kktmon-stores.passwd"
TICKETING_PASSWD = "kktmon-ticketing.passwd"


def write_passwords(path: Path, users: Mapping[str, str]) -> None:
    """A Mosquitto password file with ``users`` (name to password), via ``mosquitto_passwd``."""
    tool = shutil.which("mosquitto_passwd")
    if tool is None:
        pytest.skip("mosquitto_passwd is not installed (package mosquitto)")
    path.write_text("", encoding="utf-8")
    for user, password in users.items():
        subprocess.run([tool, "-b", str(path), user, password], check=True)


def shipped_config(
    etc: Path,
    certs: Path,
    tls_port: int,
    *,
    stores: Mapping[str, str],
    workers: Mapping[str, str],
    switches: Mapping[str, str] | None = None,
) -> str:
    """``deploy/mosquitto/kktmon.conf`` as shipped, with only paths and ports rewritten.

    The stores' password file (``stores``) and the ticketing workers' (``workers``) are
    written into ``etc``; the ACL files are used where they are, unchanged; ``certs`` holds
    ``ca.crt``, ``server.crt`` and ``server.key``. The ticketing listener gets ``{port}``
    (:attr:`Broker.port`), the stores' TLS listener ``tls_port``, both on loopback.
    ``switches`` turn single ``<key> false`` settings to another value. The result is a
    ``raw`` configuration for :class:`Broker`.
    """
    etc.mkdir(parents=True, exist_ok=True)
    write_passwords(etc / STORES_PASSWD, stores)
    write_passwords(etc / TICKETING_PASSWD, workers)
    text = (DEPLOY / "kktmon.conf").read_text(encoding="utf-8")
    replacements = {
        "/etc/mosquitto/certs/": f"{certs}/",
        f"/etc/mosquitto/{STORES_PASSWD}": str(etc / STORES_PASSWD),
        f"/etc/mosquitto/{TICKETING_PASSWD}": str(etc / TICKETING_PASSWD),
        "/etc/mosquitto/kktmon-stores.acl": str(DEPLOY / "kktmon-stores.acl"),
        "/etc/mosquitto/kktmon-ticketing.acl": str(DEPLOY / "kktmon-ticketing.acl"),
        "/var/lib/mosquitto/": "{folder}/",
        "listener 1883 127.0.0.1": "listener {port} 127.0.0.1",
        "listener 8883\n": f"listener {tls_port} 127.0.0.1\n",
        "log_dest syslog": "log_dest file {folder}/mosquitto.log",
        **{f"{key} false": f"{key} {value}" for key, value in (switches or {}).items()},
    }
    for old, new in replacements.items():
        assert old in text, f"kktmon.conf no longer contains {old!r}"
        text = text.replace(old, new)
    settings = [line for line in text.splitlines() if not line.startswith("#")]
    assert not any("/etc/mosquitto/" in line for line in settings), "an unprovided file"
    # As root, mosquitto would switch to the 'mosquitto' user, who cannot write our folder.
    return f"user {getpass.getuser()}\n{text}"
