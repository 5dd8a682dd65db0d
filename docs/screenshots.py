"""The README's screenshots of the console: the fleet and the replacement plan.

Fills a SQLite ticket store the way the intake does (register states made from real
``HealthSnapshot`` models, three days of them hour by hour, and problems raised and
opened as tickets) with a small service centre: 28 registers at seven sites of three
clients and one walk-in site. Then it runs ``kktmon console`` on it as a process and
drives Debian's chromium through Playwright (``executable_path``: the browser Playwright
would download cannot be fetched here), logs in as an engineer and saves

* ``docs/img/console-fleet.png``: the fleet, soonest ``block_at`` first;
* ``docs/img/console-plan.png``: the replacement plan for 90 days;

at a 1280 x 800 viewport. Run it from the repository after changing a page:

    .venv/bin/python docs/screenshots.py [--chromium /usr/bin/chromium] [--out docs/img]
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from kktmon.protocol.health import (
    DeviceInfo,
    FnHealth,
    HealthSnapshot,
    OfdQueue,
    Owner,
    Problem,
    Severity,
    ShiftInfo,
    ShiftState,
)
from kktmon.ticketing import lifecycle as lc
from kktmon.ticketing.config import TicketingSection
from kktmon.ticketing.passwords import hash_password
from kktmon.ticketing.store import RegisterFacts, TicketStore, open_store
from kktmon.ticketing.text import snapshot_facts

HERE = Path(__file__).resolve().parent
USER, PASSWORD = "ivanov", "screenshots"
VIEWPORT = {"width": 1280, "height": 800}
CLIENTS = {
    "acme": ("ООО «Акме Ритейл»", ["msk-001", "msk-002", "msk-003"]),
    "beta": ("Beta Pharmacy", ["spb-001", "spb-002"]),
    "gamma": ("Кафе «Гамма»", ["kzn-001", "kzn-002"]),
}
MODELS = {
    "shtrih": "ШТРИХ-М-01Ф",
    "atol": "АТОЛ 30Ф",
    "pirit": "Пирит 2Ф",
}


@dataclass(frozen=True)
class Register:
    """One register of the picture: its drive's days left, its OFD backlog (documents,
    days since the oldest), an open shift's hours, and whether the agent lost it."""

    site: str
    vendor: str
    number: int
    fn_days: int
    unsent: int = 0
    unsent_days: float = 0.0
    shift_h: float | None = None
    stale: bool = False
    paper_out: bool = False

    @property
    def kkt(self) -> str:
        return f"{self.vendor}-{self.serial}"

    @property
    def serial(self) -> str:
        return f"00{self.number:08d}"

    @property
    def fn_serial(self) -> str:
        prefix = "99604403" if self.number % 3 else "99614403"  # 15- or 36-month drive
        return f"{prefix}{self.number:08d}"


FLEET = [
    Register("msk-001", "shtrih", 104211, 6, shift_h=9),
    Register("msk-001", "shtrih", 104212, 214, unsent=3, unsent_days=0.2),
    Register("msk-001", "atol", 220931, 37, paper_out=True),
    Register("msk-001", "atol", 220932, 402),
    Register("msk-002", "pirit", 310077, 19, unsent=148, unsent_days=26, shift_h=21),
    Register("msk-002", "shtrih", 104390, 88),
    Register("msk-002", "shtrih", 104391, 305),
    Register("msk-003", "atol", 221405, 63, unsent=12, unsent_days=4.5),
    Register("msk-003", "atol", 221406, 540, stale=True),
    Register("spb-001", "shtrih", 105002, 2, shift_h=11),
    Register("spb-001", "shtrih", 105003, 27),
    Register("spb-001", "pirit", 311920, 155),
    Register("spb-001", "pirit", 311921, 71, unsent=1, unsent_days=0.1),
    Register("spb-002", "atol", 222870, 49),
    Register("spb-002", "atol", 222871, 610),
    Register("spb-002", "shtrih", 105777, 12, unsent=40, unsent_days=9),
    Register("kzn-001", "pirit", 312001, 81),
    Register("kzn-001", "pirit", 312002, 23),
    Register("kzn-001", "shtrih", 106110, 366),
    Register("kzn-002", "atol", 223300, 44, stale=True),
    Register("kzn-002", "atol", 223301, 190),
    Register("kzn-002", "atol", 223302, 57, unsent=6, unsent_days=1.5, shift_h=14),
    Register("vl-001", "shtrih", 107001, 16, shift_h=23.5),
    Register("vl-001", "pirit", 313500, 720),
    Register("vl-001", "pirit", 313501, 4, unsent=2, unsent_days=0.5),
    Register("msk-003", "shtrih", 104555, 9),
    Register("spb-002", "pirit", 311999, 33),
    Register("kzn-001", "atol", 223999, 75),
]


