"""An adapter's mapping as the intake runs it: whatever goes wrong there is the message's fault or
the adapter's, never a reason to lose the message."""

from __future__ import annotations

import logging
from collections.abc import Callable

from pydantic import ValidationError

from gateway.canonical.command import Command
from gateway.errors import ContractViolation, GatewayError, MappingError
from gateway.outcome import Outcome

log = logging.getLogger("gateway.service.intake")

Decode = Callable[[], list[Command]]
Render = Callable[[Outcome], bytes]


def decoded(decode: Decode, *, log_phi: bool) -> list[Command]:
    """Run the adapter's pure mapping; what it raises comes out as a GatewayError."""
    try:
        return decode()
    except GatewayError:
        raise
    except Exception as exc:
        raise mapping_failure(exc, log_phi=log_phi) from exc


def mapping_failure(exc: Exception, *, log_phi: bool = False) -> GatewayError:
    """What an adapter's mapping raised, as the error the message is answered with: data that
    breaks the canonical contract, or (a defect of the adapter's) a mapping error; kept either way."""
    if isinstance(exc, ValidationError):
        errors = exc.errors()
        where = "/".join(str(p) for p in errors[0]["loc"]) if errors else ""
        return ContractViolation(
            f"the message breaks the canonical contract at {where or 'the top'}",
            detail=errors[0]["msg"] if errors else exc.title,
            location=where or None,
        )
    # A defect's traceback may quote the payload: only when patient data may be logged.
    log.error("adapter failed to map a message (%s)", type(exc).__name__, exc_info=log_phi)
    return MappingError(detail=f"adapter error {type(exc).__name__}")


def failed_decode(exc: GatewayError) -> Decode:
    """A decode step for a message that could not even be parsed: it is still stored."""

    def decode() -> list[Command]:
        raise exc

    return decode
