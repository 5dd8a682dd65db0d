"""``kktmon console`` as a command: hash-password, a missing config, a store that is down
(clear 503 pages and JSON, the console recovering nothing by itself but never a
traceback), and the package data a non-editable install must carry."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import httpx
from console_rig import PASSWORD, ConsoleProcess, console_config, session

from kktmon.ticketing.passwords import verify_password

ROOT = Path(__file__).resolve().parents[2]
KKTMON = [sys.executable, "-m", "kktmon.cli"]


def _hash(stdin: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*KKTMON, "console", "hash-password"],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_hash_password_prints_a_hash_the_console_accepts() -> None:
    done = _hash("correct horse\ncorrect horse\n")
    assert done.returncode == 0, done.stderr
    encoded = done.stdout.strip()
    assert encoded.startswith("scrypt$") and "\n" not in encoded
    assert verify_password("correct horse", encoded)
    assert not verify_password("correct horse ", encoded)


def test_hash_password_refuses_a_typo_or_nothing() -> None:
    for stdin, says in (("one\ntwo\n", "differ"), ("\n\n", "empty"), ("", "empty")):
        done = _hash(stdin)
        assert done.returncode == 2, stdin
        assert done.stdout == "" and says in done.stderr


def test_console_without_a_config_says_what_it_needs() -> None:
    done = subprocess.run(
        [*KKTMON, "console"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2 and "--config" in done.stderr


def test_a_store_that_is_down_gives_503_pages_and_json(
    tmp_path: Path, refusing_address: tuple[str, int]
) -> None:
    host, port = refusing_address
    down = f"postgresql://kktmon@{host}:{port}/tickets"
    config = console_config(tmp_path / "ticketing.toml", down)
    with ConsoleProcess(config, expect_store=False) as console:
        assert httpx.get(console.url + "/healthz").status_code == 503
        api = httpx.get(console.url + "/api/registers", auth=("ivanov", PASSWORD["ivanov"]))
        assert api.status_code == 503 and api.headers["retry-after"] == "30"
        assert api.json() == {"detail": "The ticket store is unavailable; try again in a minute."}
        with session(console.url, "ivanov") as browser:  # logging in needs no store
            page = browser.get("/plan")
        assert page.status_code == 503 and "Store unavailable" in page.text
        assert "Traceback" not in page.text + console.log()


def test_every_template_and_static_file_is_package_data() -> None:
    """A non-editable install carries only what the globs name (scripts/test installs so)."""
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"][
        "setuptools"
    ]["package-data"]["kktmon.console"]
    folder = ROOT / "console"
    shipped = {p for pattern in globs for p in folder.glob(pattern)}
    files = {p for sub in ("templates", "static") for p in (folder / sub).rglob("*") if p.is_file()}
    assert files and files <= shipped, sorted(str(p) for p in files - shipped)
