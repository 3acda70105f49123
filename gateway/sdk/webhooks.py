"""Signed webhooks: the route factory that serves an adapter's webhook with one or several
signature schemes (gateway.sdk.signatures).

A route may take several schemes (`WebhookRoute(path, StandardWebhooks(), EASYPOST, ApiKey())`):
each partner is verified with the first of them it has credentials for, so that couriers on one
dialect's path may each authenticate their own way. A scheme that signs a timestamp names what a
replay would repeat: the route takes each such attempt once, across replicas (the Replays port),
for as long as it is fresh.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from fastapi import APIRouter, Request
from starlette.responses import Response

from gateway.entrypoints.problems import PROBLEM, problem
from gateway.errors import ConfigError, NotAuthenticated
from gateway.http_body import bounded_body, refuse
from gateway.partners import Partner
from gateway.sdk.signatures import TOLERANCE_S, SignatureScheme

if TYPE_CHECKING:
    from gateway.adapter_contract import Adapter
    from gateway.ports import Runtime


class WebhookRoute:
    """An adapter's webhook: POST `path` (which names `{partner}`), authenticated with the first of
    `schemes` the partner has credentials for, for the partners of this adapter (or only those in
    `partners`)."""

    __slots__ = ("partners", "path", "schemes", "transport")

    def __init__(
        self,
        path: str,
        *schemes: SignatureScheme,
        scheme: SignatureScheme | None = None,
        partners: frozenset[str] | None = None,
        transport: str = "http",
    ) -> None:
        every = (*schemes, *((scheme,) if scheme is not None else ()))
        if not every:
            raise ConfigError(f"webhook route {path} needs a signature scheme")
        self.path, self.partners, self.transport = path, partners, transport
        self.schemes: tuple[SignatureScheme, ...] = every

    @property
    def scheme(self) -> SignatureScheme:
        return self.schemes[0]

    def scheme_for(
        self, runtime: Runtime, partner: Partner
    ) -> tuple[SignatureScheme, tuple[str, ...]] | None:
        """The first scheme the partner has credentials for, and them."""
        for scheme in self.schemes:
            secrets = tuple(runtime.partners.signing_secrets(partner, scheme.name))
            if secrets:
                return scheme, secrets
        return None


def webhook_router(adapter: Adapter, *routes: WebhookRoute) -> APIRouter:
    """The FastAPI routes for an adapter's webhooks: read the body through the one bounded reader,
    authenticate the partner named in the path with the route's scheme, refuse replays, and hand
    the message to the door. Refusals are logged and counted with their metadata (the Door
    middleware), by reason (not_authenticated: no such partner on this route; bad_signature;
    replayed); a refused request that names a known partner is also kept raw, within the
    partner's hourly cap (the Refusals port), and one naming nobody known is counted only."""
    router = APIRouter()
    for route in routes:
        if "{partner}" not in route.path:
            raise ConfigError(f"adapter {adapter.name!r}: webhook path {route.path} must name {{partner}}")
        router.add_api_route(route.path, _receiver(adapter, route), methods=["POST"], status_code=201)
    return router


def _refused(request: Request, reason: str, exc: NotAuthenticated) -> Response:
    """A 401 in problem+json, recorded by the door with `reason` (a metric label: a small set)."""
    refuse(request, reason, exc.detail)
    return problem(exc.http_status, type(exc).__name__, exc.public_message)


async def _kept_and_refused(
    request: Request,
    runtime: Runtime,
    adapter: Adapter,
    route: WebhookRoute,
    sender: Partner,
    raw: bytes,
    reason: str,
    exc: NotAuthenticated,
) -> Response:
    """A known partner's refused request: its raw bytes kept (within its cap), then the 401."""
    await runtime.refusals.keep(
        sender.id,
        adapter.name,
        route.transport,
        raw,
        request.headers.get("content-type"),
        f"{reason}: {exc.detail}",
    )
    return _refused(request, reason, exc)


def _receiver(adapter: Adapter, route: WebhookRoute) -> Callable[[Request, str], Awaitable[Response]]:
    async def receive(request: Request, partner: str) -> Response:
        runtime: Runtime = request.app.state.gateway
        raw = await bounded_body(request, runtime.settings.max_body_bytes)
        try:
            sender = runtime.partners.get(partner)
        except NotAuthenticated as exc:  # an unknown partner: counted, nothing of it kept
            return _refused(request, "not_authenticated", exc)
        chosen = route.scheme_for(runtime, sender)
        if (
            chosen is None
            or not sender.speaks(adapter.name)
            or (route.partners and partner not in route.partners)
        ):
            names = ", ".join(s.name for s in route.schemes)
            unknown = NotAuthenticated(detail=f"{partner} does not authenticate {route.path} with {names}")
            return await _kept_and_refused(
                request, runtime, adapter, route, sender, raw, "not_authenticated", unknown
            )
        scheme, secrets = chosen
        try:
            verified = scheme.verify(request.headers, raw, secrets, time.time())
        except NotAuthenticated as exc:
            return await _kept_and_refused(
                request, runtime, adapter, route, sender, raw, "bad_signature", exc
            )
        if verified.replay_key is not None:
            until = datetime.fromtimestamp(verified.fresh_until or time.time() + TOLERANCE_S, UTC)
            if not await runtime.replays.first_use(f"webhook:{sender.id}", verified.replay_key, until):
                replayed = NotAuthenticated(
                    "this signed request was received before", detail=f"{sender.id}: replay"
                )
                return await _kept_and_refused(
                    request, runtime, adapter, route, sender, raw, "replayed", replayed
                )
        outcome, rendered = await runtime.door.accept(
            adapter, sender, raw, transport=route.transport, content_type=request.headers.get("content-type")
        )
        media = adapter.content_type if outcome.status in ("applied", "ignored") else PROBLEM
        if outcome.duplicate:  # the first answer again, byte for byte; the header says it is one
            headers = {"Idempotent-Replayed": "true"}
            return Response(rendered or b"", status_code=200, media_type=media, headers=headers)
        return Response(rendered or b"", status_code=outcome.http_status, media_type=media)

    receive.__name__ = f"{adapter.name}_webhook"
    return receive
