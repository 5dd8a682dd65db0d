"""A fake kkmserver: ``app`` (HTTP) and ``answers``."""

from kktmon.simulators.kkmserver.app import KkmserverApp

__all__ = ["KkmserverApp"]
