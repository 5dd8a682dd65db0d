"""A client user sees only their own sites: another client's register, ticket or plan item
is a 404 (or absent from a list) through the pages and the API alike, logged in by the
form (cookie) or by HTTP Basic. SQLite and PostgreSQL, over the filled store."""

from __future__ import annotations

import csv
import io

import httpx
from console_rig import PASSWORD, ConsoleProcess, session

ACME = ("acme-it", PASSWORD["acme-it"])
ACME_REGISTERS = {("acme-1", "shtrih-0001"), ("acme-1", "atol-0002"), ("acme-2", "pirit-0003")}


def _basic(console: ConsoleProcess, path: str) -> httpx.Response:
    return httpx.get(console.url + path, auth=ACME, timeout=30)


def _beta_ticket(console: ConsoleProcess) -> int:
    engineer = ("ivanov", PASSWORD["ivanov"])
    found = httpx.get(console.url + "/api/tickets?site=beta-1", auth=engineer).json()
    return int(found["items"][0]["id"])


def test_a_client_lists_only_their_registers_tickets_and_plan(console: ConsoleProcess) -> None:
    fleet = _basic(console, "/api/registers").json()
    assert {(r["site"], r["kkt"]) for r in fleet["items"]} == ACME_REGISTERS
    assert fleet["total"] == 3
    assert _basic(console, "/api/registers?client=beta").json()["total"] == 0
    assert _basic(console, "/api/registers?site=beta-1").json()["total"] == 0
    tickets = _basic(console, "/api/tickets?state=all").json()["items"]
    assert {t["site"] for t in tickets} == {"acme-1", "acme-2"}
    plan = _basic(console, "/api/plan?days=366").json()
    assert {i["site"] for i in plan["items"]} == {"acme-1", "acme-2"}
    assert {s["site"] for s in plan["by_site"]} <= {"acme-1", "acme-2"}
    pages = [_basic(console, f"/api/plan?days=366&per_page=2&page={n}").json() for n in (1, 2, 3)]
    assert [p["total"] for p in pages] == [plan["total"]] * 3 and plan["total"] == 3
    assert [p["items"] for p in pages] == [plan["items"][:2], plan["items"][2:], []]
    assert all(p["by_site"] == plan["by_site"] for p in pages)
    rows = csv.DictReader(
        io.StringIO(_basic(console, "/registers.csv").content.decode("utf-8-sig"))
    )
    assert {(r["site"], r["kkt"]) for r in rows} == ACME_REGISTERS


def test_another_clients_register_and_ticket_are_404_through_the_api(
    console: ConsoleProcess,
) -> None:
    beta_ticket = _beta_ticket(console)
    for path in (
        "/api/registers/beta-1/shtrih-0004",
        "/api/registers/shtrih-0004",
        f"/api/tickets/{beta_ticket}",
    ):
        answer = _basic(console, path)
        assert answer.status_code == 404, path
        assert answer.json()["detail"].endswith("not found")
    # The name both clients use is unique in acme's scope: it is acme's register.
    assert _basic(console, "/api/registers/shtrih-0001").json()["site"] == "acme-1"
    with session(console.url, "acme-it") as browser:  # the cookie, not Basic
        assert browser.get("/api/registers/beta-1/shtrih-0004").status_code == 404
        assert browser.get(f"/api/tickets/{beta_ticket}").status_code == 404
        assert browser.get("/api/registers/acme-1/shtrih-0001").status_code == 200


def test_another_clients_register_and_ticket_are_404_pages(console: ConsoleProcess) -> None:
    beta_ticket = _beta_ticket(console)
    missing = httpx.get(console.url + "/registers/beta-1/nope-9", auth=ACME).status_code
    with session(console.url, "acme-it") as browser:
        fleet = browser.get("/").text
        hidden = browser.get("/registers/beta-1/shtrih-0004")
        by_name = browser.get("/registers/shtrih-0004")
        ticket = browser.get(f"/tickets/{beta_ticket}")
        unknown = browser.get("/registers/beta-1/nope-9")
        plan = browser.get("/plan?days=366").text
        plan_pages = [browser.get(f"/plan?days=366&per_page=2&page={n}").text for n in (1, 2)]
    assert "shtrih-0004" not in fleet and "beta-1" not in fleet and "Beta" not in fleet
    assert "pirit-0003" in fleet
    for answer in (hidden, by_name, ticket, unknown):
        assert answer.status_code == 404 and "not found" in answer.text
    # Out of scope reads exactly as nonexistent.
    assert hidden.text.replace("shtrih-0004", "X") == unknown.text.replace("nope-9", "X")
    for html in (plan, *plan_pages):
        assert "beta-1" not in html and "shtrih-0004" not in html
    assert 'id="total">3 fiscal drives' in plan_pages[1] and "Registers 3–3 of 3" in plan_pages[1]
    assert missing == 303  # pages log in through the form, not HTTP Basic
