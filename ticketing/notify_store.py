"""The outbox of client notifications, as functions over an open transaction.

The same promises as the help-desk outbox (:mod:`store_calls`), for messages to people:

* **once**: a row per (site, register, cause, subject, threshold, channel, recipient),
  the table's unique key, so a scan run twice, by two workers or after a restart,
  inserts nothing new (``ON CONFLICT DO NOTHING``);
* **not lost**: a ticket notice is written in the transaction that changes the ticket
  (:func:`enqueue_ticket`), a deadline notice in the scan's transaction, and a row
  leaves ``pending`` only as ``sent`` (after the server accepted it) or ``failed`` (the
  server refused it for good, or the attempts ran out), with the reason;
* **claimed, not held**: a claim is a lease (``claimed_until``), recorded before the
  message goes out; a worker that dies mid-delivery leaves it to expire, and the message
  is sent again then. A claim token (``claimed_by``) makes the outcome of an expired
  claim land nowhere, so a late report cannot undo the newer attempt's record.

A client with ``digest = true`` gets their rows due at the next ``[notify] digest_at``
(store-local), named by that day (``digest_key``); the dispatcher claims a recipient's
rows of one digest together (:func:`claim`) and sends them as one message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from kktmon.ticketing import notify_rules as rules
from kktmon.ticketing.notify_config import ClientConfig
from kktmon.ticketing.notify_rules import Audience
from kktmon.ticketing.store_db import Tx

ERROR_MAX = 2000
_COLUMNS = (
    "id, site, kkt, cause, subject, threshold, channel, recipient, client, facts, block_at,"
    " digest_key, state, attempts, next_attempt_at, claimed_until, last_error, created_at,"
    " sent_at"
)
NAMES = tuple(name.strip() for name in _COLUMNS.split(","))
_TS = ("block_at", "next_attempt_at", "claimed_until", "created_at", "sent_at")
_DUE = (
    "((state = 'pending' AND next_attempt_at <= ?) OR (state = 'claimed' AND claimed_until <= ?))"
)


def enqueue_deadline(
    tx: Tx,
    audience: Audience,
    deadline: rules.Deadline,
    *,
    threshold: int,
    facts: dict[str, Any],
    now: datetime,
) -> int:
    """Rows for the recipients not yet told of ``deadline`` at ``threshold`` or nearer;
    how many were written."""
    client = audience.client(deadline.site)
    if client is None:
        return 0
    told: dict[tuple[str, str], list[int]] = {}
    for channel, recipient, done in tx.all(
        "SELECT channel, recipient, threshold FROM notifications"
        " WHERE site = ? AND kkt = ? AND cause = ? AND subject = ?",
        deadline.site,
        deadline.kkt,
        deadline.cause,
        deadline.subject,
    ):
        told.setdefault((str(channel), str(recipient)), []).append(int(done))
    wanted = [r for r in client.recipients() if rules.is_news(threshold, told.get(r, ()))]
    key = (deadline.site, deadline.kkt, deadline.cause, deadline.subject, threshold)
    return _insert(
        tx, audience, client, key, wanted, block_at=deadline.block_at, facts=facts, now=now
    )


def enqueue_ticket(
    tx: Tx, audience: Audience, ticket: Any, actions: Sequence[str], now: datetime
) -> int:
    """Ticket news for a client who asked for it, in the ticket change's transaction."""
    client = audience.client(ticket.site)
    if client is None or not client.notify_tickets:
        return 0
    written = 0
    snapshot = ticket.facts.snapshot
    facts = rules.register_facts(snapshot) | {"problem": ticket.problem, "ticket_id": ticket.id}
    for action in actions:
        cause = rules.ticket_cause(str(action))
        if cause is None:
            continue
        key = (ticket.site, ticket.kkt, cause, f"{ticket.id}-r{ticket.revision}", 0)
        recipients = client.recipients()
        written += _insert(
            tx, audience, client, key, recipients, block_at=ticket.block_at, facts=facts, now=now
        )
    return written


def _insert(
    tx: Tx,
    audience: Audience,
    client: ClientConfig,
    key: tuple[str, str, str, str, int],
    recipients: Sequence[tuple[str, str]],
    *,
    block_at: datetime | None,
    facts: dict[str, Any],
    now: datetime,
) -> int:
    due, digest = audience.schedule(client, key[0], now)
    stored = facts | {"client_name": client.name, "language": client.language}
    written = 0
    for channel, recipient in recipients:
        written += tx.run(
            "INSERT INTO notifications (site, kkt, cause, subject, threshold, channel,"
            " recipient, client, facts, block_at, digest_key, state, attempts,"
            " next_attempt_at, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?) ON CONFLICT DO NOTHING",
            *key,
            channel,
            recipient,
            client.id,
            stored,
            block_at,
            digest,
            due,
            now,
        )
    return written


@dataclass(frozen=True)
class Notice:
    """One row, as a message is made of it."""

    id: int
    site: str
    kkt: str
    cause: str
    subject: str
    threshold: int
    channel: str
    recipient: str
    client: str
    facts: dict[str, Any]
    block_at: datetime | None
    digest_key: str | None
    state: str
    attempts: int
    next_attempt_at: datetime
    claimed_until: datetime | None
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None
    #: The ticket the service centre works on for it: the help desk's reference, else ours.
    ticket_ref: str | None = None


