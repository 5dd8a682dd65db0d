"""``[[clients]]`` and ``[notify]``: defaults, secrets, and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from kktmon.protocol.errors import ConfigError
from kktmon.ticketing.config import load_config, parse_config

CLIENTS = """
[ticketing.closed_hours]
timezone = "Europe/Moscow"
"store-002" = "21:00-09:00 Asia/Yekaterinburg"
[[clients]]
id = "acme"
name = "ООО «Акме»"
sites = ["store-001", "store-002"]
email = ["it@acme.example", "boss@acme.example"]
telegram_chat_ids = [-1001234567890, "@acme_kkt", "42"]
[[clients]]
id = "beta"
name = "Beta LLC"
sites = ["store-003"]
language = "en"
digest = true
notify_tickets = true
[notify]
days = [7, 30, 3, 14, 7]
digest_at = "08:30"
[notify.smtp]
url = "smtp://mail.example:587"
starttls = true
username = "kktmon"
password = "from-file"
from = "Сервисный центр <kktmon@centre.example>"
[notify.telegram]
token = "123:abc"
api_url = "http://127.0.0.1:8081/"
"""


def test_no_clients_by_default() -> None:
    config = parse_config("", env={})
    assert config.clients == [] and config.client_for("store-001") is None
    assert config.notify.days == [30, 14, 7, 3] and config.notify.digest_at == "09:00"
    assert config.notify.smtp is None and config.notify.telegram is None


def test_clients_and_their_contacts() -> None:
    config = parse_config(CLIENTS, env={})
    acme, beta = config.clients
    assert acme.telegram_chat_ids == [-1001234567890, "@acme_kkt", 42]
    assert (acme.language, acme.digest, acme.notify_tickets) == ("ru", False, False)
    assert (beta.language, beta.digest, beta.notify_tickets) == ("en", True, True)
    assert config.client_for("store-002") is acme and config.client_for("store-003") is beta
    assert acme.recipients()[:2] == [("email", "it@acme.example"), ("email", "boss@acme.example")]
    assert ("telegram", "@acme_kkt") in acme.recipients()
    notify = config.notify
    assert notify.days == [30, 14, 7, 3]  # sorted, deduplicated
    assert notify.digest_time.hour == 8 and notify.digest_time.minute == 30
    assert notify.smtp is not None and (notify.smtp.host, notify.smtp.port) == ("mail.example", 587)
    assert notify.smtp.from_.startswith("Сервисный центр") and not notify.smtp.implicit_tls
    assert notify.telegram is not None and notify.telegram.api_url == "http://127.0.0.1:8081"
    hours = config.ticketing.closed_hours
    assert str(hours.zone_for("store-002")) == "Asia/Yekaterinburg"
    assert str(hours.zone_for("store-001")) == "Europe/Moscow"


def test_secrets_from_files_and_the_environment(tmp_path: Path) -> None:
    (tmp_path / "smtp-password").write_text("pw-from-file\n", encoding="utf-8")
    (tmp_path / "bot-token").write_text("777:file\n", encoding="utf-8")
    text = (
        CLIENTS.replace('password = "from-file"', 'password_file = "smtp-password"')
        .replace('token = "123:abc"', 'token_file = "bot-token"')
        .replace("starttls = true", "")
    )
    path = tmp_path / "ticketing.toml"
    path.write_text(text, encoding="utf-8")
    notify = load_config(path, env={}).notify
    assert notify.smtp is not None and notify.smtp.password is not None
    assert notify.smtp.password.get_secret_value() == "pw-from-file"
    assert notify.telegram is not None and notify.telegram.token is not None
    assert notify.telegram.token.get_secret_value() == "777:file"
    env = {"KKTMON_SMTP_PASSWORD": "pw-env", "KKTMON_TELEGRAM_TOKEN": "777:env"}
    notify = load_config(path, env=env).notify
    assert notify.smtp is not None and notify.smtp.password is not None
    assert notify.smtp.password.get_secret_value() == "pw-env"
    assert notify.telegram is not None and notify.telegram.token is not None
    assert notify.telegram.token.get_secret_value() == "777:env"
    assert "pw-env" not in repr(notify) and "777:env" not in repr(notify)


_CLIENT = '[[clients]]\nid = "a"\nname = "A"\nsites = ["s1"]\n'
_SMTP = '[notify.smtp]\nurl = "smtp://h:25"\nfrom = "x@centre.example"\n'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (_CLIENT + 'email = ["not-an-address"]\n' + _SMTP, "clients[0].email[0]: 'not-an-add"),
        (_CLIENT + 'email = ["Ivan <i@x.ru>"]\n' + _SMTP, "clients[0].email[0]:"),
        (_CLIENT + 'telegram_chat_ids = ["acme"]', "clients[0].telegram_chat_ids[0]:"),
        (_CLIENT + "telegram_chat_ids = [true]", "clients[0].telegram_chat_ids[0]:"),
        (_CLIENT + 'email = ["i@x.ru"]', "clients[0].email: needs a [notify.smtp] section"),
        (_CLIENT + "telegram_chat_ids = [1]", "clients[0].telegram_chat_ids: needs a [notify.tel"),
        (_CLIENT + 'language = "de"', "clients[0].language:"),
        (_CLIENT + 'emails = ["i@x.ru"]', "clients[0].emails: unknown key"),
        ('[[clients]]\nid = "a"\nname = "A"\nsites = []', "clients[0].sites:"),
        ('[[clients]]\nid = "a"\nname = "A"\nsites = ["a/b"]', "clients[0].sites[0]:"),
        ('[[clients]]\nid = "a"\nname = "A"', "clients[0].sites: required key is missing"),
        (_CLIENT + _CLIENT.replace('"s1"', '"s2"'), "clients[1].id: duplicate client id 'a'"),
        (
            _CLIENT + _CLIENT.replace('"a"', '"b"'),
            "clients[1].sites: 's1' is already listed by clients[0]",
        ),
        ("[notify]\ndays = [30, -1]", "notify.days: each threshold is 1-366 days"),
        ('[notify]\ndigest_at = "9 am"', "notify.digest_at: '9 am' is not a time"),
        ('[notify.smtp]\nurl = "http://h"\nfrom = "a@b.ru"', "notify.smtp.url: must be smtp://"),
        ('[notify.smtp]\nurl = "smtp://h"\nfrom = "nobody"', "notify.smtp.from: must be"),
        ('[notify.smtp]\nurl = "smtp://h"', "notify.smtp.from: required key is missing"),
        (
            '[notify.smtp]\nurl = "smtps://h"\nfrom = "a@b.ru"\nstarttls = true',
            "notify.smtp: starttls: smtps:// is TLS",
        ),
        (
            '[notify.smtp]\nurl = "smtp://h"\nfrom = "a@b.ru"\npassword = "p"',
            "notify.smtp.username: required when a password is set",
        ),
        ("[notify.telegram]\n", "notify.telegram.token_file: required"),
        ('[notify.telegram]\ntoken_file = "/nonexistent/tok"', "notify.telegram.token_file: no su"),
        ('[notify.telegram]\ntoken = "t"\napi_url = "ftp://x"', "notify.telegram.api_url: must"),
        (
            '[notify.smtp]\nurl = "smtp://h"\nfrom = "a@b.ru"\nusername = "u"\n'
            'password_file = "/nonexistent/pw"',
            "notify.smtp.password_file: no such file",
        ),
    ],
)
def test_errors_name_the_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, source="/etc/kktmon/ticketing.toml", env={})
    assert str(caught.value).startswith("/etc/kktmon/ticketing.toml: ")
    assert message in str(caught.value)
