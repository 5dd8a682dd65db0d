"""ATOL protocol, sans-I/O (roles as in :mod:`kktmon.protocol.shtrih`).

ATOL registers speak two link layers: ``frame`` + ``link`` are the "АТОЛ 3.0" FE
transport (packets, task buffer, the host's machine), ``legacy`` the older STX/ETX one.
"""
