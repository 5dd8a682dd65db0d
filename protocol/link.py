"""Vendor-neutral vocabulary of the host-side link state machines (sans-I/O).

Every vendor's link machine (``kktmon.protocol.shtrih.HostLink``,
``kktmon.protocol.pirit.HostLink``, ``kktmon.protocol.pirit.LinkCheck``) speaks in the
same actions, so one driver loop can run any of them::

    actions = link.start()
    while True:
        for action in actions:
            Purge()       -> drop whatever sits in the input buffer
            Send(data)    -> write ``data`` in one go
            Wait(kind)    -> the next read uses the driver's timeout for ``kind``
            Done(answer)  -> the exchange is over; ``answer`` is also ``link.answer``
        if link.done: break
        data = transport.read(..., timeout_for(last Wait.kind))
        actions = link.receive(data) if data else link.timeout()

The machines never read a clock: a driver maps each :class:`WaitKind` to seconds.
Failures are raised from ``start``/``receive``/``timeout`` as typed
:mod:`kktmon.protocol.errors` exceptions, never returned as actions.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Generic, Protocol

from typing_extensions import TypeVar

# Default ``object`` keeps a bare ``Done`` valid in annotations (PEP 696).
AnswerT_co = TypeVar("AnswerT_co", covariant=True, default=object)


class WaitKind(enum.Enum):
    """What the link is waiting for; the driver turns each into a timeout in seconds."""

    CONTROL = "control"  # one control byte (ACK/NAK) after ENQ or after our frame
    ANSWER = "answer"  # the first byte of an answer: the command may be executing
    BYTE = "byte"  # the rest of a frame that has started (inter-byte timeout)


@dataclass(frozen=True)
class Send:
    """Write these bytes to the register."""

    data: bytes


@dataclass(frozen=True)
class Purge:
    """Discard whatever sits in the input buffer (stale bytes, stray control bytes)."""


@dataclass(frozen=True)
class Wait:
    """Read next, with the timeout the driver uses for ``kind``."""

    kind: WaitKind


@dataclass(frozen=True)
class Done(Generic[AnswerT_co]):
    """The exchange is over; ``answer`` is the vendor's decoded answer."""

    answer: AnswerT_co


Action = Send | Purge | Wait | Done


class LinkMachine(Protocol[AnswerT_co]):
    """What a driver loop needs from any vendor's link machine."""

    @property
    def answer(self) -> AnswerT_co | None:
        """The decoded answer once :attr:`done`, else ``None``."""

    @property
    def done(self) -> bool: ...

    @property
    def retries(self) -> int:
        """Recovery rounds so far (the driver adds them to ``link.retries`` of a poll)."""

    @property
    def noise_bytes(self) -> int:
        """Bytes that arrived but belonged to no frame."""

    def start(self) -> list[Action]: ...

    def receive(self, data: bytes) -> list[Action]: ...

    def timeout(self) -> list[Action]: ...
