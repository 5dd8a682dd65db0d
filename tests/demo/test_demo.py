"""``kktmon demo`` as a user runs it: a real Mosquitto, simulators, agent and ticketing.

Two demos run side by side (each takes about half a minute, mostly idle waiting on its
accelerated clock): the plain one, whose exit status and summary are the verdict, and
one with ``--keep-running``, explored with the commands it prints and then stopped with
Ctrl-C. Both must leave no process and no temporary folder behind.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest

from kktmon.demo import broker as demo_broker
from kktmon.demo import runner as demo
from kktmon.demo.broker import mosquitto_binary

KKTMON = [sys.executable, "-m", "kktmon.cli"]
RUN_TIMEOUT_S = 120.0
#: It takes about 40 s on two busy cores, mostly waiting on its accelerated clock.
DEMO_TOOK_S = 60.0
KEEP_RUNNING_MARK = "Ctrl-C stops it all."
SCRIPTED = (
    "FN_EXPIRING",
    "OFD_QUEUE_STALE",
    "PAPER_OUT",
    "DEVICE_UNREACHABLE",
    "DEVICE_BUSY",
    "AGENT_LOST",
)

needs_mosquitto = pytest.mark.skipif(
    mosquitto_binary() is None, reason="kktmon demo needs Mosquitto (apt-get install mosquitto)"
)


@dataclass
class DemoRun:
    process: subprocess.Popen[str]
    out_path: Path
    out: IO[str]

    def output(self) -> str:
        return self.out_path.read_text(encoding="utf-8")

    def wait_for(self, mark: str) -> str:
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while mark not in (text := self.output()):
            assert self.process.poll() is None, f"demo exited ({self.process.returncode}):\n{text}"
            assert time.monotonic() < deadline, f"no {mark!r} within {RUN_TIMEOUT_S} s:\n{text}"
            time.sleep(0.2)
        return text

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.out.close()


def _start(tmp: Path, name: str, *args: str) -> DemoRun:
    out_path = tmp / f"{name}.out"
    out = out_path.open("w", encoding="utf-8")
    process = subprocess.Popen(
        [*KKTMON, "demo", *args],
        stdout=out,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )
    return DemoRun(process, out_path, out)


@pytest.fixture(scope="module")
def demos(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, DemoRun]]:
    tmp = tmp_path_factory.mktemp("demo")
    runs = {"plain": _start(tmp, "plain"), "keep": _start(tmp, "keep", "--keep-running")}
    yield runs
    for run in runs.values():
        run.stop()


@pytest.fixture(scope="module")
def plain(demos: dict[str, DemoRun]) -> tuple[int, str]:
    run = demos["plain"]
    code = run.process.wait(RUN_TIMEOUT_S)
    return code, run.output()


def _summary(output: str) -> dict[str, dict[str, str]]:
    """The summary table's rows by problem: severity, opened, escalated, resolved, help desk."""
    rows: dict[str, dict[str, str]] = {}
    lines = output.splitlines()
    header = next(i for i, line in enumerate(lines) if re.match(r"\s+#\s+register\s", line))
    for line in lines[header + 2 :]:
        if not line.strip():
            break
        fields = line.split(None, 7)
        if len(fields) == 8 and fields[0].isdigit():
            _, register, problem, severity, opened, escalated, resolved, desk = fields
            rows[problem] = {
                "register": register,
                "severity": severity,
                "opened": opened,
                "escalated": escalated,
                "resolved": resolved,
                "help desk": desk,
            }
    return rows


def _demo_folder(output: str) -> Path:
    match = re.search(r"(/\S*kktmon-demo-[^/\s]+)", output)
    assert match, output
    return Path(match.group(1))


def _processes_using(folder: Path) -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(folder) in text:
            found.append(text)
    return found


@needs_mosquitto
def test_demo_exits_0_with_a_ticket_for_every_scripted_problem(plain: tuple[int, str]) -> None:
    code, output = plain
    assert code == 0, output
    rows = _summary(output)
    for problem in SCRIPTED:
        assert problem in rows, output
        row = rows[problem]
        assert row["opened"].startswith("+"), row
        assert row["resolved"].startswith("+"), row
        assert row["help desk"].startswith("HD-"), row
    assert rows["FN_EXPIRING"]["escalated"] == "2x"
    assert rows["FN_EXPIRING"]["severity"] == "blocked"
    assert "Every scripted problem produced its ticket" in output


@needs_mosquitto
def test_demo_shows_what_happens_as_it_happens(plain: tuple[int, str]) -> None:
    _, output = plain
    lines = output.splitlines()

    def first(text: str) -> int:
        return next(i for i, line in enumerate(lines) if text in line)

    pulled = first(">> till-3: its network cable is pulled out")
    opened = first("DEVICE_UNREACHABLE on till-3: OPENED")
    back = first(">> till-3: the cable is plugged back in")
    resolved = first("DEVICE_UNREACHABLE on till-3: RESOLVED")
    assert pulled < opened < back < resolved < first("  #  register")
    assert "FN_EXPIRING on till-1: ESCALATED warning -> critical" in output
    assert "FN_EXPIRING on till-1: ESCALATED critical -> blocked" in output
    assert "help desk <- open ticket #1 -> HD-1001" in output


