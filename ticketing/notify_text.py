"""What a client reads: one notice, or a day's digest, in Russian (default) or English.

A message names the store (site and the client's name), the register (model, serial,
RNM), what happens at ``block_at`` and when, in the store's own time zone ("касса
перестанет пробивать чеки 26.12.2026"), what the service centre will do, and the ticket
reference when a ticket exists. It is built once as sections of plain sentences and
written three ways: plain text, HTML for the e-mail's alternative part, and Telegram's
HTML subset; every value is escaped in both HTML forms.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, time, tzinfo
from typing import Any

from kktmon.ticketing import notify_rules as rules
from kktmon.ticketing import text as ticket_text
from kktmon.ticketing.notify_store import Notice
from kktmon.ticketing.notify_wording import PROBLEMS_RU, WORDS, days_phrase


@dataclass(frozen=True)
class Message:
    """One message, in the three forms the channels send."""

    subject: str
    text: str
    html: str
    telegram: str


@dataclass(frozen=True)
class _Section:
    title: str
    lines: list[str]


def compose(notices: Sequence[Notice], zone_for: Callable[[str], tzinfo], now: datetime) -> Message:
    """The message for ``notices`` (one, or one recipient's digest), told at ``now``."""
    first = notices[0]
    language = str(first.facts.get("language") or "ru")
    w = WORDS[language]
    sections = [_section(n, w, zone_for(n.site), now, language) for n in notices]
    client = str(first.facts.get("client_name") or first.client)
    if len(notices) == 1:
        subject = _subject(first, w, zone_for(first.site), now)
        intro = [w["hello"]]
    else:
        day = _date(now, zone_for(first.site), w, with_time=False)
        subject = w["digest_subject"].format(client=client, date=day, count=len(notices))
        intro = [w["hello"], w["digest_intro"].format(date=day, count=len(notices))]
    return Message(
        subject=subject,
        text=_plain(intro, sections, w["footer"]),
        html=_html(intro, sections, w["footer"], language),
        telegram=_telegram(sections, w["footer"]),
    )


def _section(notice: Notice, w: dict[str, str], zone: tzinfo, now: datetime, lang: str) -> _Section:
    values = _values(notice, w, zone, now, lang)
    cause = notice.cause
    lines = [w["store"].format(**values), w["register"].format(**values)]
    lines += [w[f"{cause}_what"].format(**values)]
    if notice.block_at is not None and cause in rules.TICKET_CAUSES and cause != "ticket_resolve":
        lines.append(w["ticket_block"].format(**values))
    lines.append(w[f"{cause}_do"].format(**values))
    if notice.ticket_ref and cause not in rules.TICKET_CAUSES:
        lines.append(w["ticket_line"].format(**values))
    return _Section(w[f"{cause}_title"].format(**values), lines)


def _values(
    notice: Notice, w: dict[str, str], zone: tzinfo, now: datetime, lang: str
) -> dict[str, Any]:
    f = notice.facts
    block = notice.block_at
    parts = [str(f["model"])] if f.get("model") else []
    parts += [w[key].format(f[key]) for key in ("serial", "rnm") if f.get(key)]
    register = ", ".join(parts)
    problem = str(f.get("problem") or "")
    first_unsent = ticket_text.parse_time(f.get("first_unsent_at"))
    return {
        "site": notice.site,
        "client": f.get("client_name") or notice.client,
        "register": register or notice.kkt,
        "serial": f.get("serial") or notice.kkt,
        "drive": f" № {f['fn_serial']}" if f.get("fn_serial") else "",
        "date": _date(block, zone, w) if block else "",
        "left": days_phrase(block, now, zone, lang) if block else "",
        "unsent": f.get("unsent_count") or 0,
        "since": _date(first_unsent, zone, w, with_time=False) if first_unsent else "",
        "ref": notice.ticket_ref or f"#{f.get('ticket_id', '')}",
        "problem": PROBLEMS_RU.get(problem, ticket_text.label(problem))
        if lang == "ru"
        else ticket_text.label(problem),
    }


def _date(at: datetime, zone: tzinfo, w: dict[str, str], *, with_time: bool = True) -> str:
    local = at.astimezone(zone)
    day = local.strftime(w["date_format"])
    if with_time and local.time() != time(0, 0):
        return w["date_time"].format(date=day, time=local.strftime("%H:%M"))
    return day


def _subject(notice: Notice, w: dict[str, str], zone: tzinfo, now: datetime) -> str:
    values = _values(notice, w, zone, now, str(notice.facts.get("language") or "ru"))
    return w["subject"].format(**values, title=w[f"{notice.cause}_title"].format(**values))


def _plain(intro: list[str], sections: list[_Section], footer: str) -> str:
    parts = ["\n\n".join(intro)]
    for section in sections:
        parts.append("\n".join([section.title, "", *section.lines]))
    parts.append("-- \n" + footer)
    return "\n\n".join(parts) + "\n"


def _html(intro: list[str], sections: list[_Section], footer: str, language: str) -> str:
    e = html.escape
    body = "".join(f"<p>{e(line)}</p>" for line in intro)
    for section in sections:
        items = "".join(f"<p>{e(line)}</p>" for line in section.lines)
        body += f"<h3>{e(section.title)}</h3>{items}"
    return (
        f'<!DOCTYPE html><html lang="{language}"><head><meta charset="utf-8"></head>'
        f'<body>{body}<hr><p style="color:#666">{e(footer)}</p></body></html>\n'
    )


def _telegram(sections: list[_Section], footer: str) -> str:
    """Telegram's HTML: <b> and <i>, newlines as line breaks; &, < and > escaped."""
    e = html.escape
    blocks = [
        "\n".join([f"<b>{e(s.title, quote=False)}</b>", *(e(x, quote=False) for x in s.lines)])
        for s in sections
    ]
    return "\n\n".join([*blocks, f"<i>{e(footer, quote=False)}</i>"])
