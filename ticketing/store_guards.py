"""What keeps one store's messages from costing the centre more than its share, as
functions over an open transaction (the store calls them inside its own).

* **Caps** (``[ticketing.limits]``): a new live ticket beyond ``live_tickets_per_register``
  or ``live_tickets_per_site``, or the state of a register beyond ``registers_per_site``,
  is refused: nothing is written but a counter per site and limit (``refusals``), and a
  warning at most once per site and hour. Problems already ticketed keep updating and
  clears always pass, so a register at its cap still converges; once tickets resolve,
  the reconciler's pass over the retained alerts brings refused problems in. The count
  is read once by the writing transaction (:mod:`store_batch`), which adds its own
  tickets as it writes them: on PostgreSQL two workers adding tickets to one site at
  the same time can overshoot a cap by what they add together. A cap bounds abuse; it
  is not an account.
* **Dead letters**: a message that can never be stored keeps a bounded, escaped copy
  (the first :data:`PAYLOAD_KEPT` bytes, invalid UTF-8 and NUL as ``\\xNN``) with its
  reason; the newest ``dead_letters_kept`` rows stay, a counter keeps the total.
* **Leases**: work one worker at a time does. One ``INSERT ... ON CONFLICT DO UPDATE
  ... WHERE`` takes a free or expired lease, or renews the holder's own, so two workers
  racing get one True. Expiry compares the callers' clocks: keep them in NTP sync.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict

from kktmon.ticketing.config import TicketingLimits
from kktmon.ticketing.store_db import Tx, chunks

log = logging.getLogger(__name__)

#: Bytes of a dead letter's payload kept (escaped, at most four times as many characters).
PAYLOAD_KEPT = 4096
#: Characters of a dead letter's topic and reason kept.
TEXT_KEPT = 1024
#: A site's refusals are logged again after this long.
LOG_EVERY = timedelta(hours=1)

PER_REGISTER = "live_tickets_per_register"
PER_SITE = "live_tickets_per_site"
REGISTERS = "registers_per_site"


class Refusal(BaseModel):
    """What one limit refused at one site (a row of ``kktmon tickets --refused``)."""

    model_config = ConfigDict(frozen=True)

    site: str
    #: The limit's name in ``[ticketing.limits]``.
    reason: str
    refused: int
    first_at: AwareDatetime
    last_at: AwareDatetime


class DeadLetter(BaseModel):
    """One message that could never be stored, as kept for a human to read."""

    model_config = ConfigDict(frozen=True)

    id: int
    topic: str
    #: The payload's first bytes, escaped; not for replay.
    payload: str
    payload_bytes: int
    reason: str
    received_at: AwareDatetime


# --- caps --------------------------------------------------------------------------------


def refused(
    tx: Tx,
    site: str,
    what: str,
    live: tuple[int, int],
    *,
    limits: TicketingLimits,
    now: datetime,
) -> bool:
    """Whether a new live ticket passes a limit, given the ``live`` tickets of its
    register and of its site; if so, it is counted."""
    per_register, per_site = live
    limit = None
    if per_register >= limits.live_tickets_per_register:
        limit = PER_REGISTER
    elif per_site >= limits.live_tickets_per_site:
        limit = PER_SITE
    if limit is not None:
        refuse(tx, site, limit, what, now)
    return limit is not None


#: A ``devices`` row: site, kkt, facts, taken_at.
DeviceRow = tuple[str, str, dict[str, Any], datetime]


_DEVICE_COLUMNS = (("site", "text"), ("kkt", "text"), ("facts", "json"), ("taken_at", "ts"))


def record_devices(tx: Tx, rows: Sequence[DeviceRow], limit: int) -> None:
    """Upsert register states, newest wins; a register new to a site that already has
    ``limit`` is refused (counted at the time its state was taken). Two statements for
    any number of registers (on SQLite, two per 250)."""
    newest: dict[tuple[str, str], DeviceRow] = {}
    for row in rows:  # one row per register and statement: the newest of this batch
        seen = newest.get((row[0], row[1]))
        if seen is None or row[3] > seen[3]:
            newest[(row[0], row[1])] = row
    known = _registers(tx, sorted({site for site, _ in newest}))
    kept: list[DeviceRow] = []
    for row in sorted(newest.values(), key=lambda r: (r[0], r[1])):
        site, kkt, _, taken_at = row
        if kkt not in known[site] and len(known[site]) >= limit:
            refuse(tx, site, REGISTERS, f"the state of a new register ({kkt})", taken_at)
            continue
        known[site].add(kkt)
        kept.append(row)
    tx.insert_many(
        "devices",
        _DEVICE_COLUMNS,
        kept,
        "ON CONFLICT (site, kkt) DO UPDATE SET facts = excluded.facts,"
        " taken_at = excluded.taken_at WHERE excluded.taken_at > devices.taken_at",
    )


def _registers(tx: Tx, sites: Sequence[str]) -> dict[str, set[str]]:
    """The registers ``devices`` holds of each of ``sites``."""
    known: dict[str, set[str]] = {site: set() for site in sites}
    for chunk in chunks(sites, tx.d.rows_max):
        relation, params = tx.rows(["text"], [(site,) for site in chunk])
        for site, kkt in tx.all(
            f"SELECT site, kkt FROM devices WHERE site IN ({relation})", *params
        ):
            known[str(site)].add(str(kkt))
    return known


def refuse(tx: Tx, site: str, reason: str, what: str, now: datetime) -> None:
    """Count one refusal; log it unless this site's refusals were logged within the hour."""
    row = tx.one(
        "INSERT INTO refusals (site, reason, refused, first_at, last_at) VALUES (?, ?, 1, ?, ?)"
        " ON CONFLICT (site, reason) DO UPDATE SET refused = refusals.refused + 1,"
        " last_at = excluded.last_at RETURNING refused",
        site,
        reason,
        now,
        now,
    )
    logged = tx.one("SELECT MAX(logged_at) FROM refusals WHERE site = ?", site)
    last = tx.ts_or_none(logged[0]) if logged is not None else None
    if last is not None and now - last < LOG_EVERY:
        return
    tx.run("UPDATE refusals SET logged_at = ? WHERE site = ? AND reason = ?", now, site, reason)
    total = int(row[0]) if row is not None else 1
    log.warning(
        "%s: refused %s: %s reached ([ticketing.limits]); %d refused so far,"
        " further refusals at this site are counted and logged again in an hour",
        site,
        what,
        reason,
        total,
    )


