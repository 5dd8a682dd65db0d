"""Device-side emulators of cash registers, for tests, demos and driver development.

A simulated register is a vendor-neutral :class:`~kktmon.simulators.scenario.DeviceState`
(loaded from a TOML scenario) plus a vendor emulator that answers the vendor's protocol
from it, hosted by a runner on a TCP port or a pseudo-terminal::

    from kktmon.simulators import ShtrihEmulator, TcpServer, default_state

    state = default_state()
    with TcpServer(ShtrihEmulator(state)) as server:
        ...  # point a driver at server.url ("socket://127.0.0.1:PORT")
        state.faults.nak_frames = 2  # faults switch on while it runs
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
from kktmon.simulators.shtrih.emulator import ShtrihEmulator

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
