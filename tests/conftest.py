"""Suite-wide guards: a test that leaves a simulator, server or worker thread behind fails.

Like python-can's conftest for virtual channels: leaked threads keep ports open and make
later tests flaky in ways that are hard to trace back.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

GRACE_S = 2.0


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + GRACE_S
    leaked: list[threading.Thread] = []
    while time.monotonic() < deadline:
        leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not leaked:
            return
        time.sleep(0.02)
    pytest.fail(f"test leaked threads: {[t.name for t in leaked]}")
