"""The ticketing TOML file: defaults, closed hours, sinks, secrets and error messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from kktmon.protocol.errors import ConfigError
from kktmon.protocol.health import Severity
from kktmon.ticketing.config import (
    OkdeskSinkConfig,
    WebhookSinkConfig,
    load_config,
    parse_config,
    sink_env_name,
)

FULL = """
[mqtt]
url = "mqtts://broker.example:8883"
username = "ticketing"
password = "from-file"
[ticketing]
store = "postgresql://kktmon@db.example/kktmon"
open_after_s = 60
resolve_after_s = 600
agent_lost_after_s = 1200
on_clear = "comment"
notify_severities = ["critical", "blocked"]
[ticketing.closed_hours]
timezone = "Europe/Moscow"
default = "22:00-08:00"
"store-001" = "21:00-09:00 Asia/Yekaterinburg"
"store-024" = ""
[[sinks]]
type = "okdesk"
url = "https://acme.okdesk.ru/api/v1/"
api_token = "tok-9f3e"
priorities = { low = "low", normal = "normal", high = "high", critical = "urgent" }
[[sinks]]
type = "webhook"
name = "crm"
url = "https://crm.example/hooks/kktmon"
secret = "s3cr3t-77"
"""


def test_defaults() -> None:
    config = parse_config("", env={})
    t = config.ticketing
    assert config.mqtt.url == "mqtt://127.0.0.1:1883"
    assert (config.mqtt.topic_prefix, config.mqtt.shared_group) == ("kktmon/v1", "kktmon-ticketing")
    assert t.store == "sqlite:////var/lib/kktmon/tickets.sqlite3"
    assert (t.open_after_s, t.resolve_after_s, t.agent_lost_after_s) == (300, 1800, 900)
    assert t.on_clear == "resolve"
    assert t.notify_severities == [Severity.WARNING, Severity.CRITICAL, Severity.BLOCKED]
    assert t.closed_hours.window_for("any") is None
    assert config.sink_configs() == []


def test_a_full_file(tmp_path: Path) -> None:
    path = tmp_path / "ticketing.toml"
    path.write_text(FULL, encoding="utf-8")
    config = load_config(path, env={})
    hours = config.ticketing.closed_hours
    own = hours.window_for("store-001")
    assert own is not None and str(own.tz) == "Asia/Yekaterinburg"
    default = hours.window_for("store-777")
    assert default is not None and str(default.tz) == "Europe/Moscow"
    assert hours.window_for("store-024") is None
    okdesk, crm = config.sink_configs()
    assert isinstance(okdesk, OkdeskSinkConfig) and isinstance(crm, WebhookSinkConfig)
    assert okdesk.name == "okdesk" and okdesk.priorities["critical"] == "urgent"
    assert okdesk.api_token is not None and okdesk.api_token.get_secret_value() == "tok-9f3e"
    assert config.sink_names == ["okdesk", "crm"]
    assert "tok-9f3e" not in repr(config) and "s3cr3t-77" not in repr(config)


def test_secrets_from_the_environment() -> None:
    env = {"KKTMON_MQTT_PASSWORD": "pw", sink_env_name("crm"): "env-secret"}
    config = parse_config(FULL, env=env)
    assert config.mqtt.password is not None and config.mqtt.password.get_secret_value() == "pw"
    crm = config.sink_configs()[1]
    assert isinstance(crm, WebhookSinkConfig) and crm.secret is not None
    assert crm.secret.get_secret_value() == "env-secret"
    assert sink_env_name("my-desk") == "KKTMON_SINK_MY_DESK_SECRET"


def test_a_relative_sqlite_store_is_relative_to_the_file(tmp_path: Path) -> None:
    text = '[ticketing]\nstore = "sqlite:///state/tickets.sqlite3"'
    config = parse_config(text, source=tmp_path / "t.toml", env={})
    assert config.ticketing.store == f"sqlite:///{tmp_path}/state/tickets.sqlite3"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[ticketing]\nopen_after = 5", "ticketing.open_after: unknown key"),
        ("[ticketing]\nopen_after_s = -1", "ticketing.open_after_s: Input should be greater"),
        ('[ticketing]\non_clear = "close"', "ticketing.on_clear:"),
        ('[ticketing]\nstore = "mysql://x/y"', "ticketing.store: use sqlite"),
        ('[ticketing]\nnotify_severities = ["loud"]', "ticketing.notify_severities[0]:"),
        ('[ticketing.closed_hours]\n"s1" = "25:00-01:00"', "ticketing.closed_hours.s1: '25"),
        ('[ticketing.closed_hours]\ntimezone = "Mars/Base"', "unknown time zone"),
        ('[ticketing.closed_hours]\n"s1" = "22:00-08:00 Nowhere/X"', "closed_hours.s1:"),
        ('[mqtt]\nurl = "http://broker"', "mqtt.url: scheme must be"),
        ('[mqtt]\npassword = "x"', "mqtt.username: required when a password is set"),
        ('[[sinks]]\ntype = "jira"', "sinks[0]:"),
        ('[[sinks]]\ntype = "okdesk"\nurl = "https://a.okdesk.ru/api/v1/"', "sinks[0].api_token"),
        ('[[sinks]]\ntype = "webhook"\nurl = "ftp://x"', "sinks[0].url: must be an http"),
        ('[[sinks]]\ntype = "webhook"\nurl = "https://x"\nsecert = "s"', "sinks[0].secert"),
        (
            '[[sinks]]\ntype = "webhook"\nurl = "https://x"\n'
            '[[sinks]]\ntype = "webhook"\nurl = "https://y"',
            "duplicate name webhook",
        ),
        ("[ticketing", "invalid TOML"),
    ],
)
def test_errors_name_the_file_and_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, source="/etc/kktmon/ticketing.toml", env={})
    assert str(caught.value).startswith("/etc/kktmon/ticketing.toml: ")
    assert message in str(caught.value)


def test_secret_values_never_appear_in_errors() -> None:
    text = '[[sinks]]\ntype = "webhook"\nurl = "https://x"\nsecret = 12345678'
    with pytest.raises(ConfigError) as caught:
        parse_config(text, env={})
    assert "12345678" not in str(caught.value)


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.toml")


def test_limits_defaults_and_overrides() -> None:
    limits = parse_config("", env={}).ticketing.limits
    assert limits.max_payload_bytes == 64 * 1024  # the broker's message_size_limit
    assert (limits.live_tickets_per_register, limits.live_tickets_per_site) == (64, 2000)
    assert limits.registers_per_site == 256 and limits.dead_letters_kept == 10_000
    text = "[ticketing.limits]\nlive_tickets_per_register = 8\nlive_tickets_per_site = 100"
    limits = parse_config(text, env={}).ticketing.limits
    assert (limits.live_tickets_per_register, limits.live_tickets_per_site) == (8, 100)
    for bad, key in (
        ("live_tickets_per_site = 0", "live_tickets_per_site: Input should be greater"),
        ("max_payload_bytes = 100", "max_payload_bytes: Input should be greater"),
        ("live_tickets = 5", "ticketing.limits.live_tickets: unknown key"),
    ):
        with pytest.raises(ConfigError, match=key):
            parse_config(f"[ticketing.limits]\n{bad}", env={})
