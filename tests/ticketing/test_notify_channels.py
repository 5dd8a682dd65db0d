"""E-mail and Telegram channels against real servers on loopback (aiosmtpd, a fake Bot API):
what goes out, and which refusals are final."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from pki import make_pki
from smtp_inbox import SmtpInbox
from telegram_fake import FakeTelegram

from kktmon.ticketing.calls import SinkError
from kktmon.ticketing.notify_channels import EmailChannel, TelegramChannel
from kktmon.ticketing.notify_config import SmtpSection, TelegramSection
from kktmon.ticketing.notify_text import Message
from kktmon.ticketing.sinks import RetryLaterError

MESSAGE = Message(
    subject="Касса перестанет пробивать чеки 26.12.2026 (store-001, заводской № 0012345678)",
    text="Здравствуйте!\n\nКасса перестанет пробивать чеки 26.12.2026\n",
    html="<!DOCTYPE html><html><body><h3>Касса &lt;1&gt;</h3></body></html>\n",
    telegram="<b>Касса перестанет пробивать чеки 26.12.2026</b>\nМагазин: store-001",
)
TO = "it@acme.example"


def _smtp(url: str, **more: object) -> SmtpSection:
    return SmtpSection.model_validate({"url": url, "from": "Сервис <svc@centre.example>"} | more)


@pytest.fixture
def inbox() -> Iterator[SmtpInbox]:
    with SmtpInbox() as server:
        yield server


def test_an_email_has_text_and_html_and_a_stable_id(inbox: SmtpInbox) -> None:
    EmailChannel(_smtp(inbox.url)).send(TO, MESSAGE, "kktmon-abc-n7")
    (got,) = inbox.received()
    assert got.mail_from == "svc@centre.example" and got.rcpt_tos == [TO]
    mail = got.message
    assert mail["Subject"] == MESSAGE.subject and mail["To"] == TO
    assert mail["Message-ID"] == "<kktmon-abc-n7@centre.example>"
    assert mail["Auto-Submitted"] == "auto-generated"
    assert "Сервис" in str(mail["From"])
    assert got.part("plain") == MESSAGE.text
    assert got.part("html") == MESSAGE.html


def test_login_over_plain_smtp() -> None:
    with SmtpInbox(credentials=("kktmon", "pw-9")) as server:
        smtp = _smtp(server.url, username="kktmon", password="pw-9")
        EmailChannel(smtp).send(TO, MESSAGE, "k1")
        assert server.logins == ["kktmon"] and len(server.received()) == 1
        wrong = _smtp(server.url, username="kktmon", password="nope")
        with pytest.raises(RetryLaterError, match="535"):  # ours to fix: kept pending
            EmailChannel(wrong).send(TO, MESSAGE, "k2")


def test_starttls_with_the_centres_ca(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki.path("server.crt"), pki.path("server.key"))
    with SmtpInbox(tls=context, require_tls=True) as server:
        plain = _smtp(server.url)
        with pytest.raises(RetryLaterError, match="530"):  # the server insists on TLS
            EmailChannel(plain).send(TO, MESSAGE, "k0")
        secure = _smtp(server.url, starttls=True, tls_ca_file=str(pki.path("ca.crt")))
        EmailChannel(secure).send(TO, MESSAGE, "k1")
        assert len(server.received()) == 1
        strange = _smtp(server.url, starttls=True, tls_ca_file=str(pki.path("other-ca.crt")))
        with pytest.raises(RetryLaterError, match="CERTIFICATE_VERIFY_FAILED"):
            EmailChannel(strange).send(TO, MESSAGE, "k2")


def test_a_refused_recipient_is_final_a_deferred_one_is_not(inbox: SmtpInbox) -> None:
    inbox.refuse.add("gone@acme.example")
    inbox.defer.add("busy@acme.example")
    channel = EmailChannel(_smtp(inbox.url))
    with pytest.raises(SinkError) as refused:
        channel.send("gone@acme.example", MESSAGE, "k1")
    assert not refused.value.retryable and "RCPT 550" in str(refused.value)
    with pytest.raises(SinkError) as deferred:
        channel.send("busy@acme.example", MESSAGE, "k2")
    assert deferred.value.retryable and "RCPT 451" in str(deferred.value)
    inbox.refuse_data = True
    with pytest.raises(SinkError) as rejected:
        channel.send(TO, MESSAGE, "k3")
    assert not rejected.value.retryable and "DATA 554" in str(rejected.value)
    assert inbox.received() == []


def test_a_server_that_is_down_is_retried() -> None:
    with SmtpInbox() as server:
        url = server.url  # a port that was just free, now closed again
    with pytest.raises(RetryLaterError, match="ConnectionRefused"):
        EmailChannel(_smtp(url, timeout_s=2)).send(TO, MESSAGE, "k1")


# --- Telegram --------------------------------------------------------------------------


@pytest.fixture
def bot() -> Iterator[FakeTelegram]:
    with FakeTelegram() as server:
        yield server


def _telegram(server: FakeTelegram, token: str | None = None) -> TelegramChannel:
    section = TelegramSection.model_validate(
        {"token": token or server.token, "api_url": server.base_url, "timeout_s": 5}
    )
    return TelegramChannel(section)


def test_telegram_send_message(bot: FakeTelegram) -> None:
    channel = _telegram(bot)
    try:
        channel.send("-1001234567890", MESSAGE, "k1")
        channel.send("@acme_kkt", MESSAGE, "k2")
    finally:
        channel.close()
    first, second = bot.sent
    assert first["chat_id"] == -1001234567890 and second["chat_id"] == "@acme_kkt"
    assert first["text"] == MESSAGE.telegram and first["parse_mode"] == "HTML"


@pytest.mark.parametrize(
    ("setup", "retryable", "reason"),
    [
        ("unknown", False, "telegram 400: Bad Request: chat not found"),
        ("blocked", False, "telegram 403: Forbidden: bot was blocked by the user"),
        ("limited", True, "telegram 429"),
        ("broken", True, "telegram 502"),
        ("token", True, "telegram 401: Unauthorized"),
    ],
)
def test_telegram_refusals(bot: FakeTelegram, setup: str, retryable: bool, reason: str) -> None:
    chat = "42"
    if setup == "unknown":
        bot.unknown.add(42)
    elif setup == "blocked":
        bot.blocked.add(42)
    elif setup == "limited":
        bot.rate_limit(1, retry_after=17)
    elif setup == "broken":
        bot.inject(1, 502)
    channel = _telegram(bot, "999:wrong-token" if setup == "token" else None)
    try:
        with pytest.raises(SinkError) as caught:
            channel.send(chat, MESSAGE, "k")
    finally:
        channel.close()
    assert caught.value.retryable is retryable and str(caught.value).startswith(reason)
    assert "wrong-token" not in str(caught.value) and bot.token not in str(caught.value)
    if setup == "limited":
        assert isinstance(caught.value, RetryLaterError) and caught.value.retry_after_s == 17
    assert bot.sent == []


def test_telegram_down_is_retried_and_the_token_stays_out_of_the_error() -> None:
    with FakeTelegram() as server:
        section = TelegramSection.model_validate(
            {"token": server.token, "api_url": server.base_url, "timeout_s": 2}
        )
    channel = TelegramChannel(section)
    try:
        with pytest.raises(RetryLaterError, match="ConnectError") as caught:
            channel.send("42", MESSAGE, "k")
    finally:
        channel.close()
    assert server.token not in str(caught.value)
