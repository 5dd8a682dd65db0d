"""The console as an ASGI application: FastAPI routes, Jinja2 pages, one error policy.

FastAPI (over Starlette) because the store's read side already speaks pydantic
(:mod:`kktmon.ticketing.fleet`): the same models are the API's responses and its OpenAPI
schema (``/openapi.json``), and the pages render those very objects. Handlers are plain
``def``s: the store is synchronous and Starlette runs them in its thread pool.

Errors never show a traceback: an unknown register or ticket (or one outside a client's
sites) is a 404, bad query parameters a 400 page or a 422 JSON body, a store that is down
a 503 that names it, anything else a 500 that says where the log is. ``/api/...`` paths
answer JSON, the rest HTML.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from kktmon.console import api, pages
from kktmon.console.auth import (
    Accounts,
    BadCsrfError,
    LoginRequiredError,
    TooManyAttemptsError,
    UnauthorizedError,
)
from kktmon.console.sessions import LoginLimiter, Sessions
from kktmon.console.state import HERE, Console, CookieSecure, StoreHolder, console_of, template_env
from kktmon.protocol.errors import KktmonError, TicketStoreError
from kktmon.ticketing.config import TicketingConfig

log = logging.getLogger(__name__)


def create_app(
    config: TicketingConfig,
    *,
    cookie_secure: CookieSecure = "auto",
    clock: Callable[[], datetime] | None = None,
    limiter: LoginLimiter | None = None,
) -> FastAPI:
    """The console over ``config``'s store, users and clients."""
    secret = config.console.session_secret
    console = Console(
        config=config,
        stores=StoreHolder(config),
        accounts=Accounts(config, limiter),
        sessions=Sessions(secret.get_secret_value().encode() if secret else None),
        templates=template_env(config),
        cookie_secure=cookie_secure,
    )
    if clock is not None:
        console.clock = clock
    app = FastAPI(
        title="kktmon console",
        summary="The service centre's fleet, replacement plan and tickets, scoped per client.",
        # The OpenAPI document only: the interactive docs page loads its script from a
        # CDN, which an offline service-centre LAN cannot reach (and the CSP forbids).
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.console = console
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(api.router)
    app.include_router(pages.router)
    _handle_errors(app)
    app.middleware("http")(_security_headers)
    app.router.add_event_handler("shutdown", console.stores.close)
    return app


#: No script, no frames, nothing from elsewhere: the pages need only their stylesheet and
#: inline SVG, so an injected script or an embedding site gets nothing.
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


async def _security_headers(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    response = await call_next(request)
    response.headers.update(HEADERS)
    if request.url.path != "/static/console.css":
        response.headers["Cache-Control"] = "no-store"  # a client's data stays off disk caches
    return response


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def page(request: Request, status: int, title: str, message: str) -> HTMLResponse:
    """An error page (or any short message) in the console's frame."""
    console = console_of(request)
    html = console.templates.get_template("error.html").render(
        title=title, message=message, status=status, user=None, nav=None
    )
    return HTMLResponse(html, status_code=status)


def _error(request: Request, status: int, title: str, message: str, **extra: Any) -> Response:
    headers = {k: str(v) for k, v in extra.items()}
    if _is_api(request):
        return JSONResponse({"detail": message}, status_code=status, headers=headers)
    response = page(request, status, title, message)
    response.headers.update(headers)
    return response


def _handle_errors(app: FastAPI) -> None:
    async def login_required(request: Request, exc: Exception) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={_quote(target)}", status_code=303)

    async def unauthorized(request: Request, exc: Exception) -> Response:
        headers = {"WWW-Authenticate": 'Basic realm="kktmon console", charset="UTF-8"'}
        return JSONResponse({"detail": str(exc)}, status_code=401, headers=headers)

    async def too_many(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, TooManyAttemptsError)
        return _error(
            request, 429, "Too many attempts", str(exc), **{"Retry-After": exc.retry_after}
        )

    async def bad_csrf(request: Request, exc: Exception) -> Response:
        return _error(request, 403, "Form expired", str(exc))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        title = "Not found" if exc.status_code == 404 else "Error"
        return _error(request, exc.status_code, title, str(exc.detail), **(exc.headers or {}))

    async def bad_input(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        if _is_api(request):
            return JSONResponse({"detail": jsonable(exc.errors())}, status_code=422)
        wrong = ", ".join(str(e["loc"][-1]) for e in exc.errors())
        return page(request, 400, "Bad request", f"Check these parameters: {wrong}.")

    async def store_down(request: Request, exc: Exception) -> Response:
        log.warning("console: the ticket store is unavailable: %s", exc)
        message = "The ticket store is unavailable; try again in a minute."
        return _error(request, 503, "Store unavailable", message, **{"Retry-After": 30})

    async def failed(request: Request, exc: Exception) -> Response:
        log.error("console: %s %s failed", request.method, request.url.path, exc_info=exc)
        message = "Something went wrong on the server; the console's log has the details."
        return _error(request, 500, "Server error", message)

    app.add_exception_handler(LoginRequiredError, login_required)
    app.add_exception_handler(UnauthorizedError, unauthorized)
    app.add_exception_handler(TooManyAttemptsError, too_many)
    app.add_exception_handler(BadCsrfError, bad_csrf)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, bad_input)
    app.add_exception_handler(TicketStoreError, store_down)
    app.add_exception_handler(KktmonError, failed)
    app.add_exception_handler(Exception, failed)


def jsonable(errors: Any) -> Any:
    """Validation errors without the raw input objects FastAPI may put in ``ctx``."""
    return [{k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in errors]


def _quote(path: str) -> str:
    return quote(path, safe="/")
