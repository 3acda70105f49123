"""The console's pages: log in and out, search by any identifier, an order's vein-to-vein
timeline and its custody certificate, partners' health."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request
from starlette.responses import FileResponse, Response

from gateway.console.sessions import Session
from gateway.console.timeline import order_page
from gateway.console.web import (
    HERE,
    Console,
    as_user,
    console_of,
    form,
    page,
    posted,
    redirect,
    refused,
    to_login,
)
from gateway.errors import GatewayError, NotAuthenticated
from gateway.store import journey
from gateway.store.reads import outbox_backlog

router = APIRouter(include_in_schema=False)
PATIENT_NAMESPACE = ":mrn"  # a match by a patient identifier is the patient's data


@router.get("/ui/console.css")
async def css() -> Response:
    return FileResponse(HERE / "static" / "console.css", media_type="text/css")


@router.get("/ui")
@router.get("/ui/")
async def home(request: Request) -> Response:
    session = await console_of(request).sessions.current(request)
    return redirect("/ui/search") if session else to_login()


@router.get("/ui/login")
async def login_form(request: Request) -> Response:
    sessions = console_of(request).sessions
    token = sessions.login_token(request)
    response = page("login.html", token=token)
    sessions.keep_login_token(token, response, request)
    return response


@router.post("/ui/login")
async def login(request: Request) -> Response:
    sessions = console_of(request).sessions
    fields = await form(request)
    token = sessions.login_token(request)
    if not sessions.login_token_ok(request, fields.get("csrf")):
        expired = page("login.html", 403, token=token, error="The form expired: please try again.")
        sessions.keep_login_token(token, expired, request)
        return expired
    response = redirect("/ui/search")
    try:
        await sessions.open(fields.get("user", ""), fields.get("password", ""), response, request)
    except NotAuthenticated as exc:
        failed = page("login.html", 401, token=token, error=exc.public_message, user=fields.get("user", ""))
        sessions.keep_login_token(token, failed, request)
        return failed
    return response


@router.post("/ui/logout")
async def logout(request: Request) -> Response:
    sessions = console_of(request).sessions
    session = await sessions.current(request)
    if session is None:
        return to_login()
    try:
        await posted(request, session)
    except GatewayError as exc:
        return refused(session, exc)
    response = to_login()
    await sessions.close(session, response)
    return response


@router.get("/ui/search")
async def search_form(request: Request) -> Response:
    async def show(console: Console, session: Session) -> Response:
        return page("search.html", session=session, q="", found=[], hidden=0)

    return await as_user(request, show)


@router.post("/ui/search")
async def search(request: Request) -> Response:
    """A POST, so that the identifier searched for (an MRN, say) is in no URL and no access log."""

    async def find(console: Console, session: Session) -> Response:
        q = (await posted(request, session)).get("q", "").strip()[:200]
        found, hidden = [], 0
        if q:
            async with console.journeys.engine.connect() as conn:
                found = await journey.find(conn, q)
            if not session.operator.may("operator"):  # a viewer does not look patients up
                hidden = sum(1 for f in found if f["matched"].endswith(PATIENT_NAMESPACE))
                found = [f for f in found if not f["matched"].endswith(PATIENT_NAMESPACE)]
        return page("search.html", session=session, q=q, found=found, hidden=hidden)

    return await as_user(request, find)


@router.get("/ui/orders/{coi}")
async def order(request: Request, coi: str) -> Response:
    async def show(console: Console, session: Session) -> Response:
        return page("order.html", session=session, **await order_page(console, session, coi))

    return await as_user(request, show)


@router.get("/ui/orders/{coi}/certificate.pdf")
async def certificate(request: Request, coi: str) -> Response:
    async def show(console: Console, session: Session) -> Response:
        chain, pdf = await console.journeys.certificate(coi, issuer=session.operator.printed_name)
        disposition = f'inline; filename="custody-{chain.coi}.pdf"'
        return Response(pdf, media_type="application/pdf", headers={"Content-Disposition": disposition})

    return await as_user(request, show)


@router.get("/ui/partners")
async def partners(request: Request) -> Response:
    return await as_user(request, _health)


async def _health(console: Console, session: Session) -> Response:
    now = console.journeys.clock()
    async with console.journeys.engine.connect() as conn:
        health = await journey.partner_health(conn, now - timedelta(hours=24))
        backlog, oldest = await outbox_backlog(conn)
    rows = []
    for partner_id in sorted(set(health) | set(console.journeys.parties.values())):
        h = health.get(partner_id) or journey.quiet()
        messages = h["messages"]
        rows.append(
            {
                "partner": partner_id,
                **h,
                "error_rate": h["errors"] / messages if messages else 0.0,
                "quarantine_rate": h["quarantined"] / messages if messages else 0.0,
            }
        )
    age = (now - oldest).total_seconds() if oldest else 0.0
    return page("partners.html", session=session, rows=rows, backlog=backlog, oldest_age=age)
