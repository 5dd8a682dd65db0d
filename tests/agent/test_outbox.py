"""The durable spool: order, acks, coalescing, limits, stats, threads and SIGKILL."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from kktmon.agent.outbox import EntryKind, Message, Outbox, OutboxLimits
from kktmon.protocol.errors import OutboxError

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


class Clock:
    """A settable clock for ages and age limits."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def box(tmp_path: Path, clock: Clock) -> Iterator[Outbox]:
    with Outbox(tmp_path / "state" / "outbox.sqlite3", clock=clock) as outbox:
        yield outbox


def topics(box: Outbox) -> list[str]:
    return [entry.topic for entry in box.pending(1000)]


def test_file_is_created_in_wal_mode_with_full_sync(box: Outbox) -> None:
    assert box.path.exists()
    db = sqlite3.connect(box.path)
    try:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        db.close()


def test_events_come_back_in_put_order_until_acked(box: Outbox) -> None:
    ids = [box.put_event("kkt/a/event", f"e{i}".encode()) for i in range(5)]
    assert ids == sorted(ids)
    pending = box.pending(10)
    assert [e.payload for e in pending] == [b"e0", b"e1", b"e2", b"e3", b"e4"]
    assert all(e.kind is EntryKind.EVENT and not e.replayed for e in pending)
    assert box.ack(ids[1]) is True
    assert box.ack(ids[1]) is False  # a duplicate PUBACK is harmless
    assert [e.id for e in box.pending(2)] == [ids[0], ids[2]]
    assert [e.id for e in box.pending(10, after=ids[2])] == ids[3:]


def test_entries_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    with Outbox(path) as first:
        first.put_event("t/event", b"kept")
        first.put_state("t/state", b"s", T0)
    with Outbox(path) as second:
        assert [e.payload for e in second.pending()] == [b"kept", b"s"]


def test_ids_are_never_reused_after_ack(box: Outbox) -> None:
    first = box.put_event("t", b"1")
    box.ack(first)
    assert box.put_event("t", b"2") > first


def test_newer_state_replaces_older_and_moves_to_the_end(box: Outbox) -> None:
    old = box.put_state("kkt/a/state", b"old", T0)
    box.put_event("kkt/a/event", b"ev")
    new = box.put_state("kkt/a/state", b"new", T0 + timedelta(minutes=1))
    assert new is not None and old is not None and new > old
    assert [(e.topic, e.payload) for e in box.pending()] == [
        ("kkt/a/event", b"ev"),
        ("kkt/a/state", b"new"),
    ]
    # The late PUBACK of the replaced row must not delete the newer payload.
    assert box.ack(old) is False
    assert [e.payload for e in box.pending()] == [b"ev", b"new"]


def test_older_state_never_replaces_a_newer_one(box: Outbox) -> None:
    box.put_state("kkt/a/state", b"newer", T0 + timedelta(minutes=5))
    assert box.put_state("kkt/a/state", b"older", T0) is None
    assert [e.payload for e in box.pending()] == [b"newer"]


def test_retained_topic_never_goes_back_in_time_even_after_ack_and_restart(
    tmp_path: Path,
) -> None:
    path = tmp_path / "outbox.sqlite3"
    with Outbox(path) as box:
        entry = box.put_state("kkt/a/state", b"newest", T0 + timedelta(hours=1))
        assert entry is not None
        box.ack(entry)  # published: the broker now holds "newest"
    with Outbox(path) as box:
        assert box.put_state("kkt/a/state", b"replayed-old", T0) is None
        assert box.pending() == []
        same_moment = box.put_state("kkt/a/state", b"re-put", T0 + timedelta(hours=1))
        assert same_moment is not None  # equal time: a republish of the same truth


def test_states_of_different_topics_are_independent(box: Outbox) -> None:
    box.put_state("kkt/a/state", b"a", T0 + timedelta(hours=1))
    assert box.put_state("kkt/b/state", b"b", T0) is not None
    assert sorted(topics(box)) == ["kkt/a/state", "kkt/b/state"]


def test_naive_taken_at_is_refused(box: Outbox) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        box.put_state("t", b"x", datetime(2026, 1, 1))


