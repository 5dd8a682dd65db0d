"""Console passwords: scrypt hashes as ``scrypt$n$r$p$salt_b64$hash_b64`` (stdlib only).

scrypt (RFC 7914) is memory-hard, so a stolen config file's hashes cost an attacker a lot
of RAM per guess; the standard library has it, so no dependency is needed. The parameters
travel in the string, so hashes made today still verify after the defaults grow.
``kktmon console hash-password`` prints :func:`hash_password`'s output for
``[[console.users]] password_hash`` (or for the file ``password_file`` names).

Checking a password always runs scrypt, even for a user who does not exist
(``verify_password(pw, None)``), so a login's timing does not tell which names exist.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import unicodedata
from typing import NamedTuple

__all__ = ["check_hash", "hash_password", "verify_password"]

#: 2**14 x 8 = 16 MiB per hash and ~50 ms on a server core: OWASP's scrypt minimum is
#: N=2**17 with r=8 for p=1 at 128 MiB; a console on a small box checks few logins, so we
#: take the interactive-login figure from the scrypt paper and let operators raise it.
N, R, P = 2**14, 8, 1
SALT_BYTES = 16
HASH_BYTES = 32
_PREFIX = "scrypt"
#: Upper bounds for parameters read from a config file: beyond them one check would take
#: seconds and gigabytes (a typo, or a hash meant to stall the console).
_MAX_N, _MAX_RP = 2**20, 64


class _Parsed(NamedTuple):
    n: int
    r: int
    p: int
    salt: bytes
    digest: bytes


def hash_password(password: str, *, n: int = N, r: int = R, p: int = P) -> str:
    """A fresh salted hash of ``password`` in the console's format."""
    salt = os.urandom(SALT_BYTES)
    digest = _scrypt(password, salt, n, r, p, size=HASH_BYTES)
    return "$".join((_PREFIX, str(n), str(r), str(p), _b64(salt), _b64(digest)))


def verify_password(password: str, encoded: str | None) -> bool:
    """Whether ``password`` matches ``encoded`` (compared in constant time).

    ``encoded=None`` (no such user) or a malformed hash still costs one default scrypt,
    and is never a match.
    """
    try:
        parsed = _parse(encoded) if encoded is not None else None
    except ValueError:
        parsed = None
    if parsed is None:
        _scrypt(password, b"\0" * SALT_BYTES, N, R, P, size=HASH_BYTES)
        return False
    digest = _scrypt(password, parsed.salt, parsed.n, parsed.r, parsed.p, size=len(parsed.digest))
    return hmac.compare_digest(digest, parsed.digest)


def check_hash(encoded: str) -> str:
    """``encoded`` if it is a well-formed hash; ``ValueError`` (without the value) if not."""
    _parse(encoded)
    return encoded


def _parse(encoded: str) -> _Parsed:
    parts = encoded.strip().split("$")
    if len(parts) != 6 or parts[0] != _PREFIX:
        raise ValueError(
            "is not a hash from 'kktmon console hash-password' (scrypt$n$r$p$salt$hash)"
        )
    try:
        n, r, p = (int(x) for x in parts[1:4])
        salt, digest = _unb64(parts[4]), _unb64(parts[5])
    except (ValueError, binascii.Error):
        raise ValueError("has malformed scrypt parameters, salt or hash") from None
    if n < 2 or n > _MAX_N or n & (n - 1):
        raise ValueError(f"scrypt n must be a power of two up to {_MAX_N}")
    if not 1 <= r <= _MAX_RP or not 1 <= p <= _MAX_RP:
        raise ValueError(f"scrypt r and p must be 1-{_MAX_RP}")
    if len(salt) < 8 or len(digest) < 16:
        raise ValueError("salt or hash too short (at least 8 and 16 bytes)")
    return _Parsed(n, r, p, salt, digest)


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, *, size: int) -> bytes:
    secret = unicodedata.normalize("NFC", password).encode("utf-8")
    # OpenSSL needs 128*r*(n+2+p) bytes; the default cap (32 MiB) would refuse large n.
    maxmem = 128 * r * (n + 2 + p) + (1 << 20)
    return hashlib.scrypt(secret, salt=salt, n=n, r=r, p=p, maxmem=maxmem, dklen=size)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    if not text:
        raise ValueError("empty")
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
