"""kkmserver adapter: ``driver`` and ``mapping``."""

from kktmon.drivers.kkmserver.driver import KkmserverDriver

__all__ = ["KkmserverDriver"]
