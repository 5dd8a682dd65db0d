"""Shtrih-M (ШТРИХ-М) standard protocol, sans-I/O: the template wire vendor.

Role modules, the same for every wire vendor: ``frame`` (bytes <-> frames, checksum),
``link`` (the host's link-layer state machine), ``commands`` (command codes, request
builders and the read-only allowlist), ``records`` (answers -> typed records),
``errors`` (the vendor's error codes and their meanings).
"""
