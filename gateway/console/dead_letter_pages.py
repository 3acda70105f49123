"""The console's Dead letters page: what consumers gave up on (`cgt.dead`), and for operators a
button that sends one back to its queue once the cause is fixed, audited under their name
(gateway.service.redelivery, as `cgt-gateway dead-letters` does)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from gateway.console.sessions import Session
from gateway.console.web import Console, allowed, as_user, page, posted
from gateway.service.redelivery import Redelivery, dead_letters_of, redeliver

router = APIRouter(include_in_schema=False)
SHOWN = 200  # the oldest this many: a longer queue is a matter for `cgt-gateway dead-letters`


@router.get("/ui/dead-letters")
async def dead_letters(request: Request) -> Response:
    return await as_user(request, _page)


@router.post("/ui/dead-letters/send-back")
async def send_back(request: Request) -> Response:
    async def act(console: Console, session: Session) -> Response:
        fields = await posted(request, session)
        session.operator.require("operator")
        event_id = fields.get("event_id", "")[:200]
        report = await redeliver(
            console.amqp_url,
            console.journeys.engine,
            event_ids={event_id},
            operator=session.operator.name,
            limit=SHOWN,
        )
        return await _page(console, session, report)

    return await as_user(request, act)


async def _page(console: Console, session: Session, done: Redelivery | None = None) -> Response:
    return page(
        "dead_letters.html",
        session=session,
        letters=await dead_letters_of(console.amqp_url, SHOWN),
        shown=SHOWN,
        may_send_back=allowed(session, "operator"),
        done=done,
    )
