"""The console's JSON API and pages over a filled store (SQLite and PostgreSQL), served by a
real ``kktmon console`` process and read with httpx: the fleet sorted and filtered, a
register by site and by name, the plan, tickets with their deadlines, CSV, bad input.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime

import httpx
from console_rig import PASSWORD, ConsoleProcess, session

ENGINEER = ("ivanov", PASSWORD["ivanov"])


def _api(console: ConsoleProcess, path: str, auth: tuple[str, str] = ENGINEER) -> httpx.Response:
    return httpx.get(console.url + path, auth=auth, timeout=30)


def _when(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def test_the_fleet_soonest_block_at_first_with_the_health_models_names(
    console: ConsoleProcess,
) -> None:
    page = _api(console, "/api/registers").json()
    assert page["total"] == 5 and page["page"] == 1
    names = [(r["site"], r["kkt"]) for r in page["items"]]
    assert names == [
        ("beta-1", "shtrih-0004"),  # the drive ends tomorrow
        ("acme-2", "pirit-0003"),  # 28 days of unsent documents: blocks in 2 days
        ("acme-1", "shtrih-0001"),  # 20 days
        ("acme-1", "atol-0002"),  # 6 days unsent: blocks in 24 days
        ("beta-1", "shtrih-0001"),
    ]
    deadlines = [_when(r["block_at"]) for r in page["items"]]
    assert deadlines == sorted(deadlines, key=lambda d: (d is None, d))
    first = page["items"][0]
    assert first["client"] == "beta" and first["client_name"] == "Beta <Retail>"
    assert first["fn_serial"] == "9960440300000004" and first["block_reason"] == "fn_expiry"
    assert [p["code"] for p in first["problems"]] == ["FN_EXPIRING"]
    stale_ofd = next(r for r in page["items"] if r["kkt"] == "pirit-0003")
    assert stale_ofd["unsent_count"] == 28 and stale_ofd["block_reason"] == "ofd_30_days"


def test_filters_search_sort_and_paging(console: ConsoleProcess) -> None:
    def kkts(query: str) -> list[str]:
        return [r["kkt"] for r in _api(console, "/api/registers?" + query).json()["items"]]

    assert sorted(kkts("problem=FN_EXPIRING")) == ["shtrih-0001", "shtrih-0004"]
    assert kkts("client=acme&sort=kkt") == ["atol-0002", "pirit-0003", "shtrih-0001"]
    assert kkts("site=beta-1&sort=kkt&descending=true") == ["shtrih-0004", "shtrih-0001"]
    assert kkts("vendor=pirit") == ["pirit-0003"]
    assert kkts("search=0960440300000002") == []
    assert kkts("search=00002") == ["atol-0002"]  # the serial's tail
    second = _api(console, "/api/registers?sort=site&per_page=2&page=2").json()
    assert second["total"] == 5 and [r["site"] for r in second["items"]] == ["acme-2", "beta-1"]


def test_a_register_by_site_and_name_and_by_name_alone(console: ConsoleProcess) -> None:
    detail = _api(console, "/api/registers/acme-1/shtrih-0001").json()
    assert (detail["site"], detail["kkt"], detail["serial"]) == ("acme-1", "shtrih-0001", "000001")
    assert detail["facts"]["fn_serial"] == "9960440300000001"
    assert len(detail["history"]) == 4  # one state an hour for the last four hours
    assert [t["problem"] for t in detail["tickets"]] == ["FN_EXPIRING"]
    # The same name is at acme-1 and beta-1: the name alone is ambiguous for an engineer.
    ambiguous = _api(console, "/api/registers/shtrih-0001")
    assert ambiguous.status_code == 409 and "acme-1, beta-1" in ambiguous.json()["detail"]
    assert _api(console, "/api/registers/pirit-0003").json()["site"] == "acme-2"


def test_the_register_page_shows_identity_facts_and_svg_charts(console: ConsoleProcess) -> None:
    with session(console.url, "ivanov") as browser:
        page = browser.get("/registers/acme-2/pirit-0003")
        by_name = browser.get("/registers/pirit-0003")
    assert page.status_code == 200
    html = page.text
    assert "pirit-0003" in html and "9960440300000003" in html and "ООО «Акме»" in html
    assert html.count('<svg xmlns="http://www.w3.org/2000/svg" class="chart"') == 4
    assert "<polyline" in html  # four hours of history drawn as lines
    assert by_name.status_code == 303
    assert by_name.headers["location"] == "/registers/acme-2/pirit-0003"


def test_the_plan_within_30_days_by_week_and_site_with_the_drive_to_bring(
    console: ConsoleProcess,
) -> None:
    plan = _api(console, "/api/plan?days=30").json()
    due = {(i["site"], i["kkt"]) for i in plan["items"]}
    assert due == {("beta-1", "shtrih-0004"), ("acme-1", "shtrih-0001")}
    assert all(i["suggested_fn_type"] for i in plan["items"])
    assert sum(s["count"] for s in plan["by_site"]) == 2
    assert sum(w["count"] for w in plan["by_week"]) == 2
    far = _api(console, "/api/plan?days=366").json()
    assert len(far["items"]) == 4  # not the 400-day drive
    with session(console.url, "ivanov") as browser:
        html = browser.get("/plan?days=30").text
    assert 'id="timeline"' in html and "<rect" in html and "shtrih-0004" in html


def test_the_plan_pages_its_items_and_keeps_its_groupings_whole(console: ConsoleProcess) -> None:
    whole = _api(console, "/api/plan?days=366").json()
    assert (whole["total"], whole["page"], whole["per_page"]) == (4, 1, 200)
    assert len(whole["items"]) == 4
    pages = [_api(console, f"/api/plan?days=366&per_page=3&page={n}").json() for n in (1, 2, 3)]
    assert [len(p["items"]) for p in pages] == [3, 1, 0]
    assert pages[0]["items"] + pages[1]["items"] == whole["items"]  # soonest first, in order
    assert pages[1]["items"] != pages[0]["items"][:1]
    for one in pages:
        assert (one["total"], one["per_page"]) == (4, 3)
        assert (one["by_site"], one["by_week"]) == (whole["by_site"], whole["by_week"])
    with session(console.url, "ivanov") as browser:
        first = browser.get("/plan?days=366&per_page=3").text
        second = browser.get("/plan?days=366&per_page=3&page=2").text
    kkts = [i["kkt"] for i in whole["items"]]
    assert 'href="/plan?days=366&amp;page=2&amp;per_page=3">next' in first
    assert 'href="/plan?days=366&amp;per_page=3">← previous' in second
    assert "Registers 1–3 of 4" in first and "Registers 4–4 of 4" in second
    assert kkts[3] not in _rows(first) and _rows(second) == [kkts[3]]
    for html in (first, second):  # the summary and the chart count every item
        assert 'id="total">4 fiscal drives' in html and 'id="timeline"' in html
        assert html.count('<td class="n">') == len(whole["by_site"])
    csv_lines = _api(console, "/plan.csv?days=366&per_page=1").content.decode("utf-8-sig")
    assert len(list(csv.DictReader(io.StringIO(csv_lines)))) == 4  # the CSV is the whole list


def _rows(html: str) -> list[str]:
    """The registers of the plan page's week tables, in order."""
    return re.findall(r'<td><a href="/registers/[^"]+">([^<]+)</a></td>', html)


