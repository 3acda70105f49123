"""Drive the intake the way an entrypoint does, through the canonical-json adapter."""

from __future__ import annotations

import uuid

from adapters.canonical_json.adapter import adapter
from gateway.canonical.command import Command
from gateway.identity.authorise import Authority, load_assignments
from gateway.outcome import Outcome
from gateway.partners import load_partners
from gateway.service.inbound import accept
from gateway.service.intake import Intake
from gateway.settings import Settings
from tests.support.builders import envelope_json

PARTNERS = load_partners(Settings().partners_file, env="test")
AUTHORITY = Authority(PARTNERS, load_assignments(Settings().assignments_file, PARTNERS))


async def send_raw(
    intake: Intake, raw: bytes, partner: str = "demo-hospital"
) -> tuple[Outcome, bytes | None]:
    return await accept(intake, adapter, PARTNERS.get(partner), raw, transport="http")


async def send(
    intake: Intake, *commands: Command, message_id: str | None = None, partner: str = "demo-hospital"
) -> Outcome:
    raw = envelope_json(message_id or str(uuid.uuid4()), *commands)
    outcome, _ = await send_raw(intake, raw, partner)
    return outcome
