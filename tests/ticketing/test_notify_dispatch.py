"""The notifier end to end in one process: a register's state in the store (SQLite and
PostgreSQL), a scan, and delivery to a real SMTP server and a fake Bot API on loopback.
Time is injected (the scan's and the deliveries' ``now``, the notifier's clock)."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from datetime import date, datetime, timedelta

import pytest
from notify_rig import CHAT, EMAIL, NOW, days, drive_facts, notify_config, record
from smtp_inbox import SmtpInbox
from telegram_fake import FakeTelegram

from kktmon.ticketing import notify_store
from kktmon.ticketing.notify_dispatch import Notifier, build_channels
from kktmon.ticketing.notify_store import Notice
from kktmon.ticketing.store import TicketStore, open_store

ENDS = date(2026, 12, 10)  # 14 days after NOW, store-local


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def inbox() -> Iterator[SmtpInbox]:
    with SmtpInbox() as server:
        yield server


@pytest.fixture
def bot() -> Iterator[FakeTelegram]:
    with FakeTelegram() as server:
        yield server


def _notifier(store: TicketStore, store_url: str, clock: Clock, **options: object) -> Notifier:
    config = notify_config(store_url, **options)
    notifier = Notifier(
        store, config, build_channels(config), holder="w1", clock=clock, rng=random.Random(1)
    )
    return notifier


def _rows(store: TicketStore) -> list[Notice]:
    return store.transact(notify_store.records)


def test_one_email_and_one_telegram_message_per_threshold(
    store: TicketStore, store_url: str, inbox: SmtpInbox, bot: FakeTelegram
) -> None:
    clock = Clock(NOW)
    notifier = _notifier(store, store_url, clock, smtp_url=inbox.url, telegram_url=bot.base_url)
    try:
        record(store, drive_facts(ENDS))
        notifier.scan(NOW)
        stats = notifier.deliver_once(NOW)
        assert (stats.claimed, stats.delivered) == (2, 2)
        notifier.scan(NOW + timedelta(hours=1))
        assert notifier.deliver_once(NOW + timedelta(hours=1)).claimed == 0
    finally:
        notifier.close()
    (mail,) = inbox.received()
    assert mail.rcpt_tos == [EMAIL]
    assert mail.message["Subject"].startswith("Касса перестанет пробивать чеки 10.12.2026")
    text = mail.part("plain")
    assert "Магазин: store-001 (ООО «Акме» <&>)." in text
    assert "через 14 дней" in text and "заменит фискальный накопитель" in text
    assert "ООО «Акме» &lt;&amp;&gt;" in mail.part("html")
    (sent,) = bot.sent
    assert sent["chat_id"] == CHAT and "10.12.2026" in sent["text"]
    assert [(n.channel, n.state, n.attempts) for n in _rows(store)] == [
        ("email", "sent", 1),
        ("telegram", "sent", 1),
    ]


def test_a_channel_that_is_down_stays_pending_and_is_sent_once_back(
    store: TicketStore, store_url: str
) -> None:
    clock = Clock(NOW)
    with SmtpInbox() as server:
        url = server.url
    notifier = _notifier(store, store_url, clock, smtp_url=url)
    record(store, drive_facts(ENDS))
    notifier.scan(NOW)
    assert notifier.deliver_once(NOW).retrying == 1
    (row,) = _rows(store)
    assert row.state == "pending" and "ConnectionRefused" in (row.last_error or "")
    assert timedelta(seconds=10) <= row.next_attempt_at - NOW <= timedelta(seconds=11)
    assert notifier.deliver_once(NOW + timedelta(seconds=5)).claimed == 0  # not yet due
    clock.now = NOW + timedelta(seconds=11)
    assert notifier.deliver_once(clock.now).retrying == 1
    (row,) = _rows(store)
    assert 20 <= (row.next_attempt_at - clock.now).total_seconds() <= 22  # doubled
    with SmtpInbox(port=int(url.rsplit(":", 1)[1])) as restarted:
        clock.now = row.next_attempt_at
        assert notifier.deliver_once(clock.now).delivered == 1
        assert notifier.deliver_once(clock.now + days(1)).claimed == 0
        assert len(restarted.received()) == 1
    (row,) = _rows(store)
    assert (row.state, row.attempts, row.last_error) == ("sent", 3, None)


def test_a_refusal_for_good_is_failed_with_the_reason_and_never_retried(
    store: TicketStore, store_url: str, inbox: SmtpInbox, bot: FakeTelegram
) -> None:
    inbox.refuse.add(EMAIL)
    bot.blocked.add(CHAT)
    clock = Clock(NOW)
    notifier = _notifier(store, store_url, clock, smtp_url=inbox.url, telegram_url=bot.base_url)
    try:
        record(store, drive_facts(ENDS))
        notifier.scan(NOW)
        assert notifier.deliver_once(NOW).given_up == 2
        assert notifier.deliver_once(NOW + days(1)).claimed == 0
    finally:
        notifier.close()
    email, telegram = _rows(store)
    assert email.state == "failed" and "RCPT 550" in (email.last_error or "")
    assert telegram.state == "failed" and "403: Forbidden: bot was blocked" in (
        telegram.last_error or ""
    )
    assert len(inbox.rcpt_answers) == 1  # asked once, never again


def test_temporary_refusals_give_up_after_max_attempts(
    store: TicketStore, store_url: str, inbox: SmtpInbox
) -> None:
    inbox.defer.add(EMAIL)
    clock = Clock(NOW)
    notifier = _notifier(store, store_url, clock, smtp_url=inbox.url)
    record(store, drive_facts(ENDS))
    notifier.scan(NOW)
    for _ in range(4):  # max_attempts = 4
        clock.now += timedelta(hours=1)
        notifier.deliver_once(clock.now)
    (row,) = _rows(store)
    assert (row.state, row.attempts) == ("failed", 4) and "RCPT 451" in (row.last_error or "")
    assert notifier.deliver_once(clock.now + days(1)).claimed == 0


def test_telegram_rate_limits_are_waited_out(
    store: TicketStore, store_url: str, bot: FakeTelegram
) -> None:
    bot.rate_limit(1, retry_after=35)
    clock = Clock(NOW)
    options = {"smtp_url": None, "email": None, "telegram_url": bot.base_url}
    notifier = _notifier(store, store_url, clock, **options)
    try:
        record(store, drive_facts(ENDS))
        notifier.scan(NOW)
        notifier.deliver_once(NOW)
        telegram = next(n for n in _rows(store) if n.channel == "telegram")
        assert telegram.state == "pending" and telegram.next_attempt_at == NOW + timedelta(
            seconds=35
        )
        clock.now = NOW + timedelta(seconds=35)
        assert notifier.deliver_once(clock.now).delivered == 1
    finally:
        notifier.close()
    assert len(bot.sent) == 1


def test_a_digest_is_one_message_at_the_stores_morning(
    store: TicketStore, store_url: str, inbox: SmtpInbox
) -> None:
    clock = Clock(NOW + timedelta(hours=2))  # 11:00 in Moscow: today's digest has gone
    options = {"client": "digest = true\n", "smtp_url": inbox.url}
    notifier = _notifier(store, store_url, clock, **options)
    record(store, drive_facts(ENDS))
    record(store, drive_facts(ENDS + days(5)), site="store-002", kkt="atol-00106312345678")
    assert notifier.scan(clock.now) == 2
    assert notifier.deliver_once(clock.now).claimed == 0
    clock.now = NOW + days(1)  # 09:00 in Moscow the next day
    assert notifier.deliver_once(clock.now).delivered == 1
    (mail,) = inbox.received()
    assert mail.message["Subject"] == "Кассы ООО «Акме» <&>: сводка на 27.11.2026 (2)"
    text = mail.part("plain")
    assert "store-001" in text and "store-002" in text and text.count("заводской №") == 2
    assert {n.state for n in _rows(store)} == {"sent"}


def test_two_workers_delivering_at_once_send_each_message_once(
    store: TicketStore, store_url: str, inbox: SmtpInbox
) -> None:
    for n in range(20):
        record(store, drive_facts(ENDS), kkt=f"shtrih-{n:04d}")
    clock = Clock(NOW)
    notifiers = [
        _notifier(open_store(store_url), store_url, clock, smtp_url=inbox.url) for _ in range(2)
    ]
    assert notifiers[0].scan(NOW) == 20
    start = threading.Barrier(2)
    delivered: list[int] = []

    def deliver(notifier: Notifier) -> None:
        start.wait(10)
        while (stats := notifier.deliver_once(NOW)).claimed:
            delivered.append(stats.delivered)

    threads = [threading.Thread(target=deliver, args=(n,)) for n in notifiers]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        for notifier in notifiers:
            notifier.close()
            notifier.store.close()
    ids = [mail.message["Message-ID"] for mail in inbox.received()]
    assert len(ids) == len(set(ids)) == 20 == sum(delivered)
    assert {n.state for n in _rows(store)} == {"sent"}
