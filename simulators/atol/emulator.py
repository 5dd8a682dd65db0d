"""An ATOL register, device side, on either link layer: FE ("АТОЛ 3.0") or LEGACY ("2.4").

Sans-I/O like the Shtrih-M emulator: :class:`AtolEmulator` holds the device (a
vendor-neutral :class:`~kktmon.simulators.scenario.DeviceState`, a clock, the log of what
arrived); each connection gets a link of the chosen layer that is fed bytes and returns
:mod:`~kktmon.simulators.server` outputs::

    emulator = AtolEmulator(state, link_layer="legacy")
    with TcpServer(emulator) as server:      # ATOL's own port would be 5555
        ...

* :mod:`kktmon.simulators.atol.link`: packets, the C1..C4 task buffer, async results.
* :mod:`kktmon.simulators.atol.legacy_link`: ENQ/ACK/EOT turns and STX/ETX frames.
* :mod:`kktmon.simulators.atol.answers` and :mod:`~kktmon.simulators.atol.fields`: the
  commands, answered from the state.

Both links share the fault modes of ``state.faults`` with ATOL semantics (see each link
module), and the command log: :attr:`AtolEmulator.received` holds the command bytes
(command and params, no password) of every intact task that arrived, in order, copies
included; those outside the read-only allowlist of
:mod:`kktmon.protocol.atol.commands` are also in :attr:`AtolEmulator.forbidden_received`
(with FE task-buffer commands other than C1..C4, by their whole DATA) and are answered
7Ah, never executed. :attr:`AtolEmulator.buffer_commands` lists the first DATA byte of
every intact FE host packet (C1..C4, or whatever else came) in arrival order, so a test
can prove an agent never sent C4 uninvited.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Literal

from kktmon.protocol.atol.commands import DEFAULT_PASSWORD, request_status_code
from kktmon.simulators.atol.answers import Answer, answer, command_allowed
from kktmon.simulators.atol.fields import Context
from kktmon.simulators.atol.legacy_link import LegacyDeviceLink
from kktmon.simulators.atol.link import FeDeviceLink
from kktmon.simulators.scenario import DeviceState, default_state
from kktmon.simulators.server import Link, Transport

LinkLayer = Literal["fe", "legacy"]
TCP_PORT = 5555  # an ATOL register's own port (table 2 field 91): same bytes as serial


class AtolEmulator:
    """The register: state, clock, link layer and the log of what arrived.

    ``clock`` is the host's clock (naive local); the device runs ``clock_offset_s`` ahead
    of it. ``seed`` makes the ``garbage_before_stx`` noise repeatable. ``password`` is
    the 4-digit access password the register expects (factory 0000).
    """

    def __init__(
        self,
        state: DeviceState | None = None,
        clock: Callable[[], datetime] = datetime.now,
        seed: int | None = None,
        link_layer: LinkLayer = "fe",
        password: int = DEFAULT_PASSWORD,
    ) -> None:
        self.state = state if state is not None else default_state()
        self.clock = clock
        self.link_layer: LinkLayer = link_layer
        self.password = password
        self.received: list[bytes] = []
        self.forbidden_received: list[bytes] = []
        self.buffer_commands: list[int] = []
        self.rng = random.Random(seed)

    def open_link(self, transport: Transport) -> Link:
        if self.link_layer == "legacy":
            return LegacyDeviceLink(self, transport)
        return FeDeviceLink(self, transport)

    def device_time(self) -> datetime:
        return self.clock() + timedelta(seconds=self.state.clock_offset_s)

    def note(self, body: bytes) -> None:
        """Log a task body (``password command params``) that arrived intact."""
        command = body[2:]
        self.received.append(command)
        if not command_allowed(command):
            self.forbidden_received.append(command)

    def note_forbidden(self, data: bytes) -> None:
        """Log something refused below the command layer (an unknown FE buffer command)."""
        self.forbidden_received.append(data)

    def execute(self, body: bytes, transport: Transport) -> Answer:
        """The answer to a task body, from the state as it is now."""
        return answer(Context(self.state, self.device_time(), transport), body, self.password)

    def stale_answer(self, transport: Transport) -> bytes:
        """The answer a POS program left behind (LEGACY pending_answer): its 45h status."""
        body = request_status_code(self.password).body
        return self.execute(body, transport).data

    def noise(self) -> bytes:
        """``garbage_before_stx`` printable bytes (never a control byte of either layer)."""
        count = self.state.faults.garbage_before_stx
        return bytes(self.rng.randrange(0x20, 0x7F) for _ in range(count))
