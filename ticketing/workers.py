"""``kktmon ticketing --workers N``: N worker processes on one host, under one supervisor.

A worker is one Python process, and its threads share one interpreter lock: paho's
network thread and the intake thread together use at most about one core (issue 12's
profile: per register state, roughly 35 µs in paho and 50 µs in intake and the store,
all under that lock). A host with more cores runs more workers. ``--workers N`` starts
N ``kktmon ticketing`` processes with the same config; each claims its own slot
(:mod:`identity`), so their client ids are ``kktmon-ticketing-<hostname>-1`` to ``-N``,
each a persistent session in the shared subscription group, and the broker deals the
messages out between them.

The supervisor (this process, which does no MQTT or store work itself):

* stops every worker on SIGTERM or SIGINT (each keeps its session, as one worker does)
  and exits 0 once they have;
* restarts a worker that exited for any other reason (1: a thread died; killed) after
  1 s, doubling to 60 s while it keeps failing within a minute of its start. It takes
  the lowest free slot, which is the one it left, and with it its session;
* stops them all and exits with a worker's status 2 (configuration, or a client id
  another process holds) or 3 (its session taken over from another host): a restart
  cannot fix those.

On Linux each worker asks the kernel for SIGTERM when the supervisor dies, so a killed
supervisor leaves no workers behind (under systemd the unit's cgroup does it anyway).
Lowering N leaves the highest slots' sessions in the group: retire each
(``kktmon ticketing --retire --client-id kktmon-ticketing-<hostname>-<slot>``).
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import FrameType

from kktmon.protocol.errors import ConfigError
from kktmon.ticketing.config import TicketingConfig
from kktmon.ticketing.faults import Retry
from kktmon.ticketing.identity import MAX_SLOTS
from kktmon.ticketing.service import EXIT_OK, EXIT_TAKEN_OVER

log = logging.getLogger(__name__)

EXIT_CONFIG = 2
#: Worker statuses that stop the whole pool: a restart would fail the same way.
FATAL = (EXIT_CONFIG, EXIT_TAKEN_OVER)
#: A worker that ran this long before it exited starts again after the shortest pause.
STEADY_S = 60.0
STOP_TIMEOUT_S = 30.0
POLL_S = 0.2
_PR_SET_PDEATHSIG = 1


def check_pool(config: TicketingConfig, count: int) -> None:
    """ConfigError when ``count`` workers cannot share this config."""
    if not 1 <= count <= MAX_SLOTS:
        raise ConfigError(f"--workers {count}: between 1 and {MAX_SLOTS}")
    if count == 1:
        return
    if config.mqtt.client_id is not None:
        raise ConfigError(
            f"--workers {count} with [mqtt] client_id {config.mqtt.client_id!r}: one id is one"
            " session; leave client_id unset so that each worker takes its own slot"
        )
    if config.mqtt.protocol == "3.1.1":
        raise ConfigError(
            f"--workers {count} needs MQTT 5 (shared subscriptions): over 3.1.1 every worker"
            " would receive every message"
        )


@dataclass
class _Slot:
    """One of the N workers: its process while it runs, its restart pauses."""

    number: int
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    due: float = 0.0
    retry: Retry = field(default_factory=Retry)


class Pool:
    """Runs ``count`` copies of ``command`` (a ``kktmon ticketing`` command line)."""

    def __init__(self, command: Sequence[str], count: int) -> None:
        self.command = list(command)
        self.slots = [_Slot(number) for number in range(1, count + 1)]
        self.stop_event = threading.Event()
        self.exit_code = EXIT_OK

    def run(self) -> int:
        """Serve until SIGTERM/SIGINT or a fatal worker status; the exit status."""
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._stop)
        log.info("ticketing pool of %d workers starting", len(self.slots))
        while not self.stop_event.is_set():
            now = time.monotonic()
            for slot in self.slots:
                self._tend(slot, now)
            self.stop_event.wait(POLL_S)
        self._stop_all()
        return self.exit_code

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        self.stop_event.set()

    def _tend(self, slot: _Slot, now: float) -> None:
        if slot.process is None:
            if now >= slot.due and not self.stop_event.is_set():
                self._start(slot, now)
            return
        code = slot.process.poll()
        if code is None:
            return
        slot.process = None
        if code in FATAL:
            log.critical(
                "worker %d exited %d; stopping the pool (a restart would fail the same way)",
                slot.number,
                code,
            )
            self.exit_code = code
            self.stop_event.set()
            return
        if now - slot.started >= STEADY_S:
            slot.retry.reset()
        delay = slot.retry.next_s()
        slot.due = now + delay
        why = f"killed by signal {-code}" if code < 0 else f"exited {code}"
        log.error("worker %d %s; restarting it in %g s", slot.number, why, delay)

    def _start(self, slot: _Slot, now: float) -> None:
        try:
            # No other thread runs in the supervisor: a preexec_fn is safe here.
            arrange = _die_with(os.getpid())
            slot.process = subprocess.Popen(self.command, preexec_fn=arrange)  # noqa: PLW1509
        except OSError as exc:
            slot.due = now + slot.retry.next_s()
            log.error("worker %d: cannot start %s: %s", slot.number, self.command[0], exc)
            return
        slot.started = now
        log.info("worker %d started (pid %d)", slot.number, slot.process.pid)

    def _stop_all(self) -> None:
        running = [slot.process for slot in self.slots if slot.process is not None]
        for process in running:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for process in running:
            try:
                process.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                log.error("worker pid %d ignored SIGTERM; killing it", process.pid)
                process.kill()
                process.wait()
        log.info("ticketing pool stopped")


def _die_with(parent: int) -> Callable[[], None]:
    """A ``preexec_fn``: SIGTERM this child when ``parent`` dies (Linux), or exit now if
    it already has."""

    def arrange() -> None:
        if sys.platform.startswith("linux"):
            try:
                libc = ctypes.CDLL(None, use_errno=True)
                libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
            except (OSError, AttributeError):
                pass
        if os.getppid() != parent:
            os._exit(1)

    return arrange


def worker_command(config_path: str, verbose: bool) -> list[str]:
    """The command line of one worker of the pool."""
    prefix = [sys.executable, "-m", "kktmon.cli", *(["-v"] if verbose else [])]
    return [*prefix, "ticketing", "--config", config_path]
