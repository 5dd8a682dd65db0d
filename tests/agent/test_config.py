"""The agent's TOML configuration: good files, every kind of bad file, secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from kktmon.agent.config import (
    ENV_MQTT_PASSWORD,
    ENV_MQTT_TLS_KEY_PASSWORD,
    AgentConfig,
    RulesConfig,
    load_config,
    parse_config,
)
from kktmon.agent.outbox import OutboxLimits
from kktmon.drivers.base import DriverOptions
from kktmon.protocol.errors import ConfigError, KktmonError

MINIMAL = """
site = "store-001"
[[devices]]
url = "socket://127.0.0.1:7778"
"""

FULL = """
site = "store-001"

[agent]
poll_interval_s = 30
poll_jitter = 0.2
state_dir = "state"
health_interval_s = 120
log_level = "DEBUG"

[mqtt]
url = "mqtts://broker.example:8884"
topic_prefix = "acme/kktmon/v1"
client_id = "till-1"
protocol = "5"
username = "store-001"
password_file = "secrets/mqtt.pass"
tls_ca_file = "ca.pem"
keepalive_s = 30

[outbox]
max_rows = 5000
max_bytes = 1048576
max_age_days = 7

[rules]
fn_expiry_warning_days = 21
raise_after = 3
clear_after = 1

[[devices]]
vendor = "shtrih"
url = "serial:///dev/ttyACM0?baud=115200"
name = "till-1"
password = 30
answer_timeout_s = 0.5
exchange_attempts = 5

[[devices]]
url = "tcp://10.0.0.7:7778"
name = "till-2"
poll_interval_s = 300
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def full_file(tmp_path: Path) -> Path:
    write(tmp_path / "secrets" / "mqtt.pass", "s3cret-from-file\n")
    write(tmp_path / "ca.pem", "-----BEGIN CERTIFICATE-----\n")
    return write(tmp_path / "store.toml", FULL)


def test_minimal_file_gets_the_documented_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path / "store.toml", MINIMAL), env={})
    assert config.site == "store-001"
    assert config.agent.poll_interval_s == 60
    assert config.agent.state_dir == Path("/var/lib/kktmon")
    assert config.mqtt.url == "mqtt://127.0.0.1:1883"
    assert (config.mqtt.host, config.mqtt.port, config.mqtt.tls) == ("127.0.0.1", 1883, False)
    assert config.mqtt.topic_prefix == "kktmon/v1"
    assert config.mqtt.client_id == "kktmon-store-001"
    assert config.mqtt.password is None
    [device] = config.devices
    assert (device.vendor, device.url, device.password) == ("shtrih", "socket://127.0.0.1:7778", 30)
    assert config.outbox_path == Path("/var/lib/kktmon/outbox.sqlite3")


def test_rules_defaults_match_the_domain_severity_table() -> None:
    rules = RulesConfig()
    assert (rules.fn_expiry_warning_days, rules.fn_expiry_critical_days) == (30, 7)
    assert (rules.ofd_stale_warning_days, rules.ofd_stale_critical_days) == (2, 20)
    assert rules.shift_warning_h == 23
    assert (rules.clock_skew_warning_s, rules.clock_skew_critical_s) == (120, 300)
    assert (rules.memory_warning_pct, rules.memory_critical_pct) == (80, 90)
    assert rules.unreachable_after_polls == 3
    assert (rules.raise_after, rules.clear_after) == (2, 2)


def test_full_file_resolves_paths_and_reads_the_password_file(full_file: Path) -> None:
    config = load_config(full_file, env={})
    base = full_file.parent
    assert config.agent.state_dir == base / "state"
    assert config.mqtt.tls and config.mqtt.port == 8884 and config.mqtt.host == "broker.example"
    assert config.mqtt.tls_ca_file == base / "ca.pem"
    assert config.mqtt.password is not None
    assert config.mqtt.password.get_secret_value() == "s3cret-from-file"
    assert config.mqtt.client_id == "till-1"
    assert config.rules.fn_expiry_warning_days == 21
    assert config.rules.fn_expiry_critical_days == 7  # untouched keys keep their defaults
    assert [d.label for d in config.devices] == ["till-1", "till-2"]
    assert config.devices[1].poll_interval_s == 300
    options = config.devices[0].driver_options()
    assert (options.password, options.answer_timeout_s, options.exchange_attempts) == (30, 0.5, 5)
    defaults = config.devices[1].driver_options()
    assert defaults == DriverOptions()  # unset timeouts keep the driver's own defaults
    assert config.outbox.limits() == OutboxLimits(
        max_rows=5000, max_bytes=1048576, max_age_s=7 * 86400.0
    )


