"""The notification outbox on both stores: once per threshold, claims, digests, tickets.

Time is injected: the scan and the claims take ``now``; the registers' states are written
as intake writes them (``record_states``).
"""

from __future__ import annotations

import threading
from datetime import date, timedelta

import pytest
from notify_rig import CHAT, EMAIL, KKT, NOW, SITE, days, drive_facts, notify_config, record
from ticket_facts import raised

from kktmon.protocol.errors import TicketStoreError
from kktmon.protocol.health import Severity
from kktmon.ticketing import history, notify_store, store_db
from kktmon.ticketing.config import parse_config
from kktmon.ticketing.notify_dispatch import Notifier, build_notifier
from kktmon.ticketing.notify_store import Notice
from kktmon.ticketing.store import TicketStore, open_store

ENDS = date(2026, 12, 26)  # 30 days after NOW, store-local


def _notifier(store: TicketStore, store_url: str, holder: str = "w1", **options: str) -> Notifier:
    return Notifier(store, notify_config(store_url, **options), {}, holder=holder)


def _rows(store: TicketStore) -> list[Notice]:
    return store.transact(notify_store.records)


def _thresholds(store: TicketStore) -> list[tuple[str, int, str]]:
    return sorted((n.cause, n.threshold, n.channel) for n in _rows(store))


def test_each_threshold_once_per_recipient_as_time_passes(
    store: TicketStore, store_url: str
) -> None:
    notifier = _notifier(store, store_url, telegram_url="http://127.0.0.1:1")
    record(store, drive_facts(ENDS))
    assert notifier.scan(NOW - days(1)) == 0  # 31 days: nothing yet
    assert notifier.scan(NOW) == 2  # 30 days: e-mail and Telegram
    assert notifier.scan(NOW + timedelta(hours=1)) == 0
    assert notifier.scan(NOW + days(16)) == 2  # 14 days
    assert notifier.scan(NOW + days(20)) == 0
    assert _thresholds(store) == [
        ("fn_expiry", 14, "email"),
        ("fn_expiry", 14, "telegram"),
        ("fn_expiry", 30, "email"),
        ("fn_expiry", 30, "telegram"),
    ]
    row = next(n for n in _rows(store) if n.channel == "telegram")
    assert (row.site, row.kkt, row.recipient, row.client) == (SITE, KKT, str(CHAT), "acme")
    assert row.facts["model"] == "ШТРИХ-М-01Ф" and row.facts["language"] == "ru"
    assert row.state == "pending" and row.digest_key is None


def test_a_late_start_tells_the_nearest_threshold_only(store: TicketStore, store_url: str) -> None:
    record(store, drive_facts(ENDS))
    assert _notifier(store, store_url).scan(NOW + days(25)) == 1
    assert _thresholds(store) == [("fn_expiry", 7, "email")]
    # The date moves back out (a wrong reading corrected): nothing farther is told now.
    record(store, drive_facts(ENDS + days(20)), at=NOW + days(26))
    assert _notifier(store, store_url).scan(NOW + days(26)) == 0


def test_a_new_drive_starts_its_thresholds_afresh(store: TicketStore, store_url: str) -> None:
    notifier = _notifier(store, store_url)
    record(store, drive_facts(ENDS))
    assert notifier.scan(NOW + days(20)) == 1  # 10 days left: the 14-day message
    record(store, drive_facts(date(2027, 1, 10), fn_serial="9999078900009999"), at=NOW + days(21))
    assert notifier.scan(NOW + days(22)) == 1  # the new drive's 30-day message
    assert sorted((n.subject, n.threshold) for n in _rows(store)) == [
        ("9999078900001234", 14),
        ("9999078900009999", 30),
    ]


def test_sites_without_a_client_are_not_told(store: TicketStore, store_url: str) -> None:
    record(store, drive_facts(ENDS), site="store-777")
    assert _notifier(store, store_url).scan(NOW) == 0


def test_two_workers_scanning_at_once_write_each_message_once(
    make_store: object, store_url: str
) -> None:
    stores = [open_store(store_url) for _ in range(2)]
    try:
        for n in range(30):
            record(stores[0], drive_facts(ENDS - days(n % 20)), kkt=f"shtrih-{n:010d}")
        notifiers = [_notifier(s, store_url, f"w{i}") for i, s in enumerate(stores)]
        written: list[int] = []
        errors: list[BaseException] = []
        start = threading.Barrier(2)

        def scan(notifier: Notifier) -> None:
            try:
                start.wait(10)
                for _ in range(3):
                    written.append(notifier.scan(NOW))
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=scan, args=(n,)) for n in notifiers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not errors, errors
        assert sum(written) == 30 == len(_rows(stores[0]))
    finally:
        for store in stores:
            store.close()


def test_claims_are_leases_and_a_stale_claim_records_nothing(
    store: TicketStore, store_url: str
) -> None:
    record(store, drive_facts(ENDS))
    _notifier(store, store_url).scan(NOW)
    claim = notify_store.claim
    (first,) = store.transact(lambda tx: claim(tx, 10, NOW, 60, "a"))
    assert store.transact(lambda tx: claim(tx, 10, NOW + timedelta(seconds=59), 60, "b")) == []
    # Worker a went quiet; its claim expired and b took the message over.
    (again,) = store.transact(lambda tx: claim(tx, 10, NOW + timedelta(seconds=61), 60, "b"))
    assert again.ids == first.ids and again.failures == 1
    assert store.transact(lambda tx: notify_store.finish(tx, first, NOW)) == 0  # a's late word
    assert store.transact(lambda tx: notify_store.finish(tx, again, NOW)) == 1
    (row,) = _rows(store)
    assert (row.state, row.attempts, row.sent_at) == ("sent", 2, NOW)
    assert store.transact(lambda tx: claim(tx, 10, NOW + days(1), 60, "c")) == []


