"""Drive the intake the way an entrypoint does, through the canonical-json adapter."""

from __future__ import annotations

import uuid

from adapters.canonical_json.adapter import adapter
from gateway.canonical.command import Command
from gateway.canonical.envelope import utcnow
from gateway.errors import GatewayError
from gateway.partners import load_partners
from gateway.registry import InboundContext
from gateway.service.intake import Decode, Intake, failed_decode
from gateway.service.outcome import Outcome
from gateway.settings import Settings
from gateway.store.repository import InboundRecord
from tests.support.builders import envelope_json

PARTNERS = load_partners(Settings().partners_file, env="test")


async def send_raw(
    intake: Intake, raw: bytes, partner: str = "demo-hospital"
) -> tuple[Outcome, bytes | None]:
    ctx = InboundContext(PARTNERS.get(partner), "http", utcnow())
    decode: Decode
    try:
        parsed = adapter.parse(raw, ctx)
    except GatewayError as exc:
        message_id, decode = None, failed_decode(exc)
    else:
        message_id = parsed.message_id

        def decode() -> list[Command]:
            return adapter.to_canonical(parsed, ctx)

    record = InboundRecord(
        partner, "http", adapter.name, message_id, ctx.received_at, "application/json", raw
    )
    return await intake.receive(record, decode, adapter.ack)


async def send(
    intake: Intake, *commands: Command, message_id: str | None = None, partner: str = "demo-hospital"
) -> Outcome:
    raw = envelope_json(message_id or str(uuid.uuid4()), *commands)
    outcome, _ = await send_raw(intake, raw, partner)
    return outcome
