"""What a client reads: the store, the register, the date in the store's zone, what the
service centre does, the ticket; Russian by default, English by config, HTML escaped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from kktmon.ticketing.notify_store import Notice
from kktmon.ticketing.notify_text import compose

MOSCOW = ZoneInfo("Europe/Moscow")
NOW = datetime(2026, 12, 12, 7, 0, tzinfo=UTC)  # 10:00 in Moscow
BLOCK = datetime(2026, 12, 26, tzinfo=MOSCOW)  # the drive's last date's midnight
FACTS = {
    "model": "ШТРИХ-М-01Ф",
    "serial": "0012345678",
    "rnm": "0000000001012345",
    "fn_serial": "9999078900001234",
    "client_name": "ООО «Акме» <&>",
    "language": "ru",
}


def _zone(site: str) -> tzinfo:
    return MOSCOW


def notice(cause: str = "fn_expiry", *, ref: str | None = "OK-4711", **facts: Any) -> Notice:
    return Notice(
        id=7,
        site="store-001",
        kkt="shtrih-0012345678",
        cause=cause,
        subject="9999078900001234",
        threshold=14,
        channel="email",
        recipient="it@acme.example",
        client="acme",
        facts=FACTS | facts,
        block_at=BLOCK,
        digest_key=None,
        state="claimed",
        attempts=1,
        next_attempt_at=NOW,
        claimed_until=None,
        last_error=None,
        created_at=NOW,
        sent_at=None,
        ticket_ref=ref,
    )


SAMPLE = """\
Здравствуйте!

Касса перестанет пробивать чеки 26.12.2026

Магазин: store-001 (ООО «Акме» <&>).
Касса: ШТРИХ-М-01Ф, заводской № 0012345678, РН ККТ 0000000001012345.
Срок действия фискального накопителя № 9999078900001234 заканчивается: с 26.12.2026 касса \
перестанет пробивать чеки (через 14 дней).
Что сделаем мы: инженер сервисного центра заменит фискальный накопитель и перерегистрирует \
кассу до этой даты; мы свяжемся с вами, чтобы согласовать время.
Заявка: OK-4711.

-- \nЭто автоматическое сообщение системы мониторинга касс kktmon. С вопросами обращайтесь \
в ваш сервисный центр.
"""


def test_the_russian_sample() -> None:
    message = compose([notice()], _zone, NOW)
    assert message.text == SAMPLE
    assert message.subject == (
        "Касса перестанет пробивать чеки 26.12.2026 (store-001, заводской № 0012345678)"
    )


def test_html_and_telegram_escape_every_value() -> None:
    message = compose([notice(model="<script>x</script>")], _zone, NOW)
    assert "<script>" not in message.html and "&lt;script&gt;" in message.html
    assert "ООО «Акме» &lt;&amp;&gt;" in message.html and '<html lang="ru">' in message.html
    assert "<script>" not in message.telegram and "&lt;&amp;&gt;" in message.telegram
    assert message.telegram.startswith("<b>Касса перестанет пробивать чеки 26.12.2026</b>\n")


def test_the_date_is_the_stores_own() -> None:
    yekaterinburg = ZoneInfo("Asia/Yekaterinburg")
    ofd_block = datetime(2026, 12, 20, 19, 30, tzinfo=UTC)  # 21.12 00:30 in Yekaterinburg
    item = notice(
        "ofd_30_days",
        unsent_count=12,
        first_unsent_at=(ofd_block - timedelta(days=30)).isoformat(),
        ref=None,
    )
    item = Notice(**{**item.__dict__, "block_at": ofd_block})
    message = compose([item], lambda site: yekaterinburg, NOW)
    assert "21.12.2026 в 00:30 касса перестанет пробивать чеки (через 9 дней)" in message.text
    assert "документов ждут отправки: 12, первый — с 21.11.2026" in message.text
    assert "проверьте, что у кассы есть интернет" in message.text
    assert "инженер проверит связь с ОФД" in message.text
    assert "Заявка" not in message.text  # no ticket yet


def test_english_by_config() -> None:
    message = compose([notice(language="en")], _zone, NOW)
    assert (
        message.subject == "The register stops selling on 2026-12-26 (store-001, serial 0012345678)"
    )
    assert "from 2026-12-26 the register cannot print receipts (in 14 days)" in message.text
    assert "a service engineer will replace the fiscal drive" in message.text
    assert "Ticket: OK-4711." in message.text


def test_ticket_news() -> None:
    opened = notice("ticket_open", problem="PAPER_OUT", ticket_id=5, ref="OK-9")
    message = compose([opened], _zone, NOW)
    assert message.subject.startswith("Открыта заявка OK-9: закончилась чековая лента")
    assert "Если не устранить, касса перестанет пробивать чеки 26.12.2026." in message.text
    resolved = notice("ticket_resolve", problem="PAPER_OUT", ticket_id=5, ref=None)
    text = compose([resolved], _zone, NOW).text
    assert "Заявка #5 закрыта: закончилась чековая лента" in text
    assert "перестанет" not in text


def test_a_digest_holds_every_notice() -> None:
    other = notice("ticket_open", problem="OFD_QUEUE_STALE", ticket_id=6, ref="OK-10")
    message = compose([notice(), other], _zone, NOW)
    assert message.subject == "Кассы ООО «Акме» <&>: сводка на 12.12.2026 (2)"
    assert "Сводка на 12.12.2026, сообщений: 2." in message.text
    assert "Касса перестанет пробивать чеки 26.12.2026" in message.text
    assert "Открыта заявка OK-10: чеки не доходят до ОФД" in message.text
    assert message.html.count("<h3>") == 2
