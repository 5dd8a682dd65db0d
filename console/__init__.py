"""The service centre's web console and client portal over the ticket store (DESIGN.md 7).

``kktmon console --config ticketing.toml`` serves server-rendered pages (fleet,
replacement plan, tickets, a register's page with SVG charts) and the JSON API behind
them, for engineers (every site) and client users (their own sites only). It reads the
store through :mod:`kktmon.ticketing.fleet_store` and never writes SQL itself.
"""
