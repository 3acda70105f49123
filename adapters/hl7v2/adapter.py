"""The hl7v2 adapter: decode (parse, map per the site's profile) and answer in kind.

An ACK answers in the acknowledged message's own version, delimiters and mode: `decode` keeps the
message's header in `Decoded.content`, and `answer` renders from it. Decoding maps too, so that
the intake's write transaction only applies. Site profiles are loaded and checked when the
gateway starts (`configure`), from the settings' folder for `hl7v2`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from adapters.hl7v2 import ack as acks
from adapters.hl7v2.decoding import decode
from adapters.hl7v2.header import Header
from adapters.hl7v2.profile import SiteProfile, site_profiles
from adapters.hl7v2.serve import Options, start_hl7v2
from gateway.sdk import (
    ConfigError,
    Decoded,
    Example,
    InboundContext,
    Outcome,
    Partner,
    PartnerKind,
    Partners,
    Running,
    Runtime,
    Settings,
)

EXAMPLES = Path(__file__).parent / "examples"
CONTENT_TYPE = "x-application/hl7-v2+er7"


class Hl7v2:
    name = "hl7v2"
    dialect = "HL7 v2.2-2.8.2, ER7 over MLLP"
    content_type = CONTENT_TYPE
    partner_kinds = (PartnerKind.site,)  # hospitals' EHRs

    def __init__(
        self,
        *,
        read_timeout: float | None = None,
        frame_limit: int | None = None,
        queue_prefix: str = "hl7v2",
    ) -> None:
        self.profiles = site_profiles()
        self.log_phi = False
        self.options = Options(
            read_timeout=read_timeout,  # a frame's deadline; default: CGT_MLLP_FRAME_SECONDS (30 s)
            frame_limit=frame_limit,  # default: CGT_MAX_BODY_BYTES (1 MiB)
            queue_prefix=queue_prefix,  # outbound queues: cgt.consumer.<prefix>.<partner>
        )

    def configure(self, settings: Settings, partners: Partners) -> None:
        """Load every site profile, and refuse to start when a site on MLLP has none of its own."""
        self.profiles.load(settings)
        self.log_phi = settings.log_phi
        for partner in partners:
            on_mllp = partner.kind is PartnerKind.site and partner.auth.mllp is not None
            if on_mllp and self.profiles.for_partner(partner) is None:  # someone else's: ConfigError
                name = partner.profile or partner.id
                raise ConfigError(
                    f"partner {partner.id} sends HL7 v2 over MLLP but has no profile:"
                    f" {self.profiles.directory_for(settings) / name}.yaml"
                )

    def profile_for(self, partner: Partner) -> SiteProfile | None:
        if self.profiles.directory is None:
            raise ConfigError(detail="HL7 v2 profiles not loaded: configure() runs at start-up")
        return self.profiles.for_partner(partner)

    def rejection_notice(self, partner: Partner) -> str | None:
        """A site with an outbound link hears of a rejected message: an application reject."""
        profile = self.profile_for(partner) if self.profiles.directory is not None else None
        if profile is None or profile.outbound is None:
            return None
        return "an application reject (ACK, MSA AR naming the message) on the site's outbound MLLP link"

    def decode(self, raw: bytes, ctx: InboundContext) -> Decoded:
        return decode(raw, ctx, self.profile_for(ctx.partner), self.log_phi)

    def answer(self, outcome: Outcome, decoded: Decoded | None) -> bytes:
        head = decoded.content if decoded is not None and isinstance(decoded.content, Header) else None
        control_id = outcome.message_id or (head.control_id if head else None)
        return acks.render(head, acks.verdict_of(outcome), control_id=control_id)

    def examples(self) -> Sequence[Example]:
        return [
            Example(path.stem, path.read_bytes(), "malformed" if "malformed" in path.stem else "valid")
            for path in sorted(EXAMPLES.glob("*.hl7"))
        ]

    async def start_transport(self, runtime: Runtime) -> Running:
        if self.profiles.directory is None:  # made after start-up's configure(): load now
            self.configure(runtime.settings, runtime.partners)
        return await start_hl7v2(self, self.profiles, runtime, self.options)


adapter = Hl7v2()
