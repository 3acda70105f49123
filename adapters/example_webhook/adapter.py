"""The example-webhook dialect: a lab courier's "sample picked up / handed over / delivered" events,
signed with Standard Webhooks, POSTed to `/webhooks/lab-courier/{partner}`.

decode: JSON -> `wire.CourierEvent` -> the canonical shipment event that `mappings/example_webhook/
events.yaml` names for its type (a type not named there is not ours). answer: the outcome as JSON,
or an RFC 9457 problem. Everything it uses of the core comes from `gateway.sdk`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC
from pathlib import Path

import orjson
import yaml
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, ValidationError

from adapters.example_webhook.wire import CourierEvent, SampleData
from gateway.sdk import (
    COI_NAMESPACE,
    ROOT,
    Command,
    ConfigError,
    Decoded,
    Example,
    ExternalRef,
    InboundContext,
    MalformedMessage,
    MappingError,
    NotOurs,
    Outcome,
    StandardWebhooks,
    WebhookRoute,
    examples_in,
    fingerprint,
    outcome_json,
    validate_coi,
    webhook_router,
)

EXAMPLES = Path(__file__).parent / "examples"
EVENTS_FILE = ROOT / "mappings" / "example_webhook" / "events.yaml"


class EventTable(BaseModel):
    """events.yaml: the courier's event type -> the canonical event it is."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    events: dict[str, str]


def load_events(path: Path = EVENTS_FILE) -> EventTable:
    """Read at start-up (when the entry point loads): a bad table refuses to start, naming the file."""
    try:
        table = EventTable.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
        for event in table.events.values():  # each must be a canonical shipment update
            probe = {"shipment_id": "probe"}
            Command.model_validate(
                {"event": event, "refs": [{"namespace": "coi", "value": "x"}], "payload": probe}
            )
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise ConfigError(f"example-webhook events {path}: {exc}") from exc
    return table


def _pointer(exc: ValidationError, prefix: str = "") -> str:
    loc = exc.errors()[0]["loc"] if exc.errors() else ()
    return prefix + "/" + "/".join(str(p) for p in loc)


class ExampleWebhook:
    name = "example-webhook"
    dialect = "lab courier webhook (JSON, Standard Webhooks)"
    content_type = "application/json"

    def __init__(self, events: EventTable) -> None:
        self.events = events

    def decode(self, raw: bytes, ctx: InboundContext) -> Decoded:
        try:
            event = CourierEvent.model_validate(orjson.loads(raw))
        except orjson.JSONDecodeError as exc:
            raise MalformedMessage("the body is not JSON", detail=str(exc)) from None
        except ValidationError as exc:
            where = _pointer(exc)
            raise MalformedMessage(f"the body is not a courier event (at {where})", location=where) from None
        canonical = self.events.events.get(event.type)
        if canonical is None:
            return Decoded(event.id, error=NotOurs("not_a_sample_event", detail=f"type {event.type}"))
        try:
            command = self._command(canonical, event)
        except (ValidationError, ValueError) as exc:
            where = _pointer(exc, "/data") if isinstance(exc, ValidationError) else "/data/coi"
            error = MappingError(f"the event's data cannot be mapped (at {where})", location=where)
            return Decoded(event.id, error=error)
        return Decoded(event.id, (command,), fingerprint=fingerprint([command]))

    def _command(self, canonical: str, event: CourierEvent) -> Command:
        data = SampleData.model_validate(event.data)
        return Command.model_validate(
            {
                "event": canonical,
                "refs": [ExternalRef(namespace=COI_NAMESPACE, value=validate_coi(data.coi))],
                "payload": {
                    "occurred_at": event.timestamp.astimezone(UTC),
                    "shipment_id": data.shipment_id,
                    "location": data.location,
                    "custodian": data.handed_to,
                    "expected_delivery": data.expected_delivery,
                },
            }
        )

    def answer(self, outcome: Outcome, decoded: Decoded | None) -> bytes:
        return outcome_json(outcome)

    def examples(self) -> Sequence[Example]:
        return examples_in(EXAMPLES, "*.json")

    def http_routes(self) -> APIRouter:
        return webhook_router(self, WebhookRoute("/webhooks/lab-courier/{partner}", StandardWebhooks()))


adapter = ExampleWebhook(load_events())
