"""``kktmon check-config`` and ``kktmon outbox``: what an engineer runs while installing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kktmon.agent.config import load_config
from kktmon.agent.outbox import Outbox
from kktmon.cli.main import main


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(text, encoding="utf-8")
    return path


GOOD = """
site = "store-001"
[agent]
poll_interval_s = 60
state_dir = "{state}"
[mqtt]
url = "mqtt://127.0.0.1:1883"
[[devices]]
vendor = "shtrih"
url = "socket://127.0.0.1:7778"
"""


def test_check_config_accepts_the_documented_example(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, GOOD.format(state=tmp_path / "state"))
    assert main(["check-config", "--config", str(path)]) == 0
    assert "ok (site store-001; 1 register(s)" in capsys.readouterr().out


def test_check_config_names_the_bad_key_and_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = GOOD.format(state=tmp_path).replace("poll_interval_s = 60", "poll_interval_s = -1")
    path = _write(tmp_path, text)
    assert main(["check-config", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "agent.toml" in err and "agent.poll_interval_s" in err


def test_outbox_shows_depth_and_age(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, GOOD.format(state=tmp_path / "state"))
    config = load_config(path)
    config.agent.state_dir.mkdir()
    with Outbox(config.outbox_path, config.outbox.limits()) as outbox:
        outbox.put_event("kktmon/v1/store-001/kkt/shtrih-1/event", b"{}")
    assert main(["outbox", "--config", str(path), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["depth"] == 1 and stats["oldest_age_s"] is not None
    assert main(["outbox", "--config", str(path)]) == 0
    assert "queued   1" in capsys.readouterr().out
