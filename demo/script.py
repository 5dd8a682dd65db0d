"""What happens in the demo's shop, step by step, and the tickets each step must cause.

Each :class:`Step` says what happened, does it to the running demo (a :class:`Rig`: the
simulators' live device state, their TCP ports, the agent and ticketing processes) and
names the tickets the service centre must show before the next step starts. The
simulators read their state on every command, so a change here is what the agent sees on
its next poll.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Literal, Protocol

from kktmon.protocol.health import Severity
from kktmon.simulators.scenario import DeviceState

#: ``Expect.till`` of site-wide tickets (AGENT_LOST), as the ticket store names them.
AGENT = "agent"


class Rig(Protocol):
    """The running demo, as the script may touch it."""

    def state(self, till: str) -> DeviceState: ...

    def unplug(self, till: str) -> None: ...

    def plug(self, till: str) -> None: ...

    def kill_agent(self) -> None: ...

    def start_agent(self) -> None: ...

    def kill_ticketing(self) -> None: ...

    def start_ticketing(self) -> None: ...

    def block_queue(self, till: str, reason: str) -> None:
        """Block the ATOL web server's queue for ``till`` ("" frees it)."""


class Outcome(StrEnum):
    OPEN = "opened"
    ESCALATED = "escalated"
    RESOLVED = "resolved"


@dataclass(frozen=True)
class Expect:
    """A ticket for ``problem`` on ``till`` that must reach ``outcome`` (at ``severity``)."""

    till: str
    problem: str
    outcome: Outcome
    severity: Severity | None = None

    @property
    def where(self) -> str:
        return "the site" if self.till == AGENT else self.till

    def describe(self) -> str:
        """``the FN_EXPIRING ticket of till-1 to escalate to critical``."""
        verb = {Outcome.OPEN: "open", Outcome.ESCALATED: "escalate", Outcome.RESOLVED: "resolve"}
        to = ""
        if self.outcome is Outcome.ESCALATED and self.severity is not None:
            to = f" to {self.severity.value}"
        return f"the {self.problem} ticket of {self.where} to {verb[self.outcome]}{to}"


@dataclass(frozen=True)
class Step:
    says: str
    act: Callable[[Rig], None]
    expect: tuple[Expect, ...]


# ------------------------------------------------------------------ actions


def _fn_expires_in(till: str, days: int) -> Callable[[Rig], None]:
    def act(rig: Rig) -> None:
        rig.state(till).fn.valid_until = date.today() + timedelta(days=days)

    return act


def _new_fn(till: str) -> Callable[[Rig], None]:
    def act(rig: Rig) -> None:
        fn = rig.state(till).fn
        fn.serial = f"{int(fn.serial) + 1000:016d}"
        fn.valid_until = date.today() + timedelta(days=400)

    return act


def _ofd_stuck(till: str, count: int, days: float) -> Callable[[Rig], None]:
    def act(rig: Rig) -> None:
        ofd = rig.state(till).ofd
        # The date first: a register never reports a count without the oldest date.
        ofd.first_unsent_at = datetime.now() - timedelta(days=days)
        ofd.unsent_count = count

    return act


def _ofd_sent(till: str) -> Callable[[Rig], None]:
    def act(rig: Rig) -> None:
        ofd = rig.state(till).ofd
        ofd.unsent_count = 0
        ofd.first_unsent_at = None

    return act


def _paper(till: str, paper: Literal["ok", "near_end", "out"]) -> Callable[[Rig], None]:
    def act(rig: Rig) -> None:
        rig.state(till).printer.paper = paper

    return act


def _unplug(till: str) -> Callable[[Rig], None]:
    return lambda rig: rig.unplug(till)


def _plug(till: str) -> Callable[[Rig], None]:
    return lambda rig: rig.plug(till)


def _block_queue(till: str, reason: str) -> Callable[[Rig], None]:
    return lambda rig: rig.block_queue(till, reason)


def _kill_agent_and_ticketing(rig: Rig) -> None:
    """The shop's agent and the centre's ticketing die at once; systemd restarts the
    ticketing (the agent stays down): it resumes its session and gets the last will."""
    rig.kill_agent()
    rig.kill_ticketing()
    rig.start_ticketing()


def _start_agent(rig: Rig) -> None:
    rig.start_agent()


# ------------------------------------------------------------------ the script

OPENED, ESCALATED, RESOLVED = Outcome.OPEN, Outcome.ESCALATED, Outcome.RESOLVED
WARNING, CRITICAL, BLOCKED = Severity.WARNING, Severity.CRITICAL, Severity.BLOCKED

SCRIPT: tuple[Step, ...] = (
    Step(
        "till-1: its fiscal drive (ФН) now expires in 20 days",
        _fn_expires_in("till-1", 20),
        (Expect("till-1", "FN_EXPIRING", OPENED, WARNING),),
    ),
    Step(
        "till-1: 5 days left on the fiscal drive",
        _fn_expires_in("till-1", 5),
        (Expect("till-1", "FN_EXPIRING", ESCALATED, CRITICAL),),
    ),
    Step(
        "till-1: the fiscal drive expired yesterday, the register cannot sell",
        _fn_expires_in("till-1", -1),
        (Expect("till-1", "FN_EXPIRING", ESCALATED, BLOCKED),),
    ),
    Step(
        "till-2: 3 receipts not confirmed by the OFD for 3 days",
        _ofd_stuck("till-2", 3, 3),
        (Expect("till-2", "OFD_QUEUE_STALE", OPENED, WARNING),),
    ),
    Step(
        "till-2: the receipt paper runs out",
        _paper("till-2", "out"),
        (Expect("till-2", "PAPER_OUT", OPENED, WARNING),),
    ),
    Step(
        "till-3: its network cable is pulled out",
        _unplug("till-3"),
        (Expect("till-3", "DEVICE_UNREACHABLE", OPENED, WARNING),),
    ),
    Step(
        "till-3: the cable is plugged back in",
        _plug("till-3"),
        (Expect("till-3", "DEVICE_UNREACHABLE", RESOLVED),),
    ),
    Step(
        "till-2: a new paper roll is loaded",
        _paper("till-2", "ok"),
        (Expect("till-2", "PAPER_OUT", RESOLVED),),
    ),
    Step(
        "till-2: the OFD link is back and the 3 receipts are delivered",
        _ofd_sent("till-2"),
        (Expect("till-2", "OFD_QUEUE_STALE", RESOLVED),),
    ),
    Step(
        "till-4: the link to its ФН dropped mid-receipt: ATOL's web server blocks its queue",
        _block_queue("till-4", "fnError"),
        (Expect("till-4", "DEVICE_BUSY", OPENED, WARNING),),
    ),
    Step(
        "till-4: the server settles the receipt and the queue runs again",
        _block_queue("till-4", ""),
        (Expect("till-4", "DEVICE_BUSY", RESOLVED),),
    ),
    Step(
        "till-1: the engineer replaces the fiscal drive",
        _new_fn("till-1"),
        (Expect("till-1", "FN_EXPIRING", RESOLVED),),
    ),
    Step(
        "the agent and the ticketing are killed (SIGKILL); the ticketing is restarted at "
        "once, resumes its session and gets the agent's last will",
        _kill_agent_and_ticketing,
        (Expect(AGENT, "AGENT_LOST", OPENED),),
    ),
    Step(
        "the agent is started again",
        _start_agent,
        (Expect(AGENT, "AGENT_LOST", RESOLVED),),
    ),
)

#: The registers the script talks about, in the order the demo creates them.
TILLS = ("till-1", "till-2", "till-3", "till-4", "till-5")
