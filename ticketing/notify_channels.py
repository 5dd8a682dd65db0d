"""The two ways a client is told: e-mail over SMTP and Telegram bot messages.

A channel sends one message to one recipient or raises a
:class:`~kktmon.ticketing.calls.SinkError` saying whether trying later may help:

* **SMTP** (stdlib ``smtplib``): ``smtp://`` plain, upgraded with STARTTLS when
  ``starttls = true``; ``smtps://`` TLS from the first byte; LOGIN/PLAIN when a username
  is set. A 5xx answer to the recipient (``RCPT``) or to the message (``DATA``) is final:
  that server will not take this message, ever. 4xx answers, a refused sender or login
  (the centre's configuration, fixable), timeouts and connection errors are retried. The
  ``Message-ID`` is the notification's own key, the same at every attempt, so a repeat
  after a worker died mid-delivery is recognisable as one by the mail systems that look.
* **Telegram** (``POST <api_url>/bot<token>/sendMessage`` over httpx, HTML parse mode):
  400 (a chat that does not exist, a malformed message) and 403 (the bot was blocked or
  removed) are final; 429 (waiting ``retry_after``), 5xx and connection errors are
  retried, and so are 401/404, which mean a wrong token (the centre's to fix). The
  token never reaches a log line: requests are built without it and a transport puts it
  into the path on the way out, as the Okdesk sink does with its token.
"""

from __future__ import annotations

import email.utils
import re
import smtplib
import ssl
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any, Protocol

import httpx

from kktmon.ticketing.calls import SinkError
from kktmon.ticketing.notify_config import SmtpSection, TelegramSection
from kktmon.ticketing.notify_text import Message
from kktmon.ticketing.sinks import RetryLaterError

TELEGRAM_MAX = 4096


class Channel(Protocol):
    """One way of telling people."""

    name: str

    def send(self, recipient: str, message: Message, key: str) -> None:
        """Deliver or raise :class:`SinkError` (``retryable`` says whether to try again)."""
        ...


def _final(code: int) -> bool:
    return 500 <= code < 600


class EmailChannel:
    """``[notify.smtp]``: one SMTP session per message (a few a day, not a stream)."""

    name = "email"

    def __init__(self, smtp: SmtpSection) -> None:
        self._smtp = smtp
        self._sender = email.utils.parseaddr(smtp.from_)[1]
        self._domain = self._sender.rpartition("@")[2] or "kktmon.invalid"

    def build(self, recipient: str, message: Message, key: str) -> EmailMessage:
        """The e-mail: plain text with an HTML alternative, and a stable Message-ID."""
        mail = EmailMessage()
        mail["Subject"] = message.subject
        mail["From"] = self._smtp.from_
        mail["To"] = recipient
        mail["Date"] = email.utils.format_datetime(datetime.now(UTC))
        mail["Message-ID"] = f"<{key}@{self._domain}>"
        mail["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies, please
        mail.set_content(message.text)
        mail.add_alternative(message.html, subtype="html")
        return mail

    def send(self, recipient: str, message: Message, key: str) -> None:
        mail = self.build(recipient, message, key)
        where = f"smtp {self._smtp.host}:{self._smtp.port}"
        try:
            with self._connect() as client:
                client.send_message(mail, from_addr=self._sender, to_addrs=[recipient])
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = exc.recipients.get(recipient, (450, b"refused"))
            raise SinkError(
                f"{where}: RCPT {code} {_text(text)}", retryable=not _final(code)
            ) from None
        except smtplib.SMTPDataError as exc:
            detail = f"{where}: DATA {exc.smtp_code} {_text(exc.smtp_error)}"
            raise SinkError(detail, retryable=not _final(exc.smtp_code)) from None
        except smtplib.SMTPResponseException as exc:  # sender, login, greeting: ours to fix
            raise RetryLaterError(f"{where}: {exc.smtp_code} {_text(exc.smtp_error)}") from None
        except (smtplib.SMTPException, OSError) as exc:
            raise RetryLaterError(f"{where}: {type(exc).__name__}: {exc}") from None

    def _connect(self) -> smtplib.SMTP:
        smtp = self._smtp
        timeout = smtp.timeout_s
        if smtp.implicit_tls:
            return _logged_in(
                smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=timeout, context=self._tls()),
                smtp,
            )
        client = smtplib.SMTP(smtp.host, smtp.port, timeout=timeout)
        try:
            if smtp.starttls:
                client.starttls(context=self._tls())
            return _logged_in(client, smtp)
        except BaseException:
            client.close()
            raise

    def _tls(self) -> ssl.SSLContext:
        ca = self._smtp.tls_ca_file
        return ssl.create_default_context(cafile=str(ca) if ca is not None else None)


