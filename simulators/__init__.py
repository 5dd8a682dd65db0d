"""Device-side emulators of cash registers, for tests, demos and driver development.

A simulated register is a vendor-neutral :class:`~kktmon.simulators.scenario.DeviceState`
(loaded from a TOML scenario) plus a vendor emulator that answers the vendor's protocol
from it, hosted by a runner on a TCP port or a pseudo-terminal::

    from kktmon.simulators import ShtrihEmulator, TcpServer, default_state

    state = default_state()
    with TcpServer(ShtrihEmulator(state)) as server:
        ...  # point a driver at server.url ("socket://127.0.0.1:PORT")
        state.faults.nak_frames = 2  # faults switch on while it runs

Each vendor is a subpackage whose ``__init__`` re-exports its class (what
:mod:`~kktmon.simulators.registry` names). Wire vendors (``shtrih``, ``pirit``,
``atol``) have the same role modules: ``emulator`` (the device and its dispatch table),
``link`` (the register's side of the link layer) and ``answers`` (each command's
answer from the state), on the shared base of :mod:`~kktmon.simulators.emulator`, with
the fiscal drive's own records in :mod:`~kktmon.simulators.fn`; ``shtrih`` is the
template. Fake driver servers (``atol_web``, ``kkmserver``) have ``app`` (HTTP) and
``answers``, served by :mod:`~kktmon.simulators.http_server`.
"""

from kktmon.simulators.scenario import (
    DeviceState,
    Faults,
    builtin_scenarios,
    default_state,
    load_builtin,
    load_scenario,
)
from kktmon.simulators.server import DeviceEmulator, Link, PtyServer, TcpServer, run
from kktmon.simulators.shtrih import ShtrihEmulator

__all__ = [
    "DeviceEmulator",
    "DeviceState",
    "Faults",
    "Link",
    "PtyServer",
    "ShtrihEmulator",
    "TcpServer",
    "builtin_scenarios",
    "default_state",
    "load_builtin",
    "load_scenario",
    "run",
]
