"""A simulated Shtrih-M register: ``emulator`` (commands and gates), ``link`` (ENQ/ACK/NAK
with the faults) and ``answers`` (each command's answer from the device state).

The template vendor: a new wire vendor copies these three role modules.
"""

from kktmon.simulators.shtrih.emulator import ShtrihEmulator

__all__ = ["ShtrihEmulator"]
