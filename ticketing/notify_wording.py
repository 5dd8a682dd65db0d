"""The sentences of client messages, per language (``ru``, ``en``): one table each.

Placeholders: ``{site}``, ``{client}``, ``{register}`` (model, serial, RNM), ``{serial}``,
``{drive}`` (" № <FN serial>" or ""), ``{date}`` (block_at, store-local), ``{left}`` ("через
14 дней"), ``{unsent}``, ``{since}`` (the first unsent document's day), ``{ref}`` (the
ticket), ``{problem}``; ``subject`` also ``{title}``. Every cause of :mod:`notify_rules`
has a ``_title``, a ``_what`` (what happens) and a ``_do`` (what the service centre does).
"""

from __future__ import annotations

from datetime import datetime, tzinfo

from kktmon.protocol.problems import ProblemCode

C = ProblemCode
#: Problem names a client understands (ticket news); others fall back to the ticket label.
PROBLEMS_RU: dict[str, str] = {
    C.FN_EXPIRING: "заканчивается срок фискального накопителя",
    C.FN_URGENT_REPLACEMENT: "фискальный накопитель требует срочной замены",
    C.FN_RESOURCE_EXHAUSTING: "заканчивается ресурс фискального накопителя",
    C.FN_MEMORY_FULL: "заполняется память фискального накопителя",
    C.FN_CRITICAL_ERROR: "критическая ошибка фискального накопителя",
    C.FN_NOT_FISCAL: "фискальный накопитель не в фискальном режиме",
    C.FN_ARCHIVE_CLOSED: "фискальный накопитель закрыт",
    C.OFD_QUEUE_STALE: "чеки не доходят до ОФД",
    C.OFD_TIMEOUT: "ОФД не подтверждает чеки",
    C.SHIFT_TOO_LONG: "смена открыта слишком долго",
    C.PAPER_OUT: "закончилась чековая лента",
    C.COVER_OPEN: "открыта крышка принтера",
    C.PRINTER_FAULT: "неисправность принтера",
    C.CLOCK_SKEW: "неверное время на кассе",
    C.DEVICE_UNREACHABLE: "касса не отвечает",
    C.DEVICE_BUSY: "касса занята",
    C.AGENT_LOST: "нет связи с магазином",
}

_REPLACE_RU = (
    "Что сделаем мы: инженер сервисного центра заменит фискальный накопитель и "
    "перерегистрирует кассу до этой даты; мы свяжемся с вами, чтобы согласовать время."
)
_REPLACE_EN = (
    "What we will do: a service engineer will replace the fiscal drive and re-register the "
    "register before that date; we will call you to agree on a time."
)

