"""kkmserver.ru (a driver server), sans-I/O (roles as in :mod:`kktmon.protocol.atol_web`)."""
