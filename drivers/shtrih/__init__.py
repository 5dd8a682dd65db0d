"""Shtrih-M driver: ``driver`` (the poll) and ``mapping`` (answers -> HealthSnapshot).

The template wire vendor: copy this package to add a register family.
"""

from kktmon.drivers.shtrih.driver import ShtrihDriver

__all__ = ["ShtrihDriver"]
