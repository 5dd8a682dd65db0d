"""Make the sibling data module ``shtrih_vectors`` importable under ``--import-mode=importlib``.

``tests/`` is deliberately not a package (a ``tests/__init__.py`` would let bare
``import protocol`` work in tests and fail once installed), so pytest does not put this
folder on ``sys.path``. Registering the one module by path keeps ``sys.path`` untouched.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path


def _register(name: str) -> None:
    if name in sys.modules:
        return
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{name}.py"))
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {name} next to {__file__}")
    module = importlib.util.module_from_spec(spec)
    # Registered before running it: dataclasses look their module up in sys.modules.
    sys.modules[name] = module
    spec.loader.exec_module(module)


_register("shtrih_vectors")