def _logged_in(client: smtplib.SMTP, smtp: SmtpSection) -> smtplib.SMTP:
    if smtp.username is not None and smtp.password is not None:
        try:
            client.login(smtp.username, smtp.password.get_secret_value())
        except BaseException:
            client.close()
            raise
    return client


def _text(value: bytes | str) -> str:
    raw = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    return " ".join(raw.split())[:500]


class _TokenPath(httpx.BaseTransport):
    """Puts the bot token into ``/bot/<method>`` only on the request's way to the network."""

    def __init__(self, inner: httpx.BaseTransport, token: str) -> None:
        self._inner = inner
        self._token = token

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.raw_path.decode("ascii")
        head, _, method = path.rpartition("/bot/")
        forwarded = httpx.Request(
            request.method,
            request.url.copy_with(raw_path=f"{head}/bot{self._token}/{method}".encode()),
            headers=request.headers,
            stream=request.stream,
            extensions=request.extensions,
        )
        return self._inner.handle_request(forwarded)

    def close(self) -> None:
        self._inner.close()


class TelegramChannel:
    """``[notify.telegram]``: the Bot API's ``sendMessage``."""

    name = "telegram"

    def __init__(self, bot: TelegramSection, transport: httpx.BaseTransport | None = None) -> None:
        token = bot.token.get_secret_value() if bot.token is not None else ""
        self._token = token
        inner = transport or httpx.HTTPTransport()
        self._client = httpx.Client(
            base_url=bot.api_url, timeout=bot.timeout_s, transport=_TokenPath(inner, token)
        )

    def send(self, recipient: str, message: Message, key: str) -> None:
        chat: int | str = int(recipient) if re.fullmatch(r"-?\d+", recipient) else recipient
        body = {
            "chat_id": chat,
            "text": _fit(message.telegram),
            "parse_mode": "HTML",
            "disable_web_page_preview": True,
        }
        try:
            response = self._client.post("bot/sendMessage", json=body)
        except httpx.HTTPError as exc:
            raise RetryLaterError(f"telegram: {type(exc).__name__}: {self._redact(exc)}") from None
        answer = _json(response)
        if response.is_success and answer.get("ok"):
            return
        status = response.status_code
        reason = answer.get("description") or response.reason_phrase
        why = f"telegram {status}: {self._redact(reason)}"
        if status == 429:
            after = (answer.get("parameters") or {}).get("retry_after")
            wait = float(after) if isinstance(after, int | float) else None
            raise RetryLaterError(why, retry_after_s=wait)
        raise SinkError(why, retryable=status not in (400, 403))

    def _redact(self, value: object) -> str:
        return str(value).replace(self._token, "***") if self._token else str(value)

    def close(self) -> None:
        self._client.close()


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        value = response.json()
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _fit(text: str) -> str:
    """At most Telegram's 4096 characters, cut between blocks so no tag is left open."""
    if len(text) <= TELEGRAM_MAX:
        return text
    cut = text.rfind("\n\n", 0, TELEGRAM_MAX - 10)
    return text[: cut if cut > 0 else TELEGRAM_MAX - 10] + "\n\n…"
