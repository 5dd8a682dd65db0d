"""Who holds a serial port: the processes with it open, from ``/proc/*/fd``.

A scan never takes a port from the program using it (usually the POS software); it
reports the port as held and, so the technician knows what to close or to monitor
through, names the holder: every ``/proc/<pid>/fd/*`` link that resolves to the port's
device is a process with it open. Another user's processes are unreadable without
root; then the answer is "held by another program" and how to learn more.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True)
class Holder:
    pid: int
    name: str

    def __str__(self) -> str:
        return f"{self.name} (pid {self.pid})"


@dataclass(frozen=True)
class Holders:
    """The processes seen holding a port; ``hidden``: some could not be looked into."""

    found: tuple[Holder, ...]
    hidden: bool

    def describe(self) -> str:
        if self.found:
            return "held by " + ", ".join(str(holder) for holder in self.found)
        if self.hidden:
            return "held by another program (run the scan as root to see which)"
        return "held by another program"


def port_holders(device: str, proc: Path = PROC, exclude: int | None = None) -> Holders:
    """The processes other than ``exclude`` (default: this one) with ``device`` open."""
    target = os.path.realpath(device)
    me = os.getpid() if exclude is None else exclude
    found: list[Holder] = []
    hidden = False
    for entry in _pids(proc):
        if int(entry.name) == me:
            continue
        try:
            holds = any(_points_at(fd, target) for fd in (entry / "fd").iterdir())
        except PermissionError:
            hidden = True
            continue
        except OSError:
            continue  # the process ended while we looked
        if holds:
            found.append(Holder(int(entry.name), _name(entry)))
    return Holders(tuple(found), hidden)


def _points_at(fd: Path, target: str) -> bool:
    try:
        return os.readlink(fd) == target
    except OSError:
        return False  # closed while we looked


def _pids(proc: Path) -> list[Path]:
    try:
        return sorted((p for p in proc.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
    except OSError:
        return []


def _name(entry: Path) -> str:
    try:
        return (entry / "comm").read_text(encoding="utf-8", errors="replace").strip() or "?"
    except OSError:
        return "?"
