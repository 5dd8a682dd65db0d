"""What goes wrong around a worker, and what it says and does (issue 12).

A broker that is down or a TLS peer that is wrong is logged at every attempt with its
reason; an encrypted client key works; a poison message is dead-lettered and
acknowledged while a store that is down holds messages and retries; nothing kills a
thread, and a thread that dies anyway ends the worker with a non-zero status.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from mqtt_broker import Broker
from pki import make_pki
from ticketing_rig import Agent, config_text, live, wait_for

from kktmon.protocol.errors import ConfigError, TicketStoreError
from kktmon.ticketing.config import parse_config
from kktmon.ticketing.intake import Fact
from kktmon.ticketing.service import EXIT_TAKEN_OVER, EXIT_THREAD_DIED, TicketingService
from kktmon.ticketing.store import TicketStore, open_store

ServiceFactory = Callable[..., TicketingService]


@pytest.fixture
def services(tmp_path: Path) -> Iterator[ServiceFactory]:
    """``services(mqtt_url_line_or_broker, store_url=None, start=True, env=None, **ticketing)``."""
    made: list[TicketingService] = []

    def make(
        broker: Any,
        store_url: str | None = None,
        *,
        mqtt: str = "",
        start: bool = True,
        env: dict[str, str] | None = None,
        **ticketing: str,
    ) -> TicketingService:
        url = store_url or f"sqlite:///{tmp_path}/tickets.sqlite3"
        text = config_text(broker, url, mqtt=mqtt, lock_dir=tmp_path / "locks", **ticketing)
        service = TicketingService(parse_config(text, tmp_path / "t.toml", env=env or {}))
        made.append(service)
        if start:
            service.start()
        return service

    yield make
    for service in made:
        if not service.stop_event.is_set() or service.identity.held:
            service.stop()


@pytest.fixture
def tls_broker(mosquitto_factory: Callable[..., Broker], tmp_path: Path) -> Broker:
    """A broker whose only listener is TLS (server cert from ``ca``), client certs required."""
    pki = make_pki(tmp_path / "pki")
    return mosquitto_factory(
        "listener {port} 127.0.0.1\n"
        f"cafile {pki.path('ca.crt')}\ncertfile {pki.path('server.crt')}\n"
        f"keyfile {pki.path('server.key')}\nrequire_certificate true\n",
        name="tls",
    )


def _messages(caplog: pytest.LogCaptureFixture, logger: str = "kktmon.ticketing") -> str:
    return "\n".join(r.getMessage() for r in caplog.records if r.name.startswith(logger))


def _wait_log(caplog: pytest.LogCaptureFixture, text: str, timeout: float = 15.0) -> None:
    wait_for(lambda: text in _messages(caplog), f"{text!r} logged", timeout)


def test_a_broker_that_is_down_is_logged_at_every_attempt_and_the_reconnect_too(
    mosquitto: Broker, services: ServiceFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="kktmon")
    mosquitto.stop()  # its port stays reserved for the restart below
    service = services(mosquitto)
    _wait_log(caplog, "attempt 1 failed: connection refused")
    _wait_log(caplog, "attempt 2 failed: connection refused")
    text = _messages(caplog, "kktmon.ticketing.session")
    assert f"MQTT mqtt://127.0.0.1:{mosquitto.port} as {service.client_id}" in text
    assert "retrying in 1 s" in text and "retrying in 2 s" in text
    mosquitto.start()
    _wait_log(caplog, "failed attempt(s), a new session")
    assert service.connected.wait(10)
    mosquitto.stop()
    _wait_log(caplog, "connection lost")
    assert "reconnecting in 1 s" in _messages(caplog, "kktmon.ticketing.session")


@pytest.mark.parametrize(
    "case",
    [
        ("other-ca.crt", "tls", "TLS: the broker's certificate was not accepted"),
        ("ca.crt", "plain", "TLS handshake failed: the peer reset the connection"),
    ],
    ids=["unknown-ca", "not-tls"],
)
def test_a_bad_tls_peer_is_logged_with_the_ssl_error(
    tls_broker: Broker,
    mosquitto: Broker,
    services: ServiceFactory,
    caplog: pytest.LogCaptureFixture,
    case: tuple[str, str, str],
) -> None:
    caplog.set_level(logging.INFO, logger="kktmon")
    ca, kind, reason = case
    peer = mosquitto if kind == "plain" else tls_broker
    pki = tls_broker.folder.parent / "pki"
    mqtt = (
        f'url = "mqtts://127.0.0.1:{peer.port}"\ntls_ca_file = "{pki / ca}"\n'
        f'tls_cert_file = "{pki / "store-1.crt"}"\ntls_key_file = "{pki / "store-1.key"}"\n'
    )
    services(peer, mqtt=mqtt)
    _wait_log(caplog, f"attempt 1 failed: {reason}")
    assert "retrying in 1 s" in _messages(caplog, "kktmon.ticketing.session")


def _encrypt(key: Path, passphrase: bytes) -> Path:
    from cryptography.hazmat.primitives import serialization

    private = serialization.load_pem_private_key(key.read_bytes(), password=None)
    encrypted = key.with_suffix(".enc.key")
    encrypted.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(passphrase),
        )
    )
    return encrypted


def test_an_encrypted_client_key_works_with_its_passphrase_from_the_environment(
    tls_broker: Broker, services: ServiceFactory, tmp_path: Path
) -> None:
    pytest.importorskip("cryptography")
    pki = tmp_path / "pki"
    key = _encrypt(pki / "store-1.key", b"pass phrase")
    mqtt = (
        f'url = "mqtts://127.0.0.1:{tls_broker.port}"\ntls_ca_file = "{pki / "ca.crt"}"\n'
        f'tls_cert_file = "{pki / "store-1.crt"}"\ntls_key_file = "{key}"\n'
    )
    with pytest.raises(ConfigError, match="mqtt TLS files: cannot load"):
        services(tls_broker, mqtt=mqtt)  # no passphrase: a message, not a traceback
    service = services(tls_broker, mqtt=mqtt, env={"KKTMON_MQTT_TLS_KEY_PASSWORD": "pass phrase"})
    assert service.connected.wait(10), "connected with the encrypted key"
    assert service.reconciled.wait(15), "the reconciler's own connection too"


class _Flaky:
    """Wraps ``store.apply_batch``: refuses facts of ``poison``, or is down ``outages`` times."""

    def __init__(self, store: TicketStore, poison: str = "", outages: int = 0) -> None:
        self.apply_batch = store.apply_batch
        self.poison, self.outages = poison, outages
        self.poison_seen = 0

    def __call__(self, facts: Sequence[Fact], now: datetime) -> Any:
        if self.outages:
            self.outages -= 1
            cause = sqlite3.OperationalError("database is locked")
            raise TicketStoreError("tickets.sqlite3: database is locked") from cause
        codes = {getattr(getattr(fact, "problem", None), "code", None) for fact in facts}
        if self.poison in codes:
            self.poison_seen += 1
            raise ValueError(f"cannot store {self.poison}")
        return self.apply_batch(facts, now)


def test_a_message_the_store_refuses_is_dead_lettered_and_the_rest_applied(
    mosquitto: Broker,
    services: ServiceFactory,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.INFO, logger="kktmon")
    service = services(mosquitto, start=False)
    flaky = _Flaky(service.store, poison="PRINTER_FAULT")
    monkeypatch.setattr(service.store, "apply_batch", flaky)
    service.start()
    assert service.reconciled.wait(15)
    agent = Agent(mosquitto)
    try:
        now = datetime.now(UTC)
        for code in ("PAPER_OUT", "PRINTER_FAULT", "COVER_OPEN"):
            agent.event("raised", code, now)
        wait_for(lambda: service.store.dead_letter_count() == 1, "the poison dead-lettered")
        wait_for(lambda: len(live(service.store)) == 2, "the other two applied")
        assert {t.problem for t in live(service.store)} == {"PAPER_OUT", "COVER_OPEN"}
        wait_for(lambda: service._unacked == 0, "every message acknowledged")
        assert service.faults["dead_lettered"] == 1
        assert "message on kktmon/v1/store-1/kkt/shtrih-0001/event dead-lettered" in _messages(
            caplog
        )
        assert all(thread.is_alive() for thread in service._threads)
    finally:
        agent.close()


def test_a_store_that_is_down_holds_messages_unacknowledged_and_retries(
    mosquitto: Broker,
    services: ServiceFactory,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.INFO, logger="kktmon")
    service = services(mosquitto, start=False)
    flaky = _Flaky(service.store, outages=2)
    monkeypatch.setattr(service.store, "apply_batch", flaky)
    service.start()
    assert service.reconciled.wait(15)
    agent = Agent(mosquitto)
    try:
        agent.event("raised", "PAPER_OUT", datetime.now(UTC))
        _wait_log(caplog, "message(s) held unacknowledged, retrying in 1 s")
        assert service._unacked == 1
        wait_for(lambda: bool(live(service.store, "PAPER_OUT")), "applied once it is back")
        assert "ticket store available again after 2 attempt(s)" in _messages(caplog)
        assert service.store.dead_letter_count() == 0, "an outage is not the message's fault"
        wait_for(lambda: service._unacked == 0, "acknowledged after the store took it")
    finally:
        agent.close()


def test_postgresql_down_is_waited_out_not_dead_lettered(
    mosquitto: Broker,
    services: ServiceFactory,
    store_url: str,
    caplog: pytest.LogCaptureFixture,
    refusing_address: tuple[str, int],
) -> None:
    if not store_url.startswith("postgresql"):
        pytest.skip("a database server that is down is PostgreSQL's")
    import psycopg

    caplog.set_level(logging.INFO, logger="kktmon")
    service = services(mosquitto, store_url, tick_interval_s="60")
    assert service.reconciled.wait(15)
    store: Any = service.store
    host, port = refusing_address
    store.url = f"postgresql://postgres@{host}:{port}/test"  # where it reconnects: nobody
    with psycopg.connect(store_url, autocommit=True) as admin:  # and its connection is gone
        admin.execute("SELECT pg_terminate_backend(%s)", (store._conn.info.backend_pid,))
    agent, reader = Agent(mosquitto), open_store(store_url)
    try:
        agent.event("raised", "PAPER_OUT", datetime.now(UTC))
        _wait_log(caplog, "1 message(s) held unacknowledged, retrying in 1 s")
        assert "cannot connect" in _messages(caplog)
        assert service._unacked == 1
        store.url = store_url  # the database is back
        wait_for(lambda: bool(live(reader, "PAPER_OUT")), "applied once the database is back")
        assert reader.dead_letter_count() == 0, "an outage is not the message's fault"
        wait_for(lambda: service._unacked == 0, "acknowledged after the store took it")
    finally:
        agent.close()
        reader.close()


def test_a_crash_in_intake_or_the_ticker_is_logged_with_the_topic_and_the_loop_goes_on(
    mosquitto: Broker,
    services: ServiceFactory,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.INFO, logger="kktmon")
    service = services(mosquitto, start=False)
    translate = service.intake.translate

    def crashing(topic: str, payload: bytes, received_at: datetime) -> Any:
        if "/shtrih-bad/" in topic:
            raise RuntimeError("a bug in intake")
        return translate(topic, payload, received_at)

    def tick(now: datetime) -> Any:
        raise RuntimeError("a bug in the ticker")

    monkeypatch.setattr(service.intake, "translate", crashing)
    monkeypatch.setattr(service.store, "tick", tick)
    service.start()
    assert service.reconciled.wait(15)
    bad, good = Agent(mosquitto, kkt="shtrih-bad"), Agent(mosquitto)
    try:
        bad.event("raised", "PAPER_OUT", datetime.now(UTC))
        good.event("raised", "COVER_OPEN", datetime.now(UTC))
        wait_for(lambda: bool(live(service.store, "COVER_OPEN")), "the next message applied")
        wait_for(lambda: service.store.dead_letter_count() == 1, "the crashing one dead-lettered")
        wait_for(lambda: service.faults["ticker"] >= 2, "the ticker carries on")
        text = _messages(caplog)
        assert "intake failed on kktmon/v1/store-1/kkt/shtrih-bad/event" in text
        assert "RuntimeError: a bug in intake" in text
        assert text.count("ticker failed") == 1, "rate-limited: once per interval"
        assert all(thread.is_alive() for thread in service._threads)
    finally:
        bad.close()
        good.close()


class _Fatal(BaseException):
    """What no loop catches: a thread dies of it."""


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_worker_whose_thread_died_exits_non_zero(
    mosquitto: Broker, services: ServiceFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = services(mosquitto, start=False)

    def tick(now: datetime) -> Any:
        raise _Fatal

    monkeypatch.setattr(service.store, "tick", tick)
    monkeypatch.setattr(threading, "excepthook", lambda args: None)
    result: list[int] = []
    runner = threading.Thread(target=lambda: result.append(service.run()))
    runner.start()
    runner.join(30)
    assert result == [EXIT_THREAD_DIED]
    assert not service.identity.held, "stopped: the id is free for the restart"


class _TakeoverBroker:
    """Just enough of an MQTT 5 broker: CONNACK, SUBACK, PUBACK, UNSUBACK, PINGRESP; after
    ``victim`` subscribes it gets DISCONNECT 0x8E (session taken over), as newer brokers
    send to the older of two connections with one client id."""

    def __init__(self, victim: str) -> None:
        self.victim = victim
        self.connects: list[str] = []
        self.server = socket.create_server(("127.0.0.1", 0))
        self.host, self.port = "127.0.0.1", self.server.getsockname()[1]
        self._closing = threading.Event()
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def close(self) -> None:
        self._closing.set()
        for thread in self._threads:
            thread.join(5)
        self.server.close()

    def _accept(self) -> None:
        self.server.settimeout(0.1)
        while not self._closing.is_set():
            try:
                conn, _ = self.server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(None)
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        client_id = ""
        with conn, contextlib.suppress(OSError):
            while True:
                kind, body = _read_packet(conn)
                if kind == 1:  # CONNECT
                    client_id = _connect_client_id(body)
                    self.connects.append(client_id)
                    conn.sendall(b"\x20\x03\x00\x00\x00")
                elif kind == 8:  # SUBSCRIBE
                    count = _filter_count(body)
                    conn.sendall(bytes([0x90, 3 + count]) + body[:2] + b"\x00" + b"\x01" * count)
                    if client_id == self.victim:
                        conn.sendall(b"\xe0\x02\x8e\x00")  # DISCONNECT, session taken over
                        return
                elif kind == 3 and body and (body[0] & 0x06):  # PUBLISH QoS 1: PUBACK
                    pass  # the reconciler's end marker: never answered, its read times out
                elif kind == 10:  # UNSUBSCRIBE
                    conn.sendall(b"\xb0\x03" + body[:2] + b"\x00")
                elif kind == 12:  # PINGREQ
                    conn.sendall(b"\xd0\x00")
                elif kind == 14:  # DISCONNECT
                    return


def _read_exact(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise OSError("closed")
        data += chunk
    return data


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        byte = data[at]
        value |= (byte & 0x7F) << shift
        at, shift = at + 1, shift + 7
        if not byte & 0x80:
            return value, at


def _read_packet(conn: socket.socket) -> tuple[int, bytes]:
    first = _read_exact(conn, 1)[0]
    length, shift = 0, 0
    while True:
        byte = _read_exact(conn, 1)[0]
        length |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    return first >> 4, _read_exact(conn, length) if length else b""


def _connect_client_id(body: bytes) -> str:
    at = 2 + int.from_bytes(body[:2], "big") + 1 + 1 + 2  # name, level, flags, keepalive
    props, at = _varint(body, at)
    at += props
    size = int.from_bytes(body[at : at + 2], "big")
    return body[at + 2 : at + 2 + size].decode()


def _filter_count(body: bytes) -> int:
    props, at = _varint(body, 2)
    at += props
    count = 0
    while at < len(body):
        at += 2 + int.from_bytes(body[at : at + 2], "big") + 1
        count += 1
    return count


def test_mqtt5_session_taken_over_is_an_error_and_ends_the_worker_without_reconnecting(
    services: ServiceFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="kktmon")
    broker = _TakeoverBroker("kktmon-ticketing-x")
    try:
        service = services(broker, mqtt='client_id = "kktmon-ticketing-x"\n')
        assert service.stop_event.wait(10), "the takeover stops the worker"
        time.sleep(2.5)  # paho's reconnect would have come after 1 s
        assert broker.connects.count("kktmon-ticketing-x") == 1, "it did not take it back"
        assert service.exit_code == EXIT_TAKEN_OVER
        errors = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert any(
            "kktmon-ticketing-x" in r.getMessage() and "0x8E" in r.getMessage() for r in errors
        )
        service.stop()
    finally:
        broker.close()
