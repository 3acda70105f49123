"""The console's quarantine queue: the list (any role, no patient data), one held message
(operator and QA: the desk audits every inspection), the four-eyes release and the QA rejection.
Every decision goes through the review desk (gateway.service.desk), exactly as over the API:
the signer is the operator signed in, who re-enters the password for each signature."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from gateway.console.web import console_of, page, posted, redirect, refused, to_login
from gateway.errors import GatewayError
from gateway.service.review import APPROVALS_NEEDED

router = APIRouter(include_in_schema=False)


@router.get("/ui/quarantine")
async def queue(request: Request) -> Response:
    console = console_of(request)
    session = await console.sessions.current(request)
    if session is None:
        return to_login()
    items = await console.desk.held()
    return page("quarantine.html", session=session, items=items)


@router.get("/ui/quarantine/{quarantine_id}")
async def item(request: Request, quarantine_id: str, done: str = "") -> Response:
    console = console_of(request)
    session = await console.sessions.current(request)
    if session is None:
        return to_login()
    try:
        held = await console.desk.inspect(quarantine_id, session.operator)
    except GatewayError as exc:
        return refused(session, exc)
    return page("item.html", session=session, held=held, needed=APPROVALS_NEEDED, done=done)


@router.post("/ui/quarantine/{quarantine_id}/approve")
async def approve(request: Request, quarantine_id: str) -> Response:
    console = console_of(request)
    session = await console.sessions.current(request)
    if session is None:
        return to_login()
    try:
        fields = await posted(request, session)
        decision = await console.desk.approve(
            quarantine_id, session.operator.name, fields.get("password", ""), fields.get("meaning", "")
        )
    except GatewayError as exc:
        return refused(session, exc)
    return redirect(f"/ui/quarantine/{quarantine_id}?done={decision.status}")


@router.post("/ui/quarantine/{quarantine_id}/reject")
async def reject(request: Request, quarantine_id: str) -> Response:
    console = console_of(request)
    session = await console.sessions.current(request)
    if session is None:
        return to_login()
    try:
        fields = await posted(request, session)
        session.operator.require("qa")
        decision = await console.desk.reject(
            quarantine_id, session.operator.name, fields.get("password", ""), fields.get("reason", "")
        )
    except GatewayError as exc:
        return refused(session, exc)
    return redirect(f"/ui/quarantine/{quarantine_id}?done={decision.status}")
