"""Worker identities: a stable client id per worker, unique among the live ones of a host."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kktmon.protocol.errors import ConfigError
from kktmon.ticketing.config import parse_config
from kktmon.ticketing.identity import (
    DEFAULT_LOCK_DIR,
    claim,
    host_name,
    lock,
    lock_dir,
    lock_path,
    slot_id,
)

HOLD = """
import sys, time
from pathlib import Path
from kktmon.ticketing.identity import lock
identity = lock(Path(sys.argv[1]), sys.argv[2])
print("holding", flush=True)
time.sleep(60)
"""


def _config(folder: Path, mqtt: str = "") -> str:
    return (
        f'[mqtt]\nlock_dir = "{folder}"\n{mqtt}'
        f'[ticketing]\nstore = "sqlite:///{folder}/tickets.sqlite3"\n'
    )


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding ``kktmon-ticketing-a`` in ``tmp_path``."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path), "kktmon-ticketing-a"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "holding"
    yield process
    process.kill()
    process.wait(5)


def test_workers_on_one_host_take_the_lowest_free_slots_and_get_theirs_back(
    tmp_path: Path,
) -> None:
    config = parse_config(_config(tmp_path))
    first, second = claim(config, host="ws1"), claim(config, host="ws1")
    try:
        assert first.client_id == "kktmon-ticketing-ws1-1"
        assert second.client_id == "kktmon-ticketing-ws1-2"
        first.release()  # the first worker stops (or dies: the kernel drops its lock)
        again = claim(config, host="ws1")
        assert again.client_id == "kktmon-ticketing-ws1-1", "a restart resumes its session"
        again.release()
    finally:
        first.release()
        second.release()


def test_the_default_id_names_this_host() -> None:
    assert slot_id(3) == f"kktmon-ticketing-{host_name()}-3"
    assert all(c.isalnum() or c in "._-" for c in host_name())


def test_an_explicit_id_held_by_another_process_is_refused_naming_its_pid(
    tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    config = parse_config(_config(tmp_path, 'client_id = "kktmon-ticketing-a"\n'))
    with pytest.raises(ConfigError) as refused:
        claim(config)
    message = str(refused.value)
    assert "'kktmon-ticketing-a' is in use on this host by pid" in message
    assert f"pid {holder.pid}" in message
    holder.kill()
    holder.wait(5)
    with claim(config) as identity:  # its holder died: the id is free again
        assert identity.client_id == "kktmon-ticketing-a"


def test_an_explicit_id_and_a_slot_with_the_same_name_collide(tmp_path: Path) -> None:
    with lock(tmp_path, slot_id(1, "ws1")):
        with pytest.raises(ConfigError, match="in use on this host"):
            lock(tmp_path, "kktmon-ticketing-ws1-1")
        with claim(parse_config(_config(tmp_path)), host="ws1") as identity:
            assert identity.client_id == "kktmon-ticketing-ws1-2"


def test_lock_files_stay_in_their_folder_whatever_the_id(tmp_path: Path) -> None:
    assert lock_path(tmp_path, "../x/y").parent == tmp_path
    assert len(lock_path(tmp_path, "é" * 128).name) < 255


def test_where_the_locks_live(tmp_path: Path) -> None:
    assert lock_dir(parse_config(_config(tmp_path))) == tmp_path
    sqlite = parse_config(f'[ticketing]\nstore = "sqlite:///{tmp_path}/db/t.sqlite3"\n')
    assert lock_dir(sqlite) == tmp_path / "db"
    postgres = parse_config('[ticketing]\nstore = "postgresql://kktmon@db/kktmon"\n')
    assert lock_dir(postgres) == DEFAULT_LOCK_DIR


def test_a_lock_folder_that_cannot_be_made_says_which_key_to_set(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    config = parse_config(_config(blocker / "locks"))
    with pytest.raises(ConfigError, match=r"set \[mqtt\] lock_dir"):
        claim(config)
