"""mypy --strict over every layer, the tests and the benchmarks, as part of the suite.

The installed package is not what mypy should read (an editable install hides the
namespace from it, STYLE.md), so the test lays a ``kktmon/`` folder of symlinks to the
source folders, plus ``tests`` and ``benchmarks``, and checks that in one run with no
per-folder exclusions. Tests are not a package (no ``__init__.py``: bare ``import
protocol`` must never work in them), so mypy names their modules by path
(``--explicit-package-bases``: ``tests.drivers.shtrih.test_driver``), and the shared
helpers that tests import by bare name come from ``tests/helpers`` on ``MYPYPATH``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ("protocol", "drivers", "simulators", "agent", "ticketing", "console", "demo", "cli")


@pytest.mark.skipif(find_spec("mypy") is None, reason="mypy is not installed (dev extra)")
def test_mypy_strict_is_clean(tmp_path: Path) -> None:
    package = tmp_path / "kktmon"
    package.mkdir()
    for layer in LAYERS:
        (package / layer).symlink_to(ROOT / layer, target_is_directory=True)
    for folder in ("tests", "benchmarks"):
        (tmp_path / folder).symlink_to(ROOT / folder, target_is_directory=True)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--cache-dir",
            str(tmp_path / "cache"),
            "--explicit-package-bases",
            "kktmon",
            "tests",
            "benchmarks",
        ],
        cwd=tmp_path,
        env={**os.environ, "MYPYPATH": str(ROOT / "tests" / "helpers")},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
