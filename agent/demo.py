"""``kktmon demo``: a simulated register on a free port, polled once and shown.

The seed of the full demo (broker, agent and ticketing on embedded defaults): it
proves the whole chain a real register goes through (TCP, link layer, codec, driver,
health model) without any hardware.
"""

from __future__ import annotations

from kktmon.agent.status_view import render_table
from kktmon.drivers.registry import driver_class
from kktmon.simulators.registry import make_emulator, simulated_vendors
from kktmon.simulators.server import TcpServer


def run_demo() -> int:
    """Poll one simulated register of every simulated vendor and print its health."""
    worst = 0
    for vendor in simulated_vendors():
        with TcpServer(make_emulator(vendor)) as server:
            print(f"== simulated {vendor} register at {server.url}")
            snapshot = driver_class(vendor)(server.url).read_health()
            print(render_table(snapshot))
            print()
            worst = max(worst, 1 if snapshot.stale else 0)
    return worst
