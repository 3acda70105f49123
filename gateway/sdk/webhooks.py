"""Signed webhooks: signature schemes behind one small interface, and the route factory that
serves an adapter's webhook with one of them.

    SignatureScheme.verify(headers, body, secrets, now) -> Verified, or raise NotAuthenticated

    CgtHmac           X-CGT-Timestamp + X-CGT-Signature: sha256=<hex> over "timestamp.body"
    StandardWebhooks  webhook-id / webhook-timestamp / webhook-signature: v1,<base64> (several,
                      space-separated) over "id.timestamp.body"; secrets whsec_<base64>
    HeaderHmac        a vendor's own header, e.g. EasyPost's X-Hmac-Signature: hmac-sha256-hex=<hex>
                      over the body alone, the secret NFKD-normalised first

A partner's secrets for a scheme come from its `auth` in the partner file (`hmac_secret`,
`standard_webhooks`, `header_hmac`; values from the environment); two live secrets let a partner
rotate without a gap. A scheme that signs a timestamp names what a replay would repeat: the route
takes each such attempt once, across replicas (the Replays port), for as long as it is fresh.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
import unicodedata
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

from fastapi import APIRouter, Request
from starlette.responses import Response

from gateway.entrypoints.problems import PROBLEM, problem
from gateway.errors import ConfigError, NotAuthenticated
from gateway.http_body import bounded_body, refuse
from gateway.outcome import Outcome
from gateway.partners import Partner, check_cgt_signature, credential

if TYPE_CHECKING:
    from gateway.adapter_contract import Adapter
    from gateway.ports import Runtime

TOLERANCE_S = 300  # Standard Webhooks' default, and the X-CGT scheme's


@dataclass(frozen=True)
class Verified:
    """A request whose signature holds. `replay_key`: what a replay of this very attempt would
    repeat (None: the scheme signs nothing that ages, so a copy cannot be told from a resend);
    `fresh_until`: the Unix time after which its signature is refused as stale anyway."""

    replay_key: str | None = None
    fresh_until: float | None = None


class SignatureScheme(Protocol):
    @property
    def name(self) -> str:
        """Which of a partner's secrets the scheme takes (see Partners.signing_secrets)."""
        ...

    def verify(
        self, headers: Mapping[str, str], body: bytes, secrets: Sequence[str], now: float
    ) -> Verified: ...


def _header(headers: Mapping[str, str], name: str) -> bytes | None:
    value = headers.get(name)
    if value is None:
        value = next((v for k, v in headers.items() if k.lower() == name), None)
    return credential(value, name)


def _stamp(given: bytes, now: float, tolerance_s: int) -> int:
    if not given.isdigit():
        raise NotAuthenticated("the signature timestamp is not a Unix time")
    stamp = int(given)
    if abs(now - stamp) > tolerance_s:
        raise NotAuthenticated("the signature timestamp is too old or in the future")
    return stamp


@dataclass(frozen=True)
class CgtHmac:
    """The gateway's own scheme (the same check as `/api/messages`)."""

    tolerance_s: int = TOLERANCE_S
    name: str = "cgt-hmac"

    def verify(self, headers: Mapping[str, str], body: bytes, secrets: Sequence[str], now: float) -> Verified:
        stamp = _header(headers, "x-cgt-timestamp")
        given = _header(headers, "x-cgt-signature")
        if stamp is None or given is None:
            raise NotAuthenticated("a signed request is required (X-CGT-Timestamp, X-CGT-Signature)")
        digest = check_cgt_signature(secrets, body, stamp, given, tolerance_s=self.tolerance_s, now=now)
        return Verified(f"{stamp.decode()}.{digest}", int(stamp) + self.tolerance_s)


def webhook_key(secret: str) -> bytes:
    """A Standard Webhooks secret's HMAC key: `whsec_` (optional) and base64."""
    try:
        return base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError("a Standard Webhooks secret must be whsec_ and base64") from None


@dataclass(frozen=True)
class StandardWebhooks:
    """Standard Webhooks 1.0, symmetric (`v1`). Other versions in the header (`v1a`) are passed
    over: only a v1 signature by one of the partner's secrets admits the request."""

    tolerance_s: int = TOLERANCE_S
    name: str = "standard-webhooks"

    def sign(self, secret: str, message_id: str, timestamp: int, body: bytes) -> str:
        """The `v1,<base64>` signature a sender puts in `webhook-signature`."""
        signed = f"{message_id}.{timestamp}.".encode() + body
        digest = hmac.new(webhook_key(secret), signed, hashlib.sha256).digest()
        return "v1," + base64.b64encode(digest).decode()

    def verify(self, headers: Mapping[str, str], body: bytes, secrets: Sequence[str], now: float) -> Verified:
        message_id = _header(headers, "webhook-id")
        given_stamp = _header(headers, "webhook-timestamp")
        given = _header(headers, "webhook-signature")
        if message_id is None or given_stamp is None or given is None:
            raise NotAuthenticated(
                "a signed request is required (webhook-id, webhook-timestamp, webhook-signature)"
            )
        if b"." in message_id:  # the id is part of the signed content: a dot could shift its parts
            raise NotAuthenticated("the webhook-id is malformed", detail="webhook-id with a dot")
        stamp = _stamp(given_stamp, now, self.tolerance_s)
        offered = [s.partition(",")[2].encode() for s in given.decode().split() if s.startswith("v1,")]
        matched = False
        for secret in secrets:  # every pair is compared: the time taken says nothing of which matched
            expected = self.sign(secret, message_id.decode(), stamp, body)[3:].encode()
            for signature in offered:
                matched |= hmac.compare_digest(expected, signature)
        if not matched:
            raise NotAuthenticated(detail="bad webhook-signature")
        # A sender's retry signs again with a new timestamp (and the same id, the idempotency
        # key): only a copy of this very attempt is a replay.
        return Verified(f"{message_id.decode()}.{stamp}", stamp + self.tolerance_s)


