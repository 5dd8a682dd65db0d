"""``kktmon scan --write-config FILE``: the agent's configuration for what a scan found.

One ``[[devices]]`` block per register found, with the stable address the scan chose
(``usb://VID:PID?serial=`` for a USB register with a serial number, the
``/dev/serial/by-id`` link of a serial port, ``tcp://host:port``, or the driver server's
URL naming the register by number and serial) and the speed it answered at; a
``site = "CHANGE-ME"`` and an ``[mqtt]`` skeleton to fill in. ``kktmon check-config``
accepts the file as written, and the agent runs it once the site and broker are set.

A driver server's password is written as the block's ``connection_password``, never
into the URL, and the file is created mode 0600. A register seen twice (the same
family and serial by two routes) is written once; ports held by another program are
listed as comments, since what is behind them is unknown.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

from kktmon.drivers.scan import Finding, ScanReport, Status
from kktmon.protocol.errors import ConfigError

SITE_PLACEHOLDER = "CHANGE-ME"
DEFAULT_MQTT_URL = "mqtt://127.0.0.1:1883"


def _toml(value: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's, for what json.dumps writes)."""
    return json.dumps(value, ensure_ascii=False)


def server_key(url: str) -> tuple[str, str, int | None]:
    """What a driver server's password is looked up by: adapter, host and port."""
    parts = urlsplit(url)
    adapter = parts.scheme.removesuffix("+https").removesuffix("+http")
    return adapter, (parts.hostname or "").lower(), parts.port


def render_config(
    report: ScanReport, *, passwords: Mapping[tuple[str, str, int | None], str] | None = None
) -> str:
    """The configuration text; ConfigError when the scan found no register."""
    registers = report.registers
    if not registers:
        raise ConfigError("scan: no register found, so there is no configuration to write")
    lines = _header(len(registers))
    seen: dict[tuple[str | None, str], str] = {}
    for finding in registers:
        lines += _device(finding, seen, passwords or {})
    held = [finding for finding in report.findings if finding.status is Status.HELD]
    lines += _held(held)
    return "\n".join(lines) + "\n"


def _header(count: int) -> list[str]:
    when = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M")
    return [
        f"# Written by `kktmon scan` on {when}: {count} register(s).",
        "# Set site to this store's id and [mqtt] to the service centre's broker, then:",
        "#   kktmon check-config --config THIS_FILE && kktmon agent --config THIS_FILE",
        f"site = {_toml(SITE_PLACEHOLDER)}",
        "",
        "[agent]",
        'state_dir = "/var/lib/kktmon"',
        "",
        "[mqtt]",
        f"url = {_toml(DEFAULT_MQTT_URL)}  # mqtts://broker:8883 for TLS",
        '# username = "store-001"',
        '# password_file = "/etc/kktmon/mqtt-password"',
    ]


def _device(
    finding: Finding,
    seen: dict[tuple[str | None, str], str],
    passwords: Mapping[tuple[str, str, int | None], str],
) -> list[str]:
    assert finding.url is not None and finding.vendor is not None  # a register found has both
    about = ", ".join(
        part
        for part in (
            finding.model,
            f"serial {finding.serial}" if finding.serial else None,
            f"FN {finding.fn_serial}" if finding.fn_serial else None,
            f"found on {finding.port} ({finding.found_by.value})",
        )
        if part
    )
    key = (finding.family or finding.vendor, finding.serial or finding.url)
    if key in seen:
        return ["", f"# {about}: the same register as {seen[key]}, not written twice"]
    seen[key] = finding.url
    lines = ["", "[[devices]]", f"# {about}"]
    if finding.problem:
        lines.append(f"# note: {finding.problem}")
    lines += [f"vendor = {_toml(finding.vendor)}", f"url = {_toml(finding.url)}"]
    password = passwords.get(server_key(finding.url))
    if password is not None:
        lines.append(f"connection_password = {_toml(password)}")
    return lines


def _held(held: Sequence[Finding]) -> list[str]:
    lines: list[str] = []
    for finding in held:
        lines += [
            "",
            f"# {finding.port}: {finding.holder or 'held by another program'}; what is behind",
            "# it is unknown. If it is a register, monitor it through that program's driver",
            "# server, or add a [[devices]] block once the port is free and scanned.",
        ]
    return lines


def write_config(path: Path, text: str) -> None:
    """Create ``path`` (mode 0600: it may hold a server password); never overwrite."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigError(f"{path}: exists; remove it or write to another file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot create: {exc.strerror or exc}") from exc
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
