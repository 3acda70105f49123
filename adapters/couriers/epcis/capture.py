"""The EPCIS REST binding's side of a capture: its request headers, its capture job, and its
errors (RFC 7807 problems of GS1's `epcisException:` types).

    GS1-EPCIS-Version            2.0.x taken; another: 406 epcisException:NotAcceptableException
    GS1-Capture-Error-Behaviour  rollback (default: a bad event refuses the whole document) or
                                 proceed (the good events are applied, the bad ones listed)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import orjson

from adapters.couriers.epcis.mapping import EventError
from gateway.sdk import MappingError, Outcome, utcnow

Behaviour = Literal["rollback", "proceed"]
VERSION = "2.0.0"
_TAKEN_VERSION = re.compile(r"^2\.0(\.\d+)?$")

VALIDATION = "epcisException:ValidationException"
NOT_ACCEPTABLE = "epcisException:NotAcceptableException"
SECURITY = "epcisException:SecurityException"
NO_SUCH_RESOURCE = "epcisException:NoSuchResourceException"
IMPLEMENTATION = "epcisException:ImplementationException"

# the gateway's error class -> the binding's problem type and HTTP status
TYPES: dict[str, tuple[str, int]] = {
    "VersionNotAccepted": (NOT_ACCEPTABLE, 406),
    "NotAuthenticated": (SECURITY, 401),
    "NotPermitted": (SECURITY, 403),
    "InternalError": (IMPLEMENTATION, 500),
    "TransientError": (IMPLEMENTATION, 503),
    "ConcurrentChange": (IMPLEMENTATION, 503),
}


class VersionNotAccepted(MappingError):
    """A GS1-EPCIS-Version this endpoint does not speak."""

    http_status = 406


class DocumentRefused(MappingError):
    """The document's events, or some of them, cannot be captured (rollback: none is)."""

    http_status = 400

    def __init__(self, errors: tuple[EventError, ...], events: int) -> None:
        shown = "; ".join(f"{e.location}: {e.reason}" for e in errors[:5])
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        super().__init__(
            f"{len(errors)} of {events} events cannot be captured: {shown}{more}",
            location=errors[0].location if errors else None,
        )


@dataclass(frozen=True)
class CaptureRequest:
    """What the binding's headers say about the document (InboundContext.request)."""

    version: str | None = None
    behaviour: str | None = None
    webhook_id: str | None = None


@dataclass(frozen=True)
class Capture:
    """Decoded.content: what the capture job reports beside the outcome."""

    received_at: datetime
    behaviour: Behaviour
    errors: tuple[EventError, ...] = ()
    events: int = 0


def behaviour_of(request: CaptureRequest) -> Behaviour:
    """The capture's error behaviour; MappingError for anything but rollback or proceed."""
    given = (request.behaviour or "rollback").strip().lower()
    if given == "rollback":
        return "rollback"
    if given == "proceed":
        return "proceed"
    raise MappingError(
        "GS1-Capture-Error-Behaviour must be rollback or proceed", location="GS1-Capture-Error-Behaviour"
    )


def check_version(request: CaptureRequest) -> None:
    if request.version is not None and not _TAKEN_VERSION.match(request.version.strip()):
        raise VersionNotAccepted(f"GS1-EPCIS-Version {request.version[:20]!r} is not supported: 2.0.x is")


def problem_of_error(error: str | None, reason: str | None) -> dict[str, Any]:
    kind, status = TYPES.get(error or "", (VALIDATION, 400))
    return {"type": kind, "title": reason or error or "the document cannot be captured", "status": status}


def event_problems(errors: tuple[EventError, ...]) -> list[dict[str, Any]]:
    return [{"type": VALIDATION, "title": e.reason, "status": 400, "instance": e.location} for e in errors]


def job(
    capture_id: str | None,
    created_at: datetime,
    behaviour: str | None,
    *,
    success: bool,
    errors: list[dict[str, Any]],
    finished_at: datetime | None = None,
) -> dict[str, Any]:
    """The binding's CaptureJob: our captures finish before the 202, so `running` is false."""
    return {
        "captureID": capture_id,
        "createdAt": created_at.isoformat().replace("+00:00", "Z"),
        "finishedAt": (finished_at or utcnow()).isoformat().replace("+00:00", "Z"),
        "running": False,
        "success": success,
        "captureErrorBehaviour": behaviour,
        "errors": errors,
    }


def answer(outcome: Outcome, capture: Capture | None) -> bytes:
    """The capture job (applied, quarantined, ignored), or the binding's problem (refused), which
    names the capture id too: the job stays readable."""
    received = capture.received_at if capture else utcnow()
    behaviour = capture.behaviour if capture else None
    listed = event_problems(capture.errors) if capture else []
    if outcome.status == "rejected":
        body = problem_of_error(outcome.error, outcome.reason)
        if outcome.location:
            body["instance"] = outcome.location
        body.update({"captureID": outcome.inbound_id, "errors": listed})
        return orjson.dumps(body)
    if outcome.status == "quarantined":
        held = {**problem_of_error(outcome.error, outcome.reason), "outcome": "quarantined"}
        return orjson.dumps(
            job(outcome.inbound_id, received, behaviour, success=False, errors=[*listed, held])
        )
    return orjson.dumps(job(outcome.inbound_id, received, behaviour, success=not listed, errors=listed))


def as_decided(answered: bytes, status: str) -> bytes:
    """A held document's job once its review is decided: released (the message now `applied`),
    its events applied; rejected, refused. Any other job as it was answered."""
    job_ = orjson.loads(answered)
    errors = job_.get("errors") or []
    if status == "quarantined" or not any(e.get("outcome") == "quarantined" for e in errors):
        return answered
    kept = [e for e in errors if e.get("outcome") != "quarantined"]
    if status != "applied":
        kept.append({"type": VALIDATION, "title": "rejected in review", "status": 400, "outcome": "rejected"})
    return orjson.dumps({**job_, "success": not kept, "errors": kept})
