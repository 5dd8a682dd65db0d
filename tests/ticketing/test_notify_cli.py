"""``kktmon notifications`` (pending, failed with reasons, sent) and ``kktmon check-config``
on a ticketing file (errors name the key; unknown client sites are warned about)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from notify_rig import NOW, drive_facts, notify_text, record

from kktmon.cli.main import main
from kktmon.ticketing import notify_store
from kktmon.ticketing.config import parse_config
from kktmon.ticketing.notify_dispatch import Notifier
from kktmon.ticketing.store import TicketStore


def _config(tmp_path: Path, text: str) -> str:
    path = tmp_path / "ticketing.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_notifications_list_pending_failed_and_sent(
    store: TicketStore, store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = notify_text(store_url, telegram_url="http://127.0.0.1:1")
    config = _config(tmp_path, text)
    notifier = Notifier(store, parse_config(text, env={}), {}, holder="w")
    for n, ends in enumerate((date(2026, 12, 10), date(2026, 12, 1))):
        record(store, drive_facts(ends), kkt=f"shtrih-{n}")
    assert notifier.scan(NOW) == 4
    email, telegram, *_ = store.transact(lambda tx: notify_store.claim(tx, 2, NOW, 60, "t"))
    store.transact(lambda tx: notify_store.finish(tx, email, NOW))
    store.transact(lambda tx: notify_store.fail(tx, telegram, "telegram 403: Forbidden", None))

    assert main(["notifications", "--config", config, "--json", "--days", "36500"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert listing["counts"] == {"sent": 1, "failed": 1, "pending": 2}
    failed = next(item for item in listing["notifications"] if item["state"] == "failed")
    assert failed["last_error"] == "telegram 403: Forbidden" and failed["channel"] == "telegram"
    assert failed["cause"] == "fn_expiry" and failed["threshold"] == 14

    assert main(["notifications", "--config", config, "--days", "36500"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[2].startswith("failed") and "telegram 403: Forbidden" in table[2]
    assert table[-2].startswith("sent") and table[-1] == "2 pending, 0 claimed, 1 failed, 1 sent"
    assert main(["notifications", "--config", config]) == 0  # sent ones older than 7 days
    assert "1 sent" not in capsys.readouterr().out


def test_check_config_names_the_bad_key_of_a_ticketing_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = '[[clients]]\nid = "a"\nname = "A"\nsites = ["s1"]\ntelegram_chat_ids = ["acme"]\n'
    assert main(["check-config", "--config", _config(tmp_path, bad)]) == 2
    assert "clients[0].telegram_chat_ids[0]: 'acme' is not a chat id" in capsys.readouterr().err


def test_check_config_warns_of_sites_the_store_never_saw(
    store: TicketStore, store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record(store, drive_facts(date(2027, 1, 1)))  # store-001 reported; store-002 never did
    config = _config(tmp_path, notify_text(store_url))
    assert main(["check-config", "--config", config]) == 0
    out = capsys.readouterr()
    assert out.out == f"{config}: ok (ticketing; 0 sink(s), 1 client(s) with 2 site(s))\n"
    assert out.err == (
        "warning: clients[0].sites: 'store-002' has never reported to the store (a typo?)\n"
    )


def test_check_config_on_a_store_not_created_yet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path}/not-yet.sqlite3"
    assert main(["check-config", "--config", _config(tmp_path, notify_text(url))]) == 0
    assert "the store does not exist yet" in capsys.readouterr().err
    assert not (tmp_path / "not-yet.sqlite3").exists()  # checking creates nothing


def test_check_config_still_checks_agent_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    agent = tmp_path / "agent.toml"
    agent.write_text(
        'site = "store-1"\n[[devices]]\nvendor = "shtrih"\nurl = "socket://127.0.0.1:7778"\n',
        encoding="utf-8",
    )
    assert main(["check-config", "--config", str(agent)]) == 0
    assert "ok (site store-1; 1 register(s)" in capsys.readouterr().out
