"""Authorisation by order (DESIGN §9): the whole matrix of partner kind x command kind x whose
order, through the core every dialect goes through, and the attacks that were once applied,
over HTTP."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.canonical_json.adapter import adapter
from gateway.canonical.catalogue import CATALOGUE
from gateway.canonical.command import Command
from gateway.canonical.parties import PartnerKind
from gateway.entrypoints.bootstrap import bootstrap
from gateway.entrypoints.http import create_app
from gateway.identity.authorise import Assignments, Authority
from gateway.outcome import Outcome
from gateway.partners import Partners, load_partners
from gateway.service.inbound import accept
from gateway.service.intake import Intake
from gateway.settings import Settings
from gateway.store import tables as t
from tests.support.builders import coi, envelope_json, event, mrn, place, placer
from tests.support.partners import OTHER_SITE, OTHER_SITE_KEY, with_second_site

# Two parties of each kind: the A side owns order A, the B side order B.
SIDES = {
    "A": {
        PartnerKind.site: "demo-hospital",
        PartnerKind.courier: "demo-courier",
        PartnerKind.manufacturer: "demo-manufacturer",
    },
    "B": {
        PartnerKind.site: OTHER_SITE,
        PartnerKind.courier: "other-courier",
        PartnerKind.manufacturer: "other-manufacturer",
    },
}
PRODUCT = {"A": "S9999", "B": "S5678"}
SHIPMENT = {"A": "SH-A", "B": "SH-B"}


def partners_file(directory: Path) -> Path:
    path = with_second_site(directory)
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    for pid, kind in (("other-courier", "courier"), ("other-manufacturer", "manufacturer")):
        document["partners"].append(
            {"id": pid, "kind": kind, "adapter": "canonical-json", "demo": True, "auth": {}}
        )
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


def authority(directory: Path) -> tuple[Partners, Authority]:
    partners = load_partners(partners_file(directory), env="test")
    makers = Assignments(("isbt128", PRODUCT[s], SIDES[s][PartnerKind.manufacturer]) for s in SIDES)
    return partners, Authority(partners, makers)


COLLECTED_DIN = "A999926000101"


def payload_for(name: str, sender: str, side: str, n: int) -> dict[str, Any]:
    """A valid payload of each event, naming the sender where the event names its sender."""
    when = "2026-11-09T08:00:00Z"
    return {
        "order.updated": {"changes": {"notes": "changed"}},
        "order.accepted": {"accepted_by": {"id": sender}},
        "patient.updated": {"patient": {"family_name": "Testpatient"}},
        "collection.scheduled": {"scheduled_start": when},
        "collection.completed": {"collected_at": when, "din": COLLECTED_DIN},
        "slot.requested": {"manufacturer": {"id": SIDES[side][PartnerKind.manufacturer]}},
        "slot.confirmed": {"manufacturer": {"id": sender}, "slot_id": f"SLOT-{n}"},
        "shipment.booked": {
            "shipment": {
                "shipment_id": SHIPMENT[side],
                "direction": "to_manufacturer",
                "courier": SIDES[side][PartnerKind.courier],
            }
        },
        "shipment.temperature_excursion": {
            "shipment_id": SHIPMENT[side],
            "temperature_c": 9.0,
            "limit_c": 8.0,
        },
        "shipment.readings_reported": {
            "shipment_id": SHIPMENT[side],
            "device_id": f"LOGGER-{side}",
            "readings": [{"at": when, "temperature_c": 5.0}],
        },
        "shipment.temperature_summary": {
            "shipment_id": SHIPMENT[side],
            "since": when,
            "until": when,
            "readings": 1,
        },
        "shipment.logger_fault": {
            "shipment_id": SHIPMENT[side],
            "device_id": f"LOGGER-{side}",
            "fault": "battery_low",
        },
        "manufacturing.deviation_closed": {"batch_id": "B1", "deviation_id": "DEV-1"},
        "order.at_risk": {"slack_s": -3600},
        "manufacturing.material_received": {"manufacturer": {"id": sender}},
        "manufacturing.step_completed": {"batch_id": "B1", "step": "expansion"},
        "manufacturing.deviation_opened": {"batch_id": "B1", "deviation_id": "DEV-1"},
        "manufacturing.qc_result": {"batch_id": "B1", "test": "sterility", "result": "pass"},
        "infusion.scheduled": {"planned_at": when},
        "infusion.completed": {"infused_at": when},
    }.get(name) or (
        {"shipment_id": SHIPMENT[side]}
        if name.startswith("shipment.")
        else {"batch_id": "B1"}
        if name.startswith("manufacturing.")
        else {}
    )


def command_for(name: str, sender: str, side: str, order_coi: str, n: int) -> Command:
    """`name` from `sender` about the order of `side` (A: the sender's side's; B: the other's)."""
    if name == "order.placed":
        # "whose order" here is whose site the placement names
        return place(100 + n, site=SIDES[side][PartnerKind.site]).model_copy(
            update={"refs": (coi(f"CHA999926M{n:05d}"),)}
        )
    if name == "patient.merged":
        survivor, prior = (
            mrn(f"MRN-{side}", SIDES[side][PartnerKind.site]),
            mrn(f"MRN-{side}2", SIDES[side][PartnerKind.site]),
        )
        return Command.model_validate(
            {"event": name, "refs": [survivor, prior], "payload": {"prior": [prior]}}
        )
    payload = payload_for(name, sender, side, n)
    if name == "manufacturing.material_received":  # the bag's scans are the order's own
        payload |= {"scanned_coi": order_coi, "din": COLLECTED_DIN}
    return event(name, coi(order_coi), **payload)


@pytest.fixture
async def journeys(engine: AsyncEngine, tmp_path: Path) -> tuple[Intake, Partners, dict[str, str]]:
    """Order A and order B, each placed by its site for its product, with a shipment declared
    with its courier; each site has a second patient to merge."""
    partners, auth = authority(tmp_path)
    gate = Intake(engine, coi_facility="A9999", authority=auth)
    cois: dict[str, str] = {}
    for side, parties in SIDES.items():
        site = parties[PartnerKind.site]
        order = place(1, site=site).model_dump(mode="json")
        order["refs"] = [mrn(f"MRN-{side}", site).model_dump(), placer(f"PO-{side}", site).model_dump()]
        order["payload"]["order"]["product"]["code"] = PRODUCT[side]
        placed = await send(gate, partners, site, Command.model_validate(order))
        assert placed.status == "applied", placed
        cois[side] = placed.coi or ""
        second = place(2, site=site).model_copy(
            update={"refs": (mrn(f"MRN-{side}2", site), placer(f"PO-{side}2", site))}
        )
        second = Command.model_validate(
            {
                **second.model_dump(mode="json"),
                "payload": {
                    **second.model_dump(mode="json")["payload"],
                    "order": {**order["payload"]["order"]},
                },
            }
        )
        assert (await send(gate, partners, site, second)).status == "applied"
        declared = event(
            "shipment.booked",
            coi(cois[side]),
            shipment={
                "shipment_id": SHIPMENT[side],
                "direction": "to_manufacturer",
                "courier": parties[PartnerKind.courier],
            },
        )
        assert (await send(gate, partners, site, declared)).status == "applied"
    return gate, partners, cois


async def send(gate: Intake, partners: Partners, sender: str, command: Command) -> Outcome:
    raw = envelope_json(f"{sender}-{time.perf_counter_ns()}", command)
    outcome, _ = await accept(gate, adapter, partners.get(sender), raw, transport="http")
    return outcome


def allowed(kind: PartnerKind, name: str, whose: str) -> bool:
    return kind in CATALOGUE[name].senders and whose == "own"


async def test_every_forbidden_cell_of_the_matrix_is_refused_and_every_allowed_one_passes_the_check(
    engine: AsyncEngine, journeys: tuple[Intake, Partners, dict[str, str]]
) -> None:
    gate, partners, cois = journeys
    terminal = ("order.cancelled", "order.rejected", "manufacturing.failed")  # last: they end the order
    names = [n for n, spec in CATALOGUE.items() if spec.senders and n not in terminal] + list(terminal)
    refused, passed, applied, n = 0, 0, 0, 0
    for name, kind, whose in itertools.product(names, PartnerKind, ("own", "other")):
        n += 1
        sender = SIDES["A"][kind]
        side = "A" if whose == "own" else "B"
        outcome = await send(gate, partners, sender, command_for(name, sender, side, cois[side], n))
        cell = (kind.value, name, whose, outcome.status, outcome.error, outcome.reason)
        if allowed(kind, name, whose):
            assert outcome.error != "NotPermitted", cell
            passed += 1
            applied += outcome.status == "applied"
        else:
            assert outcome.status == "rejected" and outcome.error == "NotPermitted", cell
            assert outcome.http_status == 403, cell
            refused += 1
    async with engine.connect() as conn:
        rejected = (
            await conn.execute(
                select(t.audit_records.c.actor, t.audit_records.c.detail).where(
                    t.audit_records.c.action == "message.rejected"
                )
            )
        ).all()
    assert sum("NotPermitted" in str(r.detail) for r in rejected) == refused
    # every kind may send something, and is refused most things
    assert refused > 2 * passed > 0
    assert applied > passed / 2  # the allowed cells mostly apply: the walk exercises real work
    assert n == 3 * len(names) * 2


async def test_what_one_partner_is_refused_changes_nothing_of_the_order(
    engine: AsyncEngine, journeys: tuple[Intake, Partners, dict[str, str]]
) -> None:
    gate, partners, cois = journeys
    async with engine.connect() as conn:
        before = (await conn.execute(select(t.orders.c.document).order_by(t.orders.c.order_id))).all()
    for sender, name in (
        (OTHER_SITE, "order.held"),
        (OTHER_SITE, "order.cancelled"),
        ("demo-courier", "order.cancelled"),
        ("other-manufacturer", "manufacturing.started"),
        ("other-courier", "shipment.delivered"),
    ):
        outcome = await send(gate, partners, sender, command_for(name, sender, "A", cois["A"], 0))
        assert outcome.error == "NotPermitted", (sender, name, outcome)
    async with engine.connect() as conn:
        after = (await conn.execute(select(t.orders.c.document).order_by(t.orders.c.order_id))).all()
    assert after == before


# -- the attacks that were once answered "201 applied", over the real HTTP entry point ----------


def courier_headers(body: bytes) -> dict[str, str]:
    stamp = str(int(time.time()))
    signature = hmac.new(b"demo-courier-secret", stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {
        "X-CGT-Partner": "demo-courier",
        "X-CGT-Timestamp": stamp,
        "X-CGT-Signature": f"sha256={signature}",
    }


async def test_over_http_no_partner_acts_on_another_sites_order(tmp_path: Path, amqp_url: str) -> None:
    settings = Settings(
        env="test",
        database_url=f"sqlite+aiosqlite:///{tmp_path}/gw.db",
        amqp_url=amqp_url,
        partners_file=with_second_site(tmp_path),
        adapters="canonical-json",
    )
    gateway = bootstrap(settings)
    await gateway.start()
    site_a = {"X-API-Key": "demo-hospital-key", "Content-Type": "application/json"}
    site_b = {"X-API-Key": OTHER_SITE_KEY, "Content-Type": "application/json"}
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(gateway)), base_url="http://gw"
        ) as http:
            placed = (
                await http.post("/api/messages", content=envelope_json("a1", place(1)), headers=site_a)
            ).json()
            the_coi = coi(placed["coi"])
            attacks = [
                (site_b, envelope_json("b1", event("order.held", the_coi, reason="mine now"))),
                (
                    site_b,
                    envelope_json(
                        "b2",
                        event(
                            "patient.updated",
                            the_coi,
                            patient={"family_name": "Other", "birth_date": "2001-02-03"},
                        ),
                    ),
                ),
                (site_b, envelope_json("b3", place(3))),  # ordering_site: demo-hospital, sent by another site
                (None, envelope_json("c1", event("order.cancelled", the_coi))),
                (None, envelope_json("c2", place(4).model_copy(update={"refs": (coi("CHA999926COUR01"),)}))),
            ]
            for headers, body in attacks:
                response = await http.post(
                    "/api/messages",
                    content=body,
                    headers=headers or {**courier_headers(body), "Content-Type": "application/json"},
                )
                assert response.status_code == 403, response.text
                problem = response.json()
                assert response.headers["content-type"].startswith("application/problem+json")
                assert problem["outcome"] == "rejected"
            order = (
                await http.get(f"/api/orders/{placed['coi']}", headers={"X-API-Key": "demo-operator-key"})
            ).json()
            assert order["order"]["status"] == "ordered"
            assert order["order"]["patient"]["family_name"] == "Testpatient"
    finally:
        await gateway.stop()
