"""Okdesk help-desk sink (REST API v1, ``domain/fiscal-health.md`` section 6.2).

Calls and the endpoints they use (``api_token`` is a query parameter on every request)::

    OPEN      GET  /api/v1/equipments/?serial_number=S   attach equipment, service object, company
              GET  /api/v1/issues/list?created_since=..  did an earlier attempt already create it?
              POST /api/v1/issues/           {"issue": {"title", "description", ...}} -> {"id"}
    COMMENT   POST /api/v1/issues/{id}/comments  {"comment": {"content", "author_id", "public"}}
    ESCALATE  the same comment; the API documents no endpoint that changes a priority
    REOPEN    POST /api/v1/issues/{id}/statuses  {"code", "comment", "comment_public": false}
    RESOLVE   the same, with the resolved status code

Okdesk has no idempotency header, so every write is preceded by a read that recognises
an earlier success: the issue description and each comment end with a line
``kktmon-key: <idempotency key>``; before OPEN the newest issues are searched for it (on
every attempt, not only when ``attempts > 0``: a worker killed between Okdesk's 200 and
our commit leaves no failure behind), before a comment the issue's comments are, and a
status change is skipped when the issue already has the target status. For the same
reason a non-idempotent POST is never repeated inside one call after an ambiguous
failure (timeout, 5xx): the call fails as retryable and its next attempt reads first.

The token never appears in a log line or an exception: requests are built without it
and a transport adds it on the way out, so the URLs httpx logs are token-free, and any
text that could echo it is redacted.
"""

from __future__ import annotations

import html
import logging
import re
from dataclasses import dataclass
from datetime import timedelta
from types import TracebackType
from typing import Any

import httpx

from kktmon.protocol.errors import ConfigError
from kktmon.ticketing.calls import CallAction, HelpdeskCall, SinkError
from kktmon.ticketing.sinks import HttpRetry, RejectedError, RetryLaterError, rejected

log = logging.getLogger(__name__)

_KEY_RE = re.compile(r"kktmon-key: ([^\s<>&\"']+)")
_PAGE_SIZE = 50


class _TokenTransport(httpx.BaseTransport):
    """Adds ``api_token`` to each request only on its way to the network."""

    def __init__(self, inner: httpx.BaseTransport, token: str) -> None:
        self._inner = inner
        self._token = token

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        forwarded = httpx.Request(
            request.method,
            request.url.copy_add_param("api_token", self._token),
            headers=request.headers,
            stream=request.stream,
            extensions=request.extensions,
        )
        return self._inner.handle_request(forwarded)

    def close(self) -> None:
        self._inner.close()


@dataclass(frozen=True)
class Equipment:
    """The register as the help desk's equipment registry knows it."""

    id: int
    maintenance_entity_id: int | None
    company_id: int | None


