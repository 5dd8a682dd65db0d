"""deploy/udev/99-kktmon.rules and the VID:PID table of drivers/usb_ids.py cannot drift.

The rules grant the dialout group the raw USB node and the tty of every id in the table,
and name each tty ``/dev/kktmon/<label>-<serial>``; an id in one and not the other is a
register the agent cannot open or a device it was never meant to touch.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from kktmon.drivers.usb_ids import KNOWN_IDS

RULES = Path(__file__).resolve().parents[2] / "deploy" / "udev" / "99-kktmon.rules"
KEY = re.compile(r'(\w+)(?:\{([^}]*)\})?\s*(==|!=|\+=|:=|=)\s*"([^"]*)"')


def _rules() -> list[dict[str, str]]:
    """Each rule line as {"KEY{attr}op": value}."""
    rules = []
    for line in RULES.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            rules.append(
                {
                    f"{key}{{{attr}}}{op}" if attr else f"{key}{op}": value
                    for key, attr, op, value in KEY.findall(line)
                }
            )
    return rules


def _ids(rules: list[dict[str, str]], subsystem: str, prefix: str) -> set[tuple[str, str]]:
    return {
        (rule[f"{prefix}{{idVendor}}=="], rule[f"{prefix}{{idProduct}}=="])
        for rule in rules
        if rule.get("SUBSYSTEM==") == subsystem
    }


def _table() -> set[tuple[str, str]]:
    return {(f"{known.vid:04x}", f"{known.pid:04x}") for known in KNOWN_IDS}


def test_the_usb_nodes_of_exactly_the_table_are_granted_to_dialout() -> None:
    rules = _rules()
    assert _ids(rules, "usb", "ATTR") == _table()
    for rule in rules:
        if rule.get("SUBSYSTEM==") == "usb":
            assert rule["ENV{DEVTYPE}=="] == "usb_device"
            assert (rule["MODE="], rule["GROUP="]) == ("0660", "dialout")


def test_the_ttys_of_exactly_the_table_get_dialout_and_a_stable_name() -> None:
    rules = [rule for rule in _rules() if rule.get("SUBSYSTEM==") == "tty"]
    assert _ids(rules, "tty", "ATTRS") == _table()
    granted = {
        (rule["ATTRS{idVendor}=="], rule["ATTRS{idProduct}=="])
        for rule in rules
        if (rule.get("MODE="), rule.get("GROUP=")) == ("0660", "dialout")
    }
    assert granted == _table()
    links = {
        (rule["ATTRS{idVendor}=="], rule["ATTRS{idProduct}=="]): rule["SYMLINK+="]
        for rule in rules
        if "SYMLINK+=" in rule
    }
    expected = {
        (f"{k.vid:04x}", f"{k.pid:04x}"): f"kktmon/{k.label}-$env{{ID_SERIAL_SHORT}}"
        for k in KNOWN_IDS
    }
    assert links == expected
    for rule in rules:
        if "SYMLINK+=" in rule:
            # the register's own port (a composite ATOL has a second tty), and only
            # devices with a serial number: an empty one would make "kktmon/ch340-"
            assert rule["ENV{ID_USB_INTERFACE_NUM}=="] == "00"
            assert rule["ENV{ID_SERIAL_SHORT}=="] == "?*"


def test_ids_are_lower_case_hex_as_sysfs_writes_them() -> None:
    for vendor, product in _ids(_rules(), "usb", "ATTR"):
        assert re.fullmatch(r"[0-9a-f]{4}", vendor) and re.fullmatch(r"[0-9a-f]{4}", product)


def _udevadm_verify() -> bool:
    if shutil.which("udevadm") is None:
        return False
    probe = subprocess.run(
        ["udevadm", "verify", "--help"], capture_output=True, text=True, check=False
    )
    return probe.returncode == 0


@pytest.mark.skipif(not _udevadm_verify(), reason="no `udevadm verify` (systemd < 254)")
def test_udev_accepts_the_rules() -> None:
    result = subprocess.run(
        ["udevadm", "verify", str(RULES)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
