"""``kktmon scan``: the command, its output, its progress, Ctrl-C and ``--write-config``.

A shop of simulated registers: a Shtrih-M on a pty at 9600 baud (not its factory
speed), a Pirit on a pty at 115200 (likewise), an ATOL over TCP, a Shtrih-M behind a
kkmserver fake, and a silent pty. The command runs as a subprocess the way a technician
runs it (``python -m kktmon.cli scan ...``) or, where the machine's own port list and
USB devices are faked, in this process through :func:`kktmon.agent.scan_run.scan_main`.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import serial
from fake_usb import FakeBackend, FakeUsbDevice, make_sysfs, port_info
from scan_rig import BaudPtyServer, FakePorts, distinct_state, emulator, off_allowlist

from kktmon.agent.scan_run import LocalSources, scan_main
from kktmon.drivers.usb import find_usb_registers
from kktmon.simulators.http_server import HttpFakeServer
from kktmon.simulators.kkmserver import KkmserverApp
from kktmon.simulators.server import DeviceEmulator, PtyServer, TcpServer

FAST = ["--control-timeout", "0.1", "--answer-timeout", "0.5"]
SITE = "store-scan"


@dataclass
class Shop:
    """The simulated registers, the silent port, and what each register should say."""

    ptys: list[str]
    silent: str
    tcp: list[int]
    kkmserver: str  # its root URL with the login, as a technician gives --kkmserver
    expected: dict[str, str]  # serial -> vendor the scan should report
    emulators: list[DeviceEmulator]
    app: KkmserverApp

    def args(self) -> list[str]:
        """Everything of the shop, and nothing of this machine's own ports."""
        args = ["--no-local", *FAST, "--kkmserver", self.kkmserver]
        for path in [*self.ptys, self.silent]:
            args += ["--port", path]
        for port in self.tcp:
            args += ["--tcp", f"127.0.0.1:{port}"]
        return args

    def assert_nothing_off_the_allowlists(self) -> None:
        for device in self.emulators:
            assert off_allowlist(device) == []
        assert self.app.violations == []


@pytest.fixture
def silent_pty() -> Iterator[str]:
    master, slave = os.openpty()
    try:
        yield os.ttyname(slave)
    finally:
        os.close(master)
        os.close(slave)


@pytest.fixture
def shop(silent_pty: str) -> Iterator[Shop]:
    shtrih = emulator("shtrih", "0011111111111111")
    pirit = emulator("pirit", "0033333333333333")
    atol = emulator("atol", "0022222222222222")
    app = KkmserverApp(distinct_state("0044444444444444"))
    with ExitStack() as stack:
        ptys = [
            stack.enter_context(BaudPtyServer(shtrih, 9600)).path,
            stack.enter_context(BaudPtyServer(pirit, 115200)).path,
        ]
        tcp = stack.enter_context(TcpServer(atol))
        server = stack.enter_context(HttpFakeServer(app))
        yield Shop(
            ptys=ptys,
            silent=silent_pty,
            tcp=[tcp.port],
            kkmserver=server.url.split("/?", 1)[0] + "/",
            expected={
                "0011111111111111": "shtrih",
                "0033333333333333": "pirit",
                "22222222222222": "atol",  # ATOL reports 14 digits
                "0044444444444444": "kkmserver",
            },
            emulators=[shtrih, pirit, atol],
            app=app,
        )


def kktmon(*args: str, **options: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kktmon.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        **options,
    )


def _exclusively_free(path: str) -> bool:
    try:
        serial.Serial(path, exclusive=True).close()
    except serial.SerialException:
        return False
    return True


# ------------------------------------------------------------------ finding registers


def test_scan_json_finds_each_simulated_register_with_its_vendor_and_serial(shop: Shop) -> None:
    result = kktmon("scan", "--json", *shop.args())
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    found = {f["serial"]: f["vendor"] for f in report["findings"] if f["status"] == "found"}
    assert found == shop.expected
    by_port = {f["port"]: f for f in report["findings"]}
    assert by_port[shop.silent]["status"] == "silent"
    assert (by_port[shop.ptys[0]]["baudrate"], by_port[shop.ptys[1]]["baudrate"]) == (9600, 115200)
    shop.assert_nothing_off_the_allowlists()


def test_the_table_shows_each_register_and_what_to_fix(
    shop: Shop, capsys: pytest.CaptureFixture[str]
) -> None:
    local = LocalSources(ports=FakePorts([*shop.ptys, shop.silent]), usb=lambda: ([], None))
    args = [*FAST, "--kkmserver", shop.kkmserver, "--tcp", f"127.0.0.1:{shop.tcp[0]}"]
    assert scan_main(args, local) == 0
    out, err = capsys.readouterr()
    header, *rows = out.splitlines()
    assert header.split() == ["PORT", "VENDOR", "MODEL", "SERIAL", "FN", "SERIAL", "FOUND", "BY",
                              "WHAT", "TO", "FIX"]  # fmt: skip
    for serial_number in shop.expected:
        assert any(serial_number in row for row in rows), serial_number
    silent_row = next(row for row in rows if row.startswith(shop.silent))
    assert silent_row.split()[-2:] == ["silent", "[1]"]
    assert f"[1] {shop.silent}: nothing answered" in out
    assert "4 register(s) found" in out
    assert f"scan: {shop.silent}: probing" in err and f"scan: {shop.silent}: silent" in err
    shop.assert_nothing_off_the_allowlists()


