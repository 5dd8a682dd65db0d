"""A running ticketing worker keeps the history it writes to ``[console] history_days``:
states through Mosquitto become hourly points, and older points are pruned under the
``history`` lease (both stores)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from ticketing_rig import PREFIX, config_text, lease_holder, wait_for

from kktmon.protocol.health import DeviceInfo, HealthSnapshot, OfdQueue
from kktmon.ticketing.config import parse_config
from kktmon.ticketing.service import TicketingService
from kktmon.ticketing.store import RegisterFacts, TicketStore, open_store
from kktmon.ticketing.store_db import Tx

SITE, KKT = "store-1", "shtrih-0001"


@pytest.fixture
def reader(store_url: str) -> Iterator[TicketStore]:
    store = open_store(store_url)
    yield store
    store.close()


def _hours(store: TicketStore) -> list[datetime]:
    def read(tx: Tx) -> list[datetime]:
        rows = tx.all("SELECT hour FROM register_history WHERE kkt = ? ORDER BY hour", KKT)
        return [tx.d.read_ts(row[0]) for row in rows]

    return store.transact(read)


def test_a_worker_writes_hourly_points_and_prunes_old_ones(
    mosquitto: Any, store_url: str, tmp_path: Path, reader: TicketStore
) -> None:
    now = datetime.now(UTC)
    old = [now - timedelta(days=3), now - timedelta(days=2), now - timedelta(hours=5)]
    reader.record_states(
        [RegisterFacts(SITE, KKT, {"vendor": "shtrih", "unsent_count": 1}, at) for at in old]
    )
    assert len(_hours(reader)) == 3
    text = config_text(mosquitto, store_url, lock_dir=tmp_path) + "[console]\nhistory_days = 1\n"
    service = TicketingService(parse_config(text))
    service.start()
    try:
        assert service.connected.wait(10)
        snapshot = HealthSnapshot(
            taken_at=now, device=DeviceInfo(vendor="shtrih"), ofd=OfdQueue(unsent_count=2)
        )
        topic = f"{PREFIX}/{SITE}/kkt/{KKT}/state"
        service.client.publish(topic, snapshot.to_json().encode(), qos=1).wait_for_publish(5)
        hour = now.replace(minute=0, second=0, microsecond=0)
        five_ago = (now - timedelta(hours=5)).replace(minute=0, second=0, microsecond=0)
        wait_for(lambda: _hours(reader) == [five_ago, hour], "the old days pruned, now added")
        assert lease_holder(reader, "history") == service.client_id
    finally:
        service.stop()
