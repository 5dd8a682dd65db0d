"""A simulated Pirit / Viki Print / Dreamkas-F register: ``emulator`` (routing and gates),
``link`` (frames, ENQ and the faults) and ``answers`` (reply values from the state)."""

from kktmon.simulators.pirit.emulator import PiritEmulator

__all__ = ["PiritEmulator"]
