"""ATOL Web Requests / DTO10 web server (a driver server), sans-I/O.

Role modules of an HTTP vendor: ``requests`` (the allowlisted requests and their
bodies), ``records`` (answers -> typed records).
"""
