"""Guards of the one-namespace layout (STYLE.md): each failed silently once without them."""

from __future__ import annotations

import ast
import importlib
import re
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ("agent", "cli", "console", "demo", "drivers", "protocol", "simulators", "ticketing")
#: What each layer may import of ours besides itself (DESIGN.md section 2); demo and cli sit
#: on top and may import everything.
ALLOWED: dict[str, frozenset[str]] = {
    "protocol": frozenset(),
    "drivers": frozenset({"protocol"}),
    "simulators": frozenset({"protocol"}),
    "agent": frozenset({"drivers", "protocol"}),
    "ticketing": frozenset({"protocol"}),
    "console": frozenset({"ticketing", "protocol"}),
    "demo": frozenset(LAYERS) - {"demo"},
    "cli": frozenset(LAYERS) - {"cli"},
}

BUILTIN_OPEN = re.compile(r"(?<!def )(?<![\w.])open\(")
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


def _imported_layers(path: Path) -> set[str]:
    """The kktmon layers a module imports, at any depth (lazy imports inside functions too)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
        elif isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
    return {name.split(".")[1] for name in names if name.startswith("kktmon.") and "." in name}


def test_protocol_layer_does_no_io() -> None:
    banned = (
        "import serial",
        "import socket",
        "import usb",
        "paho",
        "tenacity",
        "import time",
        "import threading",
        "read_text(",
        "read_bytes(",
        "is_file(",
    )
    for path in (ROOT / "protocol").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for name in banned:
            assert name not in text, f"{path.relative_to(ROOT)} uses {name}: protocol/ is sans-I/O"
        assert not BUILTIN_OPEN.search(text), f"{path.relative_to(ROOT)} opens a file"


@pytest.mark.parametrize("layer", LAYERS)
def test_layers_import_only_the_layers_below(layer: str) -> None:
    allowed = ALLOWED[layer] | {layer}
    for path in (ROOT / layer).rglob("*.py"):
        wrong = _imported_layers(path) - allowed
        assert not wrong, f"{path.relative_to(ROOT)} imports kktmon.{sorted(wrong)}"


def test_every_layer_has_a_rule() -> None:
    assert set(ALLOWED) == set(LAYERS)