class OkdeskSink:
    """Opens, comments, reopens and resolves Okdesk issues."""

    def __init__(
        self,
        name: str,
        base_url: str,
        api_token: str,
        *,
        author_id: int | None = None,
        issue_type: str | None = None,
        priorities: dict[str, str] | None = None,
        resolved_status: str = "completed",
        reopened_status: str = "opened",
        timeout_s: float = 10.0,
        verify_tls: bool = True,
        proxy: str | None = None,
        transport: httpx.BaseTransport | None = None,
        retry: HttpRetry | None = None,
        find_equipment: bool = True,
        search_pages: int = 10,
    ) -> None:
        if not api_token:
            raise ConfigError(f"okdesk sink {name!r}: api_token is empty")
        self.name = name
        self._token = api_token
        self._author_id = author_id
        if author_id is None:
            log.warning("okdesk sink %s: no author_id; the API documents it as required", name)
        self._issue_type = issue_type
        self._priorities = dict(priorities or {})
        self._resolved = resolved_status
        self._reopened = reopened_status
        self._retry = retry or HttpRetry()
        self._find_equipment = find_equipment
        self._search_pages = search_pages
        self._equipment: dict[str, Equipment] = {}
        inner = transport or httpx.HTTPTransport(verify=verify_tls, proxy=proxy)
        self._client = httpx.Client(
            base_url=_account_root(base_url),
            transport=_TokenTransport(inner, api_token),
            timeout=httpx.Timeout(timeout_s),
        )

    def deliver(self, call: HelpdeskCall) -> str | None:
        what = f"okdesk {self.name} {call.action.value} #{call.id}"
        if call.action is CallAction.OPEN:
            return self._open(call, what)
        issue = _issue_id(call, what)
        if call.action is CallAction.REOPEN:
            self._set_status(issue, self._reopened, call, what)
        elif call.action is CallAction.RESOLVE:
            self._set_status(issue, self._resolved, call, what)
        else:
            self._comment(issue, call, what)
        return None

    # --- OPEN -------------------------------------------------------------------------

    def _open(self, call: HelpdeskCall, what: str) -> str:
        serial = call.ticket.device_serial if self._find_equipment else None
        found = self.equipment(serial, what)
        existing = self._find_issue(call, found, what)
        if existing is not None:
            log.info("%s: issue %d already exists, not creating another", what, existing)
            return str(existing)
        body = {"issue": self._issue_fields(call, found)}
        response = self._request("POST", "/api/v1/issues/", what, json=body, idempotent=False)
        answer = _json(response)
        ref = answer.get("id") if isinstance(answer, dict) else None
        if ref is None:
            # It may exist now: the next attempt's search settles it.
            raise RetryLaterError(f"{what}: the answer carries no issue id")
        return str(ref)

    def _issue_fields(self, call: HelpdeskCall, found: Equipment | None) -> dict[str, Any]:
        ticket = call.ticket
        fields: dict[str, Any] = {
            "title": ticket.title,
            "description": _html(ticket.description, call.idempotency_key),
        }
        priority = self._priorities.get(ticket.priority)
        if priority:
            fields["priority"] = priority
        if self._issue_type:
            fields["type"] = self._issue_type
        if ticket.block_at is not None:
            fields["deadline_at"] = ticket.block_at.isoformat()
        if found is not None:
            fields["equipment_ids"] = [found.id]
            if found.maintenance_entity_id is not None:
                fields["maintenance_entity_id"] = found.maintenance_entity_id
            if found.company_id is not None:
                fields["company_id"] = found.company_id
        return fields

    def equipment(self, serial: str | None, what: str = "okdesk") -> Equipment | None:
        """The registry's record for a register serial; hits are cached, misses asked again."""
        if not serial:
            return None
        if serial in self._equipment:
            return self._equipment[serial]
        try:
            response = self._request(
                "GET", "/api/v1/equipments/", f"{what} equipment", params={"serial_number": serial}
            )
        except RejectedError as exc:
            if exc.status == 401:  # a bad token fails everything else too
                raise
            # Not found, or no rights to the registry: the ticket opens all the same.
            level = logging.INFO if exc.status == 404 else logging.WARNING
            log.log(level, "%s: register %s not attached: %s", what, serial, exc)
            return None
        found = _first_equipment(_json(response))
        if found is not None:
            self._equipment[serial] = found
        return found

    def _find_issue(self, call: HelpdeskCall, found: Equipment | None, what: str) -> int | None:
        since = (call.created_at - timedelta(days=1)).strftime("%d-%m-%Y")  # account time zone
        params: dict[str, Any] = {
            "created_since": since,
            "page[size]": _PAGE_SIZE,
            "sorting[field]": "created_at",
            "sorting[direction]": "reverse",
        }
        if found is not None and found.company_id is not None:
            params["company_ids[]"] = found.company_id
        for page in range(1, self._search_pages + 1):
            params["page[number]"] = page
            answer = self._request("GET", "/api/v1/issues/list", f"{what} search", params=params)
            items = _json(answer)
            if not isinstance(items, list):
                return None
            for item in items:
                ok = isinstance(item, dict) and isinstance(item.get("id"), int)
                if ok and self._is_ours(item, call, what):
                    return int(item["id"])
            if len(items) < _PAGE_SIZE:
                return None
        return None

    def _is_ours(self, item: dict[str, Any], call: HelpdeskCall, what: str) -> bool:
        text = item.get("description")
        if text is None and item.get("title") == call.ticket.title:
            issue = _json(self._request("GET", f"/api/v1/issues/{item['id']}", f"{what} check"))
            text = issue.get("description") if isinstance(issue, dict) else None
        return isinstance(text, str) and call.idempotency_key in _KEY_RE.findall(text)

    # --- follow-ups -------------------------------------------------------------------

    def _comment(self, issue: int, call: HelpdeskCall, what: str) -> None:
        path = f"/api/v1/issues/{issue}/comments"
        posted = _json(self._request("GET", path, f"{what} check"))
        for earlier in posted if isinstance(posted, list) else []:
            content = earlier.get("content") if isinstance(earlier, dict) else None
            if isinstance(content, str) and call.idempotency_key in _KEY_RE.findall(content):
                log.info("%s: comment already on issue %d", what, issue)
                return
        comment: dict[str, Any] = {
            "content": _html(self._comment_text(call), call.idempotency_key),
            "public": False,
        }
        if self._author_id is not None:
            comment["author_id"] = self._author_id
        self._request("POST", path, what, json={"comment": comment}, idempotent=False)

    def _set_status(self, issue: int, code: str, call: HelpdeskCall, what: str) -> None:
        current = _json(self._request("GET", f"/api/v1/issues/{issue}", f"{what} check"))
        status = current.get("status") if isinstance(current, dict) else None
        if isinstance(status, dict) and status.get("code") == code:
            log.info("%s: issue %d already has status %s", what, issue, code)
            return
        body = {
            "code": code,
            "comment": _html(self._comment_text(call), call.idempotency_key),
            "comment_public": False,
        }
        path = f"/api/v1/issues/{issue}/statuses"
        self._request("POST", path, what, json=body, idempotent=False)

    def _comment_text(self, call: HelpdeskCall) -> str:
        ticket = call.ticket
        text = call.comment or f"{call.action.value}: {ticket.title}"
        if call.action is CallAction.ESCALATE:
            # No documented endpoint changes a priority: say it so a person can.
            wanted = self._priorities.get(ticket.priority, ticket.priority)
            text = f"Escalated: severity {ticket.severity}, priority should be {wanted}.\n{text}"
        return text

    # --- plumbing ---------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        what: str,
        *,
        params: dict[str, Any] | None = None,
        json: dict[str, Any] | None = None,
        idempotent: bool = True,
    ) -> httpx.Response:
        def send() -> httpx.Response:
            return self._client.request(method, path, params=params, json=json)

        response = self._retry.send(send, what, self._redact, idempotent=idempotent)
        if not response.is_success:
            raise rejected(what, response, self._redact)
        return response

    def _redact(self, text: str) -> str:
        return text.replace(self._token, "***")

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> OkdeskSink:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _account_root(base_url: str) -> str:
    root = base_url.rstrip("/")
    return root.removesuffix("/api/v1")