SHTRIH_USB = FakeUsbDevice(0x1FC9, 0x0083, 1, (2,), 5, "NXP", "SHTRIH-M", "0012345678")
ATOL_NO_TTY = FakeUsbDevice(0x2912, 0x0005, 1, (3,), 6, "ATOL", "ATOL FPrint", "00106107751234")
CH340 = FakeUsbDevice(0x1A86, 0x7523, 1, (4,), 7, None, "USB Serial", None)


def _usb_pc(tmp_path: Path, register_tty: str, bridge_tty: str) -> LocalSources:
    """This PC as the scan sees it: a Shtrih-M on USB whose tty is ``register_tty``, an
    ATOL on USB with no tty, a CH340 bridge on ``bridge_tty``."""
    ports = [port_info(register_tty, SHTRIH_USB), port_info(bridge_tty, CH340)]
    make_sysfs(tmp_path / "sys", ATOL_NO_TTY)

    def usb() -> tuple[list[Any], str | None]:
        registers = find_usb_registers(
            FakeBackend([SHTRIH_USB, ATOL_NO_TTY, CH340]),
            sysfs_root=tmp_path / "sys",
            comports=lambda: ports,
            by_id_root=tmp_path / "by-id",
        )
        return list(registers), None

    return LocalSources(ports=lambda: ports, by_id=tmp_path / "by-id", usb=usb)


USB_URL = "usb://1fc9:0083?serial=0012345678&baudrate=115200"


