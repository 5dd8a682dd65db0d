"""``kktmon console`` freezes what lives as long as its process before serving.

The modules, the app and the config's clients (2,000 of them at a large centre) stay
for the process's life; frozen (``gc.freeze``), they leave the garbage collector's full
passes, which otherwise walked them all every few requests and doubled a register
page's p95 at 100,000 registers (``benchmarks/console.py``). Checked in-process with a
stand-in for uvicorn's server: serving itself is what the other console tests run.
"""

from __future__ import annotations

import gc
import signal
from pathlib import Path

import pytest
from console_rig import console_config

from kktmon.console import server
from kktmon.ticketing.config import TicketingConfig


class _Server:
    """uvicorn's server as ``serve`` uses it: ``run`` until stopped, then ``started``."""

    started = True

    def __init__(self) -> None:
        self.frozen_at_run: int | None = None

    def run(self) -> None:
        self.frozen_at_run = gc.get_freeze_count()


def test_serve_freezes_the_startup_objects_before_it_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = console_config(tmp_path / "ticketing.toml", f"sqlite:///{tmp_path}/t.sqlite3")
    stand_in = _Server()

    def make_server(config: TicketingConfig, cookie_secure: str = "auto") -> _Server:
        return stand_in

    monkeypatch.setattr(server, "make_server", make_server)
    previous = signal.getsignal(signal.SIGTERM)
    try:
        assert server.serve(str(config)) == 0
    finally:
        signal.signal(signal.SIGTERM, previous)
        gc.unfreeze()
    assert stand_in.frozen_at_run is not None
    assert stand_in.frozen_at_run > 10_000  # the interpreter's and the app's objects
