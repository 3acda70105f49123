"""What every console page shares: the templates, the signed-in operator, the CSRF check on
every POST, forms read through the bounded body reader, and the pages' security headers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from gateway.console.sessions import Session, Sessions
from gateway.errors import GatewayError, NotPermitted
from gateway.http_body import bounded_body
from gateway.service.desk import ReviewDesk
from gateway.service.journeys import Journeys
from gateway.service.operators import Role

HERE = Path(__file__).parent
FORM_LIMIT = 65_536
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
templates = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
templates.filters["when"] = lambda at: at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if at else "-"


class CsrfRefused(NotPermitted):
    public_message = "the form's security token is missing or wrong: reload the page and try again"


@dataclass
class Console:
    """What the pages need of the running gateway."""

    sessions: Sessions
    desk: ReviewDesk
    journeys: Journeys
    amqp_url: str  # the broker, for the Dead letters page


def console_of(request: Request) -> Console:
    found: Console = request.app.state.console
    return found


def page(template: str, status: int = 200, **values: Any) -> HTMLResponse:
    html = templates.get_template(template).render(**values)
    return HTMLResponse(html, status_code=status, headers=HEADERS)


def to_login() -> RedirectResponse:
    return RedirectResponse("/ui/login", status_code=303, headers=HEADERS)


async def form(request: Request) -> dict[str, str]:
    """An urlencoded form, one value a field (the last when repeated)."""
    raw = await bounded_body(request, FORM_LIMIT)
    fields = parse_qs(raw.decode("utf-8", errors="replace"), keep_blank_values=True)
    return {k: v[-1] for k, v in fields.items()}


async def posted(request: Request, session: Session) -> dict[str, str]:
    """A POST's form, after its CSRF token was checked against the session's."""
    fields = await form(request)
    if not session.csrf_ok(fields.get("csrf")):
        raise CsrfRefused(detail=f"{session.operator.name}: {request.url.path}")
    return fields


def refused(session: Session | None, error: GatewayError) -> HTMLResponse:
    """A refusal as a page: what the operator may read, never the internal detail."""
    return page("refused.html", error.http_status, session=session, message=error.public_message)


def allowed(session: Session, role: Role) -> bool:
    return session.operator.may(role)


def redirect(url: str) -> Response:
    return RedirectResponse(url, status_code=303, headers=HEADERS)


async def as_user(request: Request, work: Callable[[Console, Session], Awaitable[Response]]) -> Response:
    """`work` for the user signed in (else to the login page); a refusal becomes a page."""
    console = console_of(request)
    session = await console.sessions.current(request)
    if session is None:
        return to_login()
    try:
        return await work(console, session)
    except GatewayError as exc:
        return refused(session, exc)
