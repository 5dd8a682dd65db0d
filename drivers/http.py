"""HTTP sessions to a vendor's driver server (ATOL Web Requests, kkmserver).

Adapters that read a register through the software the POS already uses share this
module: one URL form, one client (httpx), one error translation, bounded retries.

URL form (``<adapter>`` is the vendor name, e.g. ``atol-web`` or ``kkmserver``)::

    <adapter>://[user[:password]@]host[:port]/?key=value&...      plain HTTP
    <adapter>+https://[user[:password]@]host[:port]/?ca=/etc/kktmon/ca.pem

The password may instead come from ``DriverOptions.connection_password`` (the agent
config's ``connection_password``, with its env/file secret handling), so it need not sit
in the URL. Options every server URL accepts:

* ``ca=<file>`` — PEM bundle to verify the server's certificate (HTTPS);
* ``insecure=1`` — do not verify the certificate (a self-signed server in a shop).

Credentials never reach a log line or an error message: the client's base URL carries
no user info, and :meth:`ServerUrl.redacted` is what messages show.
"""

from __future__ import annotations

import json
import socket
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import httpx
import tenacity
from pydantic import BaseModel

from kktmon.drivers.base import Driver, DriverOptions
from kktmon.protocol.errors import (
    ConfigError,
    LinkTimeoutError,
    MalformedAnswerError,
    ServerAuthError,
    ServerDownError,
    TransportClosedError,
)
from kktmon.protocol.tolerant import validate_tolerant

M = TypeVar("M", bound=BaseModel)

#: Query keys every server URL accepts; adapters add their own.
COMMON_OPTIONS = frozenset({"ca", "insecure"})
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class ServerUrl:
    """A parsed driver-server URL; ``password`` never appears in ``repr``."""

    adapter: str
    https: bool
    host: str
    port: int
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    options: Mapping[str, str] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        """``http(s)://host:port`` — no credentials: this is what httpx may log."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.https else 'http'}://{host}:{self.port}"

    @property
    def redacted(self) -> str:
        """The URL as an operator wrote it, with the password masked."""
        scheme = f"{self.adapter}+https" if self.https else self.adapter
        who = ""
        if self.user is not None:
            who = quote(self.user, safe="") + (":***" if self.password else "") + "@"
        query = "&".join(f"{key}={value}" for key, value in self.options.items())
        return f"{scheme}://{who}{self.base_url.split('://', 1)[1]}/" + (
            f"?{query}" if query else ""
        )

    def flag(self, key: str) -> bool:
        value = self.options.get(key, "0").lower()
        if value not in _TRUE | _FALSE:
            raise ConfigError(f"{self.redacted}: {key}={value!r} is not a yes/no value")
        return value in _TRUE


def parse_server_url(
    url: str,
    adapter: str,
    default_port: int,
    *,
    allowed_options: frozenset[str] = frozenset(),
    options: DriverOptions | None = None,
) -> ServerUrl:
    """Parse ``url`` for ``adapter``; a wrong scheme, port or option is a ConfigError."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in (adapter, f"{adapter}+https", f"{adapter}+http"):
        raise ConfigError(
            f"{adapter} URL must start with {adapter}:// or {adapter}+https://, got "
            f"{scheme or 'no scheme'}://"
        )
    if not parts.hostname:
        raise ConfigError(f"{adapter} URL names no host (expected {adapter}://host:port/)")
    try:
        port = parts.port or default_port
    except ValueError as exc:
        raise ConfigError(f"{adapter} URL: {exc}") from exc
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = sorted(set(query) - COMMON_OPTIONS - allowed_options)
    if unknown:
        known = ", ".join(sorted(COMMON_OPTIONS | allowed_options))
        raise ConfigError(f"{adapter} URL: unknown option {', '.join(unknown)} (known: {known})")
    password = unquote(parts.password) if parts.password is not None else None
    if not password and options is not None:
        password = options.connection_password or password
    return ServerUrl(
        adapter=adapter,
        https=scheme.endswith("+https"),
        host=parts.hostname,
        port=port,
        user=unquote(parts.username) if parts.username is not None else None,
        password=password,
        options=query,
    )


@dataclass(frozen=True)
class HttpAnswer:
    """One HTTP answer: status, parsed JSON body (None when empty), header lookup."""

    status: int
    body: Any
    headers: Mapping[str, str]