def test_tickets_count_down_to_block_at_and_turn_red_inside_the_margin(
    console: ConsoleProcess,
) -> None:
    page = _api(console, "/api/tickets").json()
    assert page["total"] == 3
    first = page["items"][0]
    assert (first["kkt"], first["problem"]) == ("shtrih-0004", "FN_EXPIRING")
    assert first["sla_deadline"] == first["block_at"] and first["inside_margin"] is True
    assert page["items"][1]["inside_margin"] is False
    with session(console.url, "ivanov") as browser:
        listing = browser.get("/tickets").text
        one = browser.get(f"/tickets/{first['id']}").text
    assert 'class="deadline red"' in listing and "in " in listing
    assert listing.count('class="deadline red"') == 1
    assert 'id="history"' in one and "shtrih-0004" in one
    detail = _api(console, f"/api/tickets/{first['id']}").json()
    assert [e["kind"] for e in detail["history"]][:2] == ["state", "state"]


def test_csv_exports_with_the_filters_and_a_header_of_field_names(
    console: ConsoleProcess,
) -> None:
    with session(console.url, "ivanov") as browser:
        answer = browser.get("/registers.csv?client=acme&sort=kkt")
    assert answer.headers["content-type"].startswith("text/csv")
    assert "attachment" in answer.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(answer.content.decode("utf-8-sig"))))
    assert [r["kkt"] for r in rows] == ["atol-0002", "pirit-0003", "shtrih-0001"]
    assert rows[2]["client_name"] == "ООО «Акме»" and rows[2]["fn_serial"] == "9960440300000001"
    plan = _api(console, "/plan.csv?days=30")  # HTTP Basic works for scripts
    lines = list(csv.DictReader(io.StringIO(plan.content.decode("utf-8-sig"))))
    assert {r["kkt"] for r in lines} == {"shtrih-0001", "shtrih-0004"}
    assert all(r["suggested_fn_type"] for r in lines)


def test_unknown_things_and_bad_parameters_get_clear_answers(console: ConsoleProcess) -> None:
    missing = _api(console, "/api/registers/acme-1/nope-1")
    assert missing.status_code == 404 and missing.json() == {
        "detail": "register nope-1 at acme-1 not found"
    }
    assert _api(console, "/api/tickets/999999").status_code == 404
    bad = _api(console, "/api/registers?per_page=0&sort=nonsense")
    assert bad.status_code == 422
    assert {tuple(e["loc"]) for e in bad.json()["detail"]} == {
        ("query", "per_page"),
        ("query", "sort"),
    }
    assert _api(console, "/api/plan?days=x").status_code == 422
    for paging in ("per_page=0", "per_page=1001", "page=0", "page=x"):
        answer = _api(console, "/api/plan?days=90&" + paging)
        assert answer.status_code == 422, paging
        assert answer.json()["detail"][0]["loc"] == ["query", paging.split("=")[0]]
    assert _api(console, "/api/plan?days=90&per_page=1000").status_code == 200
    with session(console.url, "ivanov") as browser:
        page = browser.get("/registers/acme-1/nope-1")
        wrong = browser.get("/?sort=nonsense")
        plan = browser.get("/plan?days=-3")
        too_many = browser.get("/plan?days=90&per_page=5000")
    assert page.status_code == 404 and "register nope-1 at acme-1 not found" in page.text
    assert wrong.status_code == 400 and "sort" in wrong.text
    assert plan.status_code == 400 and "days" in plan.text
    assert too_many.status_code == 400 and "per_page" in too_many.text
    for answer in (page, wrong, plan, too_many):
        assert "Traceback" not in answer.text and answer.headers["content-type"].startswith(
            "text/html"
        )
