"""What the durable outbox costs: write cost per event, and replaying a week's backlog.

A week without internet at one event a minute is 10,080 queued events. The replay
figure is the time to read them in order and acknowledge each (what the publisher does
after reconnecting), without the network.

    python benchmarks/outbox.py --events 10080
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from kktmon.agent.outbox import Outbox

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_080)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, Outbox(Path(folder) / "o.sqlite3") as box:
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
    print(f"events                {args.events}")
    print(f"payload bytes         {len(PAYLOAD)} (total {size})")
    print(f"put_event median      {statistics.median(costs):.0f} us")
    print(f"put_event p95         {statistics.quantiles(costs, n=20)[-1]:.0f} us")
    print(f"replay + ack, total   {replay_s:.2f} s for {replayed} events")
    print(f"replay + ack, each    {replay_s / max(replayed, 1) * 1e6:.0f} us")


if __name__ == "__main__":
    main()
