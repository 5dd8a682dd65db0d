"""Which wire vendors a scan tries, at which speeds, on which TCP ports, in which order.

Speeds come from the protocol references (``/work/shared/protocols``), each vendor's
factory speed first:

* Shtrih-M (shtrih-m.md section 1): 115200 first, then 4800 (the other factory speed,
  and what a third-party scanner tries second), then the rest of the speed codes
  (57600 ... 2400); TCP port 7778;
* ATOL (atol.md section 1): factory 115200, then the drivers' own probe order 57600,
  38400, 19200, 9600, 4800; TCP port 5555 (:data:`kktmon.drivers.atol.link.DEFAULT_TCP_PORT`);
* Pirit / Viki Print / Dreamkas-F (pirit.md section 1): 57600, 115200, 38400, 19200,
  9600, 4800 (:data:`kktmon.drivers.pirit.driver.BAUD_RATES`); TCP port 50003. Its
  driver finds the speed itself, with one ``ENQ`` per speed (pirit.md 2.5), when the URL
  names none (``finds_speed``): far cheaper on a silent port than a read at each speed,
  which waits the whole answer timeout before its ``ENQ``.

A serial port is probed round by round (:func:`serial_plan`): every vendor at its most
likely speed, then every vendor at its next one, so the common set-ups are found in the
first round and a silent port costs the whole plan only once. A vendor that finds its
speed itself is one step of the first round.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from itertools import zip_longest

from kktmon.drivers.atol.link import DEFAULT_TCP_PORT as ATOL_TCP_PORT
from kktmon.drivers.pirit.driver import BAUD_RATES as PIRIT_BAUD_RATES
from kktmon.drivers.pirit.driver import TCP_PORT as PIRIT_TCP_PORT
from kktmon.protocol.errors import ConfigError

SHTRIH_TCP_PORT = 7778  # shtrih-m.md section 1: every client seen uses it


@dataclass(frozen=True)
class WireVendor:
    """A register family a scan talks to in its own protocol."""

    name: str
    baudrates: tuple[int, ...]
    tcp_port: int
    #: The driver probes ``baudrates`` itself on a serial URL without one, opening the
    #: port through its ``serial_opener`` argument.
    finds_speed: bool = False


WIRE_VENDORS: tuple[WireVendor, ...] = (
    WireVendor("shtrih", (115200, 4800, 57600, 38400, 19200, 9600, 2400), SHTRIH_TCP_PORT),
    WireVendor("atol", (115200, 57600, 38400, 19200, 9600, 4800), ATOL_TCP_PORT),
    WireVendor("pirit", PIRIT_BAUD_RATES, PIRIT_TCP_PORT, finds_speed=True),
)


def wire_vendors(names: Collection[str] = ()) -> tuple[WireVendor, ...]:
    """The vendors to try: all of them, or the ones named (``--vendor``)."""
    if not names:
        return WIRE_VENDORS
    known = {vendor.name: vendor for vendor in WIRE_VENDORS}
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise ConfigError(
            f"scan: no wire vendor {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    return tuple(vendor for vendor in WIRE_VENDORS if vendor.name in names)


def serial_plan(vendors: Sequence[WireVendor]) -> list[tuple[str, int | None]]:
    """``(vendor, baudrate)`` pairs in probing order: round by round, defaults first;
    ``None`` for a vendor whose driver finds the speed itself (one step)."""
    speeds_of = [
        vendor.baudrates[:1] if vendor.finds_speed else vendor.baudrates for vendor in vendors
    ]
    rounds = zip_longest(*speeds_of)
    return [
        (vendor.name, None if vendor.finds_speed else rate)
        for speeds in rounds
        for vendor, rate in zip(vendors, speeds, strict=True)
        if rate is not None
    ]


def finds_speed(name: str) -> bool:
    return any(vendor.finds_speed for vendor in WIRE_VENDORS if vendor.name == name)


def tcp_order(vendors: Sequence[WireVendor], port: int) -> list[str]:
    """Vendor names to try on a TCP port: the one whose default port it is first."""
    first = [vendor.name for vendor in vendors if vendor.tcp_port == port]
    return first + [vendor.name for vendor in vendors if vendor.tcp_port != port]


def tcp_ports(vendors: Sequence[WireVendor]) -> list[int]:
    """The vendors' default TCP ports, each once, in the vendors' order."""
    return list(dict.fromkeys(vendor.tcp_port for vendor in vendors))