WORDS: dict[str, dict[str, str]] = {
    "ru": {
        "hello": "Здравствуйте!",
        "date_format": "%d.%m.%Y",
        "date_time": "{date} в {time}",
        "store": "Магазин: {site} ({client}).",
        "register": "Касса: {register}.",
        "serial": "заводской № {}",
        "rnm": "РН ККТ {}",
        "ticket_line": "Заявка: {ref}.",
        "ticket_block": "Если не устранить, касса перестанет пробивать чеки {date}.",
        "subject": "{title} ({site}, заводской № {serial})",
        "digest_subject": "Кассы {client}: сводка на {date} ({count})",
        "digest_intro": "Сводка на {date}, сообщений: {count}.",
        "footer": "Это автоматическое сообщение системы мониторинга касс kktmon. "
        "С вопросами обращайтесь в ваш сервисный центр.",
        "fn_expiry_title": "Касса перестанет пробивать чеки {date}",
        "fn_expiry_what": "Срок действия фискального накопителя{drive} заканчивается: "
        "с {date} касса перестанет пробивать чеки ({left}).",
        "fn_expiry_do": _REPLACE_RU,
        "fn_memory_full_title": "Касса перестанет пробивать чеки около {date}",
        "fn_memory_full_what": "Память фискального накопителя{drive} заполняется: по нашему "
        "расчёту, около {date} место для чеков закончится и касса перестанет их пробивать "
        "({left}).",
        "fn_memory_full_do": _REPLACE_RU,
        "ofd_30_days_title": "Касса перестанет пробивать чеки {date}",
        "ofd_30_days_what": "Касса не передаёт чеки оператору фискальных данных (ОФД): "
        "документов ждут отправки: {unsent}, первый — с {since}. Если связь не восстановится, "
        "{date} касса перестанет пробивать чеки ({left}).",
        "ofd_30_days_do": "Что сделать вам: проверьте, что у кассы есть интернет. "
        "Что сделаем мы: инженер проверит связь с ОФД и настройки кассы.",
        "ticket_open_title": "Открыта заявка {ref}: {problem}",
        "ticket_open_what": "Мы заметили неисправность кассы: {problem}.",
        "ticket_open_do": "Сервисный центр уже занимается ею.",
        "ticket_reopen_title": "Заявка {ref} открыта снова: {problem}",
        "ticket_reopen_what": "Неисправность повторилась: {problem}.",
        "ticket_reopen_do": "Инженер продолжит работу по заявке.",
        "ticket_resolve_title": "Заявка {ref} закрыта: {problem}",
        "ticket_resolve_what": "Неисправность устранена: {problem}.",
        "ticket_resolve_do": "Касса работает; ничего делать не нужно.",
    },
    "en": {
        "hello": "Hello,",
        "date_format": "%Y-%m-%d",
        "date_time": "{date} at {time}",
        "store": "Store: {site} ({client}).",
        "register": "Register: {register}.",
        "serial": "serial {}",
        "rnm": "RNM {}",
        "ticket_line": "Ticket: {ref}.",
        "ticket_block": "Unless fixed, the register stops selling on {date}.",
        "subject": "{title} ({site}, serial {serial})",
        "digest_subject": "{client} registers: digest for {date} ({count})",
        "digest_intro": "Digest for {date}, messages: {count}.",
        "footer": "This is an automatic message from the kktmon register monitoring. "
        "Please direct questions to your service centre.",
        "fn_expiry_title": "The register stops selling on {date}",
        "fn_expiry_what": "The fiscal drive{drive} reaches the end of its term: from {date} "
        "the register cannot print receipts ({left}).",
        "fn_expiry_do": _REPLACE_EN,
        "fn_memory_full_title": "The register stops selling around {date}",
        "fn_memory_full_what": "The fiscal drive{drive} is filling up: by our estimate it has "
        "no room for receipts around {date}, and the register stops selling ({left}).",
        "fn_memory_full_do": _REPLACE_EN,
        "ofd_30_days_title": "The register stops selling on {date}",
        "ofd_30_days_what": "The register is not passing receipts to the fiscal data operator "
        "(OFD): {unsent} document(s) waiting, the first since {since}. Unless the link is "
        "back, the register stops selling on {date} ({left}).",
        "ofd_30_days_do": "What you can do: check that the register is online. "
        "What we will do: an engineer will check the OFD link and the register's settings.",
        "ticket_open_title": "Ticket {ref} opened: {problem}",
        "ticket_open_what": "We noticed a fault of the register: {problem}.",
        "ticket_open_do": "The service centre is on it.",
        "ticket_reopen_title": "Ticket {ref} reopened: {problem}",
        "ticket_reopen_what": "The fault is back: {problem}.",
        "ticket_reopen_do": "An engineer carries on with the ticket.",
        "ticket_resolve_title": "Ticket {ref} resolved: {problem}",
        "ticket_resolve_what": "The fault is fixed: {problem}.",
        "ticket_resolve_do": "The register works; nothing to do.",
    },
}


def days_phrase(block_at: datetime, now: datetime, zone: tzinfo, language: str) -> str:
    """ "через 14 дней" / "in 14 days": calendar days between today and that day, locally."""
    days = (block_at.astimezone(zone).date() - now.astimezone(zone).date()).days
    if language != "ru":
        if days <= 0:
            return "today"
        return "tomorrow" if days == 1 else f"in {days} days"
    if days <= 0:
        return "сегодня"
    if days == 1:
        return "завтра"
    return f"через {days} {plural_days(days)}"


def plural_days(n: int) -> str:
    """The Russian noun for ``n`` days: 1 день, 2 дня, 5 дней, 21 день, 111 дней."""
    if n % 10 == 1 and n % 100 != 11:
        return "день"
    if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
        return "дня"
    return "дней"
