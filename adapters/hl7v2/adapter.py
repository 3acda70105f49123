"""The hl7v2 adapter: parse (fast, escape-aware), map per the site's profile, acknowledge in kind.

An ACK answers in the acknowledged message's own version, delimiters and mode, so it needs that
message's header. `ack(outcome)` alone has only the Outcome (MSA-2 = its message id, v2.5.1); the
MLLP listener hands `accept()` the adapter `answering(raw)`, whose `ack` knows the header. (The
intake may render on another thread, so nothing here rests on task-local state.) `parse` also
maps, so that the intake's write transaction, which calls `to_canonical`, only applies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from adapters.hl7v2 import ack as acks
from adapters.hl7v2 import er7
from adapters.hl7v2.fingerprint import fingerprint
from adapters.hl7v2.header import Header, header, read_header
from adapters.hl7v2.profile import PROFILES, SiteProfile, load_profile, parse_within_limits
from adapters.hl7v2.routing import check_taken, commands_for
from adapters.hl7v2.serve import start_hl7v2
from adapters.hl7v2.strict import validate_strictly
from gateway.canonical.command import Command
from gateway.errors import NotOurs
from gateway.partners import Partner
from gateway.registry import Example, ExternalMessage, InboundContext, Running, Runtime
from gateway.service.outcome import Outcome

EXAMPLES = Path(__file__).parent / "examples"
CONTENT_TYPE = "x-application/hl7-v2+er7"


@dataclass(frozen=True)
class Parsed:
    message: er7.Message
    header: Header
    profile: SiteProfile
    mapped: list[Command] | Exception  # mapped at parse time; an Exception is raised by to_canonical


class Hl7v2:
    name = "hl7v2"
    dialect = "HL7 v2.2-2.8.2, ER7 over MLLP"
    content_type = CONTENT_TYPE

    def __init__(
        self,
        profiles: Path = PROFILES,
        *,
        read_timeout: float | None = None,
        frame_limit: int | None = None,
        queue_prefix: str = "hl7v2",
    ) -> None:
        self.profiles = profiles
        self.queue_prefix = queue_prefix  # outbound queues: cgt.consumer.<prefix>.<partner>
        self.read_timeout = read_timeout  # a frame's deadline; default: CGT_MLLP_FRAME_SECONDS (30 s)
        self.frame_limit = frame_limit  # default: CGT_MAX_BODY_BYTES (1 MiB)

    def profile_for(self, partner: Partner) -> SiteProfile:
        return load_profile(partner.profile or partner.id, self.profiles)

    def parse(self, raw: bytes, ctx: InboundContext) -> ExternalMessage:
        profile = self.profile_for(ctx.partner)
        message = parse_within_limits(raw, profile)
        head = header(message)
        check_taken(head, profile)
        if profile.strict_validation:
            text = er7.strip_lead(raw).decode(message.charset).replace("\r\n", "\r").replace("\n", "\r")
            validate_strictly(text, head)
        # Map now, on the caller's thread: the intake runs `to_canonical` inside its write
        # transaction (on the database's writer thread), which should only apply, not compute.
        # A mapping failure is kept and raised by to_canonical, where the intake expects it.
        mapped: list[Command] | Exception
        try:
            mapped = commands_for(message, head, profile, ctx.partner)
        except NotOurs:
            raise  # answered AA and stored nowhere: it must leave from parse
        except Exception as exc:  # re-raised as is: the intake translates it as it always does
            mapped = exc
        return ExternalMessage(
            message_id=head.control_id,
            content=Parsed(message, head, profile, mapped),
            fingerprint=fingerprint(raw),
        )

    def to_canonical(self, msg: ExternalMessage, ctx: InboundContext) -> list[Command]:
        parsed: Parsed = msg.content
        if isinstance(parsed.mapped, Exception):
            raise parsed.mapped
        return list(parsed.mapped)

    def ack(self, outcome: Outcome) -> bytes:
        return acks.render(None, acks.verdict_of(outcome), control_id=outcome.message_id)

    def answering(self, raw: bytes) -> Answering:
        """This adapter, acknowledging the message `raw` in its own version, delimiters and mode."""
        return Answering(self, read_header(raw))

    def examples(self) -> Sequence[Example]:
        return [
            Example(path.stem, path.read_bytes(), "malformed" if "malformed" in path.stem else "valid")
            for path in sorted(EXAMPLES.glob("*.hl7"))
        ]

    async def start_transport(self, runtime: Runtime) -> Running:
        return await start_hl7v2(self, runtime)


class Answering:
    """The adapter for one message: parses and maps as the adapter does; acknowledges in kind."""

    def __init__(self, adapter: Hl7v2, head: Header | None) -> None:
        self.adapter, self.head = adapter, head
        self.name, self.dialect, self.content_type = adapter.name, adapter.dialect, adapter.content_type

    def parse(self, raw: bytes, ctx: InboundContext) -> ExternalMessage:
        return self.adapter.parse(raw, ctx)

    def to_canonical(self, msg: ExternalMessage, ctx: InboundContext) -> list[Command]:
        return self.adapter.to_canonical(msg, ctx)

    def ack(self, outcome: Outcome) -> bytes:
        control_id = outcome.message_id or (self.head.control_id if self.head else None)
        return acks.render(self.head, acks.verdict_of(outcome), control_id=control_id)

    def examples(self) -> Sequence[Example]:
        return self.adapter.examples()


adapter = Hl7v2()