def test_environment_password_overrides_file_and_inline(full_file: Path, tmp_path: Path) -> None:
    config = load_config(full_file, env={ENV_MQTT_PASSWORD: "from-env"})
    assert config.mqtt.password is not None
    assert config.mqtt.password.get_secret_value() == "from-env"
    inline = MINIMAL + '[mqtt]\nusername = "u"\npassword = "inline"\n'
    config = parse_config(inline, env={ENV_MQTT_PASSWORD: "from-env"})
    assert config.mqtt.password is not None
    assert config.mqtt.password.get_secret_value() == "from-env"
    # An empty variable (systemd `Environment=X=`) does not blank the configured secret.
    config = parse_config(inline, env={ENV_MQTT_PASSWORD: ""})
    assert config.mqtt.password is not None
    assert config.mqtt.password.get_secret_value() == "inline"


def test_environment_supplies_the_tls_key_passphrase() -> None:
    config = parse_config(MINIMAL, env={ENV_MQTT_TLS_KEY_PASSWORD: "pass-phrase"})
    assert config.mqtt.tls_key_password is not None
    assert config.mqtt.tls_key_password.get_secret_value() == "pass-phrase"


def test_secrets_never_appear_in_repr_str_or_json(full_file: Path) -> None:
    config = load_config(full_file, env={ENV_MQTT_TLS_KEY_PASSWORD: "key-phrase"})
    renderings = [repr(config), str(config), config.model_dump_json(), repr(config.devices[0])]
    for text in renderings:
        assert "s3cret-from-file" not in text
        assert "key-phrase" not in text
    assert "password=30" not in repr(config.devices[0])  # the register's password too


def test_secret_does_not_leak_through_a_validation_error() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(MINIMAL + '[mqtt]\npassword = ["hunter2"]\n', env={})
    assert "hunter2" not in str(caught.value)
    assert caught.value.__cause__ is None  # pydantic's error would echo the input


def test_config_is_immutable() -> None:
    config = parse_config(MINIMAL, env={})
    with pytest.raises(ValueError, match="frozen"):
        config.site = "other"  # type: ignore[misc]


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match=r"nope\.toml: cannot read"):
        load_config(missing)


