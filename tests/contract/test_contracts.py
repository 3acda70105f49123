"""The committed contracts are what the models generate, and what the gateway publishes obeys them."""

from __future__ import annotations

import orjson
from jsonschema import Draft202012Validator
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.canonical.catalogue import CATALOGUE
from gateway.contracts import CONTRACTS_DIR, asyncapi, drift, event_schema
from gateway.service.intake import Intake
from gateway.store import tables as t
from tests.support.builders import coi, event, mrn, place, placer
from tests.support.drive import AUTHORITY, send


def test_committed_contracts_match_the_models() -> None:
    assert drift(CONTRACTS_DIR) == [], "run: cgt-gateway contracts export"


def test_the_asyncapi_document_has_one_channel_and_operation_per_event() -> None:
    document = asyncapi()
    assert document["asyncapi"] == "3.0.0"
    assert set(document["channels"]) == set(CATALOGUE)
    assert set(document["operations"]) == {f"publish.{name}" for name in CATALOGUE}
    for name, channel in document["channels"].items():
        assert channel["address"] == name
        assert channel["bindings"]["amqp"]["exchange"]["name"] == "cgt.events"
    committed = orjson.loads((CONTRACTS_DIR / "asyncapi.json").read_bytes())
    assert committed == document


def test_every_schema_is_a_valid_json_schema() -> None:
    for spec in CATALOGUE.values():
        Draft202012Validator.check_schema(event_schema(spec))


async def test_every_event_the_service_publishes_obeys_its_schema(engine: AsyncEngine) -> None:
    gate = Intake(engine, coi_facility="A9999", authority=AUTHORITY)
    placed = await send(gate, place(1))
    the_coi = coi(placed.coi or "")
    site, courier, maker = "demo-hospital", "demo-courier", "demo-manufacturer"
    journey = [
        (site, event("collection.scheduled", placer("PO-000001"), scheduled_start="2026-11-09T08:00:00Z")),
        (
            site,
            event("collection.completed", the_coi, collected_at="2026-11-09T12:00:00Z", din="A999921123456"),
        ),
        (
            site,
            event(
                "shipment.booked",
                the_coi,
                shipment={
                    "shipment_id": "S1",
                    "direction": "to_manufacturer",
                    "temperature_class": "2-8C",
                    "courier": courier,
                },
            ),
        ),
        (courier, event("shipment.picked_up", the_coi, shipment_id="S1", occurred_at="2026-11-09T13:00:00Z")),
        (
            courier,
            event(
                "shipment.temperature_excursion", the_coi, shipment_id="S1", temperature_c=9.5, limit_c=8.0
            ),
        ),
        (courier, event("shipment.delivered", the_coi, shipment_id="S1")),
        (maker, event("manufacturing.started", the_coi, batch_id="B1")),
        (maker, event("manufacturing.qc_result", the_coi, batch_id="B1", test="sterility", result="pass")),
        (maker, event("order.held", the_coi, reason="QC review")),
        (maker, event("order.resumed", the_coi)),
        (site, event("patient.updated", mrn("MRN-000001"), patient={"family_name": "Testpatient"})),
        (site, event("order.cancelled", placer("PO-404"))),  # quarantined: identity.mismatch
    ]
    for partner, command in journey:
        outcome = await send(gate, command, partner=partner)
        assert outcome.status in ("applied", "quarantined"), (command.event, outcome)
    async with engine.connect() as conn:
        bodies = [row.body for row in await conn.execute(select(t.outbox.c.body, t.outbox.c.routing_key))]
    seen = set()
    for body in bodies:
        document = orjson.loads(body)
        name = document["type"].removeprefix("org.cgt.")
        seen.add(name)
        schema = orjson.loads((CONTRACTS_DIR / "schemas" / f"{name}.json").read_bytes())
        errors = list(Draft202012Validator(schema).iter_errors(document))
        assert errors == [], (name, [e.message for e in errors])
    assert {"order.placed", "shipment.temperature_excursion", "patient.updated", "identity.mismatch"} <= seen


def test_the_readme_names_every_event_in_the_catalogue() -> None:
    readme = (CONTRACTS_DIR.parent / "README.md").read_text()
    missing = [name for name in CATALOGUE if f"`{name}`" not in readme]
    assert missing == [], f"README's event table lacks {missing}"