def _issue_id(call: HelpdeskCall, what: str) -> int:
    ref = call.ticket.external_ref
    if ref is None:
        # The OPEN call has not been recorded yet; this call waits for it.
        raise RetryLaterError(f"{what}: ticket {call.ticket.ticket_id} has no Okdesk issue yet")
    try:
        return int(ref)
    except ValueError:
        raise SinkError(f"{what}: {ref!r} is not an Okdesk issue id", retryable=False) from None


def _first_equipment(data: Any) -> Equipment | None:
    # The search answers one record; tolerate a list and take its first item.
    if isinstance(data, list):
        data = data[0] if data else None
    if not isinstance(data, dict) or not isinstance(data.get("id"), int):
        return None
    company = data.get("company")
    company_id = company.get("id") if isinstance(company, dict) else data.get("company_id")
    return Equipment(
        id=data["id"],
        maintenance_entity_id=_int_or_none(data.get("maintenance_entity_id")),
        company_id=_int_or_none(company_id),
    )


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) else None


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _html(text: str, key: str) -> str:
    """Okdesk renders descriptions and comments as HTML: escape, keep line breaks, and
    end with the marker that lets a later attempt recognise this write."""
    body = html.escape(text).replace("\n", "<br>")
    return f"{body}<br><br>kktmon-key: {html.escape(key)}"