def test_failures_retry_at_their_time_or_stay_failed_with_the_reason(
    store: TicketStore, store_url: str
) -> None:
    record(store, drive_facts(ENDS))
    record(store, drive_facts(ENDS), kkt="shtrih-2")
    _notifier(store, store_url).scan(NOW)
    one, two = store.transact(lambda tx: notify_store.claim(tx, 10, NOW, 60, "a"))
    later = NOW + timedelta(minutes=5)
    store.transact(lambda tx: notify_store.fail(tx, one, "451 try later", later))
    store.transact(lambda tx: notify_store.fail(tx, two, "550 no such user", None))
    rows = {n.id: n for n in _rows(store)}
    assert (rows[one.ids[0]].state, rows[one.ids[0]].next_attempt_at) == ("pending", later)
    assert (rows[two.ids[0]].state, rows[two.ids[0]].last_error) == ("failed", "550 no such user")
    assert (
        store.transact(lambda tx: notify_store.claim(tx, 10, later - timedelta(seconds=1), 60, "b"))
        == []
    )
    (retried,) = store.transact(lambda tx: notify_store.claim(tx, 10, later, 60, "b"))
    assert retried.ids == one.ids


def test_a_digest_client_gets_one_message_a_day(store: TicketStore, store_url: str) -> None:
    notifier = _notifier(store, store_url, client="digest = true\n", notify='digest_at = "09:00"')
    record(store, drive_facts(ENDS))
    record(store, drive_facts(ENDS - days(20)), site="store-002", kkt="shtrih-2")
    assert notifier.scan(NOW) == 2  # 09:00 Moscow = 06:00 UTC = NOW: the next is tomorrow's
    rows = _rows(store)
    assert {n.digest_key for n in rows} == {"2026-11-27"}
    assert {n.next_attempt_at for n in rows} == {NOW + days(1)}
    assert store.transact(lambda tx: notify_store.claim(tx, 10, NOW + days(0.9), 60, "a")) == []
    (parcel,) = store.transact(lambda tx: notify_store.claim(tx, 1, NOW + days(1), 60, "a"))
    assert (parcel.recipient, len(parcel.notices)) == (EMAIL, 2)


def test_ticket_news_is_written_with_the_ticket(store: TicketStore, store_url: str) -> None:
    notifier = _notifier(store, store_url, client="notify_tickets = true\n")
    store.ticket_notices = notifier.ticket_hook
    store.apply(raised(NOW, site=SITE, kkt=KKT, severity=Severity.BLOCKED), NOW)  # opens at once
    store.apply(raised(NOW, site="store-777", severity=Severity.BLOCKED), NOW)  # no client
    (row,) = _rows(store)
    ticket = store.tickets()[0]
    assert (row.cause, row.subject, row.threshold) == ("ticket_open", f"{ticket.id}-r1", 0)
    assert row.facts["problem"] == "PAPER_OUT" and row.facts["serial"] == "0012345678"
    (parcel,) = store.transact(lambda tx: notify_store.claim(tx, 10, NOW, 60, "a"))
    assert parcel.notices[0].ticket_ref == f"#{ticket.id}"


def test_the_help_desk_reference_names_the_ticket(store: TicketStore, store_url: str) -> None:
    record(store, drive_facts(ENDS))
    _notifier(store, store_url).scan(NOW)
    store.apply(raised(NOW, site=SITE, kkt=KKT, code="FN_EXPIRING", fn_serial="1"), NOW)
    store.tick(NOW + timedelta(hours=1))
    (call,) = store.claim_calls("desk", 10, NOW + timedelta(hours=1))
    store.complete_call(call.id, "OK-4711", NOW + timedelta(hours=1))
    (parcel,) = store.transact(lambda tx: notify_store.claim(tx, 10, NOW + days(1), 60, "a"))
    assert parcel.notices[0].ticket_ref == "OK-4711"


def test_a_version_2_store_upgrades_to_3(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with monkeypatch.context() as patch:
        patch.setattr(store_db, "SCHEMA_VERSION", 2)
        patch.setattr(store_db, "MIGRATIONS", {v: store_db.MIGRATIONS[v] for v in (1, 2)})
        patch.setattr(history, "record", lambda tx, rows: None)  # schema 4's, not 2's
        with open_store(store_url, now=NOW) as old:
            record(old, drive_facts(ENDS))
            with pytest.raises(TicketStoreError):  # version 2 has no notifications
                old.transact(notify_store.records)
    with open_store(store_url, now=NOW) as store:
        version = store.transact(lambda tx: tx.one("SELECT MAX(version) FROM schema_version"))
        assert version is not None and version[0] == store_db.SCHEMA_VERSION >= 3
        assert _notifier(store, store_url).scan(NOW) == 1  # the old register's state counts
    with open_store(store_url, now=NOW) as again:  # a second open changes nothing
        assert len(again.transact(notify_store.records)) == 1


def test_a_worker_without_clients_runs_no_notifier(store: TicketStore, store_url: str) -> None:
    bare = parse_config(f'[ticketing]\nstore = "{store_url}"\n', env={})
    assert build_notifier(bare, store, "w1") is None and store.ticket_notices is None
    plain = notify_config(store_url)
    assert build_notifier(plain, store, "w1") is not None and store.ticket_notices is None
    asked = notify_config(store_url, client="notify_tickets = true\n")
    notifier = build_notifier(asked, store, "w1")
    assert notifier is not None and store.ticket_notices == notifier.ticket_hook
