"""What the durable outbox costs: write cost per event, one poll's commit, and replay.

A week without internet at one event a minute is 10,080 queued events. The replay
figure is the time to read them in order and acknowledge each (what the publisher does
after reconnecting), without the network.

The poll figures run the agent's own ``poll_once`` against a register that needs no
wire (its snapshot is handed over ready), so they show what the agent writes per poll:
with transitions (the paper runs out and comes back on alternate polls, so every poll
raises or clears PAPER_OUT: one event, one alert, the state, the seq and the rule state)
and without (the state and the rule state only). Rule evaluation alone is shown beside
them; the rest of a poll's time is its commit.

    python benchmarks/outbox.py --events 10080 --polls 300 [--dir /var/lib/kktmon]

``--dir`` puts the files on the disk to measure (the figures are mostly fsync time).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from kktmon.agent.config import parse_config
from kktmon.agent.outbox import Outbox
from kktmon.agent.rules import RuleEngine
from kktmon.agent.service import AgentService
from kktmon.drivers.base import local_now
from kktmon.protocol.health import HealthSnapshot

PAYLOAD = json.dumps(
    {
        "id": "00000000-0000-0000-0000-000000000000",
        "seq": 1,
        "kind": "raised",
        "problem": {
            "code": "OFD_QUEUE_STALE",
            "severity": "warning",
            "owner": "service",
            "message": "3 documents not confirmed by the OFD for 3.0 days",
            "facts": {},
        },
        "at": "2026-11-27T15:00:00+03:00",
        "replayed": False,
    }
).encode()

CONFIG = """
site = "bench"
[agent]
state_dir = "{state}"
[mqtt]
url = "mqtt://127.0.0.1:9"
[rules]
raise_after = 1
clear_after = 1
[[devices]]
vendor = "shtrih"
name = "till-1"
url = "socket://127.0.0.1:9"
"""


def snapshot(paper: str) -> HealthSnapshot:
    """A healthy register read just now, but for its paper."""
    return HealthSnapshot.model_validate(
        {
            "schema": 1,
            "taken_at": local_now().isoformat(),
            "device": {"vendor": "shtrih", "serial": "0012345678", "rnm": "0000000001012345"},
            "fn": {"serial": "9961440300112233", "phase": {"name": "fiscal", "raw": 3}},
            "shift": {"state": "closed", "number": 41},
            "printer": {"paper": paper, "cover_open": False, "fault": False},
            "link": {"state": "ok"},
        }
    )


def reader(flip: bool) -> Callable[[], HealthSnapshot]:
    """A register without a wire; ``flip`` runs its paper out on every other poll."""
    polls = 0

    def read_health() -> HealthSnapshot:
        nonlocal polls
        polls += 1
        return snapshot("out" if flip and polls % 2 else "ok")

    return read_health


def time_polls(polls: int, flip: bool, where: str | None) -> tuple[list[float], int]:
    """Milliseconds per ``poll_once`` and the events it spooled."""
    with tempfile.TemporaryDirectory(dir=where) as folder:
        config = parse_config(CONFIG.format(state=Path(folder) / "state"), env={})
        service = AgentService(config)
        try:
            device, read_health = config.devices[0], reader(flip)
            service.poll_once(device, read_health)  # files and tables exist from here on
            costs = []
            for _ in range(polls):
                started = time.perf_counter()
                service.poll_once(device, read_health)
                costs.append((time.perf_counter() - started) * 1000)
            events = service.outbox.stats().depth_by_kind["event"]
        finally:
            service.outbox.close()
    return costs, events


def time_rules(polls: int) -> list[float]:
    """Milliseconds per rule evaluation of the same flipping register, nothing written."""
    config = parse_config(CONFIG.format(state="/nonexistent"), env={})
    engine, read_health = RuleEngine(config.rules), reader(flip=True)
    costs = []
    for _ in range(polls):
        snap = read_health()
        started = time.perf_counter()
        engine.observe("till-1", snap, local_now())
        costs.append((time.perf_counter() - started) * 1000)
    return costs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_080)
    parser.add_argument("--polls", type=int, default=300)
    parser.add_argument("--dir", help="where to put the files (default: the temp folder)")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(dir=args.dir) as folder,
        Outbox(Path(folder) / "o.sqlite3") as box,
    ):
        costs = []
        for _ in range(args.events):
            started = time.perf_counter()
            box.put_event("kktmon/v1/store-1/kkt/shtrih-1/event", PAYLOAD)
            costs.append((time.perf_counter() - started) * 1e6)
        size = box.stats().bytes
        started = time.perf_counter()
        replayed = 0
        while batch := box.pending(limit=500):
            for entry in batch:
                box.ack(entry.id)
                replayed += 1
        replay_s = time.perf_counter() - started
    changing, events = time_polls(args.polls, True, args.dir)
    quiet, _ = time_polls(args.polls, False, args.dir)
    rules = time_rules(args.polls)
    print(f"events                {args.events}")
    print(f"payload bytes         {len(PAYLOAD)} (total {size})")
    print(f"put_event median      {statistics.median(costs):.0f} us")
    print(f"put_event p95         {statistics.quantiles(costs, n=20)[-1]:.0f} us")
    print(f"replay + ack, total   {replay_s:.2f} s for {replayed} events")
    print(f"replay + ack, each    {replay_s / max(replayed, 1) * 1e6:.0f} us")
    print(f"polls                 {args.polls} each ({events} events spooled)")
    print(f"poll w/ transitions   {statistics.median(changing):.2f} ms median (commit + rules)")
    print(f"poll w/ transitions   {statistics.quantiles(changing, n=20)[-1]:.2f} ms p95")
    print(f"poll w/o transitions  {statistics.median(quiet):.2f} ms median")
    print(f"rule evaluation only  {statistics.median(rules):.2f} ms median")


if __name__ == "__main__":
    main()
