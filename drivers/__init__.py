"""Transports and per-vendor drivers that turn a register into one :class:`HealthSnapshot`.

Drivers are looked up by vendor name through :mod:`kktmon.drivers.registry`, imported
lazily so a missing optional dependency breaks only the vendor that needs it.
"""
