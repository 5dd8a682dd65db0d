"""RSS, CPU and import costs of ``kktmon agent`` polling 1 and 8 simulated registers.

Starts its own Mosquitto (needs the ``mosquitto`` binary) and wire simulators in this
process: one Shtrih-M register, then eight (Shtrih, ATOL and Pirit, over TCP and pty),
runs ``kktmon agent`` on them as a separate process, lets it settle (the first polls,
spread over the interval's jitter, happen in that time), then samples its CPU time over
a window and its resident memory at the end of it (RSS) and at its peak (HWM) from /proc.
Issue 13's targets: RSS at most 30 MB with 8 registers, CPU under 0.5 % of a core at the
default 60 s poll interval.

It also names what the agent's memory and start-up time go to: the agent is started
once under ``-X importtime`` on the 8-register config; every module it imported is then
imported again in a fresh interpreter, one at a time in the order they finished (so each
import runs only that module's own code: its imports are already loaded), recording the
RSS each one adds. Figures are per top-level package (``kktmon.<layer>`` for ours); a
module shared by several packages is charged to the one that imported it first.

Every interpreter runs from compiled bytecode, as an installed agent does: that first run
writes it under a temporary ``PYTHONPYCACHEPREFIX`` (a ``PYTHONDONTWRITEBYTECODE`` in the
environment would otherwise have each start compile the sources, which costs start-up
time and leaves some memory behind).

    python benchmarks/agent_footprint.py                 # under 3 minutes
    python benchmarks/agent_footprint.py --interval 1    # a busier agent as well
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kktmon.simulators.registry import make_emulator
from kktmon.simulators.server import PtyServer, TcpServer

TICKS = os.sysconf("SC_CLK_TCK")
#: The 8-register shop: (vendor, runner) per till; the 1-register case is the first.
SHOP = (
    ("shtrih", "tcp"),
    ("atol", "tcp"),
    ("pirit", "tcp"),
    ("shtrih", "pty"),
    ("atol", "pty"),
    ("pirit", "pty"),
    ("shtrih", "tcp"),
    ("atol", "tcp"),
)
AGENT = [sys.executable, "-m", "kktmon.cli", "agent", "--config"]

#: Run in a fresh interpreter: import each module named on stdin (one a line, in the order
#: they finished importing in the agent) and print each one's RSS and time as JSON.
_MEASURE_IMPORTS = """
import importlib, json, sys, time
def rss():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
costs, start = [], rss()
for name in sys.stdin.read().split():
    if name in sys.modules:
        continue
    before, started = rss(), time.perf_counter()
    try:
        importlib.import_module(name)
    except Exception:
        continue
    costs.append((name, rss() - before, time.perf_counter() - started))
