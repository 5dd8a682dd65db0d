"""The console's session cookie and its login rate limit (no database, no extra package).

The cookie is our own HMAC-SHA256 over a small JSON body (user, session id, CSRF token,
issue time) rather than Starlette's ``SessionMiddleware``: that one fixes the ``Secure``
flag when the app is built, while the console sets it per request (a request that came
through the TLS proxy gets ``Secure``), and it cannot forget a session at logout. Here a
logout revokes the session id for as long as the cookie could still be valid, and
sessions expire ``max_age_s`` after login whatever the browser keeps.

The signing key is ``[console] session_secret_file`` (workers behind one proxy share
it) or a random one per start. A client that shows no valid cookie is anonymous; an
anonymous session exists only to carry the login form's CSRF token.

:class:`LoginLimiter`: failed logins counted per user name and per client address in a
sliding window; past the limit every attempt is refused with the seconds to wait, and
the password is not even checked (scrypt costs 16 MiB and ~50 ms a try).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import secrets
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

COOKIE = "kktmon_session"
MAX_AGE_S = 12 * 3600


@dataclass(frozen=True)
class Session:
    """What the cookie carries; ``user`` is None before login."""

    sid: str
    csrf: str
    issued: int
    user: str | None = None


def new_session(user: str | None, now: float) -> Session:
    """A fresh session (a new id and CSRF token: never reuse one across a login)."""
    return Session(secrets.token_urlsafe(16), secrets.token_urlsafe(24), int(now), user)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Sessions:
    """Signs, reads and revokes session cookies."""

    def __init__(
        self,
        secret: bytes | None = None,
        max_age_s: float = MAX_AGE_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        seed = secret or secrets.token_bytes(32)
        self._key = hashlib.sha256(b"kktmon console session\0" + seed).digest()
        self.max_age_s = max_age_s
        self.clock = clock
        self._revoked: dict[str, float] = {}
        self._lock = threading.Lock()

    def _sign(self, body: str) -> str:
        return _b64(hmac.new(self._key, body.encode("ascii"), "sha256").digest())

    def dump(self, session: Session) -> str:
        """The cookie value for ``session``."""
        data = {"s": session.sid, "c": session.csrf, "i": session.issued, "u": session.user}
        body = _b64(json.dumps(data, separators=(",", ":")).encode("utf-8"))
        return f"{body}.{self._sign(body)}"

    def load(self, cookie: str | None) -> Session | None:
        """The session a cookie carries, if signed by us, not expired and not revoked."""
        session = self._verified(cookie)
        if session is None:
            return None
        now = self.clock()
        if not session.issued <= now + 60 or now - session.issued > self.max_age_s:
            return None
        with self._lock:
            return None if session.sid in self._revoked else session

    def _verified(self, cookie: str | None) -> Session | None:
        """The session in a cookie with our signature, whatever its age."""
        if not cookie or cookie.count(".") != 1:
            return None
        body, mac = cookie.split(".")
        if not hmac.compare_digest(mac.encode("ascii", "replace"), self._sign(body).encode()):
            return None
        try:
            data = json.loads(_unb64(body))
            user = data["u"]
            if user is not None and not isinstance(user, str):
                return None
            return Session(str(data["s"]), str(data["c"]), int(data["i"]), user)
        except (ValueError, KeyError, TypeError, binascii.Error):
            return None

    def revoke(self, session: Session) -> None:
        """Forget ``session`` for good (logout), until its cookie would have expired."""
        now = self.clock()
        with self._lock:
            self._revoked = {sid: t for sid, t in self._revoked.items() if t > now}
            self._revoked[session.sid] = session.issued + self.max_age_s


class LoginLimiter:
    """At most ``failures`` failed logins per key (user, address) in ``window_s``."""

    def __init__(
        self,
        failures: int = 5,
        window_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 10_000,
    ) -> None:
        self.failures, self.window_s, self.clock = failures, window_s, clock
        self.max_keys = max_keys  # many made-up names must not fill the memory
        self._seen: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._seen.get(key, deque())
        while times and times[0] <= now - self.window_s:
            times.popleft()
        return times

    def retry_after(self, keys: Sequence[str]) -> int | None:
        """Seconds until any of ``keys`` may try again, or None if none is blocked."""
        now = self.clock()
        wait = 0.0
        with self._lock:
            for key in keys:
                times = self._recent(key, now)
                if len(times) >= self.failures:
                    wait = max(wait, times[-self.failures] + self.window_s - now)
        return max(1, math.ceil(wait)) if wait > 0 else None

    def failed(self, keys: Sequence[str]) -> None:
        """Count one failed attempt against each of ``keys``."""
        now = self.clock()
        with self._lock:
            for key in keys:
                times = self._recent(key, now)
                times.append(now)
                self._seen[key] = times
                self._seen.move_to_end(key)
            while len(self._seen) > self.max_keys:
                self._seen.popitem(last=False)

    def succeeded(self, key: str) -> None:
        """A good password clears its user's count (not its address's)."""
        with self._lock:
            self._seen.pop(key, None)


def limit_keys(user: str, address: str | None) -> list[str]:
    """The keys one login attempt counts against."""
    return [f"user:{user.casefold()}", f"addr:{address or '?'}"]
