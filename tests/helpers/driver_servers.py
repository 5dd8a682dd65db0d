"""URLs of the fake driver servers (atol-web, kkmserver) as tests hand them to kktmon."""

from __future__ import annotations

from kktmon.protocol.settings import split_password


def password_apart(url: str) -> tuple[str, str]:
    """The fake's URL without its password, and the password (the fakes always have one)."""
    bare, password = split_password(url)
    assert password is not None, url
    return bare, password
