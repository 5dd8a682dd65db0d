"""``kktmon demo --keep-running`` starts the console, prints its URL and two logins, and
stops it with everything else: read as a user would, from what the demo prints."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from kktmon.demo.broker import mosquitto_binary

READY = "Ctrl-C stops it all."
WITHIN_S = 150.0


@pytest.mark.skipif(mosquitto_binary() is None, reason="the demo needs Mosquitto")
@pytest.mark.timeout(240)
def test_the_demo_serves_the_console_it_prints(tmp_path: Path) -> None:
    out_path = tmp_path / "demo.out"
    with out_path.open("w", encoding="utf-8") as out:
        demo = subprocess.Popen(
            [sys.executable, "-m", "kktmon.cli", "demo", "--keep-running"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONWARNINGS": "error"},
        )
    try:
        deadline = time.monotonic() + WITHIN_S
        while READY not in (text := out_path.read_text(encoding="utf-8")):
            assert demo.poll() is None, f"the demo exited ({demo.returncode}):\n{text}"
            assert time.monotonic() < deadline, text
            time.sleep(0.2)
        url = re.search(r"kktmon console at (http://127\.0\.0\.1:\d+/)", text)
        engineer = re.search(r"log in as engineer / (\S+) ", text)
        client = re.search(r"or client / (\S+) ", text)
        assert url and engineer and client, text
        assert f"open {url.group(1)} in a browser" in text
        base = url.group(1).rstrip("/")

        fleet = httpx.get(base + "/api/registers", auth=("engineer", engineer.group(1))).json()
        assert fleet["total"] == 5 and {r["site"] for r in fleet["items"]} == {"demo-store"}
        me = httpx.get(base + "/api/me", auth=("client", client.group(1))).json()
        assert me["client"] == "demo-client" and me["sites"] == ["demo-store"]
        tickets = httpx.get(base + "/api/tickets?state=all", auth=("client", client.group(1)))
        assert tickets.json()["total"] >= 6  # every scripted problem's ticket
    finally:
        demo.send_signal(signal.SIGTERM)
        demo.wait(60)
    with pytest.raises(httpx.TransportError):
        httpx.get(base + "/healthz", timeout=2)
