"""The Door port (gateway.ports.Door) over the intake: how every transport hands a message in."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from gateway.adapter_contract import Adapter, Decoded
from gateway.canonical.envelope import utcnow
from gateway.claims import Claim
from gateway.errors import GatewayError
from gateway.outcome import Outcome
from gateway.partners import Partner
from gateway.service.inbound import accept
from gateway.service.intake import Intake, failed_decode
from gateway.store.records import InboundRecord

# Not a valid partner id, so it never names a real partner.
UNKNOWN_PREFIX = "unknown:"


class IntakeDoor:
    def __init__(self, intake: Intake) -> None:
        self.intake = intake

    async def accept(
        self,
        adapter: Adapter,
        partner: Partner,
        raw: bytes,
        *,
        transport: str,
        content_type: str | None = None,
        received_at: datetime | None = None,
        request: object | None = None,
        decoded: Decoded | None = None,
        claim: Claim | None = None,
    ) -> tuple[Outcome, bytes | None]:
        return await accept(
            self.intake,
            adapter,
            partner,
            raw,
            transport=transport,
            content_type=content_type,
            received_at=received_at,
            request=request,
            decoded=decoded,
            claim=claim,
        )

    async def keep_unattributed(
        self,
        adapter: str,
        raw: bytes,
        error: GatewayError,
        answer: Callable[[Outcome], bytes],
        *,
        transport: str,
        content_type: str | None = None,
    ) -> tuple[Outcome, bytes | None]:
        record = InboundRecord(
            partner=f"{UNKNOWN_PREFIX}{transport}",
            transport=transport,
            adapter=adapter,
            message_id=None,
            received_at=utcnow(),
            content_type=content_type,
            raw=raw,
        )
        return await self.intake.receive(record, failed_decode(error), answer)
