"""``kktmon demo``: a whole shop and service centre on one machine, on an accelerated clock.

It starts, all on loopback and under one temporary folder:

* a private Mosquitto (:mod:`kktmon.demo.broker`);
* five simulated registers on loopback TCP: one per wire vendor (ATOL, Pirit, Shtrih-M),
  an ATOL behind a fake ATOL Web Requests server and a Shtrih behind a fake kkmserver
  (the agent reads those two through the servers, passwords in files);
* ``kktmon agent`` as a child process, polling every 0.5 s with 2-poll hysteresis;
* ``kktmon ticketing`` as a child process, SQLite store, 1 s hold-down, 2 s grace,
  AGENT_LOST after 2 s, no closed hours, calling a demo help desk
  (:mod:`kktmon.demo.helpdesk`); the demo reads the same store to show what it records;
* ``kktmon console`` on the same store, its URL and two users' passwords printed
  (:mod:`kktmon.demo.console`);

then plays :data:`kktmon.demo.script.SCRIPT` (an FN running out, an OFD queue going
stale, paper out, a register unplugged, a driver server's queue blocked, the agent and
the ticketing killed with SIGKILL, the ticketing restarted at once), printing ticket
changes as the store records them, and a summary. Exit 0 when every scripted problem
produced its tickets. Everything is stopped and removed on the way out, also on failure
or Ctrl-C.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from kktmon.demo.broker import EmbeddedBroker
from kktmon.demo.console import DemoConsole
from kktmon.demo.helpdesk import SECRET, DemoHelpdesk
from kktmon.demo.report import TicketWatch, summary, verify
from kktmon.demo.script import AGENT, SCRIPT, TILLS, Expect
from kktmon.protocol.contract import AgentState
from kktmon.protocol.errors import KktmonError
from kktmon.protocol.settings import redact_url, split_password
from kktmon.simulators.atol_web.app import AtolWebApp
from kktmon.simulators.http_server import HttpApp, HttpFakeServer
from kktmon.simulators.registry import make_emulator, make_server_app, server_vendors, wire_vendors
from kktmon.simulators.scenario import DeviceState, default_state
from kktmon.simulators.server import DeviceEmulator, TcpServer
from kktmon.ticketing.config import load_config
from kktmon.ticketing.store import open_store

SITE = "demo-store"
POLL_INTERVAL_S = 0.5
HYSTERESIS_POLLS = 2
OPEN_AFTER_S, RESOLVE_AFTER_S, AGENT_LOST_AFTER_S = 1.0, 2.0, 2.0
START_WITHIN_S = 30.0
EXPECT_WITHIN_S = 20.0  # the slowest step (a killed agent) needs about 8 s
WATCH_EVERY_S = 0.1


class Demo:
    """The running pieces, as the script's :class:`~kktmon.demo.script.Rig`."""

    def __init__(self, stack: ExitStack, folder: Path) -> None:
        self.folder = folder
        self.t0, self.started = time.monotonic(), datetime.now(UTC)
        self.broker = stack.enter_context(EmbeddedBroker(folder / "broker"))
        self.helpdesk = stack.enter_context(DemoHelpdesk())
        self.emulators: dict[str, DeviceEmulator] = {}
        self.apps: dict[str, HttpApp] = {}  # registers behind a fake driver server
        self.servers: dict[str, TcpServer[DeviceEmulator] | HttpFakeServer[HttpApp]] = {}
        self.ports: dict[str, int] = {}
        self.vendor_of: dict[str, str] = {}
        self.kkt_of: dict[str, str] = {}
        vendors = wire_vendors() + server_vendors()
        names = [f"till-{n}" for n in range(1, max(len(TILLS), len(vendors)) + 1)]
        for n, till in enumerate(names, 1):
            self.vendor_of[till] = vendors[(n - 1) % len(vendors)]
            if self.vendor_of[till] in server_vendors():
                self.apps[till] = make_server_app(self.vendor_of[till], default_state())
            else:
                self.emulators[till] = make_emulator(self.vendor_of[till])
            _make_distinct(self.state(till), n)
            self.plug(till)
            stack.callback(self.unplug, till)
        self.agent_config = self._write_agent_config()
        self.console = DemoConsole(folder, SITE)
        self.ticketing_config = self._write_ticketing_config()
        config = load_config(self.ticketing_config)
        # The demo's own reader of the store the ticketing writes (created here, first).
        self.store = open_store(
            config.ticketing.store, policy=config.ticketing, sinks=config.sink_names
        )
        stack.callback(self.store.close)
        self.ticketing_log = folder / "ticketing.log"
        self.ticketing: subprocess.Popen[bytes] | None = None
        self.ticketing_starts = 0
        self.start_ticketing()
        stack.callback(self.stop_ticketing)
        self.console.start(self.ticketing_config)
        stack.callback(self.console.stop)
        self.agent_log = folder / "agent.log"
        self.agent: subprocess.Popen[bytes] | None = None
        self.start_agent()
        stack.callback(self.stop_agent)
        self.watch = TicketWatch(self.store, self.names(), self.say)

    # ------------------------------------------------------------------ the rig

    @property
    def tills(self) -> list[str]:
        return [*self.emulators, *self.apps]

    def state(self, till: str) -> DeviceState:
        device = self.apps[till] if till in self.apps else self.emulators[till]
        return device.state

    def unplug(self, till: str) -> None:
        server = self.servers.pop(till, None)
        if server is not None:
            server.close()

    def plug(self, till: str) -> None:
        # Back on the same port, as a register keeps its address.
        port = self.ports.get(till, 0)
        if till in self.apps:
            http = HttpFakeServer(self.apps[till], port=port).start()
            self.servers[till], self.ports[till] = http, http.address[1]
        else:
            tcp = TcpServer(self.emulators[till], port=port)
            self.servers[till], self.ports[till] = tcp, tcp.port

    def block_queue(self, till: str, reason: str) -> None:
        device = self.apps.get(till)
        if not isinstance(device, AtolWebApp):
            raise KktmonError(f"{till} is not behind an ATOL web server")
        device.blocked_reason = reason

    def start_agent(self) -> None:
        self.agent = _start("agent", self.agent_config, self.agent_log)

    def kill_agent(self) -> None:
        agent, self.agent = self.agent, None
        _end(agent, signal.SIGKILL)

    def stop_agent(self) -> None:
        agent, self.agent = self.agent, None
        _end(agent, signal.SIGTERM)

    def start_ticketing(self) -> None:
        """``kktmon ticketing`` with the demo's config: started again after a kill, it
        takes the same client id and resumes its session, where the broker kept what
        arrived meanwhile."""
        self.ticketing = _start("ticketing", self.ticketing_config, self.ticketing_log)
        self.ticketing_starts += 1
        if self.ticketing_starts > 1:
            self.say(f"   kktmon ticketing started again (pid {self.ticketing.pid})")

    def kill_ticketing(self) -> None:
        ticketing, self.ticketing = self.ticketing, None
        if ticketing is not None and ticketing.poll() is None:
            _end(ticketing, signal.SIGKILL)
            self.say(f"   kktmon ticketing (pid {ticketing.pid}) killed with SIGKILL")

    def stop_ticketing(self) -> None:
        ticketing, self.ticketing = self.ticketing, None
        _end(ticketing, signal.SIGTERM)

    # ------------------------------------------------------------------ what to print

    def say(self, text: str) -> None:
        print(f"[{time.monotonic() - self.t0:5.1f}s] {text}", flush=True)

    def kkt(self, till: str) -> str:
        """The store's name for a register (``<vendor>-<serial>``) or the site's agent.

        Some families report fewer digits than the scenario's 16 (ATOL: the last 14), and
        a register read through a driver server is named by its own family (``atol``,
        ``shtrih``), so the name is the one the agent actually published, found by the
        serial's tail.
        """
        if till == AGENT:
            return AGENT
        if till not in self.kkt_of:
            serial, vendor = self.state(till).serial, self.vendor_of[till]
            store = self.store
            for family in dict.fromkeys([vendor, *wire_vendors()]):
                for digits in range(len(serial), 9, -1):
                    name = f"{family}-{serial[-digits:]}"
                    if store.device_facts(SITE, name):
                        self.kkt_of[till] = name
                        return name
            return f"{vendor}-{serial}"  # not reported yet
        return self.kkt_of[till]

    def names(self) -> dict[str, str]:
        return {self.kkt(till): till for till in self.tills} | {AGENT: SITE}

    def introduce(self) -> None:
        rows = [("broker", f"{self.broker.version()} at {self.broker.url}")]
        for till, server in self.servers.items():
            vendor, url = self.vendor_of[till], redact_url(server.url)
            if till in self.apps:
                rows.append((till, f"a register behind a fake {vendor} server at {url}"))
            else:
                rows.append((till, f"{vendor} register {self.kkt(till)} at {url}"))
        pid = self.agent.pid if self.agent else "-"
        ticketing = self.ticketing.pid if self.ticketing else "-"
        rows += [
            ("agent", f"kktmon agent, pid {pid}: raises and clears after 2 polls"),
            ("ticketing", f"kktmon ticketing, pid {ticketing}: SQLite in {self.folder}"),
            ("", f"opens after {OPEN_AFTER_S:.0f} s, resolves after {RESOLVE_AFTER_S:.0f} s"),
            ("help desk", self.helpdesk.url),
            *self.console.lines(),
        ]
        self.console.wait_up()
        print("kktmon demo: a shop (simulated registers, the agent) and a service centre")
        print("(the ticketing, a help desk), on a fast clock: the agent polls every 0.5 s.")
        for what, text in rows:
            print(f"  {what:<10} {text}")
        print(flush=True)

    # ------------------------------------------------------------------ running

    def wait_until(self, done: Callable[[], bool], within_s: float, what: str) -> None:
        deadline = time.monotonic() + within_s
        while True:
            self.watch.poll()
            if done():
                return
            for name, process in (("agent", self.agent), ("ticketing", self.ticketing)):
                if process is not None and process.poll() is not None:
                    code = process.returncode
                    raise KktmonError(f"FAILED: the {name} exited ({code})\n{self.log_tail()}")
            if time.monotonic() > deadline:
                waited = f"waited {within_s:.0f} s for {what}"
                raise KktmonError(f"FAILED: {waited} in vain\n{self.log_tail()}")
            time.sleep(WATCH_EVERY_S)

    def wait_started(self) -> None:
        store = self.store

        def up() -> bool:
            online = any(a.site == SITE and a.state is AgentState.ONLINE for a in store.agents())
            return online and all(store.device_facts(SITE, self.kkt(t)) for t in self.tills)

        self.wait_until(up, START_WITHIN_S, "the agent to report every register")
        self.watch.names = self.names()  # now with the names the registers reported
        self.say(f"the agent is online and has reported all {len(self.tills)} registers")

    def play(self) -> None:
        for step in SCRIPT:
            self.say(f">> {step.says}")
            step.act(self)
            for expect in step.expect:
                self.wait_until(self._met(expect), EXPECT_WITHIN_S, expect.describe())

    def _met(self, expect: Expect) -> Callable[[], bool]:
        return lambda: self.watch.met(expect, self.kkt(expect.till))

    def finish(self) -> int:
        """Let the help desk catch up, print the summary; 0 when the store has it all."""
        self.wait_until(
            lambda: not self.watch.calls_pending(), 15.0, "the help desk to take every call"
        )
        took = time.monotonic() - self.t0
        print(flush=True)
        print(summary(self.watch, self.started, took), flush=True)
        missing = verify(self.watch, self.kkt)
        for line in missing:
            print(f"kktmon demo: FAILED: {line}", file=sys.stderr)
        if missing:
            return 1
        print("Every scripted problem produced its ticket, and each fixed one was resolved.")
        return 0

    def keep_running(self) -> None:
        print()
        print("Everything keeps running. In another terminal try:")
        for till in self.servers:
            vendor, (url, secret) = self.vendor_of[till], self._secret_url(till)
            env = f"KKTMON_CONNECTION_PASSWORD=$(cat {secret}) " if secret else ""
            print(f"  {env}kktmon status --vendor {vendor} --url '{url}'    # {till}")
        print(f"  kktmon tickets --config {self.ticketing_config}")
        print(f"  kktmon report sla --config {self.ticketing_config}")
        print(f"  kktmon notifications --config {self.ticketing_config}")
        print(f"  open {self.console.url} in a browser ({self.console.logins()})")
        print(f"  kktmon outbox --config {self.agent_config}")
        print("Ctrl-C stops it all.", flush=True)
        while True:
            self.watch.poll()
            time.sleep(0.5)

    def log_tail(self) -> str:
        tails = []
        for name, path in (("agent", self.agent_log), ("ticketing", self.ticketing_log)):
            try:
                tail = path.read_text(encoding="utf-8", errors="replace")[-1500:]
            except OSError:
                tail = ""
            if tail.strip():
                tails.append(f"{name} log ({path}):\n{tail}")
        return "\n".join(tails)

    # ------------------------------------------------------------------ configuration

    def _secret_url(self, till: str) -> tuple[str, Path | None]:
        """A fake driver server's URL without its password, which goes into a file (as
        on a real store PC); a wire register's URL as it is."""
        url, password = split_password(self.servers[till].url)
        if password is None:
            return url, None
        secret = self.folder / f"{till}.pass"
        if not secret.exists():
            secret.write_text(password + "\n", encoding="utf-8")
            secret.chmod(0o600)
        return url, secret

    def _write_agent_config(self) -> Path:
        devices = ""
        for till in self.servers:
            url, secret = self._secret_url(till)
            vendor = self.vendor_of[till]
            devices += DEVICE_TOML.format(vendor=_q(vendor), name=_q(till), url=_q(url))
            if secret is not None:
                devices += f"connection_password_file = {_q(str(secret))}\n"
        text = AGENT_TOML.format(
            site=_q(SITE),
            interval=POLL_INTERVAL_S,
            state_dir=_q(str(self.folder / "agent")),
            broker=_q(self.broker.url),
            polls=HYSTERESIS_POLLS,
        )
        path = self.folder / "agent.toml"
        path.write_text(text + devices, encoding="utf-8")
        return path

    def _write_ticketing_config(self) -> Path:
        text = TICKETING_TOML.format(
            broker=_q(self.broker.url),
            store=_q("sqlite:///" + str(self.folder / "tickets.sqlite3")),
            open_after=OPEN_AFTER_S,
            resolve_after=RESOLVE_AFTER_S,
            lost_after=AGENT_LOST_AFTER_S,
            helpdesk=_q(self.helpdesk.url),
            secret=_q(SECRET),
        )
        path = self.folder / "ticketing.toml"
        path.write_text(text + self.console.config(), encoding="utf-8")
        return path


