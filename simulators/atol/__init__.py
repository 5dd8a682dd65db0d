"""ATOL register emulator: ``emulator``, both link layers, the task buffer, ``answers``."""

from kktmon.simulators.atol.emulator import AtolEmulator

__all__ = ["AtolEmulator"]