@dataclass(frozen=True)
class Parcel:
    """What goes out as one message: one notice, or one recipient's digest."""

    channel: str
    recipient: str
    notices: list[Notice]
    token: str

    @property
    def ids(self) -> list[int]:
        return [notice.id for notice in self.notices]

    @property
    def failures(self) -> int:
        """Attempts before this one (the claim counted this one already)."""
        return max(notice.attempts for notice in self.notices) - 1


def claim(tx: Tx, limit: int, now: datetime, ttl_s: float, token: str) -> list[Parcel]:
    """Lease up to ``limit`` due messages (a digest counts once), oldest first."""
    due = tx.all(
        f"SELECT id, channel, recipient, digest_key FROM notifications WHERE {_DUE}"
        " ORDER BY id LIMIT ?" + tx.d.skip_locked,
        now,
        now,
        limit,
    )
    groups: dict[tuple[str, str, str], list[int]] = {}
    for row_id, channel, recipient, digest in due:
        if digest is None:
            groups[("", "", f"single-{row_id}")] = [int(row_id)]
            continue
        key = (str(channel), str(recipient), str(digest))
        if key not in groups:
            groups[key] = _digest_ids(tx, key, now)
    until = now + timedelta(seconds=ttl_s)
    parcels = []
    for ids in groups.values():
        if not ids:
            continue
        marks = ", ".join("?" for _ in ids)
        tx.run(
            "UPDATE notifications SET state = 'claimed', claimed_until = ?, claimed_by = ?,"
            f" attempts = attempts + 1 WHERE id IN ({marks})",
            until,
            token,
            *ids,
        )
        notices = [_with_ticket(tx, n) for n in _read(tx, f"id IN ({marks})", ids)]
        parcels.append(Parcel(notices[0].channel, notices[0].recipient, notices, token))
    return parcels


def _digest_ids(tx: Tx, key: tuple[str, str, str], now: datetime) -> list[int]:
    rows = tx.all(
        "SELECT id FROM notifications WHERE channel = ? AND recipient = ? AND digest_key = ?"
        f" AND {_DUE} ORDER BY id" + tx.d.skip_locked,
        *key,
        now,
        now,
    )
    return [int(row[0]) for row in rows]


def _with_ticket(tx: Tx, notice: Notice) -> Notice:
    """The notice with the reference of the ticket it is about, if there is one."""
    if notice.cause in rules.TICKET_CAUSES:
        ticket_id = notice.facts.get("ticket_id")
        rows = tx.all("SELECT id, external_ref, problem FROM tickets WHERE id = ?", ticket_id)
    else:
        rows = tx.all(
            "SELECT id, external_ref, problem FROM tickets WHERE site = ? AND kkt = ?"
            " AND state <> 'resolved' ORDER BY id DESC",
            notice.site,
            notice.kkt,
        )
        rows = [r for r in rows if rules.matches_cause(str(r[2]), notice.cause)]
    if not rows:
        return notice
    ticket_id, external, _ = rows[0]
    ref = str(external) if external else f"#{ticket_id}"
    return replace(notice, ticket_ref=ref)


def finish(tx: Tx, parcel: Parcel, now: datetime) -> int:
    """Record a delivered parcel; rows whose claim is no longer this one's stay as they are."""
    marks = ", ".join("?" for _ in parcel.ids)
    return tx.run(
        "UPDATE notifications SET state = 'sent', sent_at = ?, claimed_until = NULL,"
        f" last_error = NULL WHERE id IN ({marks}) AND state = 'claimed' AND claimed_by = ?",
        now,
        *parcel.ids,
        parcel.token,
    )


def fail(tx: Tx, parcel: Parcel, error: str, retry_at: datetime | None) -> int:
    """Record a failed attempt: due again at ``retry_at``, or ``failed`` for good (None)."""
    marks = ", ".join("?" for _ in parcel.ids)
    return tx.run(
        "UPDATE notifications SET state = ?, next_attempt_at = COALESCE(?, next_attempt_at),"
        " claimed_until = NULL, last_error = ?"
        f" WHERE id IN ({marks}) AND state = 'claimed' AND claimed_by = ?",
        "pending" if retry_at is not None else "failed",
        retry_at,
        error[:ERROR_MAX],
        *parcel.ids,
        parcel.token,
    )


def records(tx: Tx, since: datetime | None = None) -> list[Notice]:
    """Every row not sent, and the sent ones since ``since`` (all when None), by id."""
    if since is None:
        return _read(tx, "1 = 1", [])
    return _read(tx, "state <> 'sent' OR sent_at >= ?", [since])


def _read(tx: Tx, where: str, params: Sequence[object]) -> list[Notice]:
    out = []
    for row in tx.all(f"SELECT {_COLUMNS} FROM notifications WHERE {where} ORDER BY id", *params):
        values = dict(zip(NAMES, row, strict=True))
        for column in _TS:
            values[column] = tx.ts_or_none(values[column])
        values["facts"] = tx.d.read_json(values["facts"])
        out.append(Notice(**values))
    return out
