"""The chain of custody of an order over HTTP: `GET /api/orders/{coi}/custody` (JSON) and
`GET /api/orders/{coi}/custody/certificate` (PDF). Read by an operator (the operator key, as the
other /api routes) or by a partner that is a party to the order (its API key): a partner of
another order is refused (403), as everywhere else."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from starlette.responses import Response

from gateway.errors import NotPermitted
from gateway.partners import Partners
from gateway.ports import Orders
from gateway.service.journeys import Journeys, custody_json


def custody_routes(
    journeys_of: Callable[[Request], Journeys],
    operator_key_ok: Callable[[Request, str | None], bool],
    partners_of: Callable[[Request], tuple[Partners, Orders]],
) -> APIRouter:
    router = APIRouter()

    async def reader(request: Request, key: str | None, order_id: str) -> str:
        """Who reads: `operator`, or the party's partner id."""
        if operator_key_ok(request, key):
            return "operator"
        partners, orders = partners_of(request)
        partner = partners.by_api_key(key)
        if await orders.view(partner, order_id) is None:
            raise NotPermitted("this order is not one of the partner's", detail=partner.id)
        return partner.id

    @router.get("/api/orders/{coi}/custody")
    async def chain(
        request: Request, coi: str, x_api_key: Annotated[str | None, Header()] = None
    ) -> dict[str, Any]:
        journeys = journeys_of(request)
        order = await journeys.order(coi)
        await reader(request, x_api_key, order.order_id)
        return custody_json((await journeys.journey(order.coi)).custody)

    @router.get("/api/orders/{coi}/custody/certificate")
    async def certificate(
        request: Request, coi: str, x_api_key: Annotated[str | None, Header()] = None
    ) -> Response:
        journeys = journeys_of(request)
        order = await journeys.order(coi)
        who = await reader(request, x_api_key, order.order_id)
        _, pdf = await journeys.certificate(order.coi, issuer=f"CGT gateway, for {who}")
        filename = f"custody-{order.coi}.pdf"
        return Response(
            pdf,
            media_type="application/pdf",
            headers={"Content-Disposition": f'inline; filename="{filename}"'},
        )

    return router
