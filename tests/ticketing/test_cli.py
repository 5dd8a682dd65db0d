"""``kktmon tickets``: the refusal counters beside the tickets, the ``--json`` array intact."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from ticket_facts import T0, StoreFactory, raised

from kktmon.cli.main import main
from kktmon.protocol.errors import ConfigError
from kktmon.ticketing.config import load_config


def test_tickets_show_refusals_without_changing_the_json_array(
    make_store: StoreFactory, store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = make_store(limits={"live_tickets_per_register": 1})
    store.apply(raised(T0, code="PAPER_OUT"), T0)
    store.apply(raised(T0, code="COVER_OPEN"), T0)  # refused
    store.apply(raised(T0, code="PRINTER_FAULT"), T0)  # refused
    store.record_dead_letter("kktmon/v1/store-001/kkt/x/event", b"{", "not JSON", T0)
    config = tmp_path / "ticketing.toml"
    config.write_text(f'[ticketing]\nstore = "{store_url}"\n', encoding="utf-8")

    assert main(["tickets", "--config", str(config), "--json"]) == 0
    out = capsys.readouterr()
    items = json.loads(out.out)
    assert isinstance(items, list) and [i["problem"] for i in items] == ["PAPER_OUT"]

    assert main(["tickets", "--config", str(config)]) == 0
    table = capsys.readouterr().out
    assert "PAPER_OUT" in table
    assert "2 new tickets refused over the limits at 1 site" in table
    assert "1 message dead-lettered" in table
    assert "kktmon tickets --refused" in table

    assert main(["tickets", "--config", str(config), "--refused", "--json"]) == 0
    counters = json.loads(capsys.readouterr().out)
    assert counters == {
        "refused": [
            {
                "site": "store-001",
                "reason": "live_tickets_per_register",
                "refused": 2,
                "first_at": T0.isoformat().replace("+00:00", "Z"),
                "last_at": T0.isoformat().replace("+00:00", "Z"),
            }
        ],
        "dead_letters": 1,
    }

    assert main(["tickets", "--config", str(config), "--refused"]) == 0
    text = capsys.readouterr().out
    assert "store-001" in text and "live_tickets_per_register" in text and "2" in text


READER_ONLY = """
[ticketing]
store = "{store}"
[mqtt]
password_file = "{missing}"
[[sinks]]
type = "okdesk"
url = "https://acme.okdesk.ru/api/v1/"
"""


@pytest.mark.parametrize(
    ("command", "shows"),
    [
        (["tickets", "--json"], "PAPER_OUT"),
        (["tickets", "--refused"], "dead letters: 0"),
        (["notifications"], ""),
        (["report", "sla"], "SLA report"),
    ],
)
def test_readers_of_the_store_need_none_of_the_services_secrets(  # noqa: PLR0917
    command: list[str],
    shows: str,
    make_store: StoreFactory,
    store_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The help desk's token and the broker's password are the ticketing service's: a
    dispatcher listing tickets or a manager running a report holds neither."""
    make_store().apply(raised(T0, code="PAPER_OUT"), T0)
    monkeypatch.delenv("KKTMON_SINK_OKDESK_SECRET", raising=False)
    config = tmp_path / "ticketing.toml"
    text = READER_ONLY.format(store=store_url, missing=tmp_path / "no-such-password")
    config.write_text(text, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "kktmon.cli", *command, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert shows in done.stdout
    # The service itself still refuses to start without them, naming the key.
    with pytest.raises(ConfigError, match=r"password_file|api_token"):
        load_config(config)