@needs_mosquitto
def test_demo_kills_the_ticketing_with_the_agent_and_still_gets_every_ticket(
    plain: tuple[int, str],
) -> None:
    code, output = plain
    lines = output.splitlines()

    def first(pattern: str) -> tuple[int, re.Match[str]]:
        matches = ((i, re.search(pattern, line)) for i, line in enumerate(lines))
        found = next(((i, m) for i, m in matches if m), None)
        assert found, f"no {pattern!r} in:\n{output}"
        return found

    _, started = first(r"ticketing +kktmon ticketing, pid (\d+)")
    step, _ = first(r">> the agent and the ticketing are killed \(SIGKILL\)")
    killed, pid = first(r"kktmon ticketing \(pid (\d+)\) killed with SIGKILL")
    again, new_pid = first(r"kktmon ticketing started again \(pid (\d+)\)")
    lost, _ = first(r"AGENT_LOST on demo-store: OPENED")
    assert step < killed < again < lost
    assert pid.group(1) == started.group(1) != new_pid.group(1)
    assert code == 0 and "AGENT_LOST" in _summary(output)
    took = re.search(r"the demo took ([\d.]+) s", output)
    assert took and float(took.group(1)) < DEMO_TOOK_S, output


@needs_mosquitto
def test_demo_leaves_nothing_behind(plain: tuple[int, str]) -> None:
    _, output = plain
    folder = _demo_folder(output)
    assert not folder.exists()
    assert _processes_using(folder) == []


@needs_mosquitto
def test_keep_running_can_be_explored_then_stopped_with_ctrl_c(
    demos: dict[str, DemoRun],
) -> None:
    run = demos["keep"]
    output = run.wait_for(KEEP_RUNNING_MARK)
    folder = _demo_folder(output)
    config = folder / "ticketing.toml"
    assert f"kktmon tickets --config {config}" in output

    tickets = subprocess.run(
        [*KKTMON, "tickets", "--config", str(config), "--json"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    problems = {(t["problem"], t["state"]) for t in json.loads(tickets.stdout)}
    assert {(problem, "resolved") for problem in SCRIPTED} <= problems

    url = re.search(r"kktmon status --vendor shtrih --url '([^']+)'\s+# till-(\d)", output)
    assert url, output
    status = subprocess.run(
        [*KKTMON, "status", "--vendor", "shtrih", "--url", url.group(1), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["device"]["serial"] == f"03921900080177{int(url.group(2)):02}"

    # The printed line for a register behind a driver server works as a shell command:
    # the password comes from its file, not from the URL.
    line = re.search(
        r"^  (KKTMON_CONNECTION_PASSWORD=\$\(cat \S+\)) kktmon (status .*atol-web.*?)\s+# till",
        output,
        re.M,
    )
    assert line, output
    assert ":" not in line.group(2).split("@")[0].split("://")[1]  # no password in the URL
    command = f"{line.group(1)} {sys.executable} -m kktmon.agent {line.group(2)}"
    web = subprocess.run(
        command, shell=True, capture_output=True, text=True, timeout=60, check=False
    )
    assert web.returncode == 0, web.stderr
    assert "atol-web+http" in web.stdout

    run.process.send_signal(signal.SIGINT)
    assert run.process.wait(30) == 0, run.output()
    assert "stopped; everything it started is shut down" in run.output()
    assert not folder.exists()
    assert _processes_using(folder) == []


def _leftovers() -> tuple[list[str], list[str]]:
    folders = [str(p) for p in Path(tempfile.gettempdir()).glob("kktmon-demo-*")]
    threads = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
    return folders, threads


@needs_mosquitto
def test_a_ticket_that_never_comes_fails_the_demo_cleanly(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    folders_before, threads_before = _leftovers()
    monkeypatch.setattr(demo, "EXPECT_WITHIN_S", 0.05)  # no ticket opens that fast
    assert demo.run_demo() == 1
    captured = capsys.readouterr()
    assert "FAILED: waited 0 s for the FN_EXPIRING ticket of till-1 to open" in captured.err
    folder = _demo_folder(captured.out)
    assert not folder.exists() and _processes_using(folder) == []
    folders, threads = _leftovers()
    assert set(folders) <= set(folders_before)
    assert set(threads) <= set(threads_before), threads


def test_without_mosquitto_the_demo_says_how_to_get_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    folders_before, _ = _leftovers()
    monkeypatch.setattr(demo_broker, "mosquitto_binary", lambda: None)
    assert demo.run_demo() == 1
    assert "apt-get install mosquitto" in capsys.readouterr().err
    assert set(_leftovers()[0]) <= set(folders_before)
