"""The HTTP shell: health, metrics, the operator's read API, and message intake for HTTP partners."""

from __future__ import annotations

import hmac
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException
from starlette.responses import Response

from gateway import __version__, metrics
from gateway.canonical.envelope import utcnow
from gateway.console import mount_console
from gateway.credentials import credential
from gateway.demo_credentials import refuse_published, secret_fingerprint
from gateway.entrypoints.bootstrap import Gateway, bootstrap
from gateway.entrypoints.custody_routes import custody_routes
from gateway.entrypoints.limits import Door
from gateway.entrypoints.problems import PROBLEM, gateway_error, http_error, validation_error
from gateway.entrypoints.review_routes import review_routes
from gateway.entrypoints.shipments_routes import shipment_routes
from gateway.errors import GatewayError, NotAuthenticated, NotFound
from gateway.http_body import bounded_body
from gateway.partners import Partner
from gateway.registry import HasHttpRoutes, rejection_notices
from gateway.service.desk import Lockout, ReviewDesk
from gateway.service.inbound import accept
from gateway.service.journeys import Journeys
from gateway.settings import Settings
from gateway.store import repository as reads

DEMO_OPERATOR_KEY = "demo-operator-key"


def operator_key(settings: Settings) -> str | None:
    key = os.environ.get("CGT_OPERATOR_KEY")
    if key:
        return key
    return None if settings.env == "production" else DEMO_OPERATOR_KEY


def check_operator_key(settings: Settings) -> None:
    key = operator_key(settings)
    if settings.env == "production" and key:
        refuse_published([("CGT_OPERATOR_KEY", secret_fingerprint(key))])


def create_app(gateway: Gateway | None = None, settings: Settings | None = None) -> FastAPI:
    """The app. With `gateway` given (tests), the caller owns its start and stop; otherwise the
    app wires one from `settings` now (a bad configuration fails here) and runs it while it lives."""
    owned = gateway is None
    running = gateway if gateway is not None else bootstrap(settings)
    check_operator_key(running.settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not owned:
            yield
            return
        await running.start()
        try:
            yield
        finally:
            await running.stop()

    app = FastAPI(
        title="CGT interoperability gateway",
        version=__version__,
        lifespan=lifespan,
    )
    app.state.gateway = running
    app.add_exception_handler(GatewayError, gateway_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_middleware(Door, access_log=running.settings.http_access_log)
    for adapter in running.adapters.values():
        if isinstance(adapter, HasHttpRoutes):
            app.include_router(adapter.http_routes())

    def gw(request: Request) -> Gateway:
        g: Gateway = request.app.state.gateway
        return g

    def operator_key_ok(request: Request, key: str | None) -> bool:
        expected = operator_key(gw(request).settings)
        given = credential(key, "operator key")
        return given is not None and expected is not None and hmac.compare_digest(given, expected.encode())

    def require_operator(request: Request, key: str | None) -> None:
        if not operator_key_ok(request, key):
            raise NotAuthenticated("an operator key is required (X-API-Key)")

    # Quarantine review (gateway.entrypoints.review_routes): operators' users and signatures.
    app.state.desk = ReviewDesk(
        running.engine,
        running.intake.rules,
        production=running.settings.env == "production",
        on_commit=running.intake.on_commit,
        lockout=Lockout.of(running.settings),
        notices=rejection_notices(running.adapters, running.partners),
    )
    app.include_router(
        review_routes(
            lambda request: request.app.state.desk,
            operator_key_ok,
            lambda request: gw(request).settings.max_body_bytes,
        )
    )

    # Shipments declared by the ordering site or an operator (gateway.entrypoints.shipments_routes).
    app.include_router(shipment_routes(operator_key_ok, gw))

    # The chain of custody and its certificate (gateway.entrypoints.custody_routes).
    app.state.journeys = Journeys(running.engine, running.partners, running.intake.rules.clock)
    app.include_router(
        custody_routes(
            lambda request: request.app.state.journeys,
            operator_key_ok,
            lambda request: (gw(request).partners, gw(request).orders),
        )
    )
    mount_console(app, running.settings, app.state.desk, app.state.journeys)

    @app.get("/health")
    async def health(request: Request) -> Response:
        g = gw(request)
        database = await g.database_up()
        # Reads working says little: a connection opened read-only answers SELECT 1 and refuses
        # every message. The probe writes as the intake does, on the intake's own connections.
        refused = await g.intake.transactions.unwritable() if database else None
        body: dict[str, Any] = {
            "status": "ok" if database and g.broker.connected else "degraded",
            "database": "up" if database else "down",
            "broker": "up" if g.broker.connected else "down",
            "relay": g.settings.relay,
            "version": __version__,
            "intake": g.intake.recent.summary(),
        }
        if refused is not None:
            body["status"], body["database"], body["database_detail"] = "down", "not writable", refused
        if database:
            async with g.engine.connect() as conn:
                backlog, oldest = await reads.outbox_backlog(conn)
                quarantined = await reads.count_open_quarantine(conn)
            age = (utcnow() - oldest).total_seconds() if oldest else 0.0
            body["outbox"] = {"backlog": backlog, "oldest_age_seconds": round(age, 3)}
            body["quarantine"] = {"open": quarantined}
            metrics.OUTBOX_BACKLOG.set(backlog)
            metrics.QUARANTINE_OPEN.set(quarantined)
        else:
            body["status"] = "down"
        return JSONResponse(body, status_code=200 if body["status"] != "down" else 503)

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/api/orders/{coi}")
    async def order(
        request: Request, coi: str, x_api_key: Annotated[str | None, Header()] = None
    ) -> dict[str, Any]:
        require_operator(request, x_api_key)
        async with gw(request).engine.connect() as conn:
            found = await reads.order_by_coi(conn, coi.upper())
            if found is None:
                raise NotFound("no order has this COI")
            events = await reads.timeline(conn, found.order_id)
        return {"order": found.model_dump(mode="json"), "timeline": events}

    @app.post("/api/messages", status_code=201)
    async def receive(
        request: Request,
        x_api_key: Annotated[str | None, Header()] = None,
        x_cgt_partner: Annotated[str | None, Header()] = None,
        x_cgt_timestamp: Annotated[str | None, Header()] = None,
        x_cgt_signature: Annotated[str | None, Header()] = None,
    ) -> Response:
        """A message in the partner's configured dialect, authenticated by API key or HMAC."""
        g = gw(request)
        raw = await bounded_body(request, g.settings.max_body_bytes)
        partner: Partner
        if x_cgt_signature is not None:
            partner = g.partners.verify_hmac(x_cgt_partner or "", raw, x_cgt_timestamp, x_cgt_signature)
        else:
            partner = g.partners.by_api_key(x_api_key)
        adapter = g.adapters[partner.adapter]
        outcome, rendered = await accept(
            g.intake,
            adapter,
            partner,
            raw,
            transport="http",
            content_type=request.headers.get("content-type"),
        )
        media = adapter.content_type if outcome.status == "applied" else PROBLEM
        if outcome.duplicate:  # the first answer again, byte for byte; the header says it is one
            headers = {"Idempotent-Replayed": "true"}
            return Response(rendered or b"", status_code=200, media_type=media, headers=headers)
        return Response(rendered or b"", status_code=outcome.http_status, media_type=media)

    return app