def refusals(tx: Tx) -> list[Refusal]:
    rows = tx.all(
        "SELECT site, reason, refused, first_at, last_at FROM refusals ORDER BY site, reason"
    )
    return [
        Refusal(
            site=row[0],
            reason=row[1],
            refused=int(row[2]),
            first_at=tx.d.read_ts(row[3]),
            last_at=tx.d.read_ts(row[4]),
        )
        for row in rows
    ]


# --- dead letters ------------------------------------------------------------------------


def escaped(payload: bytes, limit: int = PAYLOAD_KEPT) -> str:
    """The first ``limit`` bytes as text: invalid UTF-8 and NUL as ``\\xNN``."""
    return payload[:limit].decode("utf-8", "backslashreplace").replace("\x00", "\\x00")


def _clean(text: str) -> str:
    text = text[:TEXT_KEPT].replace("\x00", "\\x00")
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def dead_letter(
    tx: Tx, topic: str, payload: bytes, reason: str, *, now: datetime, keep: int
) -> None:
    """Keep a copy of one message that can never be stored, and count it."""
    tx.run(
        "INSERT INTO counters (name, value) VALUES ('dead_letters', 1)"
        " ON CONFLICT (name) DO UPDATE SET value = counters.value + 1"
    )
    if keep <= 0:
        return
    row = tx.one(
        "INSERT INTO dead_letters (topic, payload, payload_bytes, reason, received_at)"
        " VALUES (?, ?, ?, ?, ?) RETURNING id",
        _clean(topic),
        escaped(payload),
        len(payload),
        _clean(reason),
        now,
    )
    assert row is not None
    tx.run("DELETE FROM dead_letters WHERE id <= ?", int(row[0]) - keep)


def dead_letter_count(tx: Tx) -> int:
    row = tx.one("SELECT value FROM counters WHERE name = 'dead_letters'")
    return 0 if row is None else int(row[0])


def dead_letters(tx: Tx, limit: int) -> list[DeadLetter]:
    rows = tx.all(
        "SELECT id, topic, payload, payload_bytes, reason, received_at FROM dead_letters"
        " ORDER BY id DESC LIMIT ?",
        limit,
    )
    return [
        DeadLetter(
            id=int(row[0]),
            topic=row[1],
            payload=row[2],
            payload_bytes=int(row[3]),
            reason=row[4],
            received_at=tx.d.read_ts(row[5]),
        )
        for row in rows
    ]


# --- leases ------------------------------------------------------------------------------


def acquire_lease(tx: Tx, name: str, holder: str, ttl_s: float, now: datetime) -> bool:
    """Take ``name`` for ``holder`` until ``now + ttl_s`` if it is free, expired or
    already ``holder``'s; whether ``holder`` holds it now."""
    if not ttl_s > 0:
        raise ValueError("a lease needs a positive ttl_s")
    row = tx.one(
        "INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?)"
        " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder,"
        " expires_at = excluded.expires_at"
        " WHERE leases.holder = excluded.holder OR leases.expires_at <= ?"
        " RETURNING holder",
        name,
        holder,
        now + timedelta(seconds=ttl_s),
        now,
    )
    return row is not None


def release_lease(tx: Tx, name: str, holder: str) -> bool:
    """Give ``name`` up if ``holder`` holds it; whether it did."""
    return tx.run("DELETE FROM leases WHERE name = ? AND holder = ?", name, holder) == 1
