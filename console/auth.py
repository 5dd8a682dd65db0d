"""Who is asking: console users from the config, their scope, and the request's login.

A page request is authenticated by the session cookie (:mod:`.sessions`); an API request
by the cookie or by HTTP Basic with a console user's name and password. Either way a
client user's :class:`~kktmon.ticketing.fleet.Scope` is their client's sites, and every
query gets it: what lies outside is not found (404), never "forbidden", so a client cannot
even learn that another client's register exists.

Failed passwords, through the login form and through Basic alike, count against the user
name and the client address (:class:`~.sessions.LoginLimiter`); behind the reverse proxy
the address is the one the proxy forwards (uvicorn trusts ``X-Forwarded-For`` from
``FORWARDED_ALLOW_IPS``, by default 127.0.0.1).
"""

from __future__ import annotations

import base64
import binascii
import hmac
from dataclasses import dataclass

from fastapi import Request

from kktmon.console.sessions import COOKIE, LoginLimiter, Session, Sessions, limit_keys
from kktmon.ticketing.config import TicketingConfig
from kktmon.ticketing.fleet import Scope
from kktmon.ticketing.passwords import verify_password


@dataclass(frozen=True)
class Principal:
    """A logged-in console user and what they may see."""

    name: str
    role: str
    client: str | None
    scope: Scope

    @property
    def is_engineer(self) -> bool:
        return self.role == "engineer"


class LoginRequiredError(Exception):
    """A page asked for without a session: the login page answers it."""


class UnauthorizedError(Exception):
    """An API request without valid credentials (401 with a Basic challenge)."""


class TooManyAttemptsError(Exception):
    """Too many failed logins for this user or address: 429, try after ``retry_after`` s."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed logins; try again in {retry_after} s")
        self.retry_after = retry_after


class BadCsrfError(Exception):
    """A form posted without this session's CSRF token."""


class Accounts:
    """The ``[[console.users]]`` of one configuration."""

    def __init__(self, config: TicketingConfig, limiter: LoginLimiter | None = None) -> None:
        self.config = config
        self.limiter = limiter or LoginLimiter()

    def principal(self, name: str) -> Principal | None:
        """The user called ``name`` as a principal (None once removed from the config)."""
        user = self.config.console.user(name)
        if user is None:
            return None
        if user.role == "engineer":
            return Principal(user.name, user.role, None, Scope())
        client = next((c for c in self.config.clients if c.id == user.client), None)
        sites = frozenset(client.sites) if client is not None else frozenset()
        return Principal(user.name, user.role, user.client, Scope(sites=sites))

    def login(self, name: str, password: str, address: str | None) -> Principal | None:
        """The principal when ``password`` is ``name``'s; None (counted) when not.

        :class:`TooManyAttemptsError` before any check when the user or address is over the
        limit. Unknown names cost the same scrypt as known ones.
        """
        keys = limit_keys(name, address)
        wait = self.limiter.retry_after(keys)
        if wait is not None:
            raise TooManyAttemptsError(wait)
        user = self.config.console.user(name)
        encoded = user.password_hash if user is not None else None
        if not verify_password(password, encoded) or user is None:
            self.limiter.failed(keys)
            return None
        self.limiter.succeeded(keys[0])
        return self.principal(user.name)


def client_address(request: Request) -> str | None:
    return request.client.host if request.client else None


def basic_credentials(request: Request) -> tuple[str, str] | None:
    """``(name, password)`` from an ``Authorization: Basic`` header, if well-formed."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    name, sep, password = decoded.partition(":")
    return (name, password) if sep else None


def session_of(request: Request, sessions: Sessions) -> Session | None:
    return sessions.load(request.cookies.get(COOKIE))


def from_session(request: Request, sessions: Sessions, accounts: Accounts) -> Principal | None:
    """The principal of a logged-in session cookie, if any."""
    session = session_of(request, sessions)
    if session is None or session.user is None:
        return None
    return accounts.principal(session.user)


def api_principal(request: Request, sessions: Sessions, accounts: Accounts) -> Principal:
    """The cookie's user, else HTTP Basic's; :class:`UnauthorizedError` when neither."""
    found = from_session(request, sessions, accounts)
    if found is not None:
        return found
    credentials = basic_credentials(request)
    if credentials is None:
        raise UnauthorizedError("log in, or send a console user's credentials (HTTP Basic)")
    found = accounts.login(*credentials, client_address(request))
    if found is None:
        raise UnauthorizedError("wrong user name or password")
    return found


def check_csrf(session: Session | None, token: str | None) -> None:
    """:class:`BadCsrfError` unless ``token`` is ``session``'s own."""
    if session is None or not token:
        raise BadCsrfError("the form expired; load the page again")
    if not hmac.compare_digest(session.csrf.encode(), token.encode("utf-8", "replace")):
        raise BadCsrfError("the form expired; load the page again")