@dataclass(frozen=True)
class HeaderHmac:
    """A vendor's HMAC-SHA256 of the body in a header of its own, `prefix` + hex. EasyPost's
    (the default) signs no timestamp: a copy is not told from a resend, and the intake's
    idempotency on the event id answers it as a repeat."""

    header: str = "x-hmac-signature"
    prefix: str = "hmac-sha256-hex="
    normalise: bool = True  # EasyPost keys the HMAC with the secret's NFKD form, UTF-8
    name: str = "header-hmac"

    def verify(self, headers: Mapping[str, str], body: bytes, secrets: Sequence[str], now: float) -> Verified:
        given = _header(headers, self.header.lower())
        if given is None:
            raise NotAuthenticated(f"a signed request is required ({self.header})")
        matched = False
        for secret in secrets:
            key = unicodedata.normalize("NFKD", secret) if self.normalise else secret
            digest = hmac.new(key.encode("utf-8"), body, hashlib.sha256).hexdigest()
            matched |= hmac.compare_digest((self.prefix.lower() + digest).encode(), given.lower())
        if not matched:
            raise NotAuthenticated(detail=f"bad {self.header}")
        return Verified()


EASYPOST = HeaderHmac()


@dataclass(frozen=True)
class WebhookRoute:
    """An adapter's webhook: POST `path` (which names `{partner}`), signed with `scheme`, for the
    partners of this adapter that have secrets for it (or only those in `partners`).

    A dialect with HTTP conventions of its own (EPCIS capture: 202 and a Location, its own problem
    types, request headers that change what the body means) says so with three optional hooks:
    `request_view` (what `decode` gets as `InboundContext.request`), `respond` (the response from
    the outcome and the rendered answer) and `refusal` (a 401 before the door, in its words)."""

    path: str
    scheme: SignatureScheme
    partners: frozenset[str] | None = None
    transport: str = "http"
    request_view: Callable[[Request], object] | None = None
    respond: Callable[[Outcome, bytes | None], Response] | None = None
    refusal: Callable[[NotAuthenticated], Response] | None = None


def webhook_router(adapter: Adapter, *routes: WebhookRoute) -> APIRouter:
    """The FastAPI routes for an adapter's webhooks: read the body through the one bounded reader,
    authenticate the partner named in the path with the route's scheme, refuse replays, and hand
    the message to the door. Refusals before authentication are logged and counted with their
    metadata only (the Door middleware), by reason (not_authenticated: no such partner on this
    route; bad_signature; replayed), never stored."""
    router = APIRouter()
    for route in routes:
        if "{partner}" not in route.path:
            raise ConfigError(f"adapter {adapter.name!r}: webhook path {route.path} must name {{partner}}")
        router.add_api_route(route.path, _receiver(adapter, route), methods=["POST"], status_code=201)
    return router


async def authenticate(request: Request, adapter: Adapter, route: WebhookRoute, raw: bytes) -> Partner:
    """The partner named in the path, once its signature of `raw` holds and the attempt is not a
    replay; otherwise NotAuthenticated, the refusal already recorded by reason (not_authenticated:
    no such partner on this route; bad_signature; replayed). An adapter's own signed routes (a GET
    beside its webhook) call it too."""
    runtime: Runtime = request.app.state.gateway
    partner = request.path_params.get("partner", "")
    try:
        sender = runtime.partners.get(partner)
        secrets = runtime.partners.signing_secrets(sender, route.scheme.name)
        if (
            not sender.speaks(adapter.name)
            or not secrets
            or (route.partners and partner not in route.partners)
        ):
            raise NotAuthenticated(detail=f"{partner} does not sign {route.path} with {route.scheme.name}")
    except NotAuthenticated as exc:
        refuse(request, "not_authenticated", exc.detail)
        raise
    try:
        verified = route.scheme.verify(request.headers, raw, secrets, time.time())
    except NotAuthenticated as exc:
        refuse(request, "bad_signature", exc.detail)
        raise
    if verified.replay_key is not None:
        until = datetime.fromtimestamp(verified.fresh_until or time.time() + TOLERANCE_S, UTC)
        if not await runtime.replays.first_use(f"webhook:{sender.id}", verified.replay_key, until):
            replayed = NotAuthenticated(
                "this signed request was received before", detail=f"{sender.id}: replay"
            )
            refuse(request, "replayed", replayed.detail)
            raise replayed
    return sender


def _receiver(adapter: Adapter, route: WebhookRoute) -> Callable[[Request, str], Awaitable[Response]]:
    async def receive(request: Request, partner: str) -> Response:
        runtime: Runtime = request.app.state.gateway
        raw = await bounded_body(request, runtime.settings.max_body_bytes)
        try:
            sender = await authenticate(request, adapter, route, raw)
        except NotAuthenticated as exc:  # a 401 in problem+json, or in the dialect's words
            return (
                route.refusal(exc)
                if route.refusal
                else problem(exc.http_status, type(exc).__name__, exc.public_message)
            )
        outcome, rendered = await runtime.door.accept(
            adapter,
            sender,
            raw,
            transport=route.transport,
            content_type=request.headers.get("content-type"),
            request=route.request_view(request) if route.request_view else None,
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
