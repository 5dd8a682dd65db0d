"""Guards of the one-namespace layout (STYLE.md): each failed silently once without them."""

from __future__ import annotations

import importlib
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ("agent", "drivers", "protocol", "simulators", "ticketing")
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _source_packages() -> set[str]:
    """Every folder under a layer that holds Python code, as a kktmon.* name."""
    found = set()
    for layer in LAYERS:
        for init in (ROOT / layer).rglob("*.py"):
            relative = init.parent.relative_to(ROOT)
            if "__pycache__" not in relative.parts:
                found.add("kktmon." + ".".join(relative.parts))
    return found


def test_every_source_folder_is_listed_in_packages() -> None:
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    assert _source_packages() <= listed, "add the missing subpackages to pyproject packages"


def test_package_dir_maps_each_layer_to_its_folder() -> None:
    mapping = PYPROJECT["tool"]["setuptools"]["package-dir"]
    assert mapping == {f"kktmon.{layer}": layer for layer in LAYERS}


def test_kktmon_is_a_namespace_without_an_init() -> None:
    assert not (ROOT / "kktmon").exists()
    assert not (ROOT / "tests" / "__init__.py").exists()
    assert not (ROOT / "conftest.py").exists()


@pytest.mark.parametrize("layer", LAYERS)
def test_layers_import_from_the_namespace(layer: str) -> None:
    module = importlib.import_module(f"kktmon.{layer}")
    assert module.__doc__, f"kktmon.{layer} needs a module docstring"


@pytest.mark.parametrize("layer", LAYERS)
def test_bare_layer_names_do_not_resolve_to_our_sources(layer: str) -> None:
    try:
        module = importlib.import_module(layer)
    except ImportError:
        return
    origin = Path(getattr(module, "__file__", "") or "").resolve()
    assert ROOT not in origin.parents, f"bare 'import {layer}' reached {origin}"


def test_version_comes_from_the_distribution() -> None:
    assert version("kktmon") == PYPROJECT["project"]["version"]


def test_protocol_layer_imports_no_io_libraries() -> None:
    banned = (
        "import serial",
        "import socket",
        "import usb",
        "paho",
        "tenacity",
        "import time",
        "import threading",
    )
    for path in (ROOT / "protocol").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        for name in banned:
            assert name not in text, f"{path.name} imports {name}: protocol/ is sans-I/O"


def test_lower_layers_do_not_import_upper_ones() -> None:
    upper = {
        "protocol": ("kktmon.drivers", "kktmon.simulators", "kktmon.agent", "kktmon.ticketing"),
        "drivers": ("kktmon.simulators", "kktmon.agent", "kktmon.ticketing"),
        "simulators": ("kktmon.drivers", "kktmon.agent", "kktmon.ticketing"),
    }
    for layer, forbidden in upper.items():
        for path in (ROOT / layer).glob("*.py"):
            text = path.read_text(encoding="utf-8")
            for name in forbidden:
                assert name not in text, f"{layer}/{path.name} imports {name}"