def test_usb_registers_are_probed_through_their_tty_listed_without_one_and_written_usb(
    tmp_path: Path, silent_pty: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Shtrih-M on USB (its tty a pty here), an ATOL with no tty, a bridge chip with
    nothing behind it: found and written as ``usb://``, listed with its fix, silent."""
    device = emulator("shtrih", "0012345678901234")
    with PtyServer(device) as pty:
        local = _usb_pc(tmp_path, pty.path, silent_pty)
        config = tmp_path / "agent.toml"
        code = scan_main(["--json", *FAST, "--write-config", str(config)], local)
    assert code == 0
    findings = {f["port"]: f for f in json.loads(capsys.readouterr().out)["findings"]}
    assert (findings[pty.path]["found_by"], findings[pty.path]["url"]) == ("usb", USB_URL)
    assert (findings[silent_pty]["found_by"], findings[silent_pty]["status"]) == ("usb", "silent")
    lonely = findings["usb 1-3 (2912:0005)"]
    assert (lonely["status"], lonely["family"]) == ("no_tty", "atol") and lonely["fix"]
    assert f'url = "{USB_URL}"' in config.read_text(encoding="utf-8")
    check = kktmon("check-config", "--config", str(config))
    assert check.returncode == 0, check.stderr
    assert off_allowlist(device) == []


def test_a_port_named_with_port_keeps_its_usb_name(
    tmp_path: Path, silent_pty: str, capsys: pytest.CaptureFixture[str]
) -> None:
    device = emulator("shtrih", "0012345678901234")
    with PtyServer(device) as pty:
        local = _usb_pc(tmp_path, pty.path, silent_pty)
        assert scan_main(["--json", *FAST, "--port", pty.path], local) == 0
    (finding, *servers) = json.loads(capsys.readouterr().out)["findings"]
    assert (finding["port"], finding["url"]) == (pty.path, USB_URL)
    assert all(f["found_by"] in ("kkmserver", "atol-web") for f in servers)


# ------------------------------------------------------------------ --write-config


def _ready_for(config: Path, broker: Any, state_dir: Path) -> None:
    """What the technician edits: the site, the broker, where the agent keeps its spool."""
    text = config.read_text(encoding="utf-8")
    text = text.replace('site = "CHANGE-ME"', f'site = "{SITE}"')
    text = text.replace('url = "mqtt://127.0.0.1:1883"', f'url = "mqtt://127.0.0.1:{broker.port}"')
    text = text.replace('state_dir = "/var/lib/kktmon"', f'state_dir = "{state_dir}"')
    config.write_text(text, encoding="utf-8")


def test_the_written_config_passes_check_config_and_runs_the_agent(
    shop: Shop, tmp_path: Path, mosquitto: Any, watch: Callable[..., Any]
) -> None:
    config = tmp_path / "agent.toml"
    scan = kktmon("scan", *shop.args(), "--write-config", str(config))
    assert scan.returncode == 0, scan.stderr
    assert config.stat().st_mode & 0o777 == 0o600, "it may hold a server's password"
    check = kktmon("check-config", "--config", str(config))
    assert check.returncode == 0, check.stderr
    assert "site CHANGE-ME; 4 register(s)" in check.stdout
    _ready_for(config, mosquitto, tmp_path / "state")
    watcher = watch(mosquitto, f"kktmon/v1/{SITE}/kkt/+/state")
    with (tmp_path / "agent.log").open("w") as log:
        agent = subprocess.Popen(
            [sys.executable, "-m", "kktmon.cli", "agent", "--config", str(config)], stderr=log
        )
        try:
            seen = watcher.wait_for(lambda s: len({m.topic for m in s}) >= 4, timeout=60,
                                    what="a state from each register")  # fmt: skip
        finally:
            agent.terminate()
            agent.wait(timeout=30)
    serials = {json.loads(m.payload)["device"]["serial"] for m in seen}
    assert serials == set(shop.expected)
    shop.assert_nothing_off_the_allowlists()


def test_no_register_found_writes_nothing_and_exits_1(silent_pty: str, tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    result = kktmon("scan", "--no-local", *FAST, "--port", silent_pty, "--write-config",
                    str(config))  # fmt: skip
    assert result.returncode == 1
    assert not config.exists() and "not written" in result.stderr


def test_an_existing_config_is_never_overwritten(tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    config.write_text("# mine\n", encoding="utf-8")
    result = kktmon("scan", "--no-local", "--write-config", str(config))
    assert result.returncode == 2 and "exists" in result.stderr
    assert config.read_text(encoding="utf-8") == "# mine\n"


def test_a_net_beyond_a_22_is_refused_before_anything_is_probed() -> None:
    result = kktmon("scan", "--no-local", "--net", "10.0.0.0/16")
    assert result.returncode == 2
    assert "more than a /22" in result.stderr and "--force" in result.stderr


# ------------------------------------------------------------------ progress


def test_progress_is_quiet_lines_when_stderr_is_not_a_terminal(silent_pty: str) -> None:
    result = kktmon("scan", "--no-local", *FAST, "--port", silent_pty)
    assert result.returncode == 1
    started, ended = result.stderr.splitlines()
    assert started == f"scan: {silent_pty}: probing"
    assert ended.startswith(f"scan: {silent_pty}: silent (") and ended.endswith(" s)")
    assert "\r" not in result.stderr


def test_progress_is_a_bar_redrawn_in_place_on_a_terminal(silent_pty: str) -> None:
    master, slave = os.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "kktmon.cli", "scan", "--no-local", *FAST, "--port", silent_pty],
            stdout=subprocess.PIPE,
            stderr=slave,
            text=True,
        )
        out, _ = process.communicate(timeout=120)
        drawn = _drain(master)
    finally:
        os.close(master)
        os.close(slave)
    assert process.returncode == 1 and "0 register(s) found" in out
    assert "\r[" in drawn and f"{silent_pty}: shtrih at 4800 baud" in drawn
    assert "1/1" in drawn and "\n" not in drawn.replace("\r\n", ""), "one line, redrawn"


def _drain(fd: int) -> str:
    data = b""
    while select.select([fd], [], [], 0.2)[0]:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        data += chunk
    return data.decode("utf-8", errors="replace")


# ------------------------------------------------------------------ ports of others, Ctrl-C


def test_ctrl_c_leaves_every_port_closed(silent_pty: str) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "kktmon.cli", "scan", "--no-local", "--port", silent_pty],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    assert process.stderr.readline() == f"scan: {silent_pty}: probing\n"
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 130, err
    assert "interrupted" in out
    assert _exclusively_free(silent_pty)


def test_a_held_port_is_reported_with_the_process_holding_it(silent_pty: str) -> None:
    with serial.Serial(silent_pty, exclusive=True):
        result = kktmon("scan", "--json", "--no-local", *FAST, "--port", silent_pty)
    (finding,) = json.loads(result.stdout)["findings"]
    assert finding["status"] == "held"
    assert f"(pid {os.getpid()})" in finding["holder"]
    assert finding["fix"] and "DEVICE_BUSY" in finding["fix"]
    assert [a["outcome"] for a in finding["attempts"]] == ["held"]


# ------------------------------------------------------------------ layers


_RUN_THEN_MODULES = """
import contextlib, io, json, sys
from kktmon.cli.main import main
with contextlib.redirect_stdout(io.StringIO()):
    code = main(sys.argv[1:])
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def _modules(*args: str) -> tuple[int, set[str]]:
    result = subprocess.run(
        [sys.executable, "-c", _RUN_THEN_MODULES, *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    report = json.loads(result.stdout)
    return report["code"], set(report["modules"])


def test_scan_is_a_store_pc_command_that_imports_no_other_layer() -> None:
    code, modules = _modules("scan", "--no-local")
    assert code == 1
    layers = {name.split(".")[1] for name in modules if name.startswith("kktmon.")}
    assert layers <= {"cli", "agent", "drivers", "protocol"}


def test_other_agent_commands_do_not_load_the_scanner(tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    config.write_text(
        'site = "s"\n[[devices]]\nvendor = "shtrih"\nurl = "serial:///dev/ttyACM0"\n',
        encoding="utf-8",
    )
    code, modules = _modules("check-config", "--config", str(config))
    assert code == 0
    assert not {m for m in modules if m.startswith(("kktmon.drivers.scan", "httpx"))}
