"""ATOL driver: ``driver``, ``reads``, ``mapping`` and ``link`` (which link layer, probed)."""

from kktmon.drivers.atol.driver import AtolDriver

__all__ = ["AtolDriver"]