def test_invalid_toml_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path / "store.toml", 'site = "a"\n[agent]\npoll_interval_s = = 5\n')
    with pytest.raises(ConfigError, match=r"store\.toml: invalid TOML: .*line 3"):
        load_config(path, env={})


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("[agent]\npoll_interval_s = 0\n", "agent.poll_interval_s: Input should be greater than 0"),
        ("[agent]\npoll_intervals = 5\n", "agent.poll_intervals: unknown key"),
        ("[agent]\npoll_jitter = 0.9\n", "agent.poll_jitter: Input should be less than"),
        ("[mqtt]\nurl = 'http://broker'\n", "mqtt.url: scheme must be mqtt:// or mqtts://"),
        ("[mqtt]\nurl = 'mqtt://'\n", "mqtt.url: needs a host"),
        ("[mqtt]\nurl = 'mqtt://u:p@broker'\n", "mqtt.url: put credentials in mqtt.username"),
        ("[mqtt]\nurl = 'mqtt://broker:70000'\n", "mqtt.url: Port out of range"),
        ("[mqtt]\ntopic_prefix = 'kktmon/+/v1'\n", "mqtt.topic_prefix: must be non-empty"),
        ("[mqtt]\ntopic_prefix = 'kktmon//v1'\n", "mqtt.topic_prefix: must be non-empty"),
        ("[mqtt]\nkeepalive_s = 1\n", "mqtt.keepalive_s: Input should be greater than or equal"),
        ("[mqtt]\ntls_ca_file = 'ca.pem'\n", "mqtt: tls_* files need an mqtts:// url"),
        ("[mqtt]\nusername = 'u'\npassword = 'p'\npassword_file = 'f'\n", "not both"),
        ("[mqtt]\npassword = 'p'\n", "mqtt.username: required when a password is set"),
        ("[rules]\nfn_expiry_critical_days = 40\n", "rules: fn_expiry_critical_days must not"),
        ("[rules]\nclock_skew_warning_s = 600\n", "rules: clock_skew_warning_s must not exceed"),
        ("[rules]\nraise_after = 0\n", "rules.raise_after: Input should be greater than or equal"),
        ("[outbox]\nmax_rows = 'many'\n", "outbox.max_rows: Input should be a valid integer"),
        ("[[devices]]\nurl = 'socket://127.0.0.1:7778'\n", "devices: duplicate url"),
        ("[[devices]]\nvendor = 'shtrih'\n", "devices[1].url: required key is missing"),
        ("[[devices]]\nurl = 'x'\nvendor = 'Shtrih M'\n", "devices[1].vendor: String should"),
        ("[[devices]]\nurl = 'x'\nprot = 1\n", "devices[1].prot: unknown key"),
        ("[[devices]]\nurl = 'x'\nname = 'a/b'\n", "devices[1].name: must be non-empty"),
        (
            "[[devices]]\nurl = 'x'\nbyte_timeout_s = -1\n",
            "devices[1].byte_timeout_s: Input should",
        ),
    ],
)
def test_bad_values_name_the_file_and_dotted_key(extra: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(MINIMAL + extra, source="/etc/kktmon/store.toml", env={})
    assert str(caught.value).startswith("/etc/kktmon/store.toml: ")
    assert expected in str(caught.value)


@pytest.mark.parametrize("site", ["", "a/b", "a+b", "a#b", "with space", "tab\there"])
def test_site_must_be_one_topic_level(site: str) -> None:
    text = MINIMAL.replace('"store-001"', f'"{site}"')
    with pytest.raises(ConfigError, match="site: must be non-empty without"):
        parse_config(text, env={})


def test_missing_site_and_devices_are_both_reported() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config("[agent]\n", source="store.toml", env={})
    message = str(caught.value)
    assert "site: required key is missing" in message
    assert "devices: required key is missing" in message


def test_unreadable_password_file_names_the_key(tmp_path: Path) -> None:
    text = MINIMAL + '[mqtt]\nusername = "u"\npassword_file = "absent.pass"\n'
    with pytest.raises(ConfigError, match=r"mqtt\.password_file: cannot read"):
        parse_config(text, source=tmp_path / "store.toml", env={})


def test_missing_tls_file_names_the_key(tmp_path: Path) -> None:
    text = MINIMAL + '[mqtt]\nurl = "mqtts://broker"\ntls_ca_file = "ca.pem"\n'
    with pytest.raises(ConfigError, match=r"mqtt\.tls_ca_file: no such file"):
        parse_config(text, source=tmp_path / "store.toml", env={})


def test_config_error_is_part_of_the_tree() -> None:
    with pytest.raises(KktmonError):
        parse_config("site = 1", env={})


def test_model_can_be_built_without_a_file() -> None:
    config = AgentConfig.model_validate({"site": "s", "devices": [{"url": "loop://"}]})
    assert config.mqtt.client_id == "kktmon-s"
    assert config.rules == RulesConfig()


SERVER_DEVICE = """
site = "store-001"
[[devices]]
vendor = "atol-web"
url = "atol-web://kktmon:Inline-Secret9@192.0.2.10:16732/?device=KKT_1"
"""


def test_a_driver_server_password_comes_from_a_file(tmp_path: Path) -> None:
    secret = write(tmp_path / "atol.pass", "Kktmon-Secret1\n")
    text = (
        'site = "s"\n[[devices]]\nvendor = "atol-web"\n'
        'url = "atol-web://kktmon@192.0.2.10/?device=KKT_1"\n'
        f'connection_password_file = "{secret.name}"\n'
    )
    config = parse_config(text, source=tmp_path / "store.toml", env={})
    device = config.devices[0]
    assert device.vendor == "atol-web"
    assert device.driver_options().connection_password == "Kktmon-Secret1"
    assert "Kktmon-Secret1" not in repr(device) + repr(device.driver_options())


def test_password_inline_and_from_a_file_is_refused(tmp_path: Path) -> None:
    secret = write(tmp_path / "p", "x")
    text = SERVER_DEVICE + f'connection_password = "y"\nconnection_password_file = "{secret}"\n'
    with pytest.raises(ConfigError, match=r"devices\.0\.connection_password_file: set either"):
        parse_config(text, source=tmp_path / "store.toml", env={})


def test_a_password_in_a_device_url_never_shows_in_labels_or_errors() -> None:
    config = parse_config(SERVER_DEVICE, env={})
    assert config.devices[0].label == (
        "atol-web at atol-web://kktmon:***@192.0.2.10:16732/?device=KKT_1"
    )
    with pytest.raises(ConfigError) as caught:
        parse_config(SERVER_DEVICE + SERVER_DEVICE.split("\n", 2)[2], env={})
    assert "duplicate url" in str(caught.value)
    assert "Inline-Secret9" not in str(caught.value)
