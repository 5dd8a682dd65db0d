"""Shtrih-M register emulator."""

from kktmon.simulators.shtrih.emulator import ShtrihEmulator

__all__ = ["ShtrihEmulator"]
