"""mypy --strict over every layer, as part of the suite.

The installed package is not what mypy should read (an editable install hides the
namespace from it, STYLE.md), so the test lays a ``kktmon/`` folder of symlinks to the
source folders and checks that.
"""

from __future__ import annotations

import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ("protocol", "drivers", "simulators", "agent", "ticketing", "demo", "cli")


@pytest.mark.skipif(find_spec("mypy") is None, reason="mypy is not installed (dev extra)")
def test_mypy_strict_is_clean(tmp_path: Path) -> None:
    package = tmp_path / "kktmon"
    package.mkdir()
    for layer in LAYERS:
        (package / layer).symlink_to(ROOT / layer, target_is_directory=True)
    args = [arg for layer in LAYERS for arg in ("-p", f"kktmon.{layer}")]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--cache-dir",
            str(tmp_path / "cache"),
            *args,
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
