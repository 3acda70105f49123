"""The console's quarantine queue: the list (any role, no patient data), one held message
(operator and QA: the desk audits every inspection), the four-eyes release and the QA rejection.
Every decision goes through the review desk (gateway.service.desk), exactly as over the API:
the signer is the operator signed in, who re-enters the password for each signature."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from gateway.console.sessions import Session
from gateway.console.web import Console, as_user, page, posted, redirect
from gateway.service.review import APPROVALS_NEEDED

router = APIRouter(include_in_schema=False)


@router.get("/ui/quarantine")
async def queue(request: Request) -> Response:
    async def show(console: Console, session: Session) -> Response:
        return page("quarantine.html", session=session, items=await console.desk.held())

    return await as_user(request, show)


@router.get("/ui/quarantine/{quarantine_id}")
async def item(request: Request, quarantine_id: str, done: str = "", told: str = "") -> Response:
    async def show(console: Console, session: Session) -> Response:
        held = await console.desk.inspect(quarantine_id, session.operator)
        return page("item.html", session=session, held=held, needed=APPROVALS_NEEDED, done=done, told=told)

    return await as_user(request, show)


@router.post("/ui/quarantine/{quarantine_id}/approve")
async def approve(request: Request, quarantine_id: str) -> Response:
    """A signature of the user signed in, who states its meaning and re-enters the password."""

    async def sign(console: Console, session: Session) -> Response:
        fields = await posted(request, session)
        password, meaning = fields.get("password", ""), fields.get("meaning", "")
        decision = await console.desk.approve(quarantine_id, session.operator.name, password, meaning)
        return redirect(f"/ui/quarantine/{quarantine_id}?done={decision.status}")

    return await as_user(request, sign)


@router.post("/ui/quarantine/{quarantine_id}/reject")
async def reject(request: Request, quarantine_id: str) -> Response:
    async def decide(console: Console, session: Session) -> Response:
        fields = await posted(request, session)
        session.operator.require("qa")
        password, reason = fields.get("password", ""), fields.get("reason", "")
        decision = await console.desk.reject(quarantine_id, session.operator.name, password, reason)
        told = "yes" if decision.sender_told else "no"
        return redirect(f"/ui/quarantine/{quarantine_id}?done={decision.status}&told={told}")

    return await as_user(request, decide)
