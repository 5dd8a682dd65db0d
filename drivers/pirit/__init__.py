"""Pirit / Viki Print / Dreamkas-F driver: ``driver`` and ``mapping``."""

from kktmon.drivers.pirit.driver import PiritDriver

__all__ = ["PiritDriver"]
