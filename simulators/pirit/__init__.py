"""Pirit / Viki Print register emulator: ``emulator`` (the link) and ``answers``."""

from kktmon.simulators.pirit.emulator import PiritEmulator

__all__ = ["PiritEmulator"]
