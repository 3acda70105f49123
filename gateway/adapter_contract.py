"""The adapter contract (DESIGN §3): what an adapter is, what it is given, what it gives back.

Inbound, an adapter is two functions and its examples:

    decode(raw, ctx) -> Decoded       parse and map to canonical commands; pure, no I/O
    answer(outcome, decoded) -> bytes the dialect's reply (an ACK, an HTTP body) to what became
                                      of the message; `decoded` is None when nothing could be read

`decode` raises a GatewayError only for bytes it cannot read at all; whatever it could read but
not take (a mapping error, traffic that is not ours) it returns as `Decoded(error=...)`, so that
`answer` still has the message's header to reply in kind.

An adapter may say which kinds of partner use it (`partner_kinds`, a tuple of PartnerKind; the
conformance suite runs it as each), and load what it needs at start-up (`Configurable`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol, runtime_checkable

from fastapi import APIRouter

from gateway.canonical.command import Command
from gateway.canonical.ids import ExternalRef
from gateway.errors import GatewayError
from gateway.outcome import Outcome
from gateway.partners import Partner, Partners
from gateway.settings import Settings


@dataclass(frozen=True)
class InboundContext:
    """`request`: what the transport read around the bytes, in the adapter's own type (an HTTP
    route's interaction: method, path, conditions, what it looked up); None when there is none."""

    partner: Partner
    transport: str
    received_at: datetime
    request: object | None = None


@dataclass(frozen=True)
class Decoded:
    """One message, read and mapped: its commands, or the error that keeps them from applying.

    `message_id`: the sender's id, the idempotency key. `fingerprint`: what the message says,
    without what does not change its meaning in the dialect (framing, line ends, key order...);
    a message under a used id is a repeat when its fingerprint equals the first's, and refused
    otherwise (None: the raw bytes are the fingerprint). `content`: whatever the adapter needs
    to answer (a header, the parsed document). `ours_if_known`: when given, the message is the
    gateway's business only if one of these identifiers is bound (a carrier's event about a parcel
    no shipment was declared for): otherwise it is answered as not ours (reason
    `unknown_identifier`), stored nowhere and counted, as an ADT of a patient nobody ordered for."""

    message_id: str | None = None
    commands: tuple[Command, ...] = ()
    error: GatewayError | None = None
    fingerprint: bytes | None = None
    content: Any = None
    ours_if_known: tuple[ExternalRef, ...] = ()


@dataclass(frozen=True)
class Example:
    """A message the adapter ships for the conformance suite."""

    name: str
    raw: bytes
    expect: Literal["valid", "malformed"]


@runtime_checkable
class Adapter(Protocol):
    name: str
    dialect: str
    content_type: str

    def decode(self, raw: bytes, ctx: InboundContext) -> Decoded: ...

    def answer(self, outcome: Outcome, decoded: Decoded | None) -> bytes: ...

    def examples(self) -> Sequence[Example]: ...


class Running(Protocol):
    """A started transport (a listener, a poller, an outbound consumer)."""

    async def stop(self) -> None: ...


@runtime_checkable
class HasHttpRoutes(Protocol):
    """An adapter that serves HTTP routes of its own (e.g. /fhir/r4). Handlers find the running
    gateway as `request.app.state.gateway` (a Runtime)."""

    def http_routes(self) -> APIRouter: ...


@runtime_checkable
class TellsRejection(Protocol):
    """An adapter that can tell a sender, after its answer, that a held message of its was
    rejected on review (HL7 v2: an application reject on the site's outbound link; FHIR: a Task
    set to `rejected`). Its outbound side renders the notice from `identity.resolved` (see
    gateway.sdk.outbound `render_notice`); this says how, for this partner, or None when it cannot."""

    def rejection_notice(self, partner: Partner) -> str | None: ...


@runtime_checkable
class Configurable(Protocol):
    """An adapter with data to load and check when the gateway starts (its profiles): a ConfigError
    refuses to start, naming the file and the field."""

    def configure(self, settings: Settings, partners: Partners) -> None: ...


@runtime_checkable
class HasContracts(Protocol):
    """An adapter that publishes contracts of its own dialect (JSON Schemas its partners validate
    against before they send): relative path under contracts/ -> the file's bytes. `cgt-gateway
    contracts export` writes them beside the canonical ones and `contracts check` drift-checks them."""

    def contracts(self) -> Mapping[str, bytes]: ...
