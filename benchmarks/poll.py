"""Poll a simulated register over TCP N times and print what one poll costs.

Figures: wall time per poll (median, p95), round trips (ENQ/frame exchanges on the
wire, HTTP requests for the driver-server adapters), bytes each way, and the time those
bytes would take on a serial wire at 4800 and 115200 baud (10 bits per byte for 8N1; the
register's own ~50 ms turnaround per control byte is not included, so real serial polls
are slower by about rounds x 2 x 50 ms). The serial columns mean nothing for atol-web
and kkmserver, whose bytes travel over the LAN.

    python benchmarks/poll.py --vendor shtrih --polls 200
"""

from __future__ import annotations

import argparse
import statistics
import time

from kktmon.drivers.registry import driver_class
from kktmon.simulators.http_server import HttpApp, HttpFakeServer
from kktmon.simulators.registry import simulated_register, simulated_vendors
from kktmon.simulators.server import DeviceEmulator, TcpServer

BITS_PER_BYTE = 10  # start + 8 data + stop


def _rounds(server: TcpServer[DeviceEmulator] | HttpFakeServer[HttpApp]) -> int:
    if isinstance(server, HttpFakeServer):
        return len(server.recorded())
    return len(getattr(server.device, "received", []))


def measure(vendor: str, polls: int, **options: int) -> dict[str, float]:
    with simulated_register(vendor, None, **options) as server:
        driver = driver_class(vendor)(server.url)
        driver.read_health()  # identity and shift walk happen once; measure steady state
        received_before = _rounds(server)
        durations, tx, rx = [], [], []
        for _ in range(polls):
            started = time.perf_counter()
            snapshot = driver.read_health()
            durations.append((time.perf_counter() - started) * 1000)
            if snapshot.stale:
                raise SystemExit(f"poll failed: {snapshot.link.last_error}")
            tx.append(snapshot.link.bytes_tx)
            rx.append(snapshot.link.bytes_rx)
        rounds = (_rounds(server) - received_before) / polls
    wire_bytes = statistics.mean(tx) + statistics.mean(rx)
    return {
        "median_ms": statistics.median(durations),
        "p95_ms": statistics.quantiles(durations, n=20)[-1],
        "rounds": rounds,
        "bytes_tx": statistics.mean(tx),
        "bytes_rx": statistics.mean(rx),
        "wire_4800_ms": wire_bytes * BITS_PER_BYTE / 4800 * 1000,
        "wire_115200_ms": wire_bytes * BITS_PER_BYTE / 115200 * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vendor", choices=simulated_vendors(), action="append")
    parser.add_argument("--polls", type=int, default=200)
    parser.add_argument(
        "--atol-generation",
        type=int,
        choices=(1, 2, 3),
        default=3,
        help="atol-web server generation (1, 2: queued jobs; 3: synchronous operations)",
    )
    args = parser.parse_args()
    print(
        f"{'vendor':<9} {'polls':>5} {'median ms':>9} {'p95 ms':>7} {'rounds':>6} "
        f"{'tx B':>6} {'rx B':>6} {'4800 bd ms':>10} {'115200 bd ms':>12}"
    )
    for vendor in args.vendor or simulated_vendors():
        options = {"generation": args.atol_generation} if vendor == "atol-web" else {}
        r = measure(vendor, args.polls, **options)
        print(
            f"{vendor:<9} {args.polls:>5} {r['median_ms']:>9.2f} {r['p95_ms']:>7.2f} "
            f"{r['rounds']:>6.1f} {r['bytes_tx']:>6.0f} {r['bytes_rx']:>6.0f} "
            f"{r['wire_4800_ms']:>10.0f} {r['wire_115200_ms']:>12.1f}"
        )


if __name__ == "__main__":
    main()
