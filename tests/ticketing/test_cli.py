"""``kktmon tickets``: the refusal counters beside the tickets, the ``--json`` array intact."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ticket_facts import T0, StoreFactory, raised

from kktmon.cli.main import main


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
