"""Register history (schema 4): the first state of each hour, written with the state,
pruned after ``history_days`` by one worker at a time; on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from ticket_facts import T0, StoreFactory, cleared, raised

from kktmon.protocol.errors import TicketStoreError
from kktmon.protocol.health import DeviceInfo, HealthSnapshot, OfdQueue, Severity
from kktmon.ticketing import history, store_db
from kktmon.ticketing.history import HistoryPoint, HistoryPruner
from kktmon.ticketing.intake import Intake
from kktmon.ticketing.store import RegisterFacts, TicketStore, open_store

HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)
SITE, KKT = "store-001", "shtrih-0012345678"


def state(
    at: datetime, unsent: int, *, kkt: str = KKT, site: str = SITE, **more: Any
) -> RegisterFacts:
    facts: dict[str, Any] = {"vendor": "shtrih", "unsent_count": unsent, "fn_days_left": 40}
    if unsent:
        facts["first_unsent_at"] = (T0 - 2 * HOUR).isoformat()
    return RegisterFacts(site=SITE, kkt=kkt, facts=facts | more, taken_at=at)


def points(
    store: TicketStore, kkt: str = KKT, since: datetime = T0 - 100 * HOUR
) -> list[HistoryPoint]:
    return store.transact(lambda tx: history.points(tx, SITE, kkt, since))


def count(store: TicketStore) -> int:
    row = store.transact(lambda tx: tx.one("SELECT COUNT(*) FROM register_history"))
    return int(row[0]) if row else 0


def test_many_states_in_an_hour_are_one_point_and_a_new_hour_another(store: TicketStore) -> None:
    start = T0.replace(minute=5)
    for minute in range(50):  # one state a minute, in batches as the intake sends them
        store.record_states([state(start + minute * MINUTE, unsent=minute)])
    assert [(p.at, p.unsent_count) for p in points(store)] == [(T0, 0)]
    store.record_states([state(T0 + HOUR + 2 * MINUTE, 7), state(T0 + HOUR + MINUTE, 6)])
    first, second = points(store)
    assert (second.at, second.unsent_count, second.fn_days_left) == (T0 + HOUR, 6, 40)
    assert second.oldest_unsent_age_h == pytest.approx(3 + 1 / 60)  # from first_unsent_at
    assert first.oldest_unsent_age_h is None  # nothing unsent: no age
    # The newest state still wins in devices; history keeps the hour's first.
    assert (store.device_facts(SITE, KKT) or {})["unsent_count"] == 7


def test_a_reported_age_and_hours_in_other_zones(store: TicketStore) -> None:
    moscow = (T0 + 3 * HOUR).astimezone(ZoneInfo("Europe/Moscow")).replace(minute=59)
    store.record_states([state(moscow, 2, oldest_unsent_age_h=30.5, fn_memory_used_pct=12.5)])
    (point,) = points(store)
    assert point.at == T0 + 3 * HOUR and point.at.utcoffset() == timedelta(0)
    assert (point.oldest_unsent_age_h, point.fn_memory_used_pct) == (30.5, 12.5)


def test_values_a_column_cannot_hold_are_null_and_the_batch_stands(store: TicketStore) -> None:
    odd = state(T0, 2**40, fn_days_left=True, fn_documents_left="many", fn_memory_used_pct=1e300)
    store.record_states([odd, state(T0, 1, kkt="shtrih-2")])
    (point,) = points(store)
    assert point.model_dump(exclude={"at", "oldest_unsent_age_h"}) == dict.fromkeys(
        ("unsent_count", "fn_days_left", "fn_memory_used_pct", "fn_documents_left")
    )
    assert points(store, "shtrih-2")[0].unsent_count == 1


def test_a_refused_register_has_no_history(make_store: StoreFactory) -> None:
    store = make_store(limits={"registers_per_site": 1})
    store.record_states([state(T0, 1, kkt="a-1"), state(T0, 1, kkt="a-2")])
    assert store.device_facts(SITE, "a-2") is None
    assert count(store) == 1 and points(store, "a-1")[0].unsent_count == 1


def test_a_state_from_the_intake_reaches_history(store: TicketStore) -> None:
    snapshot = HealthSnapshot(
        taken_at=T0,
        device=DeviceInfo(vendor="shtrih", serial="0012345678"),
        ofd=OfdQueue(unsent_count=4, first_unsent_at=T0 - HOUR, oldest_unsent_age_h=1.0),
    )
    topic = f"kktmon/v1/{SITE}/kkt/{KKT}/state"
    translated = Intake("kktmon/v1").translate(topic, snapshot.to_json().encode(), T0)
    assert translated.state is not None
    store.record_states([translated.state])
    (point,) = points(store)
    assert (point.unsent_count, point.oldest_unsent_age_h) == (4, 1.0)


def test_pruning_deletes_old_hours_in_batches(make_store: StoreFactory) -> None:
    store = make_store()
    for n in range(5):
        store.record_states([state(T0 + h * HOUR, h, kkt=f"k-{n}") for h in range(48)])
    now = T0 + 48 * HOUR
    pruner = HistoryPruner(store, "w1", days=1, clock=lambda: now, batch=2)
    assert pruner.prune(now) == 5 * 24  # 5 registers in 3 batches
    assert [p.at for p in points(store, "k-3")] == [T0 + h * HOUR for h in range(24, 48)]
    assert pruner.prune(now) == 0


def test_one_worker_prunes_under_the_lease(make_store: StoreFactory) -> None:
    store, other_store = make_store(), make_store()
    store.record_states([state(T0 + h * HOUR, h) for h in range(30)])
    now = T0 + 30 * HOUR
    first = HistoryPruner(store, "w1", days=1, clock=lambda: now)
    second = HistoryPruner(other_store, "w2", days=1, clock=lambda: now)
    assert first.run_if_due() == 6
    assert second.run_if_due() is None  # the lease is w1's for the interval
    assert first.run_if_due() is None  # and w1 waits the interval too
    assert count(store) == 24


def test_the_pruners_turn_also_forgets_old_dedup_marks_and_resolved_tickets(
    make_store: StoreFactory,
) -> None:
    store = make_store(sinks=())
    store.apply(raised(T0, severity=Severity.BLOCKED, event_id="old"), T0)
    store.apply(cleared(T0 + HOUR), T0 + HOUR)
    store.tick(T0 + 2 * HOUR)
    assert [t.state for t in store.tickets()] == ["resolved"]
    later = T0 + timedelta(days=400)
    assert HistoryPruner(store, "w1", days=90, clock=lambda: later).run_if_due() == 0
    assert store.tickets() == [] and store.prune(later) == 0  # marks and ticket are gone


def test_a_version_3_store_upgrades_to_4(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with monkeypatch.context() as patch:
        patch.setattr(store_db, "SCHEMA_VERSION", 3)
        patch.setattr(store_db, "MIGRATIONS", {v: store_db.MIGRATIONS[v] for v in (1, 2, 3)})
        with open_store(store_url, now=T0) as old:
            # Version 3 code: devices only (history.record is not called by it).
            patch.setattr(history, "record", lambda tx, rows: None)
            old.record_states([state(T0, 3)])
            with pytest.raises(TicketStoreError):  # version 3 has no history table
                old.transact(lambda tx: tx.all("SELECT * FROM register_history"))
    with open_store(store_url, now=T0 + HOUR) as store:
        version = store.transact(lambda tx: tx.one("SELECT MAX(version) FROM schema_version"))
        assert version is not None and version[0] == 4 == store_db.SCHEMA_VERSION
        assert (store.device_facts(SITE, KKT) or {})["unsent_count"] == 3
        assert points(store) == []
        store.record_states([state(T0 + HOUR, 5)])
        assert [(p.at, p.unsent_count) for p in points(store)] == [(T0 + HOUR, 5)]
    with open_store(store_url, now=T0 + 2 * HOUR) as again:  # a second open changes nothing
        assert len(points(again)) == 1


def test_a_worker_skips_the_insert_for_an_hour_it_wrote(make_store: StoreFactory) -> None:
    worker, other = make_store(), make_store()
    worker.record_states([state(T0 + MINUTE, 1)])
    worker.transact(lambda tx: tx.run("DELETE FROM register_history"))
    worker.record_states([state(T0 + 2 * MINUTE, 2)])  # this hour is written: no insert
    assert points(worker) == []
    other.record_states([state(T0 + 3 * MINUTE, 3)])  # another worker does not know it
    assert [p.unsent_count for p in points(worker)] == [3]
    worker.record_states([state(T0 + HOUR, 4), state(T0 - HOUR, 5)])  # a new hour; a late one
    assert [p.unsent_count for p in points(worker)] == [3, 4]


def test_the_hour_cache_is_bounded() -> None:
    cache = history.HourCache(size=3)
    rows: list[history.StateRow] = [("s", f"k{n}", {}, T0) for n in range(3)]
    assert cache.due(rows) == rows
    cache.remember(rows)
    assert cache.due(rows) == [] and cache.due([("s", "k0", {}, T0 + HOUR)])
    cache.remember([("s", "k9", {}, T0)])  # over the size: starts over
    assert cache.due(rows) == rows
