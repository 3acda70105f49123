"""Accept one raw message from an authenticated partner: parse, map, check, and hand to the intake.

Every transport (HTTP, MLLP, AMQP) calls this, so that each stores, answers and counts alike.
"""

from __future__ import annotations

import time
from datetime import datetime

from gateway import metrics
from gateway.canonical.command import Command
from gateway.canonical.envelope import utcnow
from gateway.errors import GatewayError, NotOurs
from gateway.partners import Partner
from gateway.registry import Adapter, InboundContext
from gateway.service.intake import Decode, Intake, failed_decode
from gateway.service.outcome import Outcome
from gateway.store.repository import InboundRecord


async def accept(
    intake: Intake,
    adapter: Adapter,
    partner: Partner,
    raw: bytes,
    *,
    transport: str,
    content_type: str | None = None,
    received_at: datetime | None = None,
) -> tuple[Outcome, bytes | None]:
    """The message's outcome and the adapter's rendered answer, after the commit."""
    started = time.perf_counter()
    ctx = InboundContext(partner=partner, transport=transport, received_at=received_at or utcnow())
    decode: Decode
    try:
        parsed = adapter.parse(raw, ctx)
    except NotOurs as exc:
        return ignored(adapter, partner, exc, started)
    except GatewayError as exc:
        message_id, fingerprint, decode = None, None, failed_decode(exc)
    else:
        message_id, fingerprint = parsed.message_id, parsed.fingerprint

        def decode() -> list[Command]:
            commands = adapter.to_canonical(parsed, ctx)
            partner.check_commands(commands)
            return commands

    record = InboundRecord(
        partner=partner.id,
        transport=transport,
        adapter=adapter.name,
        message_id=message_id,
        received_at=ctx.received_at,
        content_type=content_type,
        raw=raw,
        fingerprint=fingerprint,
    )
    outcome, rendered = await intake.receive(record, decode, adapter.ack)
    if outcome.status == "ignored":
        metrics.IGNORED.labels(partner.id, adapter.name, outcome.code or "unknown").inc()
    metrics.INBOUND.labels(partner.id, adapter.name, outcome.status).inc()
    metrics.INTAKE_SECONDS.observe(time.perf_counter() - started)
    return outcome, rendered


def ignored(adapter: Adapter, partner: Partner, exc: NotOurs, started: float) -> tuple[Outcome, bytes | None]:
    """Traffic that is not the gateway's business: answered as accepted, stored nowhere, counted."""
    outcome = Outcome(
        status="ignored",
        inbound_id=None,
        partner=partner.id,
        reason=exc.public_message,
        code=exc.reason,
        http_status=exc.http_status,
    )
    metrics.IGNORED.labels(partner.id, adapter.name, exc.reason).inc()
    metrics.INBOUND.labels(partner.id, adapter.name, "ignored").inc()
    metrics.INTAKE_SECONDS.observe(time.perf_counter() - started)
    return outcome, adapter.ack(outcome)
