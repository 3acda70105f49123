"""Signed webhooks: the route factory that serves an adapter's webhook with one or several
signature schemes (gateway.sdk.signatures).

A route may take several schemes (`WebhookRoute(path, StandardWebhooks(), EASYPOST, ApiKey())`):
each partner is verified with the first of them it has credentials for, so that couriers on one
dialect's path may each authenticate their own way. A scheme that signs a timestamp names what a
replay would repeat: the route takes each such attempt once, across replicas, for as long as it is
fresh, in the message's own transaction (the door's `claim`), so that a webhook costs one commit
and a failed transaction takes nothing.

A dialect with HTTP conventions of its own (EPCIS capture: 202 and a Location, its own problem
types, request headers that change what the body means) gives the route three optional hooks:
`request_view` (what `decode` gets as `InboundContext.request`), `respond` (the response from the
outcome and the rendered answer) and `refusal` (a 401 in its words). A signed route of another
method beside it (a GET of a job) authenticates with `authenticate`.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from fastapi import APIRouter, Request
from starlette.responses import Response

from gateway.claims import Claim
from gateway.entrypoints.problems import PROBLEM, problem
from gateway.errors import ConfigError, NotAuthenticated, Replayed
from gateway.http_body import bounded_body, refuse
from gateway.outcome import Outcome
from gateway.partners import Partner
from gateway.sdk.signatures import TOLERANCE_S, SignatureScheme

if TYPE_CHECKING:
    from gateway.adapter_contract import Adapter
    from gateway.ports import Runtime


class WebhookRoute:
    """An adapter's webhook: POST `path` (which names `{partner}`), authenticated with the first of
    `schemes` the partner has credentials for, for the partners of this adapter (or only those in
    `partners`)."""

    __slots__ = ("partners", "path", "refusal", "request_view", "respond", "schemes", "transport")

    def __init__(
        self,
        path: str,
        *schemes: SignatureScheme,
        scheme: SignatureScheme | None = None,
        partners: frozenset[str] | None = None,
        transport: str = "http",
        request_view: Callable[[Request], object] | None = None,
        respond: Callable[[Outcome, bytes | None], Response] | None = None,
        refusal: Callable[[NotAuthenticated], Response] | None = None,
    ) -> None:
        every = (*schemes, *((scheme,) if scheme is not None else ()))
        if not every:
            raise ConfigError(f"webhook route {path} needs a signature scheme")
        self.path, self.partners, self.transport = path, partners, transport
        self.schemes: tuple[SignatureScheme, ...] = every
        self.request_view, self.respond, self.refusal = request_view, respond, refusal

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


def _refused(exc: NotAuthenticated, route: WebhookRoute) -> Response:
    """A 401 in problem+json, or in the dialect's words."""
    if route.refusal is not None:
        return route.refusal(exc)
    return problem(exc.http_status, type(exc).__name__, exc.public_message)


async def authenticate(
    request: Request, adapter: Adapter, route: WebhookRoute, raw: bytes, *, keep_refused: bool = True
) -> Partner:
    """The partner named in the path, once one of the route's schemes it has credentials for
    verifies `raw` and the attempt is not a replay. Otherwise NotAuthenticated, the refusal already
    recorded by reason (not_authenticated, bad_signature, replayed) and, for a known partner, its
    raw request kept within its hourly cap (the Refusals port; `keep_refused=False` for a request
    that carries nothing of the partner's, such as a signed GET)."""
    runtime: Runtime = request.app.state.gateway
    sender, claim = await _verified(request, adapter, route, raw, keep_refused)
    if claim is not None and not await runtime.replays.take(claim):
        replayed = Replayed(detail=f"{sender.id}: replay")
        raise await _refusal(request, adapter, route, raw, sender, "replayed", replayed, keep_refused)
    return sender


async def _verified(
    request: Request, adapter: Adapter, route: WebhookRoute, raw: bytes, keep_refused: bool
) -> tuple[Partner, Claim | None]:
    """The partner named in the path, once one of the route's schemes verifies `raw`, and the
    attempt to take once (None: the scheme signs nothing that ages). The replay check is the
    caller's: in the message's own transaction (the door), or on its own (`authenticate`)."""
    runtime: Runtime = request.app.state.gateway
    partner = request.path_params.get("partner", "")
    try:
        sender = runtime.partners.get(partner)
    except NotAuthenticated as exc:  # an unknown partner: counted, nothing of it kept
        refuse(request, "not_authenticated", exc.detail)
        raise
    chosen = route.scheme_for(runtime, sender)
    if (
        chosen is None
        or not sender.speaks(adapter.name)
        or (route.partners and partner not in route.partners)
    ):
        names = ", ".join(s.name for s in route.schemes)
        unknown = NotAuthenticated(detail=f"{partner} does not authenticate {route.path} with {names}")
        raise await _refusal(request, adapter, route, raw, sender, "not_authenticated", unknown, keep_refused)
    scheme, secrets = chosen
    try:
        verified = scheme.verify(request.headers, raw, secrets, time.time())
    except NotAuthenticated as exc:
        raise await _refusal(
            request, adapter, route, raw, sender, "bad_signature", exc, keep_refused
        ) from None
    if verified.replay_key is None:
        return sender, None
    until = datetime.fromtimestamp(verified.fresh_until or time.time() + TOLERANCE_S, UTC)
    return sender, Claim.of(f"webhook:{sender.id}", verified.replay_key, until)


async def _refusal(
    request: Request,
    adapter: Adapter,
    route: WebhookRoute,
    raw: bytes,
    sender: Partner,
    reason: str,
    exc: NotAuthenticated,
    keep: bool,
) -> NotAuthenticated:
    """`exc`, once the refusal is counted by `reason` and, with `keep`, the raw request of a known
    partner kept within its hourly cap."""
    if keep:
        runtime: Runtime = request.app.state.gateway
        content_type = request.headers.get("content-type")
        detail = f"{reason}: {exc.detail}"
        await runtime.refusals.keep(sender.id, adapter.name, route.transport, raw, content_type, detail)
    refuse(request, reason, exc.detail)
    return exc


def _receiver(adapter: Adapter, route: WebhookRoute) -> Callable[[Request, str], Awaitable[Response]]:
    async def receive(request: Request, partner: str) -> Response:
        runtime: Runtime = request.app.state.gateway
        raw = await bounded_body(request, runtime.settings.max_body_bytes)
        try:
            sender, claim = await _verified(request, adapter, route, raw, True)
        except NotAuthenticated as exc:
            return _refused(exc, route)
        try:  # the attempt is taken in the message's own transaction: one commit a webhook
            outcome, rendered = await runtime.door.accept(
                adapter,
                sender,
                raw,
                transport=route.transport,
                content_type=request.headers.get("content-type"),
                request=route.request_view(request) if route.request_view else None,
                claim=claim,
            )
        except Replayed as exc:
            return _refused(
                await _refusal(request, adapter, route, raw, sender, "replayed", exc, True), route
            )
        if route.respond is not None:
            return route.respond(outcome, rendered)
        media = adapter.content_type if outcome.status in ("applied", "ignored") else PROBLEM
        if outcome.duplicate:  # the first answer again, byte for byte; the header says it is one
            headers = {"Idempotent-Replayed": "true"}
            return Response(rendered or b"", status_code=200, media_type=media, headers=headers)
        return Response(rendered or b"", status_code=outcome.http_status, media_type=media)

    receive.__name__ = f"{adapter.name}_webhook"
    return receive