AGENT_TOML = """\
site = {site}

[agent]
poll_interval_s = {interval}
poll_jitter = 0
health_interval_s = 5
state_dir = {state_dir}
log_level = "WARNING"

[mqtt]
url = {broker}
reconnect_min_s = 0.2
reconnect_max_s = 1

[rules]
raise_after = {polls}
clear_after = {polls}
unreachable_after_polls = {polls}
"""

# Short link timeouts: an unplugged register is noticed within a poll or two.
DEVICE_TOML = """
[[devices]]
vendor = {vendor}
name = {name}
url = {url}
control_timeout_s = 0.3
answer_timeout_s = 1
poll_deadline_s = 3
"""

TICKETING_TOML = """\
[mqtt]
url = {broker}

[ticketing]
store = {store}
open_after_s = {open_after}
resolve_after_s = {resolve_after}
agent_lost_after_s = {lost_after}
tick_interval_s = 0.2
claim_ttl_s = 3           # a help-desk call claimed by a killed worker returns soon

[ticketing.closed_hours]
default = ""              # never closed: a lost agent counts at any hour

[[sinks]]
type = "webhook"
name = "helpdesk"
url = {helpdesk}
secret = {secret}
retry_min_s = 0.5
retry_max_s = 2
"""


def _start(command: str, config: Path, log_path: Path) -> subprocess.Popen[bytes]:
    """``kktmon <command> --config <config>``, its output appended to ``log_path``."""
    with log_path.open("ab") as log:
        # Its own session: Ctrl-C reaches the demo only, which stops its children in order.
        return subprocess.Popen(
            [sys.executable, "-m", "kktmon.cli", command, "--config", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _end(process: subprocess.Popen[bytes] | None, sig: int) -> None:
    """Send ``sig`` to ``process`` if it still runs and reap it (SIGKILL after 15 s)."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def _q(value: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's)."""
    return json.dumps(value, ensure_ascii=False)


def _make_distinct(state: DeviceState, n: int) -> None:
    """Register ``n`` of the demo: its own serials, as in a real shop."""
    state.serial = f"{state.serial[:-2]}{n:02d}"
    state.rnm = f"{state.rnm[:-2]}{n:02d}"
    state.fn.serial = f"{state.fn.serial[:-2]}{n:02d}"


_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def _interrupt_on_signals() -> Iterator[None]:
    """Ctrl-C and SIGTERM unwind the demo (even when started with SIGINT ignored)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, interrupt) for sig in _SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _ignore_signals() -> None:
    """While shutting down: a second Ctrl-C must not leave a broker or agent behind."""
    if threading.current_thread() is threading.main_thread():
        for sig in _SIGNALS:
            signal.signal(sig, signal.SIG_IGN)


def run_demo(keep_running: bool = False) -> int:
    """Play the script (exit status 0: every ticket as expected); with ``keep_running``
    stay up afterwards until Ctrl-C."""
    code: int | None = None
    try:
        with _interrupt_on_signals(), ExitStack() as stack:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="kktmon-demo-")))
            demo = Demo(stack, folder)
            stack.callback(_ignore_signals)  # unwinding starts here: the last callback added
            demo.introduce()
            demo.wait_started()
            demo.play()
            code = demo.finish()
            if keep_running:
                demo.keep_running()
    except KktmonError as exc:
        print(f"kktmon demo: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nkktmon demo: stopped; everything it started is shut down.", file=sys.stderr)
    return 1 if code is None else code
