"""Pirit / Viki Print / Dreamkas-F protocol, sans-I/O (roles as in :mod:`kktmon.protocol.shtrih`).

Besides the shared roles: ``fields`` (the FS-separated text field cursor) and
``fn_records`` (answers of the 78h fiscal-drive subcommands).
"""
