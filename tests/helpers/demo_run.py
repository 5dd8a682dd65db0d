"""One ``kktmon demo --keep-running`` for the whole test session.

The demo takes about 40 s, mostly idle waiting on its accelerated clock, and three test
files read it (its summary, the console it serves, the SLA report on its store): each
starting its own made the suite pay for it three times. ``demo_run`` is registered once,
in ``tests/conftest.py``, so session scope really means one run however many modules ask
for it.

It is started as a user would, with ``--keep-running``, and read from what it prints up to
its last hint (``Ctrl-C stops it all.``). Its verdict is the exit status it returns when
stopped with Ctrl-C at the end of the session: the teardown asserts that, and that Ctrl-C
left nothing behind (no folder, no process, no console answering).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from kktmon.demo.broker import mosquitto_binary

KKTMON = [sys.executable, "-m", "kktmon.cli"]
#: Printed last once the script is done and everything keeps running.
READY = "Ctrl-C stops it all."
#: It takes about 40 s on two busy cores; the rest is headroom for a loaded machine.
READY_WITHIN_S = 150.0
STOP_WITHIN_S = 30.0
#: Tests that ask for ``demo_run`` may be the one that starts it (up to READY_WITHIN_S) or
#: the last of the session, whose teardown stops it: more than the suite's default 120 s.
DEMO_TIMEOUT = pytest.mark.timeout(READY_WITHIN_S + 2 * STOP_WITHIN_S + 30)
needs_mosquitto = pytest.mark.skipif(
    mosquitto_binary() is None, reason="kktmon demo needs Mosquitto (apt-get install mosquitto)"
)


@dataclass
class DemoRun:
    """The running demo: ``text`` is what it printed until it was ready; ``started`` when
    it was started (a test reading "this month" of its store knows whether it turned since)."""

    process: subprocess.Popen[bytes]
    out_path: Path
    text: str = ""
    started: datetime = field(default_factory=lambda: datetime.now(UTC))

    def output(self) -> str:
        """Everything printed so far (stdout and stderr), read again from its file."""
        return self.out_path.read_text(encoding="utf-8")

    @property
    def folder(self) -> Path:
        """The demo's temporary folder, named in what it prints."""
        return demo_folder(self.text)

    @property
    def ticketing_config(self) -> Path:
        """The config its own hint names (``kktmon tickets --config <folder>/ticketing.toml``)."""
        match = re.search(r"kktmon tickets --config (\S+/ticketing\.toml)", self.text)
        assert match, self.text
        return Path(match.group(1))

    @property
    def console_url(self) -> str:
        match = re.search(r"kktmon console at (http://127\.0\.0\.1:\d+/)", self.text)
        assert match, self.text
        return match.group(1)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_WITHIN_S
        while READY not in (text := self.output()):
            assert self.process.poll() is None, f"demo exited ({self.process.returncode}):\n{text}"
            assert time.monotonic() < deadline, f"no {READY!r} within {READY_WITHIN_S} s:\n{text}"
            time.sleep(0.2)
        self.text = text

    def interrupt(self) -> int:
        """Ctrl-C, as a user stops it; killed only when it does not stop (and that fails)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(STOP_WITHIN_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                pytest.fail(f"Ctrl-C did not stop the demo in {STOP_WITHIN_S} s:\n{self.output()}")
        return self.process.returncode

    def assert_stopped_cleanly(self, code: int) -> None:
        """Exit 0 is the script's verdict (every scripted ticket), and Ctrl-C cleans up."""
        output = self.output()
        assert code == 0, output
        assert "stopped; everything it started is shut down" in output
        assert not self.folder.exists()
        assert processes_using(self.folder) == []
        with pytest.raises(httpx.TransportError):
            httpx.get(self.console_url.rstrip("/") + "/healthz", timeout=2)


def demo_folder(output: str) -> Path:
    match = re.search(r"(/\S*kktmon-demo-[^/\s]+)", output)
    assert match, output
    return Path(match.group(1))


def processes_using(folder: Path) -> list[str]:
    """Command lines naming ``folder``: a demo child (broker, agent, ...) left running."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(folder) in text:
            found.append(text)
    return found


def start_demo(folder: Path) -> DemoRun:
    """``kktmon demo --keep-running``, stdout and stderr into one file, warnings as errors."""
    out_path = folder / "demo.out"
    started = datetime.now(UTC)
    with out_path.open("w", encoding="utf-8") as out:
        process = subprocess.Popen(
            [*KKTMON, "demo", "--keep-running"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONWARNINGS": "error"},
        )
    return DemoRun(process, out_path, started=started)


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoRun]:
    """The session's one demo, ready; stopped with Ctrl-C (and checked) at the session's end."""
    if mosquitto_binary() is None:
        pytest.skip("kktmon demo needs Mosquitto (apt-get install mosquitto)")
    run = start_demo(tmp_path_factory.mktemp("demo"))
    try:
        run.wait_ready()
        yield run
    finally:
        code = run.interrupt()
    run.assert_stopped_cleanly(code)
