"""A real SMTP server on loopback for notification tests (aiosmtpd), keeping what it gets.

``with SmtpInbox() as inbox:`` serves ``smtp://127.0.0.1:<inbox.port>`` from a thread
(aiosmtpd's controller) and stores each accepted message, parsed, in ``inbox.messages``.
Per recipient it can answer ``RCPT`` with a final refusal (``refuse``: 550) or a
temporary one (``defer``: 451); ``refuse_data`` answers the message itself with 554.
``port`` serves on a given port (a server back where it was);
``credentials`` requires AUTH LOGIN/PLAIN (without TLS, for the test); ``tls`` (an
``ssl.SSLContext``) offers STARTTLS and ``require_tls`` insists on it.
"""

from __future__ import annotations

import email
import email.policy
import ssl
import threading
from dataclasses import dataclass
from email.message import EmailMessage
from types import TracebackType
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from mqtt_broker import free_port


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage

    def part(self, subtype: str) -> str:
        """The text of the ``text/<subtype>`` part, with the wire's CRLF as LF."""
        body = self.message.get_body(preferencelist=(subtype,))
        assert body is not None, f"no text/{subtype} part"
        content = body.get_content()
        assert isinstance(content, str)
        return content.replace("\r\n", "\n")


class SmtpInbox:
    """See the module docstring."""

    def __init__(
        self,
        *,
        credentials: tuple[str, str] | None = None,
        tls: ssl.SSLContext | None = None,
        require_tls: bool = False,
        port: int | None = None,
    ) -> None:
        self.messages: list[Received] = []
        self.refuse: set[str] = set()
        self.defer: set[str] = set()
        self.refuse_data = False
        self.rcpt_answers: list[str] = []
        self.logins: list[str] = []
        self._lock = threading.Lock()
        self._credentials = credentials
        self.port = port or free_port()
        options: dict[str, Any] = {}
        if credentials is not None:
            options.update(authenticator=self._authenticate, auth_require_tls=False)
        if tls is not None:
            options.update(tls_context=tls, require_starttls=require_tls)
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port, **options)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def received(self) -> list[Received]:
        with self._lock:
            return list(self.messages)

    def __enter__(self) -> SmtpInbox:
        self._controller.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._controller.stop()

    # --- aiosmtpd's handler hooks (called on the controller's thread) --------------------

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        if address in self.refuse:
            answer = "550 5.1.1 <" + address + ">: mailbox unavailable"
        elif address in self.defer:
            answer = "451 4.3.0 try again later"
        else:
            envelope.rcpt_tos.append(address)
            answer = "250 OK"
        with self._lock:
            self.rcpt_answers.append(answer)
        return answer

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        if self.refuse_data:
            return "554 5.6.0 message content rejected"
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        with self._lock:
            self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), parsed))
        return "250 2.0.0 accepted"

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and self._credentials is not None
        if ok and (data.login.decode(), data.password.decode()) == self._credentials:
            with self._lock:
                self.logins.append(data.login.decode())
            return AuthResult(success=True)
        return AuthResult(success=False, handled=False)