class HttpSession:
    """One poll's connection to a driver server: deadline, retries and byte figures.

    Every call is bounded by the poll deadline. Transport failures are translated into
    the project's errors (:class:`ServerDownError`, :class:`LinkTimeoutError`,
    :class:`TransportClosedError`); a 401 is :class:`ServerAuthError`; a 2xx body that
    is not JSON is :class:`MalformedAnswerError` (an error status with a text page is
    returned with ``body=None``). Every other status is the adapter's to
    interpret (404, 408 and 409 mean different things to different servers).
    """

    def __init__(
        self,
        server: ServerUrl,
        options: DriverOptions,
        *,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        self.server = server
        self.options = options
        self.deadline = time.monotonic() + options.poll_deadline_s
        self.retries = 0
        self.bytes_tx = 0
        self.bytes_rx = 0
        auth = (server.user or "", server.password or "") if server.user is not None else None
        self._client = httpx.Client(
            base_url=server.base_url,
            auth=auth,
            headers={"Content-Type": "application/json; charset=utf-8"},
            transport=_transport(verify),
            follow_redirects=False,
            # A driver server sits on the shop's LAN: a system-wide HTTP_PROXY or a
            # .netrc must not route the register's reads (or lend a password). Our own
            # transport already skips env proxies; this also keeps .netrc out.
            trust_env=False,
        )

    def remaining(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise LinkTimeoutError(
                f"{self.server.redacted}: poll deadline of {self.options.poll_deadline_s} s"
            )
        return left

    def call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        timeout_s: float | None = None,
    ) -> HttpAnswer:
        """One request, retried (same body) when the connection broke mid-way.

        Re-sending the same body is safe for the servers we talk to: an ATOL job keeps
        its uuid (a repeat is answered 409) and a kkmserver command its ``IdCommand``
        (a repeat returns the stored result), so nothing runs twice.
        """
        retryer = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.options.exchange_attempts)
            | tenacity.stop_after_delay(max(self.deadline - time.monotonic(), 0)),
            wait=tenacity.wait_exponential(multiplier=0.1, max=1.0),
            retry=tenacity.retry_if_exception_type((TransportClosedError, MalformedAnswerError)),
            before_sleep=self._count_retry,
            reraise=True,
        )
        return retryer(self._once, method, path, params, body, timeout_s)

    def _count_retry(self, _state: tenacity.RetryCallState) -> None:
        self.retries += 1

    def _once(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None,
        body: Any,
        timeout_s: float | None,
    ) -> HttpAnswer:
        content = None if body is None else json.dumps(body, ensure_ascii=False).encode()
        timeout = min(timeout_s or self.options.answer_timeout_s, self.remaining())
        where = f"{self.server.redacted} {method} {path}"
        try:
            response = self._client.request(
                method, path, params=params, content=content, timeout=timeout
            )
        except httpx.ConnectTimeout as exc:
            raise ServerDownError(f"{where}: no answer to connect within {timeout:.1f} s") from exc
        except httpx.ConnectError as exc:
            raise ServerDownError(f"{where}: cannot connect ({_reason(exc)})") from exc
        except httpx.TimeoutException as exc:
            raise LinkTimeoutError(f"{where}: no answer within {timeout:.1f} s") from exc
        except httpx.HTTPError as exc:
            raise TransportClosedError(f"{where}: connection broke ({_reason(exc)})") from exc
        self.bytes_tx += _size(response.request.headers, len(content or b""))
        self.bytes_rx += _size(response.headers, len(response.content))
        if response.status_code == 401:
            raise ServerAuthError(f"{where}: HTTP 401, the server rejects the credentials")
        return HttpAnswer(response.status_code, _json(response, where), response.headers)

    def close(self) -> None:
        self._client.close()


def _transport(verify: ssl.SSLContext | bool) -> httpx.HTTPTransport:
    # A request goes out as headers then body; with Nagle on, the body waits for the
    # server's delayed ACK (40 ms on Linux) on every POST.
    no_delay = (socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return httpx.HTTPTransport(verify=verify, socket_options=[no_delay])


def tls_verification(server: ServerUrl) -> ssl.SSLContext | bool:
    """How to check the server's certificate; build it once per driver (a bad CA file
    is a ConfigError at start-up, not a failed poll every minute, and loading the CA
    store costs tens of milliseconds). Plain HTTP needs no certificate store at all."""
    if not server.https:
        return False
    if server.flag("insecure"):
        return False
    ca = server.options.get("ca")
    try:
        return ssl.create_default_context(cafile=ca) if ca else ssl.create_default_context()
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"{server.redacted}: cannot load CA file {ca}: {exc}") from exc


def _json(response: httpx.Response, where: str) -> Any:
    """The parsed body. Only a success must be JSON: an error page in plain text (a
    proxy's 502, a server's 404) still carries its status, with no body."""
    if not response.content.strip():
        return None
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        if not response.is_success:
            return None
        raise MalformedAnswerError(
            f"{where}: HTTP {response.status_code} with a body that is not JSON: "
            f"{response.content[:80]!r}"
        ) from exc


def _size(headers: httpx.Headers, body: int) -> int:
    return body + sum(len(key) + len(value) + 4 for key, value in headers.raw)


def _reason(exc: httpx.HTTPError) -> str:
    return str(exc) or type(exc).__name__


class HttpDriver(Driver[HttpSession]):
    """Base of the adapters that read a register through its vendor's driver server.

    Subclasses name the adapter (``vendor``, also the URL scheme), the server's default
    port and the URL options they understand, then implement ``_identify`` and
    ``_poll`` with :meth:`HttpSession.call`. The register's own family goes into
    ``HealthSnapshot.device.vendor`` (an ATOL read through Web Requests is ``atol``), so
    its MQTT name does not change when a shop moves from the wire to the server.
    """

    default_port: ClassVar[int]
    url_options: ClassVar[frozenset[str]] = frozenset()

    def setup(self) -> None:
        self.server = parse_server_url(
            self.url,
            self.vendor,
            self.default_port,
            allowed_options=self.url_options,
            options=self.options,
        )
        self._verify = tls_verification(self.server)  # a bad CA file fails now, once

    def _open_session(self) -> HttpSession:
        return HttpSession(self.server, self.options, verify=self._verify)

    def _validated(self, model: type[M], data: Any, what: str) -> M:
        """``model`` from an answer, one odd field read as null rather than the poll lost.

        Each field dropped counts in :attr:`invalid_fields`; the first time a field of
        ``what`` is dropped it is logged (a server keeps sending the same oddity every
        poll, and the log should say so once, not every minute).
        """
        value, dropped = validate_tolerant(model, data, what=f"{self.vendor} {what}")
        for path in dropped:
            message = f"{self.server.redacted}: {what} field {path} does not validate; read as null"
            self._read_as_null(f"{what}: {path}", message)
        return value

    @property
    def transport_name(self) -> str:
        """``device.transport`` of the snapshots: the adapter and how it is reached."""
        return f"{self.vendor}+{'https' if self.server.https else 'http'}"
