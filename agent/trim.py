"""Fitting a retained JSON payload (state, alert) under the broker's size limit.

A state is about 1.5 kB and an unusual one 27 kB; one over the limit (64 KiB by default)
means a register or driver produced a huge field. :func:`fit` cuts only what can go
without changing what the payload says, each step only while it is still too big:

1. every ``raw`` block that is a container (e.g. ``printer.raw``, the vendor's registers)
   is emptied: it only lets a later reader re-decode, and the decoded fields stay;
2. every text longer than a cap (4096, then 1024, then 256 characters) is cut there and
   ends with a marker saying how much was cut (problem messages, facts, link errors);
3. every non-empty ``facts`` table becomes one ``trimmed`` fact saying how many went.

Keys, numbers, flags, dates and short strings (codes, serials, enum values) are never
touched, so the result still validates as the model it came from. When even that does
not fit (say, thousands of problems), there is no principled cut: :func:`fit` returns
None and the outbox sets the message aside. Events are never trimmed (the outbox sets
an oversize one aside whole).
"""

from __future__ import annotations

import json
from typing import Any

#: Text caps, in characters, tried in turn.
TEXT_CAPS = (4096, 1024, 256)
_MARKER = "… [kktmon: {} more characters trimmed]"


def fit(payload: bytes, limit: int) -> bytes | None:
    """``payload`` when it fits in ``limit`` bytes, else a trimmed copy that does, else None."""
    if len(payload) <= limit:
        return payload
    try:
        data: Any = json.loads(payload)
    except ValueError:  # UnicodeDecodeError is a ValueError
        return None
    if not isinstance(data, dict):
        return None
    base = _empty_raw(data)
    candidates = [base, *(_cut_texts(base, cap) for cap in TEXT_CAPS)]
    candidates.append(_drop_facts(candidates[-1]))
    for candidate in candidates:
        encoded = _dump(candidate)
        if len(encoded) <= limit:
            return encoded
    return None


def _dump(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _empty_raw(data: Any) -> Any:
    if isinstance(data, dict):
        return {
            key: type(value)()
            if key == "raw" and isinstance(value, dict | list)
            else _empty_raw(value)
            for key, value in data.items()
        }
    if isinstance(data, list):
        return [_empty_raw(item) for item in data]
    return data


def _cut_texts(data: Any, cap: int) -> Any:
    if isinstance(data, dict):
        return {key: _cut_texts(value, cap) for key, value in data.items()}
    if isinstance(data, list):
        return [_cut_texts(item, cap) for item in data]
    if isinstance(data, str):
        return cut_text(data, cap)
    return data


def cut_text(text: str, cap: int) -> str:
    """``text`` cut to ``cap`` characters plus a marker, when that makes it shorter."""
    marker = _MARKER.format(len(text) - cap)
    if len(text) <= cap + len(marker):
        return text
    return text[:cap] + marker


def _drop_facts(data: Any) -> Any:
    if isinstance(data, dict):
        return {
            key: _facts_note(value)
            if key == "facts" and isinstance(value, dict)
            else _drop_facts(value)
            for key, value in data.items()
        }
    if isinstance(data, list):
        return [_drop_facts(item) for item in data]
    return data


def _facts_note(facts: dict[str, Any]) -> dict[str, Any]:
    if not facts:
        return facts
    return {"trimmed": f"{len(facts)} fact(s) left out: the message was over the size limit"}
