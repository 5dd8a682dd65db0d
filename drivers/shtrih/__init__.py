"""Shtrih-M driver: ``driver`` (the poll), ``reads`` (the table of reads) and ``mapping``
(answers -> HealthSnapshot).

The template wire vendor: copy this package to add a register family
(docs/adding-a-register-family.md).
"""

from kktmon.drivers.shtrih.driver import ShtrihDriver

__all__ = ["ShtrihDriver"]
