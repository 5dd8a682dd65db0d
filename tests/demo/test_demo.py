"""``kktmon demo`` as a user runs it: a real Mosquitto, simulators, agent and ticketing.

The session's one ``kktmon demo --keep-running`` (``demo_run``, shared with the console's
and the SLA report's tests: it takes about 40 s, mostly idle waiting on its accelerated
clock) is read from what it prints: its summary, then the commands it prints, tried as a
user would. Its exit status, the verdict, is checked when the session stops it with
Ctrl-C, with that it leaves no process and no temporary folder behind (``demo_run``'s
teardown); the summary line it prints only with that verdict is checked here.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest
from demo_run import DEMO_TIMEOUT, DemoRun, demo_folder, needs_mosquitto, processes_using

from kktmon.demo import broker as demo_broker
from kktmon.demo import runner as demo

KKTMON = [sys.executable, "-m", "kktmon.cli"]
#: It takes about 40 s on two busy cores, mostly waiting on its accelerated clock.
DEMO_TOOK_S = 60.0
#: Printed only when every scripted problem got its tickets: exit status 0 on Ctrl-C.
VERDICT = "Every scripted problem produced its ticket"
SCRIPTED = (
    "FN_EXPIRING",
    "OFD_QUEUE_STALE",
    "PAPER_OUT",
    "DEVICE_UNREACHABLE",
    "DEVICE_BUSY",
    "AGENT_LOST",
)


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


@needs_mosquitto
@DEMO_TIMEOUT
def test_demo_exits_0_with_a_ticket_for_every_scripted_problem(demo_run: DemoRun) -> None:
    output = demo_run.text
    assert VERDICT in output, output  # its exit status 0 on Ctrl-C: demo_run's teardown
    rows = _summary(output)
    for problem in SCRIPTED:
        assert problem in rows, output
        row = rows[problem]
        assert row["opened"].startswith("+"), row
        assert row["resolved"].startswith("+"), row
        assert row["help desk"].startswith("HD-"), row
    assert rows["FN_EXPIRING"]["escalated"] == "2x"
    assert rows["FN_EXPIRING"]["severity"] == "blocked"
    assert VERDICT in output


@needs_mosquitto
@DEMO_TIMEOUT
def test_demo_shows_what_happens_as_it_happens(demo_run: DemoRun) -> None:
    output = demo_run.text
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
@DEMO_TIMEOUT
def test_demo_kills_the_ticketing_with_the_agent_and_still_gets_every_ticket(
    demo_run: DemoRun,
) -> None:
    output = demo_run.text
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
    assert VERDICT in output and "AGENT_LOST" in _summary(output)
    took = re.search(r"the demo took ([\d.]+) s", output)
    assert took and float(took.group(1)) < DEMO_TOOK_S, output


@needs_mosquitto
@DEMO_TIMEOUT
def test_keep_running_can_be_explored_with_the_commands_it_prints(demo_run: DemoRun) -> None:
    """Stopping it with Ctrl-C, and that it leaves nothing behind: demo_run's teardown."""
    output = demo_run.text
    folder = demo_folder(output)
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
    folder = demo_folder(captured.out)
    assert not folder.exists() and processes_using(folder) == []
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
