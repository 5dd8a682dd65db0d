"""A local Okdesk (REST API v1) that checks every request against the documented shapes.

Endpoints, as in ``domain/fiscal-health.md`` 6.2 and the official apidoc as quoted by
open-source clients (every request must carry the right ``api_token`` query parameter,
else 401)::

    POST /api/v1/issues/                  {"issue": {title required, documented fields only}}
    GET  /api/v1/issues/list              documented filters only; detailed issues
    GET  /api/v1/issues/{id}
    GET  /api/v1/issues/{id}/comments
    POST /api/v1/issues/{id}/comments     {"comment": {content, author_id required, ...}}
    POST /api/v1/issues/{id}/statuses     {code required, comment, comment_public, ...}
    GET  /api/v1/equipments/?serial_number=S   one equipment record, 404 when none

Assumptions where the reference is silent: a new issue answers ``{"id": N}``; a status
change to the status the issue already has is refused with 422; the equipment search
answers 404 when nothing matches. Malformed requests are recorded as violations.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from fake_http import FakeHttpServer, Recorded, Reply

ISSUE_FIELDS = frozenset(
    {
        "title", "description", "company_id", "contact_id", "agreement_id", "assignee_id",
        "group_id", "observer_ids", "observer_group_ids", "contact_observer_ids",
        "maintenance_entity_id", "equipment_ids", "type", "priority", "deadline_at",
        "start_execution_until", "planned_execution_in_minutes", "custom_parameters",
        "parent_id", "author",
    }
)  # fmt: skip
COMMENT_FIELDS = frozenset({"content", "author_id", "author_type", "public", "attachments"})
STATUS_FIELDS = frozenset(
    {"code", "delay_to", "comment", "comment_public", "custom_parameters", "time_entry",
     "skip_options"}
)  # fmt: skip
LIST_PARAMS = frozenset(
    {"company_ids[]", "contact_ids[]", "service_object_ids[]", "status_codes[]",
     "priority_codes[]", "type_codes[]", "created_since", "created_until", "completed_since",
     "completed_until", "page[number]", "page[size]", "sorting[field]", "sorting[direction]"}
)  # fmt: skip

_ISSUE = re.compile(r"^/api/v1/issues/(\d+)(?:/(comments|statuses))?$")


class OkdeskServer(FakeHttpServer):
    """See the module docstring; ``issues`` and ``comments`` hold the account's state."""

    def __init__(
        self,
        token: str = "okdesk-test-token-5f1c",
        *,
        equipments: list[dict[str, Any]] | None = None,
        author_ids: tuple[int, ...] = (1,),
        priorities: tuple[str, ...] = ("low", "normal", "high", "critical"),
        types: tuple[str, ...] = ("service", "incident"),
        statuses: tuple[str, ...] = ("opened", "in_progress", "completed", "closed"),
        brief_list: bool = False,
    ) -> None:
        super().__init__()
        self.token = token
        self.equipments = list(equipments or [])
        self.author_ids = author_ids
        self.priorities, self.types, self.statuses = priorities, types, statuses
        self.brief_list = brief_list  # list items without description, in case it is so
        self.issues: dict[int, dict[str, Any]] = {}
        self.comments: dict[int, list[dict[str, Any]]] = {}
        self.unauthorised = 0
        self._state = threading.Lock()

    def __enter__(self) -> OkdeskServer:
        super().__enter__()
        return self

    @property
    def creates(self) -> list[Recorded]:
        """Every issue-creating request received, whatever it was answered."""
        return [r for r in self.recorded("POST") if r.path.rstrip("/") == "/api/v1/issues"]

    def handle(self, rec: Recorded) -> Reply:
        if rec.query.get("api_token") != [self.token]:
            with self._state:
                self.unauthorised += 1
            return Reply(401, {"errors": "Unauthorized"})
        with self._state:
            return self._route(rec)

    def _route(self, rec: Recorded) -> Reply:
        path = rec.path.rstrip("/")
        fixed = {
            ("POST", "/api/v1/issues"): self._create,
            ("GET", "/api/v1/issues/list"): self._list,
            ("GET", "/api/v1/equipments"): self._equipment,
        }
        if handler := fixed.get((rec.method, path)):
            return handler(rec)
        m = _ISSUE.match(path)
        if m is None:
            return self.violation(rec, "no such endpoint")
        issue = self.issues.get(int(m[1]))
        if issue is None:
            return Reply(404, {"errors": "Not found"})
        on_issue = {
            ("GET", None): self._show,
            ("GET", "comments"): self._comments,
            ("POST", "comments"): self._comment,
            ("POST", "statuses"): self._status,
        }.get((rec.method, m[2]))
        return on_issue(rec, issue) if on_issue else self.violation(rec, "no such endpoint")

    def _body(self, rec: Recorded, wrapper: str | None) -> dict[str, Any] | Reply:
        if extra := set(rec.query) - {"api_token"}:
            return self.violation(rec, f"unexpected query parameters {sorted(extra)}")
        if not rec.headers.get("content-type", "").startswith("application/json"):
            return self.violation(rec, "body must be application/json")
        try:
            data = rec.json()
        except ValueError:
            return self.violation(rec, "body is not JSON")
        if wrapper is not None:
            if not isinstance(data, dict) or set(data) != {wrapper}:
                return self.violation(rec, f'body must be {{"{wrapper}": {{...}}}}')
            data = data[wrapper]
        if not isinstance(data, dict):
            return self.violation(rec, "body must be a JSON object")
        return data

    def _create(self, rec: Recorded) -> Reply:
        fields = self._body(rec, "issue")
        if isinstance(fields, Reply):
            return fields
        if error := next(self._issue_errors(fields), None):
            return self.violation(rec, error)
        issue_id = len(self.issues) + 1
        self.issues[issue_id] = {
            "id": issue_id,
            "title": fields["title"],
            "description": fields.get("description", ""),
            "status": {"code": "opened"},
            "priority": {"code": fields.get("priority", "normal")},
            "type": {"code": fields.get("type", "incident")},
            "company_id": fields.get("company_id"),
            "service_object_id": fields.get("maintenance_entity_id"),
            "equipment_ids": fields.get("equipment_ids", []),
            "deadline_at": fields.get("deadline_at"),
            "created_at": datetime.now(UTC).isoformat(),
        }
        self.comments[issue_id] = []
        return Reply(200, {"id": issue_id})

    def _issue_errors(self, fields: dict[str, Any]) -> Iterator[str]:
        if unknown := set(fields) - ISSUE_FIELDS:
            yield f"unknown issue fields {sorted(unknown)}"
        title = fields.get("title")
        if not isinstance(title, str) or not title.strip():
            yield "title is required"
        if "priority" in fields and fields["priority"] not in self.priorities:
            yield f"unknown priority code {fields['priority']!r}"
        if "type" in fields and fields["type"] not in self.types:
            yield f"unknown type code {fields['type']!r}"
        ids = fields.get("equipment_ids", [])
        if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids):
            yield "equipment_ids must be a list of ids"
        for name in ("company_id", "maintenance_entity_id"):
            if name in fields and not isinstance(fields[name], int):
                yield f"{name} must be an id"
        if "deadline_at" in fields:
            try:
                datetime.fromisoformat(fields["deadline_at"])
            except (TypeError, ValueError):
                yield "deadline_at is not a date-time"

    def _list(self, rec: Recorded) -> Reply:
        if unknown := set(rec.query) - LIST_PARAMS - {"api_token"}:
            return self.violation(rec, f"unknown list parameters {sorted(unknown)}")
        found = list(self.issues.values())
        if "created_since" in rec.query:
            try:
                since = datetime.strptime(rec.query["created_since"][0], "%d-%m-%Y").date()
            except ValueError:
                return self.violation(rec, "created_since must be dd-mm-yyyy")
            found = [i for i in found if datetime.fromisoformat(i["created_at"]).date() >= since]
        if "company_ids[]" in rec.query:
            wanted = {int(v) for v in rec.query["company_ids[]"]}
            found = [i for i in found if i["company_id"] in wanted]
        if rec.query.get("sorting[direction]") == ["reverse"]:
            found.reverse()
        size = int(rec.query.get("page[size]", ["50"])[0])
        number = int(rec.query.get("page[number]", ["1"])[0])
        if not 1 <= size <= 100 or number < 1:
            return self.violation(rec, "bad page parameters")
        page = found[(number - 1) * size : number * size]
        if self.brief_list:
            page = [{k: i[k] for k in ("id", "title", "status", "created_at")} for i in page]
        return Reply(200, page)

    def _equipment(self, rec: Recorded) -> Reply:
        if unknown := set(rec.query) - {"api_token", "serial_number"}:
            return self.violation(rec, f"unknown equipment parameters {sorted(unknown)}")
        serial = rec.query.get("serial_number", [""])[0]
        for item in self.equipments:
            if item.get("serial_number") == serial:
                return Reply(200, item)
        return Reply(404, {"errors": "Not found"})

    def _show(self, rec: Recorded, issue: dict[str, Any]) -> Reply:
        return Reply(200, issue)

    def _comments(self, rec: Recorded, issue: dict[str, Any]) -> Reply:
        return Reply(200, self.comments[issue["id"]])

    def _comment(self, rec: Recorded, issue: dict[str, Any]) -> Reply:
        fields = self._body(rec, "comment")
        if isinstance(fields, Reply):
            return fields
        if unknown := set(fields) - COMMENT_FIELDS:
            return self.violation(rec, f"unknown comment fields {sorted(unknown)}")
        if not isinstance(fields.get("content"), str) or not fields["content"]:
            return self.violation(rec, "content is required")
        if fields.get("author_id") not in self.author_ids:
            return self.violation(rec, "author_id is required and must be an employee")
        if not isinstance(fields.get("public", False), bool):
            return self.violation(rec, "public must be a boolean")
        comment = {"id": sum(map(len, self.comments.values())) + 1, **fields}
        self.comments[issue["id"]].append(comment)
        return Reply(200, comment)

    def _status(self, rec: Recorded, issue: dict[str, Any]) -> Reply:
        fields = self._body(rec, None)
        if isinstance(fields, Reply):
            return fields
        if unknown := set(fields) - STATUS_FIELDS:
            return self.violation(rec, f"unknown status fields {sorted(unknown)}")
        code = fields.get("code")
        if code not in self.statuses:
            return self.violation(rec, f"unknown status code {code!r}")
        if not isinstance(fields.get("comment_public", False), bool):
            return self.violation(rec, "comment_public must be a boolean")
        if issue["status"]["code"] == code:
            return Reply(422, {"errors": {"code": "transition is not allowed"}})
        issue["status"] = {"code": code}
        if fields.get("comment"):
            self.comments[issue["id"]].append({"id": -1, "content": fields["comment"]})
        return Reply(200, issue)
