"""RSS and CPU of ``kktmon agent`` polling 1 and 8 simulated registers.

Starts its own Mosquitto (needs the ``mosquitto`` binary) and Shtrih-M simulators in
this process, runs the agent as a separate process, lets it settle, then samples its
resident memory and CPU time over a window from /proc.

    python benchmarks/agent_footprint.py --window 60
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from kktmon.simulators.scenario import default_state
from kktmon.simulators.server import TcpServer
from kktmon.simulators.shtrih.emulator import ShtrihEmulator

TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_case(
    folder: Path, broker_port: int, registers: int, *, interval: float, window: float, settle: float
) -> tuple[float, float, float]:
    with ExitStack() as stack:
        urls = [
            stack.enter_context(TcpServer(ShtrihEmulator(default_state()))).url
            for _ in range(registers)
        ]
        devices = "".join(
            f'[[devices]]\nname = "till-{n}"\nurl = "{url}"\n' for n, url in enumerate(urls)
        )
        state = folder / f"state-{registers}-{interval}"
        config = folder / f"agent-{registers}-{interval}.toml"
        config.write_text(
            f'site = "bench"\n[agent]\npoll_interval_s = {interval}\nstate_dir = "{state}"\n'
            f'[mqtt]\nurl = "mqtt://127.0.0.1:{broker_port}"\n{devices}',
            encoding="utf-8",
        )
        agent = subprocess.Popen(
            [sys.executable, "-m", "kktmon.cli", "agent", "--config", str(config)],
            stderr=subprocess.DEVNULL,
        )
        try:
            time.sleep(settle)
            cpu0, t0 = cpu_seconds(agent.pid), time.monotonic()
            time.sleep(window)
            cpu = cpu_seconds(agent.pid) - cpu0
            wall = time.monotonic() - t0
            return rss_mb(agent.pid), 100 * cpu / wall, cpu
        finally:
            agent.terminate()
            agent.wait(timeout=20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--window", type=float, default=60.0, help="sampling window, s")
    parser.add_argument("--settle", type=float, default=5.0, help="start-up time ignored, s")
    args = parser.parse_args()
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        port = free_port()
        (folder / "m.conf").write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n")
        broker = subprocess.Popen([binary, "-c", str(folder / "m.conf")], stderr=subprocess.DEVNULL)
        try:
            time.sleep(0.5)
            print(
                f"{'registers':>9} {'interval s':>10} {'RSS MB':>7} {'CPU %':>7} "
                f"{'CPU s':>6}  (window {args.window:.0f} s)"
            )
            for registers in (1, 8):
                for interval in (1.0, 60.0):
                    rss, pct, cpu = run_case(
                        folder,
                        port,
                        registers,
                        interval=interval,
                        window=args.window,
                        settle=args.settle,
                    )
                    print(f"{registers:>9} {interval:>10.0f} {rss:>7.1f} {pct:>7.2f} {cpu:>6.2f}")
        finally:
            broker.terminate()
            broker.wait()


if __name__ == "__main__":
    main()