def snapshot(register: Register, at: datetime, now: datetime) -> HealthSnapshot:
    """The register's state at ``at`` (its figures drift towards ``now``'s)."""
    back_h = (now - at).total_seconds() / 3600
    unsent = max(0, register.unsent - int(back_h * register.unsent / 72))
    first_unsent = now - timedelta(days=register.unsent_days) if unsent else None
    opened = now - timedelta(hours=register.shift_h) if register.shift_h is not None else None
    state = HealthSnapshot(
        taken_at=at,
        device=DeviceInfo(
            vendor=register.vendor, model=MODELS[register.vendor], serial=register.serial
        ),
        fn=FnHealth(
            serial=register.fn_serial,
            valid_until=(now + timedelta(days=register.fn_days)).date(),
            days_left=register.fn_days,
            memory_used_pct=round(20 + register.number % 50 + back_h / 24, 1),
        ),
        ofd=OfdQueue(
            unsent_count=unsent,
            first_unsent_at=first_unsent,
            oldest_unsent_age_h=(at - first_unsent).total_seconds() / 3600
            if first_unsent and at > first_unsent
            else None,
        ),
        shift=ShiftInfo(
            state=ShiftState.OPEN if opened and at >= opened else ShiftState.CLOSED,
            opened_at=opened if opened and at >= opened else None,
        ),
        stale=register.stale and back_h < 4,
    )
    return state.with_block_deadline()


def problems(register: Register) -> list[tuple[str, Severity, Owner, str]]:
    found = []
    if register.fn_days <= 30:
        found.append(("FN_EXPIRING", Severity.WARNING, Owner.SERVICE, "the drive ends soon"))
    if register.unsent and register.unsent_days >= 3:
        found.append(("OFD_QUEUE_STALE", Severity.WARNING, Owner.SERVICE, "OFD queue stale"))
    if register.stale:
        found.append(("DEVICE_UNREACHABLE", Severity.CRITICAL, Owner.SERVICE, "no answer"))
    if register.paper_out:
        found.append(("PAPER_OUT", Severity.INFO, Owner.STORE, "receipt paper is out"))
    return found


def fill(store: TicketStore, now: datetime) -> None:
    """Three days of hourly states (the last one a minute ago), then the problems."""
    for back in range(72, -1, -1):
        at = now - timedelta(hours=back, minutes=1)
        live = [r for r in FLEET if not (r.stale and back < 3)]  # the lost ones went quiet
        store.record_states(
            [RegisterFacts(r.site, r.kkt, snapshot_facts(snapshot(r, at, now)), at) for r in live]
        )
    for register in FLEET:
        facts = snapshot_facts(snapshot(register, now, now))
        for code, severity, owner, message in problems(register):
            extra: dict[str, str | int | float | bool | None] = {}
            if code == "FN_EXPIRING":  # as the agent raises it: the drive and its end date
                extra = {"fn_serial": register.fn_serial, "valid_until": facts["fn_valid_until"]}
            problem = Problem(
                code=code, severity=severity, owner=owner, message=message, facts=extra
            )
            raised = lc.ProblemRaised(
                site=register.site,
                kkt=register.kkt,
                problem=problem,
                event_id=uuid.uuid4().hex,
                at=now - timedelta(hours=2),
                snapshot_facts=facts,
            )
            store.apply(raised, now - timedelta(hours=2))
    store.tick(now)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def write_config(path: Path, store_url: str, port: int) -> None:
    lines = [
        f'[ticketing]\nstore = "{store_url}"\n',
        f'[console]\nlisten = "127.0.0.1:{port}"\nsla_margin_h = 24\n',
        f'[[console.users]]\nname = "{USER}"\nrole = "engineer"\n'
        f'password_hash = "{hash_password(PASSWORD)}"\n',
    ]
    for client, (name, sites) in CLIENTS.items():
        listed = ", ".join(f'"{s}"' for s in sites)
        lines.append(f'[[clients]]\nid = "{client}"\nname = "{name}"\nsites = [{listed}]\n')
    path.write_text("\n".join(lines), encoding="utf-8")


@contextmanager
def console(config: Path, port: int) -> Iterator[str]:
    command = [sys.executable, "-m", "kktmon.cli", "console", "--config", str(config)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the console did not start: {process.communicate()[1]!r}")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(20)


def shoot(url: str, chromium: str, out: Path) -> list[Path]:
    from playwright.sync_api import sync_playwright

    shots = [("console-fleet.png", "/"), ("console-plan.png", "/plan?days=90")]
    saved = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium)
        try:
            page = browser.new_page(viewport=VIEWPORT)  # type: ignore[arg-type]
            page.goto(f"{url}/login")
            page.fill("input[name=username]", USER)
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(f"{url}/")
            for name, path in shots:
                page.goto(url + path)
                saved.append(out / name)
                page.screenshot(path=str(saved[-1]))
        finally:
            browser.close()
    return saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--out", type=Path, default=HERE / "img")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="kktmon-shots-") as folder:
        url = f"sqlite:///{folder}/tickets.sqlite3"
        now = datetime.now(UTC)
        with open_store(url, policy=TicketingSection(open_after_s=0)) as store:
            fill(store, now)
        port = free_port()
        config = Path(folder) / "ticketing.toml"
        write_config(config, url, port)
        with console(config, port) as running:
            for path in shoot(running, args.chromium, args.out):
                print(f"{path} ({path.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
