"""Pirit / Viki Print / Dreamkas-F driver: ``driver``, ``reads`` and ``mapping``."""

from kktmon.drivers.pirit.driver import PiritDriver

__all__ = ["PiritDriver"]
