"""The paho client of a ticketing connection, built one way for every caller.

The worker's long-lived session and the reconciler's short-lived reads connect to the same
broker with the same URL, credentials and TLS (``[mqtt]`` of the ticketing config):

    client = new_client(config.mqtt, "kktmon-ticketing-a", persistent=True, manual_ack=True)
    client = new_client(config.mqtt, "kktmon-ticketing-a-reconcile", persistent=False)

MQTT 5 unless ``protocol = "3.1.1"``. A persistent session is MQTT 5's
``clean_start=False`` with a session expiry (the caller's CONNECT properties) or 3.1.1's
``clean_session=False``; a non-persistent one leaves nothing on the broker when it ends.
TLS (``mqtts://``) verifies the broker against ``tls_ca_file`` (the system store when
unset), optionally with a client certificate whose key may be encrypted
(``tls_key_password``). Secrets go to paho and ``ssl`` only, never to a log.
"""

from __future__ import annotations

import ssl

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from kktmon.protocol.errors import ConfigError
from kktmon.protocol.settings import MqttSettings

__all__ = ["connect_properties", "is_v5", "new_client", "properties", "tls_context"]


def is_v5(cfg: MqttSettings) -> bool:
    """MQTT 5 (shared subscriptions, session expiry) unless the config says 3.1.1."""
    return cfg.protocol != "3.1.1"


def properties(packet_type: int) -> Properties:
    """Empty MQTT 5 properties for one packet type (paho's constructor is untyped)."""
    return Properties(packet_type)  # type: ignore[no-untyped-call]


def connect_properties(session_expiry_s: int) -> Properties:
    """CONNECT properties keeping the session that long after a disconnect."""
    props = properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = session_expiry_s
    return props


def tls_context(cfg: MqttSettings) -> ssl.SSLContext | None:
    """The TLS context of ``mqtts://`` (None for ``mqtt://``); ConfigError on unreadable files."""
    if not cfg.tls:
        return None
    try:
        context = ssl.create_default_context(
            cafile=None if cfg.tls_ca_file is None else str(cfg.tls_ca_file)
        )
        if cfg.tls_cert_file is not None:
            secret = cfg.tls_key_password
            context.load_cert_chain(
                cfg.tls_cert_file,
                cfg.tls_key_file,
                None if secret is None else secret.get_secret_value(),
            )
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        hint = ""
        if cfg.tls_cert_file is not None and cfg.tls_key_password is None:
            hint = " (an encrypted key needs tls_key_password or KKTMON_MQTT_TLS_KEY_PASSWORD)"
        raise ConfigError(f"mqtt TLS files: cannot load: {exc}{hint}") from exc
    return context


def new_client(
    cfg: MqttSettings,
    client_id: str,
    *,
    persistent: bool,
    manual_ack: bool = False,
    client_class: type[mqtt.Client] = mqtt.Client,
) -> mqtt.Client:
    """A paho 2.x client (callback API 2) with credentials and TLS set, not yet connected;
    ``client_class`` is paho's or a subclass (the worker's reads ahead: mqtt_buffered)."""
    v5 = is_v5(cfg)
    client = client_class(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311,
        clean_session=None if v5 else not persistent,
        manual_ack=manual_ack,
    )
    if cfg.username:
        password = cfg.password.get_secret_value() if cfg.password else None
        client.username_pw_set(cfg.username, password)
    context = tls_context(cfg)
    if context is not None:
        client.tls_set_context(context)
    client.connect_timeout = cfg.connect_timeout_s
    return client
