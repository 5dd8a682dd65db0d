"""``[console]`` and ``[[console.users]]``: defaults, password files, scrypt hashes, and
errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from kktmon.protocol.errors import ConfigError
from kktmon.ticketing.config import load_config, parse_config
from kktmon.ticketing.passwords import check_hash, hash_password, verify_password

#: Cheap parameters: these tests check the format, not the cost.
FAST = {"n": 2**4, "r": 1, "p": 1}
HASH = hash_password("correct horse", **FAST)
CLIENT = '[[clients]]\nid = "acme"\nname = "ООО «Акме»"\nsites = ["store-001"]\n'


def test_defaults() -> None:
    console = parse_config("", env={}).console
    assert (console.listen, console.host, console.port) == ("127.0.0.1:8080", "127.0.0.1", 8080)
    assert (console.history_days, console.sla_margin_h, console.stale_after_min) == (90, 24, 15)
    assert console.session_secret is None and console.users == []


def test_users_from_hashes_and_files(tmp_path: Path) -> None:
    (tmp_path / "acme.hash").write_text(HASH + "\n", encoding="utf-8")
    (tmp_path / "secret").write_text("s" * 32 + "\n", encoding="utf-8")
    text = CLIENT + (
        '[console]\nlisten = "[::1]:9090"\nhistory_days = 30\nsession_secret_file = "secret"\n'
        f'[[console.users]]\nname = "ivanov"\nrole = "engineer"\npassword_hash = "{HASH}"\n'
        '[[console.users]]\nname = "acme-it"\nrole = "client"\nclient = "acme"\n'
        'password_file = "acme.hash"\n'
    )
    path = tmp_path / "ticketing.toml"
    path.write_text(text, encoding="utf-8")
    console = load_config(path, env={}).console
    assert (console.host, console.port, console.history_days) == ("::1", 9090, 30)
    assert console.session_secret is not None
    assert console.session_secret.get_secret_value() == "s" * 32
    engineer, client = console.users
    assert (engineer.role, engineer.client) == ("engineer", None)
    assert (client.role, client.client, client.password_hash) == ("client", "acme", HASH)
    assert console.user("acme-it") is client and console.user("nobody") is None
    assert verify_password("correct horse", client.password_hash)


def test_scrypt_hashes_verify_only_their_password() -> None:
    encoded = hash_password("пароль")  # the default parameters
    assert encoded.startswith("scrypt$16384$8$1$") and check_hash(encoded) == encoded
    assert verify_password("пароль", encoded)
    assert not verify_password("пароль ", encoded) and not verify_password("", encoded)
    assert hash_password("пароль") != encoded  # salted
    assert not verify_password("пароль", None)  # no such user: scrypt runs, no match
    assert not verify_password("пароль", "scrypt$16384$8$1$AAAA$BBBB")


@pytest.mark.parametrize(
    "bad",
    [
        "plain-text-password",
        "bcrypt$12$abc",
        "scrypt$16384$8$1$c2FsdHNhbHQ",
        "scrypt$1000$8$1$c2FsdHNhbHQ$" + "A" * 43,  # n not a power of two
        "scrypt$2097152$8$1$c2FsdHNhbHQ$" + "A" * 43,  # n beyond the cap
        "scrypt$16384$0$1$c2FsdHNhbHQ$" + "A" * 43,
        "scrypt$16384$8$1$c2FsdHNhbHQ$not*base64",
    ],
)
def test_malformed_hashes_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        check_hash(bad)
    assert not verify_password("x", bad)


_USER = '[[console.users]]\nname = "u"\n'
_ENGINEER = _USER + f'role = "engineer"\npassword_hash = "{HASH}"\n'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[console]\nlisten = "8080"', "console.listen: must be host:port"),
        ('[console]\nlisten = "localhost"', "console.listen: must be host:port"),
        ('[console]\nlisten = "0.0.0.0:99999"', "console.listen: must be host:port"),
        ('[console]\nlisten = "::1:8080"', "console.listen: must be host:port"),
        ('[console]\nlisten = "[nope]:8080"', "console.listen: must be host:port; [..]"),
        ("[console]\nhistory_days = 0", "console.history_days:"),
        ("[console]\nstale_after_min = 0", "console.stale_after_min:"),
        ("[console]\nport = 8080", "console.port: unknown key"),
        (
            CLIENT + _USER + f'role = "client"\npassword_hash = "{HASH}"',
            "console.users[0]: client: required for role = 'client'",
        ),
        (
            CLIENT + _USER + f'role = "engineer"\nclient = "acme"\npassword_hash = "{HASH}"',
            "console.users[0]: client: only for role = 'client'",
        ),
        (
            CLIENT + _USER + f'role = "client"\nclient = "beta"\npassword_hash = "{HASH}"',
            "console.users[0].client: 'beta' is not a [[clients]] id",
        ),
        (_USER + 'role = "engineer"', "console.users[0]: set exactly one of password_hash and"),
        (
            _ENGINEER + 'password_file = "/etc/kktmon/u.hash"',
            "console.users[0]: set exactly one of password_hash and password_file",
        ),
        (
            _USER + 'role = "engineer"\npassword_hash = "hunter2"',
            "console.users[0].password_hash: is not a hash from 'kktmon console hash-password'",
        ),
        (
            _USER + 'role = "admin"\npassword_hash = "x"',
            "console.users[0].role:",
        ),
        (_USER.replace('"u"', '"a b"') + 'role = "engineer"', "console.users[0].name:"),
        (_ENGINEER + _ENGINEER, "console.users: duplicate user name u"),
        (
            _USER + 'role = "engineer"\npassword_file = "/nonexistent/u.hash"',
            "console.users[0].password_file: no such file",
        ),
        (
            '[console]\nsession_secret_file = "/nonexistent/secret"',
            "console.session_secret_file: no such file",
        ),
    ],
)
def test_errors_name_the_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, source="/etc/kktmon/ticketing.toml", env={})
    assert str(caught.value).startswith("/etc/kktmon/ticketing.toml: ")
    assert message in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_a_password_file_without_a_hash_is_refused(tmp_path: Path) -> None:
    (tmp_path / "u.hash").write_text("hunter2\n", encoding="utf-8")
    (tmp_path / "short").write_text("tiny\n", encoding="utf-8")
    path = tmp_path / "ticketing.toml"
    path.write_text(_USER + 'role = "engineer"\npassword_file = "u.hash"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"console\.users\[0\]\.password_file: the file is not a"):
        load_config(path, env={})
    path.write_text('[console]\nsession_secret_file = "short"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="session_secret_file: the secret must be at least 16"):
        load_config(path, env={})
