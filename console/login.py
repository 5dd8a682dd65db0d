"""The login form, logout, and the one unauthenticated probe (``/healthz``).

The form posts the user name and password with a CSRF token from an anonymous session
(so another site cannot log a browser in as someone else); a good password starts a new
session with a new id and token, and the anonymous one is revoked. A logout is a POST
with the session's token (a link or an image elsewhere cannot log anyone out).
"""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from kktmon.console.auth import Principal, check_csrf, client_address, from_session, session_of
from kktmon.console.sessions import COOKIE, Session, new_session
from kktmon.console.state import Console, console_of
from kktmon.protocol.errors import TicketStoreError

router = APIRouter(include_in_schema=False)


def safe_next(target: str | None) -> str:
    """Where to go after login: a path on this site only (never ``//host`` or a URL)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    return target


def set_session(console: Console, request: Request, response: Response, session: Session) -> None:
    response.set_cookie(
        COOKIE,
        console.sessions.dump(session),
        httponly=True,
        samesite="lax",
        secure=console.secure(request),
        path="/",
    )


def _form(
    console: Console,
    request: Request,
    session: Session,
    *,
    target: str,
    error: str = "",
    status: int = 200,
) -> HTMLResponse:
    html = console.templates.get_template("login.html").render(
        csrf=session.csrf, next=target, error=error, user=None, nav=None
    )
    response = HTMLResponse(html, status_code=status)
    set_session(console, request, response, session)
    return response


@router.get("/login")
def login_page(request: Request, next: str | None = None) -> Response:
    console = console_of(request)
    target = safe_next(next)
    if from_session(request, console.sessions, console.accounts) is not None:
        return RedirectResponse(target, status_code=303)
    session = session_of(request, console.sessions) or new_session(None, console.sessions.clock())
    return _form(console, request, session, target=target)


@router.post("/login")
def login(
    request: Request,
    username: str = Form(max_length=200),
    password: str = Form(max_length=1000),
    csrf: str = Form(""),
    next: str = Form("/"),
) -> Response:
    console = console_of(request)
    session = session_of(request, console.sessions)
    check_csrf(session, csrf)
    assert session is not None  # check_csrf refuses a missing session
    who: Principal | None = console.accounts.login(username, password, client_address(request))
    if who is None:
        wrong = "Wrong user name or password."
        return _form(console, request, session, target=safe_next(next), error=wrong, status=401)
    console.sessions.revoke(session)
    response = RedirectResponse(safe_next(next), status_code=303)
    set_session(console, request, response, new_session(who.name, console.sessions.clock()))
    return response


@router.post("/logout")
def logout(request: Request, csrf: str = Form("")) -> Response:
    console = console_of(request)
    session = session_of(request, console.sessions)
    check_csrf(session, csrf)
    assert session is not None
    console.sessions.revoke(session)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax")
    return response


@router.get("/healthz")
def healthz(request: Request) -> Response:
    """For the proxy and the demo: 200 when the store answers, 503 when it does not."""
    console = console_of(request)
    try:
        console.store.dead_letter_count()  # one small read: the database answers
    except TicketStoreError:
        return JSONResponse({"ok": False, "store": "unavailable"}, status_code=503)
    return JSONResponse({"ok": True, "store": "ok"})