print(json.dumps({"costs": costs, "start_kb": start}))
"""


@dataclass(frozen=True)
class Case:
    """What one run of the agent measured."""

    registers: int
    interval: float
    rss_mb: float
    hwm_mb: float
    cpu_pct: float
    cpu_s: float


def python_env(folder: Path) -> dict[str, str]:
    """The environment of every interpreter measured: bytecode cached under ``folder``."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, "PYTHONPYCACHEPREFIX": str(folder / "pycache")}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def memory_mb(pid: int, key: str) -> float:
    """``VmRSS`` (resident now) or ``VmHWM`` (resident at its peak) of a process."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@contextmanager
def shop(registers: int) -> Iterator[list[tuple[str, str]]]:
    """``registers`` simulated tills as (vendor, url), served until the block ends."""
    with ExitStack() as stack:
        tills = []
        for vendor, runner in SHOP[:registers]:
            emulator = make_emulator(vendor)
            server: Any = PtyServer(emulator) if runner == "pty" else TcpServer(emulator)
            tills.append((vendor, stack.enter_context(server).url))
        yield tills


def write_config(
    folder: Path, broker_port: int, tills: list[tuple[str, str]], interval: float
) -> Path:
    devices = "".join(
        f'[[devices]]\nname = "till-{n}"\nvendor = "{vendor}"\nurl = "{url}"\n'
        for n, (vendor, url) in enumerate(tills)
    )
    state = folder / f"state-{len(tills)}-{interval}"
    config = folder / f"agent-{len(tills)}-{interval}.toml"
    config.write_text(
        f'site = "bench"\n[agent]\npoll_interval_s = {interval}\nstate_dir = "{state}"\n'
        f'[mqtt]\nurl = "mqtt://127.0.0.1:{broker_port}"\n{devices}',
        encoding="utf-8",
    )
    return config


def run_case(
    folder: Path, broker_port: int, registers: int, *, interval: float, window: float, settle: float
) -> Case:
    with shop(registers) as tills:
        config = write_config(folder, broker_port, tills, interval)
        agent = subprocess.Popen(
            [*AGENT, str(config)], stderr=subprocess.DEVNULL, env=python_env(folder)
        )
        try:
            time.sleep(settle)
            cpu0, t0 = cpu_seconds(agent.pid), time.monotonic()
            time.sleep(window)
            cpu = cpu_seconds(agent.pid) - cpu0
            wall = time.monotonic() - t0
            rss, hwm = memory_mb(agent.pid, "VmRSS"), memory_mb(agent.pid, "VmHWM")
            return Case(registers, interval, rss, hwm, 100 * cpu / wall, cpu)
        finally:
            agent.terminate()
            agent.wait(timeout=20)


def agent_imports(folder: Path, broker_port: int, settle: float) -> list[str]:
    """Every module an agent polling the 8-register shop imports, in the order the
    imports finished (``-X importtime``; its times are not used: poll threads import
    concurrently, which muddles them)."""
    with shop(len(SHOP)) as tills:
        config = write_config(folder, broker_port, tills, 60.0)
        log = folder / "importtime.txt"
        with log.open("w") as stderr:
            agent = subprocess.Popen(
                [sys.executable, "-X", "importtime", *AGENT[1:], str(config)],
                stderr=stderr,
                env=python_env(folder),
            )
            time.sleep(settle)
            agent.send_signal(signal.SIGTERM)
            agent.wait(timeout=20)
    return [
        line.rsplit("|", 1)[1].strip()
        for line in log.read_text().splitlines()
        if line.startswith("import time:") and "self [us]" not in line
    ]


def package(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "kktmon" and len(parts) > 1 else parts[0]


@dataclass(frozen=True)
class ImportCosts:
    """Per top-level package: RSS added (KB), import time (us), modules imported."""

    rss_kb: Counter[str]
    time_us: Counter[str]
    modules: Counter[str]
    #: The measuring interpreter's RSS before it imported anything of the agent's, KB.
    start_kb: int


def import_costs(folder: Path, broker_port: int, settle: float) -> ImportCosts:
    """What each package the agent imports costs, each module measured alone with what
    it imports already loaded."""
    imported = agent_imports(folder, broker_port, settle)
    names = "\n".join(name for name in imported if "__main__" not in name)
    result = subprocess.run(
        [sys.executable, "-c", _MEASURE_IMPORTS],
        input=names,
        env=python_env(folder),
        capture_output=True,
        text=True,
        check=True,
    )
    measured = json.loads(result.stdout)
    rss_kb: Counter[str] = Counter()
    time_us: Counter[str] = Counter()
    for name, kb, seconds in measured["costs"]:
        rss_kb[package(name)] += kb
        time_us[package(name)] += round(seconds * 1e6)
    modules = Counter(package(name) for name in imported)
    return ImportCosts(rss_kb, time_us, modules, measured["start_kb"])


def print_cases(cases: list[Case], window: float) -> None:
    print(
        f"{'registers':>9} {'interval s':>10} {'RSS MB':>7} {'HWM MB':>7} {'CPU %':>7} "
        f"{'CPU s':>6}  (window {window:.0f} s; targets: RSS <= 30 MB with 8, CPU < 0.5 % at 60 s)"
    )
    for case in cases:
        print(
            f"{case.registers:>9} {case.interval:>10.0f} {case.rss_mb:>7.1f} {case.hwm_mb:>7.1f} "
            f"{case.cpu_pct:>7.2f} {case.cpu_s:>6.2f}"
        )


def print_costs(costs: ImportCosts, top: int) -> None:
    ours = sum(kb for name, kb in costs.rss_kb.items() if name.startswith("kktmon"))
    theirs = sum(costs.rss_kb.values()) - ours
    floor = (costs.start_kb + theirs) / 1024
    print(
        f"\nthe 8-register agent's {sum(costs.modules.values())} modules: interpreter at start "
        f"{costs.start_kb / 1024:.1f} MB + third-party and stdlib imports {theirs / 1024:.1f} MB "
        f"(= {floor:.1f} MB before any kktmon code) + kktmon's {ours / 1024:.1f} MB (its pydantic "
        "models included); the rest of the RSS is the running agent's data, threads and buffers"
    )
    header = f"{'package':<24} {'RSS MB':>7} {'import ms':>9} {'modules':>7}"
    for title, order in (("RSS", costs.rss_kb), ("time", costs.time_us)):
        print(f"\ntop {top} imports by {title}\n{header}")
        for name, _ in order.most_common(top):
            kb, us, count = costs.rss_kb[name], costs.time_us[name], costs.modules[name]
            print(f"{name:<24} {kb / 1024:>7.2f} {us / 1000:>9.1f} {count:>7}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--window", type=float, default=60.0, help="sampling window, s")
    parser.add_argument("--settle", type=float, default=10.0, help="start-up time ignored, s")
    parser.add_argument(
        "--interval",
        type=float,
        action="append",
        help="poll interval(s) to run, s (default 60; repeat for more)",
    )
    parser.add_argument("--top", type=int, default=12, help="packages listed per import table")
    args = parser.parse_args()
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        port = free_port()
        (folder / "m.conf").write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n")
        broker = subprocess.Popen([binary, "-c", str(folder / "m.conf")], stderr=subprocess.DEVNULL)
        try:
            time.sleep(0.5)
            costs = import_costs(folder, port, args.settle)  # also writes the bytecode
            cases = [
                run_case(
                    folder,
                    port,
                    registers,
                    interval=interval,
                    window=args.window,
                    settle=args.settle,
                )
                for interval in args.interval or [60.0]
                for registers in (1, len(SHOP))
            ]
            print_cases(cases, args.window)
            print_costs(costs, top=args.top)
        finally:
            broker.terminate()
            broker.wait()


if __name__ == "__main__":
    main()
