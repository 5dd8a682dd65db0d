"""``kktmon demo --keep-running`` starts the console, prints its URL and two logins, and
stops it with everything else: read as a user would, from what the demo prints.

The demo is the session's one run (``demo_run``); that Ctrl-C stops the console with the
rest (``/healthz`` no longer answers) is checked by its teardown at the session's end.
"""

from __future__ import annotations

import re

import httpx
from demo_run import DEMO_TIMEOUT, DemoRun, needs_mosquitto


@needs_mosquitto
@DEMO_TIMEOUT
def test_the_demo_serves_the_console_it_prints(demo_run: DemoRun) -> None:
    text = demo_run.text
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