def test_retained_alerts_keep_the_newest_put_including_a_clear(box: Outbox) -> None:
    box.put_retained("kkt/a/alert/FN_EXPIRING", b'{"severity":"warning"}')
    box.put_retained("kkt/a/alert/FN_EXPIRING", b'{"severity":"critical"}')
    box.put_retained("kkt/a/alert/PAPER_OUT", b"{}")
    box.put_retained("kkt/a/alert/FN_EXPIRING", b"")
    pending = box.pending()
    assert [(e.topic, e.payload, e.kind) for e in pending] == [
        ("kkt/a/alert/PAPER_OUT", b"{}", EntryKind.RETAINED),
        ("kkt/a/alert/FN_EXPIRING", b"", EntryKind.RETAINED),
    ]


def test_events_on_a_topic_are_never_coalesced(box: Outbox) -> None:
    for _ in range(3):
        box.put_event("kkt/a/event", b"same")
    assert len(box.pending()) == 3


def test_mark_replayed_flags_what_was_queued_before_the_reconnect(box: Outbox) -> None:
    box.put_event("t", b"before")
    assert box.mark_replayed() == 1
    box.put_event("t", b"after")
    assert [(e.payload, e.replayed) for e in box.pending()] == [
        (b"before", True),
        (b"after", False),
    ]
    assert box.mark_replayed() == 1  # only the new one changes


def test_stats_report_depth_bytes_age_and_drops(box: Outbox, clock: Clock) -> None:
    empty = box.stats()
    assert (empty.depth, empty.bytes, empty.oldest_age_s) == (0, 0, None)
    assert empty.drops == {"event": 0, "state": 0, "retained": 0}
    box.put_event("t/event", b"12345")
    clock.now += 30
    box.put_state("t/state", b"123", T0)
    box.put_retained("t/alert/X", b"")
    clock.now += 12
    stats = box.stats()
    assert stats.depth == 3
    assert stats.depth_by_kind == {"event": 1, "state": 1, "retained": 1}
    assert stats.bytes == 8
    assert stats.oldest_age_s == pytest.approx(42)
    assert not stats.over_limit


def test_row_limit_drops_oldest_state_first_and_never_events(tmp_path: Path) -> None:
    limits = OutboxLimits(max_rows=4, max_bytes=10**9, max_age_s=10**9)
    with Outbox(tmp_path / "o.sqlite3", limits) as box:
        for device in "abc":
            box.put_state(f"kkt/{device}/state", device.encode(), T0)
        box.put_event("kkt/a/event", b"e1")
        assert box.stats().drops["state"] == 0
        box.put_event("kkt/a/event", b"e2")  # 5 rows > 4: the oldest state goes
        assert topics(box) == ["kkt/b/state", "kkt/c/state", "kkt/a/event", "kkt/a/event"]
        box.put_event("kkt/a/event", b"e3")
        assert topics(box) == ["kkt/c/state"] + ["kkt/a/event"] * 3
        assert box.stats().drops == {"event": 0, "state": 2, "retained": 0}
        for i in range(4):
            box.put_event("kkt/a/event", f"more{i}".encode())
        stats = box.stats()
        assert stats.depth_by_kind["event"] == 7  # events are kept beyond the limit
        assert stats.over_limit


def test_the_state_just_put_is_kept_even_over_the_limit(tmp_path: Path) -> None:
    limits = OutboxLimits(max_rows=2, max_bytes=10**9, max_age_s=10**9)
    with Outbox(tmp_path / "o.sqlite3", limits) as box:
        box.put_event("e", b"1")
        box.put_event("e", b"2")
        entry = box.put_state("kkt/a/state", b"newest truth", T0)
        assert entry is not None
        assert entry in [e.id for e in box.pending()]


def test_byte_limit_drops_state_rows(tmp_path: Path) -> None:
    limits = OutboxLimits(max_rows=1000, max_bytes=100, max_age_s=10**9)
    with Outbox(tmp_path / "o.sqlite3", limits) as box:
        box.put_state("kkt/a/state", b"x" * 60, T0)
        box.put_state("kkt/b/state", b"y" * 60, T0)
        assert topics(box) == ["kkt/b/state"]
        assert box.stats().bytes == 60
        assert box.stats().drops["state"] == 1


def test_age_limit_drops_old_state_but_not_old_events(tmp_path: Path, clock: Clock) -> None:
    limits = OutboxLimits(max_rows=1000, max_bytes=10**9, max_age_s=3600)
    with Outbox(tmp_path / "o.sqlite3", limits, clock=clock) as box:
        box.put_event("kkt/a/event", b"old event")
        box.put_state("kkt/a/state", b"old state", T0)
        clock.now += 7200
        box.put_event("kkt/a/event", b"new event")
        assert [e.payload for e in box.pending()] == [b"old event", b"new event"]
        assert box.stats().drops["state"] == 1


