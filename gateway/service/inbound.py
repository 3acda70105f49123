"""Accept one raw message from an authenticated partner: decode, check, and hand to the intake.

Every transport (HTTP, MLLP, AMQP) calls this, so that each stores, answers and counts alike.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from functools import partial

from gateway import metrics
from gateway.adapter_contract import Adapter, Decoded, InboundContext
from gateway.canonical.command import Command
from gateway.canonical.envelope import utcnow
from gateway.claims import Claim
from gateway.errors import GatewayError, NotOurs, Replayed
from gateway.outcome import Outcome
from gateway.partners import Partner
from gateway.service.intake import Decode, Intake, failed_decode, mapping_failure
from gateway.store.records import InboundRecord, Reprocessing


async def accept(
    intake: Intake,
    adapter: Adapter,
    partner: Partner,
    raw: bytes,
    *,
    transport: str,
    content_type: str | None = None,
    received_at: datetime | None = None,
    request: object | None = None,
    decoded: Decoded | None = None,
    reprocessing: Reprocessing | None = None,
    claim: Claim | None = None,
) -> tuple[Outcome, bytes | None]:
    """The message's outcome and the adapter's rendered answer, after the commit. `decoded`: the
    adapter's own decode of `raw`, done beforehand. `reprocessing`: a stored message run again
    (gateway.service.reprocess), under its own idempotency key rather than the sender's.
    `claim`: the signed attempt it came in, taken with it; Replayed when it was taken before."""
    started = time.perf_counter()
    ctx = InboundContext(partner, transport, received_at or utcnow(), request)
    if decoded is None:
        decoded = decode_message(adapter, raw, ctx, intake.log_phi)
    render = partial(_answer, adapter, decoded=decoded)
    if isinstance(decoded.error, NotOurs):
        if claim is not None and not await intake.take(claim):
            raise Replayed(detail=f"{partner.id}: replay")
        return ignored(adapter.name, partner, decoded.error, started, render)
    message_id, fingerprint = decoded.message_id, decoded.fingerprint
    if reprocessing:
        message_id = reprocessing.message_id
    decode = failed_decode(decoded.error) if decoded.error else _checked(partner, decoded.commands)

    record = InboundRecord(
        partner=partner.id,
        transport=transport,
        adapter=adapter.name,
        message_id=message_id,
        received_at=ctx.received_at,
        content_type=content_type,
        raw=raw,
        fingerprint=fingerprint,
        reprocessing=reprocessing,
    )
    outcome, rendered = await intake.receive(
        record, decode, render, ours_if_known=decoded.ours_if_known, claim=claim
    )
    if outcome.status == "ignored":
        metrics.IGNORED.labels(partner.id, adapter.name, outcome.code or "unknown").inc()
    metrics.INBOUND.labels(partner.id, adapter.name, outcome.status).inc()
    metrics.INTAKE_SECONDS.observe(time.perf_counter() - started)
    return outcome, rendered


def decode_message(adapter: Adapter, raw: bytes, ctx: InboundContext, log_phi: bool) -> Decoded:
    """The adapter's decode, whatever it raises kept as the message's error."""
    try:
        return adapter.decode(raw, ctx)
    except GatewayError as exc:
        return Decoded(error=exc)
    except Exception as exc:  # the adapter's defect, or data the contract refuses: kept, answered
        return Decoded(error=mapping_failure(exc, log_phi=log_phi))


def _answer(adapter: Adapter, outcome: Outcome, decoded: Decoded) -> bytes:
    return adapter.answer(outcome, decoded)


def _checked(partner: Partner, commands: tuple[Command, ...]) -> Decode:
    def checked() -> list[Command]:
        partner.check_commands(list(commands))
        return list(commands)

    return checked


def ignored(
    adapter: str, partner: Partner, exc: NotOurs, started: float, render: Callable[[Outcome], bytes]
) -> tuple[Outcome, bytes | None]:
    """Traffic that is not the gateway's business: answered as accepted, stored nowhere, counted."""
    outcome = Outcome(
        status="ignored",
        inbound_id=None,
        partner=partner.id,
        reason=exc.public_message,
        code=exc.reason,
        http_status=exc.http_status,
    )
    metrics.IGNORED.labels(partner.id, adapter, exc.reason).inc()
    metrics.INBOUND.labels(partner.id, adapter, "ignored").inc()
    metrics.INTAKE_SECONDS.observe(time.perf_counter() - started)
    return outcome, render(outcome)
