"""A simulated ATOL register: ``emulator`` (commands and gates), two link layers (``link``
for FE "АТОЛ 3.0" with its ``task_buffer``, ``legacy_link`` for "2.4") and ``answers``."""

from kktmon.simulators.atol.emulator import AtolEmulator

__all__ = ["AtolEmulator"]
