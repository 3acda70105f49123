"""Decode one HL7 v2 message with its site's profile: parse (fast, escape-aware), check that it is
taken, map to commands. Pure, so that a large message can be decoded in a worker (offload.py).

What could be read but not taken comes back as `Decoded(error=...)`, never raised: the ACK needs
the message's header (its version, delimiters, MSH-10 as sent) whatever became of it. Of bytes
that do not parse, the header is read leniently from the first line (`read_header`), so that they
too are answered in their own dialect. Only a message that mapped, or failed to map, carries
its MSH-10: one refused before mapping is stored without an id, as it always was.
"""

from __future__ import annotations

from adapters.hl7v2 import er7
from adapters.hl7v2.fingerprint import fingerprint
from adapters.hl7v2.header import header, read_header
from adapters.hl7v2.profile import SiteProfile, parse_within_limits
from adapters.hl7v2.routing import check_taken, commands_for
from adapters.hl7v2.strict import validate_strictly
from gateway.sdk import ConfigError, Decoded, GatewayError, InboundContext, mapping_failure


def decode(raw: bytes, ctx: InboundContext, profile: SiteProfile | None, log_phi: bool = False) -> Decoded:
    """`raw` from `ctx.partner`, decoded with the site's `profile` (None: the site has none)."""
    try:
        if profile is None:
            raise ConfigError(detail=f"no HL7 v2 profile for partner {ctx.partner.id}")
        message = parse_within_limits(raw, profile)
    except GatewayError as exc:
        return Decoded(error=exc, content=read_header(raw))
    head = header(message)
    try:
        check_taken(head, profile)
        if profile.strict_validation:
            text = er7.strip_lead(raw).decode(message.charset).replace("\r\n", "\r").replace("\n", "\r")
            validate_strictly(text, head)
    except GatewayError as exc:
        return Decoded(error=exc, content=head)
    error: GatewayError
    try:
        commands = commands_for(message, head, profile, ctx.partner)
    except GatewayError as exc:  # NotOurs among them: answered AA, stored nowhere
        error = exc
    except Exception as exc:  # data the canonical contract refuses, or a defect: kept, answered AE
        error = mapping_failure(exc, log_phi=log_phi)
    else:
        return Decoded(head.control_id, tuple(commands), fingerprint=fingerprint(raw), content=head)
    return Decoded(head.control_id, error=error, fingerprint=fingerprint(raw), content=head)
