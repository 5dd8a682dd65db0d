"""The console in a real browser: Debian's chromium driven by Playwright (never the
browser Playwright would download: it cannot be fetched here).

An engineer logs in, sees the fleet soonest ``block_at`` first, filters it, opens a
register and sees its SVG charts, reads the plan; a client logs in and sees only their
registers, and another client's register is a 404 page. No page logs a JavaScript error.
A failing test leaves a screenshot of the page in its temporary folder (named in the
failure). Skipped, with the reason, only when chromium is not installed.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from console_rig import PASSWORD, ConsoleProcess

CHROMIUM = shutil.which("chromium") or (
    "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
)

pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="chromium is not installed (apt-get install chromium; scripts/test does)",
)


@pytest.fixture
def store_url(sqlite_url: str) -> str:
    """SQLite only: the browser tests are about the pages, the stores are tested elsewhere."""
    return sqlite_url


class Browser:
    """One chromium page, its console errors, and a screenshot when a test fails."""

    def __init__(self, page: Any, base: str, shots: Path) -> None:
        self.page, self.base, self.shots = page, base, shots
        self.errors: list[str] = []
        #: Pages asked for on purpose that answer 404 (chromium logs that as an error).
        self.missing: set[str] = set()
        page.on("console", self._console)
        page.on("pageerror", lambda e: self.errors.append(str(e)))

    def _console(self, message: Any) -> None:
        where = message.location.get("url", "")
        expected = where.removeprefix(self.base) in self.missing and "404" in message.text
        if message.type == "error" and not expected:
            self.errors.append(f"{where}: {message.text}")

    def go(self, path: str) -> Any:
        return self.page.goto(self.base + path)

    def login(self, user: str) -> None:
        self.go("/login")
        self.page.fill("input[name=username]", user)
        self.page.fill("input[name=password]", PASSWORD[user])
        self.page.click("button[type=submit]")
        self.page.wait_for_url(self.base + "/")

    def shot(self, name: str) -> Path:
        path = self.shots / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def browser(
    console: ConsoleProcess, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Browser]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (dev)")
    failed_before = request.session.testsfailed
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM)
        try:
            page = chromium.new_page(viewport={"width": 1280, "height": 900})
            driven = Browser(page, console.url, tmp_path)
            yield driven
            if request.session.testsfailed > failed_before:  # this test's call failed
                print(f"screenshot of the failing page: {driven.shot('failure')}")
        finally:
            chromium.close()


def _fleet(b: Browser) -> list[tuple[str, str]]:
    rows = b.page.locator("#fleet tr.register")
    return [
        (rows.nth(i).get_attribute("data-site"), rows.nth(i).get_attribute("data-kkt"))
        for i in range(rows.count())
    ]


def test_an_engineer_sees_the_fleet_opens_a_register_and_reads_the_plan(
    browser: Browser,
) -> None:
    b = browser
    b.login("ivanov")
    assert b.page.locator("#who").inner_text() == "ivanov"
    assert len(_fleet(b)) == 5
    stamps = b.page.locator("#fleet td.block-at").evaluate_all(
        "cells => cells.map(c => c.dataset.blockAt)"
    )
    deadlines = [datetime.fromisoformat(s) for s in stamps if s]
    assert deadlines == sorted(deadlines) and len(deadlines) == 5
    assert b.page.locator("#fleet td.block-at.red").count() >= 1  # tomorrow is inside 24 h

    b.page.select_option("select[name=problem]", "OFD_QUEUE_STALE")
    b.page.click("form.filters button[type=submit]")
    b.page.wait_for_url("**/?*problem=OFD_QUEUE_STALE*")
    assert _fleet(b) == [("acme-2", "pirit-0003")]

    b.page.click("a.kkt")
    b.page.wait_for_url(b.base + "/registers/acme-2/pirit-0003")
    charts = b.page.locator("#charts svg.chart")
    assert charts.count() == 4
    assert charts.first.locator("polyline").count() >= 1
    assert charts.first.bounding_box()["height"] > 50
    assert "9960440300000003" in b.page.locator("#identity").inner_text()

    b.page.click("text=Replacement plan")
    b.page.wait_for_url(b.base + "/plan")
    assert b.page.locator("#timeline svg rect.bar").count() == 30
    assert "beta-1" in b.page.locator("#by-site").inner_text()
    b.page.click("text=90 days")
    b.page.wait_for_url(b.base + "/plan?days=90")
    assert b.errors == [], b.errors


def test_a_client_sees_only_their_registers_and_not_another_clients(browser: Browser) -> None:
    b = browser
    b.login("acme-it")
    assert sorted(_fleet(b)) == [
        ("acme-1", "atol-0002"),
        ("acme-1", "shtrih-0001"),
        ("acme-2", "pirit-0003"),
    ]
    assert b.page.locator("select[name=client]").count() == 0  # nothing to choose from
    b.missing.add("/registers/beta-1/shtrih-0004")
    answer = b.go("/registers/beta-1/shtrih-0004")
    assert answer.status == 404
    assert "not found" in b.page.locator("#error").inner_text()
    b.go("/tickets")
    assert "beta-1" not in b.page.locator("#tickets").inner_text()
    b.page.click("text=Log out")
    b.page.wait_for_url(b.base + "/login")
    assert b.go("/").url.startswith(b.base + "/login")
    assert b.errors == [], b.errors
