"""The capture job a courier reads back (GET .../capture/{id}), from the message as kept: as it
was answered, as a review decided a held document since, or rebuilt for a refused document."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from adapters.couriers.epcis.adapter import adapter
from adapters.couriers.epcis.capture import Capture, answer
from adapters.couriers.epcis.routes import job_of
from gateway.partners import load_partners
from gateway.sdk import KeptMessage, Outcome
from gateway.settings import Settings

COURIER = load_partners(Settings().partners_file, env="test").get("demo-courier")
AT = datetime(2026, 11, 9, 8, 0, tzinfo=UTC)
CAPTURE = Capture(AT, "rollback")


def kept(status: str, answered: bytes | None, raw: bytes = b"{}", error: str | None = None) -> KeptMessage:
    return KeptMessage("in-1", "epcis", AT, status, error, raw, answered)


def read(message: KeptMessage) -> dict[str, object]:
    job: dict[str, object] = orjson.loads(job_of(adapter, message, COURIER))
    return job


def test_an_applied_capture_reads_as_answered() -> None:
    answered = answer(Outcome(status="applied", inbound_id="in-1", partner=COURIER.id), CAPTURE)
    assert job_of(adapter, kept("applied", answered), COURIER) == answered
    assert read(kept("applied", answered))["success"] is True


def test_a_held_capture_reads_as_its_review_decided() -> None:
    held = Outcome(
        status="quarantined",
        inbound_id="in-1",
        partner=COURIER.id,
        error="ConflictingIdentities",
        reason="the identifiers name different orders",
        http_status=202,
    )
    answered = answer(held, CAPTURE)
    waiting = read(kept("quarantined", answered))
    assert waiting["success"] is False and waiting["errors"][-1]["outcome"] == "quarantined"  # type: ignore[index]
    released = read(kept("applied", answered))
    assert released["success"] is True and released["errors"] == []
    refused = read(kept("rejected", answered))
    assert refused["success"] is False
    assert [e["outcome"] for e in refused["errors"]] == ["rejected"]  # type: ignore[attr-defined]


def test_a_refused_capture_is_rebuilt_from_its_bytes() -> None:
    bad = adapter.examples()
    raw = next(e.raw for e in bad if e.name == "malformed_in_transport")
    job = read(kept("rejected", None, raw, "DocumentRefused"))
    assert job["success"] is False and job["captureID"] == "in-1"
    assert [e["instance"] for e in job["errors"]] == ["/epcisBody/eventList/0/disposition"]  # type: ignore[attr-defined]
    version = read(
        kept("rejected", None, next(e.raw for e in bad if e.expect == "valid"), "VersionNotAccepted")
    )
    assert version["errors"][0]["type"] == "epcisException:NotAcceptableException"  # type: ignore[index]
