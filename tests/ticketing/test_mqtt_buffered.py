"""The worker's paho client reads ahead (mqtt_buffered): the same messages, fewer reads."""

from __future__ import annotations

import socket
import threading
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from mqtt_broker import Broker
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from kktmon.ticketing import mqtt_buffered
from kktmon.ticketing.mqtt_buffered import BufferedClient, BufferedSocket


def test_a_buffered_socket_hands_out_what_one_read_brought() -> None:
    left, right = socket.socketpair()
    try:
        right.setblocking(False)
        reader = BufferedSocket(right)
        left.sendall(b"abcdef")
        assert reader.recv(1) == b"a"
        assert reader.pending() == reader.buffered() == 5
        assert reader.recv(100) == b"bcdef"  # what is buffered, not a second read
        with pytest.raises(BlockingIOError):  # empty: the socket says so, as paho expects
            reader.recv(1)
        left.close()
        assert reader.recv(1) == b""  # the end of the connection
        assert reader.fileno() == right.fileno()  # the rest is the socket's
    finally:
        right.close()


def _client(cls: type[mqtt.Client], client_id: str) -> mqtt.Client:
    return cls(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=MQTTProtocolVersion.MQTTv5,
    )


def test_messages_of_every_size_arrive_whole_and_in_order(
    mosquitto: Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small reads, so packets and their length bytes straddle the reads every way.
    monkeypatch.setattr(mqtt_buffered, "READ_SIZE", 1000)
    sizes = [0, 1, 126, 127, 128, 999, 1000, 1001, 16_383, 16_384, 70_000] * 20
    got: list[bytes] = []
    done, subscribed = threading.Event(), threading.Event()
    receiver = _client(BufferedClient, "buffered-receiver")

    def on_message(_c: Any, _u: Any, message: mqtt.MQTTMessage) -> None:
        got.append(bytes(message.payload))
        if len(got) == len(sizes):
            done.set()

    receiver.on_message = on_message
    receiver.on_subscribe = lambda *_args: subscribed.set()
    receiver.on_connect = lambda client, *_args: client.subscribe("t/#", qos=1)
    sender = _client(mqtt.Client, "plain-sender")
    receiver.connect("127.0.0.1", mosquitto.port)
    receiver.loop_start()
    try:
        assert subscribed.wait(10)
        assert isinstance(receiver.socket(), BufferedSocket)
        sender.connect("127.0.0.1", mosquitto.port)
        sender.loop_start()
        payloads = [bytes([n % 251]) * size for n, size in enumerate(sizes)]
        infos = [sender.publish(f"t/{n}", p, qos=1) for n, p in enumerate(payloads)]
        for info in infos:
            info.wait_for_publish(10)
        assert done.wait(20), f"{len(got)} of {len(sizes)} arrived"
        assert got == payloads
    finally:
        sender.disconnect()
        sender.loop_stop()
        receiver.disconnect()
        receiver.loop_stop()