def test_threads_put_and_ack_concurrently(box: Outbox) -> None:
    def producer(name: str) -> None:
        for i in range(100):
            box.put_event(f"t/{name}", str(i).encode())

    def acker(stop: threading.Event) -> None:
        while not stop.is_set():
            for entry in box.pending(10):
                box.ack(entry.id)

    stop = threading.Event()
    threads = [threading.Thread(target=producer, args=(n,)) for n in "abc"]
    ack_thread = threading.Thread(target=acker, args=(stop,))
    ack_thread.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stop.set()
    ack_thread.join()
    for entry in box.pending(1000):
        box.ack(entry.id)
    assert box.stats().depth == 0
    assert box.stats().bytes == 0


def test_a_file_that_is_not_a_database_is_an_outbox_error(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    path.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(OutboxError, match="outbox"):
        Outbox(path)


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    Outbox(path).close()
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version=99")
    db.commit()
    db.close()
    with pytest.raises(OutboxError, match="newer"):
        Outbox(path)


WRITER = """
import sys
from datetime import UTC, datetime, timedelta
from kktmon.agent.outbox import Outbox

box = Outbox(sys.argv[1])
start = datetime(2026, 1, 1, tzinfo=UTC)
i = 0
while True:
    event = box.put_event("kkt/a/event", b"event-%d" % i)
    state = box.put_state("kkt/a/state", b"state-%d" % i, start + timedelta(seconds=i))
    if i % 3 == 0:
        box.ack(event)  # acked: allowed to be gone
        print("acked", event, flush=True)
    else:
        print("event", event, i, flush=True)
    print("state", state, i, flush=True)
    i += 1
"""


@pytest.mark.parametrize("kill_after", [5, 37, 120])
def test_sigkill_loses_nothing_that_was_put_and_corrupts_nothing(
    tmp_path: Path, kill_after: int
) -> None:
    path = tmp_path / "outbox.sqlite3"
    child = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    lines: list[list[str]] = []
    try:
        while sum(1 for line in lines if line[0] == "state") < kill_after:
            line = child.stdout.readline()
            assert line, f"writer died early with {child.wait()}"
            lines.append(line.split())
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL

    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        db.close()
    with Outbox(path) as box:
        present = {e.id: e.payload for e in box.pending(10**6)}
        events = [(int(f[1]), int(f[2])) for f in lines if f[0] == "event"]
        for entry_id, i in events:
            assert present.get(entry_id) == b"event-%d" % i
        acked = {int(f[1]) for f in lines if f[0] == "acked"}
        assert not acked & set(present)
        # The state row may be newer than the last one reported, never older.
        last_state = max(int(f[2]) for f in lines if f[0] == "state")
        [state] = [e for e in box.pending(10**6) if e.kind is EntryKind.STATE]
        assert int(state.payload.split(b"-")[1]) >= last_state
        stats = box.stats()
        assert stats.depth == len(present)
        assert stats.bytes == sum(len(p) for p in present.values())
        # The restarted agent carries on; ids keep growing past everything handed out.
        handed_out = [int(f[1]) for f in lines if f[1] != "None"]
        assert box.put_event("kkt/a/event", b"after restart") > max(handed_out)


# -- the agent's state beside the entries (issue 12) ------------------------------------


def test_commit_poll_queues_in_order_with_the_seq_and_the_rule_state(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    with Outbox(path) as box:
        assert box.load_seq() == {} and box.load_rules_state() is None
        ids = box.commit_poll(
            [
                Message.event("kkt/a/event", b"raised"),
                Message.retained("kkt/a/alert/X", b"{}"),
                Message.state("kkt/a/state", b"s1", T0),
            ],
            seq={"a": 7},
            rules_state='{"r": 1}',
        )
        assert [e.id for e in box.pending()] == ids
        box.commit_poll([Message.state("kkt/b/state", b"b", T0)], seq={}, rules_state='{"r": 2}')
    with Outbox(path) as box:
        assert [(e.kind, e.payload) for e in box.pending()] == [
            (EntryKind.EVENT, b"raised"),
            (EntryKind.RETAINED, b"{}"),
            (EntryKind.STATE, b"s1"),
            (EntryKind.STATE, b"b"),
        ]
        assert box.load_seq() == {"a": 7}  # an empty seq leaves the others alone
        assert box.load_rules_state() == '{"r": 2}'


def test_commit_poll_coalesces_and_refuses_old_states_like_the_puts(box: Outbox) -> None:
    box.put_state("kkt/a/state", b"newer", T0 + timedelta(minutes=1))
    box.put_retained("kkt/a/alert/X", b"{}")
    ids = box.commit_poll(
        [Message.retained("kkt/a/alert/X", b""), Message.state("kkt/a/state", b"older", T0)],
        seq={},
        rules_state="{}",
    )
    assert ids[1] is None
    assert [e.payload for e in box.pending()] == [b"newer", b""]


def test_commit_poll_is_all_or_nothing(box: Outbox, monkeypatch: pytest.MonkeyPatch) -> None:
    box.commit_poll([], seq={"a": 1}, rules_state="before")
    real_insert, calls = box._insert, []

    def failing_insert(*args: Any) -> int:
        calls.append(args)
        if len(calls) == 2:
            raise sqlite3.OperationalError("disk I/O error")
        return real_insert(*args)

    monkeypatch.setattr(box, "_insert", failing_insert)
    with pytest.raises(OutboxError, match="disk I/O error"):
        box.commit_poll(
            [Message.event("kkt/a/event", b"e"), Message.retained("kkt/a/alert/X", b"{}")],
            seq={"a": 2},
            rules_state="after",
        )
    assert box.pending() == []
    assert (box.load_seq(), box.load_rules_state()) == ({"a": 1}, "before")


def test_import_state_never_lowers_a_seq_nor_replaces_the_rule_state(box: Outbox) -> None:
    box.import_state({"a": 5, "b": 3}, "from the files")
    assert (box.load_seq(), box.load_rules_state()) == ({"a": 5, "b": 3}, "from the files")
    box.commit_poll([], seq={"a": 9}, rules_state="newer")
    box.import_state({"a": 5, "b": 4}, "from the files again")
    assert (box.load_seq(), box.load_rules_state()) == ({"a": 9, "b": 4}, "newer")


def test_a_version_1_spool_gains_the_state_tables_and_keeps_its_entries(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    with Outbox(path) as box:
        box.put_event("t/event", b"from version 1")
    db = sqlite3.connect(path)
    db.executescript("DROP TABLE seq; DROP TABLE rules_state; PRAGMA user_version=1;")
    db.close()
    with Outbox(path) as box:
        assert [e.payload for e in box.pending()] == [b"from version 1"]
        box.commit_poll([], seq={"a": 1}, rules_state="{}")
        assert box.load_seq() == {"a": 1}
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 2
    finally:
        db.close()


POLLER = """
import sys
from datetime import UTC, datetime, timedelta
from kktmon.agent.outbox import Message, Outbox

box = Outbox(sys.argv[1])
start = datetime(2026, 1, 1, tzinfo=UTC)
i = 0
while True:
    i += 1
    messages = [
        Message.event("kkt/a/event", b"event-%d" % i),
        Message.retained("kkt/a/alert/X", b"alert-%d" % i),
        Message.state("kkt/a/state", b"state-%d" % i, start + timedelta(seconds=i)),
    ]
    box.commit_poll(messages, seq={"a": i}, rules_state="rules-%d" % i)
    print("committed", i, flush=True)
"""


@pytest.mark.parametrize("kill_after", [3, 40])
def test_sigkill_leaves_a_poll_wholly_committed_or_not_at_all(
    tmp_path: Path, kill_after: int
) -> None:
    path = tmp_path / "outbox.sqlite3"
    child = subprocess.Popen(
        [sys.executable, "-c", POLLER, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    committed = 0
    try:
        while committed < kill_after:
            line = child.stdout.readline()
            assert line, f"poller died early with {child.wait()}"
            committed = int(line.split()[1])
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
        child.stdout.close()
    with Outbox(path) as box:
        entries = box.pending(10**6)
        newest = int(entries[-1].payload.split(b"-")[1])
        assert newest >= committed
        assert [e.payload for e in entries][-2:] == [b"alert-%d" % newest, b"state-%d" % newest]
        events = [e.payload for e in entries if e.kind is EntryKind.EVENT]
        assert events == [b"event-%d" % i for i in range(1, newest + 1)]
        assert box.load_seq() == {"a": newest}
        assert box.load_rules_state() == f"rules-{newest}"
