"""The `mes` adapter: the door manufacturers' MES come in by, for every MES dialect at once.

Its transports:

    AMQP  `cgt.inbound.mes.<manufacturer>` (gateway.sdk.queues: quorum, dead letters to cgt.dlx
          with the reason in x-cgt-error / x-cgt-reason, a delivery limit; the `partner` header
          must name the queue's manufacturer), one queue and one channel each, so that one
          manufacturer's poison messages never hold up another's
    HTTP  `POST /mes/{manufacturer}/events` with the manufacturer's API key (X-API-Key)

Each message goes through the door in the dialect its content type names (dialects.py), as that
dialect's adapter: the stored message says `mes-cloudevents` or `mes-b2mml`, and re-processing it
uses that adapter again. Its own decode tells the dialect by the first byte, for the conformance
suite and for a sender that names no content type.
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter

from adapters.mes.inbound.dialects import DIALECTS, dialect_of
from adapters.mes.inbound.routes import events_router
from gateway.sdk import (
    Adapter,
    Decoded,
    Example,
    InboundContext,
    InboundQueues,
    Outcome,
    PartnerKind,
    Running,
    Runtime,
    Settings,
    outcome_json,
)

KIND = "mes"


def enabled(settings: Settings) -> dict[str, Adapter]:
    """The MES dialects this gateway serves (CGT_ADAPTERS may enable a subset)."""
    wanted = {n.strip() for n in settings.adapters.split(",")} if settings.adapters else None
    return {name: a for name, a in DIALECTS.items() if wanted is None or name in wanted}


class MesInbound:
    name = "mes"
    dialect = "MES events: CloudEvents JSON or ISA-95 B2MML XML, by content type"
    content_type = "application/json"
    partner_kinds = (PartnerKind.manufacturer,)
    # Messages in flight on each queue: the door commits those that arrive together in one
    # transaction, so a manufacturer's burst is taken many at a time (bench/results/mes.md).
    prefetch = 20

    def decode(self, raw: bytes, ctx: InboundContext) -> Decoded:
        return dialect_of(None, raw).decode(raw, ctx)

    def answer(self, outcome: Outcome, decoded: Decoded | None) -> bytes:
        return outcome_json(outcome)

    def examples(self) -> Sequence[Example]:
        return [e for a in DIALECTS.values() for e in a.examples()]

    def http_routes(self) -> APIRouter:
        return events_router(enabled)

    async def start_transport(self, runtime: Runtime) -> Running:
        dialects = enabled(runtime.settings)
        manufacturers = [
            p
            for p in runtime.partners
            if p.kind is PartnerKind.manufacturer and any(p.speaks(name) for name in dialects)
        ]

        def choose(content_type: str | None, body: bytes) -> Adapter:
            return dialect_of(content_type, body, dialects)

        queues = InboundQueues(
            runtime, self, kind=KIND, partners=manufacturers, dialect=choose, prefetch=self.prefetch
        )
        return await queues.start()


adapter = MesInbound()
