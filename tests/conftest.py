"""Suite-wide guards: a test that leaves a simulator, server or worker thread behind fails.

Like python-can's conftest for virtual channels: leaked threads keep ports open and make
later tests flaky in ways that are hard to trace back.
"""

from __future__ import annotations

import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from demo_run import demo_run  # noqa: F401  (registered here, once: one demo a session)
from mqtt_broker import Broker, free_port, mosquitto_binary

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


@pytest.fixture
def refusing_address() -> Iterator[tuple[str, int]]:
    """A bound but non-listening port: connecting is refused, and nobody can take the port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[:2]


@pytest.fixture
def tcp_port() -> Callable[[], int]:
    """``tcp_port()``: a loopback port that was free a moment ago."""
    return free_port


@pytest.fixture
def mosquitto_factory(tmp_path: Path) -> Iterator[Callable[..., Broker]]:
    """``factory(extra="", name="broker", port=None, raw=None)``: start a broker.

    ``extra`` lines are appended to a default configuration (one with its own ``listener``
    line replaces the default plain listener); ``raw`` is a whole configuration file
    instead. ``{port}`` and ``{folder}`` are filled in either way (double other braces).
    """
    binary = mosquitto_binary()
    if binary is None:
        pytest.skip("mosquitto is not installed (apt-get install mosquitto)")
    brokers: list[Broker] = []

    def factory(
        extra: str = "", name: str = "broker", port: int | None = None, raw: str | None = None
    ) -> Broker:
        broker = Broker(binary, tmp_path / name, extra, port, raw)
        brokers.append(broker)
        broker.start()
        return broker

    yield factory
    for broker in brokers:
        broker.stop(signal.SIGKILL)


@pytest.fixture
def mosquitto(mosquitto_factory: Callable[..., Broker]) -> Broker:
    """An anonymous broker on a free loopback port."""
    return mosquitto_factory()
