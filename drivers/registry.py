"""Vendor name -> driver class, imported on first use (like python-can's interface table).

Third-party packages add vendors through the ``kktmon.drivers`` entry-point group,
whose entries name a :class:`~kktmon.drivers.base.Driver` subclass.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from kktmon.protocol.errors import UnsupportedVendorError

if TYPE_CHECKING:
    from kktmon.drivers.base import Driver

#: Built-in vendors: name -> (module, class).
BUILTIN_DRIVERS: dict[str, tuple[str, str]] = {
    "shtrih": ("kktmon.drivers.shtrih.driver", "ShtrihDriver"),
    "pirit": ("kktmon.drivers.pirit.driver", "PiritDriver"),
    "atol": ("kktmon.drivers.atol.driver", "AtolDriver"),
    # Driver-server adapters: the register behind the vendor's HTTP server (drivers/http.py).
    "atol-web": ("kktmon.drivers.atol_web.driver", "AtolWebDriver"),
    "kkmserver": ("kktmon.drivers.kkmserver.driver", "KkmserverDriver"),
}

ENTRY_POINT_GROUP = "kktmon.drivers"


def vendors() -> list[str]:
    """Every vendor name a driver can be built for."""
    plugins = {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)}
    return sorted(set(BUILTIN_DRIVERS) | plugins)


def driver_class(vendor: str) -> type[Driver[Any]]:
    """The driver class registered under ``vendor``."""
    if vendor in BUILTIN_DRIVERS:
        module_name, class_name = BUILTIN_DRIVERS[vendor]
        cls: type[Driver[Any]] = getattr(importlib.import_module(module_name), class_name)
        return cls
    for ep in entry_points(group=ENTRY_POINT_GROUP, name=vendor):
        plugin: type[Driver[Any]] = ep.load()
        return plugin
    raise UnsupportedVendorError(
        f"no driver for vendor {vendor!r}; known vendors: {', '.join(vendors())}"
    )
