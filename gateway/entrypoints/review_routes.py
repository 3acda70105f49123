"""The quarantine review API: list, inspect, approve (four eyes), reject.

Operators authenticate with HTTP Basic (their gateway user name and password). Listing, which
shows no patient data, also takes the operator API key (X-API-Key). An approval or a rejection
asks for the password again in its body: every signature re-authenticates (21 CFR Part 11
§11.200). Bodies are read through the same bounded reader as every other body.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from pydantic import BaseModel, Field, ValidationError

from gateway.errors import NotAuthenticated
from gateway.http_body import bounded_body
from gateway.service.desk import ReviewDesk, parse_age
from gateway.service.operators import Operator, Refused
from gateway.service.review import Decision


class Signature(BaseModel):
    password: str = Field(min_length=1, max_length=200, description="the signer's password, asked again")
    meaning: str = Field(
        min_length=1, max_length=1000, description='e.g. "reviewed: same patient, typo in the MRN"'
    )


class Rejection(BaseModel):
    password: str = Field(min_length=1, max_length=200)
    reason: str = Field(min_length=1, max_length=1000)


def basic(authorization: str | None) -> tuple[str, str] | None:
    """(user, password) from an HTTP Basic header, None when there is none."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "basic" or len(token) > 1000:
        raise NotAuthenticated("an operator's user name and password are required (HTTP Basic)")
    try:
        user, sep, password = base64.b64decode(token, validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise NotAuthenticated("the Basic credentials are malformed") from None
    if not sep or not user:
        raise NotAuthenticated("the Basic credentials are malformed")
    return user, password


def review_routes(
    desk_of: Callable[[Request], ReviewDesk],
    operator_key_ok: Callable[[Request, str | None], bool],
    max_body: Callable[[Request], int],
) -> APIRouter:
    router = APIRouter()

    async def user(request: Request, authorization: str | None) -> Operator:
        given = basic(authorization)
        if given is None:
            raise NotAuthenticated("an operator's user name and password are required (HTTP Basic)")
        return await desk_of(request).login(*given)

    async def body(request: Request, model: type[Signature] | type[Rejection]) -> Any:
        raw = await bounded_body(request, max_body(request))
        try:
            return model.model_validate_json(raw)
        except ValidationError as exc:
            fields = ", ".join(str(e["loc"][0]) for e in exc.errors() if e["loc"])
            raise Refused(
                f"the body must be JSON with: {', '.join(model.model_fields)}", detail=fields
            ) from None

    @router.get("/api/quarantine")
    async def listing(
        request: Request,
        partner: str | None = None,
        reason: str | None = None,
        older_than: Annotated[str | None, Query(description="90s, 30m, 2h, 7d")] = None,
        coi: str | None = None,
        x_api_key: Annotated[str | None, Header()] = None,
        authorization: Annotated[str | None, Header()] = None,
    ) -> dict[str, Any]:
        if authorization is not None or not operator_key_ok(request, x_api_key):
            (await user(request, authorization)).require("viewer")
        age = parse_age(older_than) if older_than else None
        items = await desk_of(request).held(partner=partner, reason=reason, older_than=age, coi=coi)
        return {"items": items, "count": len(items)}

    @router.get("/api/quarantine/{quarantine_id}")
    async def inspect(
        request: Request, quarantine_id: str, authorization: Annotated[str | None, Header()] = None
    ) -> dict[str, Any]:
        viewer = await user(request, authorization)
        return await desk_of(request).inspect(quarantine_id, viewer)

    @router.post("/api/quarantine/{quarantine_id}/approvals", status_code=201)
    async def approvals(
        request: Request, quarantine_id: str, authorization: Annotated[str | None, Header()] = None
    ) -> dict[str, Any]:
        signer = await user(request, authorization)
        signed: Signature = await body(request, Signature)
        decision = await desk_of(request).approve(quarantine_id, signer.name, signed.password, signed.meaning)
        return answer(decision)

    @router.post("/api/quarantine/{quarantine_id}/rejection", status_code=201)
    async def rejection(
        request: Request, quarantine_id: str, authorization: Annotated[str | None, Header()] = None
    ) -> dict[str, Any]:
        signer = await user(request, authorization)
        rejected: Rejection = await body(request, Rejection)
        decision = await desk_of(request).reject(
            quarantine_id, signer.name, rejected.password, rejected.reason
        )
        return answer(decision)

    return router


def answer(decision: Decision) -> dict[str, Any]:
    return {
        "quarantine_id": decision.quarantine_id,
        "status": decision.status,
        "signatures": [
            {k: s[k] for k in ("operator", "printed_name", "meaning", "signed_at")}
            for s in decision.signatures
        ],
        "order_id": decision.order_id,
        "coi": decision.coi,
        "event_ids": decision.event_ids,
        **(
            {"sender": {"told": decision.sender_told, "how": decision.sender_notice}}
            if decision.sender_told is not None
            else {}
        ),
    }
