"""The chain of custody over HTTP on both databases: a full inbound and outbound leg from
collection to infusion with no gap, a gap reported as such, the reading rights of the order's
parties, and the certificate (PDF) parsed for the COI and every audit hash."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator

import httpx
import pytest
from pypdf import PdfReader
from sqlalchemy import select

from gateway.entrypoints.bootstrap import Gateway, bootstrap
from gateway.entrypoints.http import create_app
from gateway.settings import Settings
from gateway.store import tables as t
from tests.support.builders import coi, event
from tests.support.drive import send
from tests.support.journey import DIN, journey

OPERATOR = {"X-API-Key": "demo-operator-key"}
HOSPITAL = {"X-API-Key": "demo-hospital-key"}
OTHER = {"X-API-Key": "other-hospital-key"}


@pytest.fixture
async def running(
    database_url: str, amqp_url: str, tmp_path: object
) -> AsyncIterator[tuple[httpx.AsyncClient, Gateway]]:
    from pathlib import Path

    from tests.support.partners import with_second_site

    partners = with_second_site(Path(str(tmp_path)))
    settings = Settings(
        env="test", database_url=database_url, amqp_url=amqp_url, mllp_port=0, partners_file=partners
    )
    gateway = bootstrap(settings)
    await gateway.start()
    transport = httpx.ASGITransport(app=create_app(gateway))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
        yield http, gateway
    await gateway.stop()


async def test_a_full_journey_has_a_chain_of_custody_without_gaps(
    running: tuple[httpx.AsyncClient, Gateway],
) -> None:
    http, gateway = running
    seeded = await journey(gateway.intake, gateway.engine)
    answer = await http.get(f"/api/orders/{seeded.coi}/custody", headers=OPERATOR)
    assert answer.status_code == 200, answer.text
    chain = answer.json()
    assert chain["complete"] is True and chain["gaps"] == [] and chain["holder"] == "patient"
    moves = [(h["from"], h["to"], h["kind"]) for h in chain["handoffs"]]
    assert moves == [
        ("patient", "demo-hospital", "handoff"),
        ("demo-hospital", "demo-courier", "handoff"),
        ("demo-courier", "Demo Air Cargo", "handoff"),
        ("Demo Air Cargo", "demo-manufacturer", "handoff"),
        ("demo-manufacturer", "demo-manufacturer", "check"),  # the receipt scan at goods-in
        ("demo-manufacturer", "demo-courier", "handoff"),
        ("demo-courier", "demo-courier", "check"),  # the pickup of what was shipped to it
        ("demo-courier", "demo-hospital", "handoff"),
        ("demo-hospital", "patient", "handoff"),
    ]
    pickup = chain["handoffs"][1]
    assert pickup["signed_by"] == "Driver D. Example" and pickup["location"] == "Demo Hospital apheresis unit"
    assert pickup["reported_by"] == "demo-courier" and pickup["shipment_id"] == "SH-IN-1"
    receipt = chain["handoffs"][4]
    assert f"DIN {DIN} matches the order's" in receipt["checks"]
    assert "COI scanned on the bag matches the order's" in receipt["checks"]
    # every step names its event's audit record, as the chain holds it
    async with gateway.engine.connect() as conn:
        hashes = {
            r.seq: r.hash for r in await conn.execute(select(t.audit_records.c.seq, t.audit_records.c.hash))
        }
    assert all(hashes[h["audit"]["seq"]] == h["audit"]["hash"] for h in chain["handoffs"])
    inbound, outbound = chain["legs"]
    assert (inbound["readings"], inbound["min_c"], inbound["max_c"]) == (29, 4.0, 9.4)
    assert [(e["temperature_c"], e["limit_c"], e["severity"]) for e in inbound["excursions"]] == [
        (9.4, 8.0, "minor")
    ]
    assert (outbound["readings"], outbound["min_c"], outbound["max_c"], outbound["excursions"]) == (
        1,
        -192.0,
        -181.5,
        [],
    )


async def test_a_missing_handoff_and_a_stranger_handing_over_are_gaps(
    running: tuple[httpx.AsyncClient, Gateway],
) -> None:
    http, gateway = running
    seeded = await journey(gateway.intake, gateway.engine, n=2, infused=False)
    the = coi(seeded.coi)
    # the site infuses what the chain last had with the courier's driver, not with the site
    moved = event("shipment.custody_transferred", the, shipment_id="SH-OUT-1", handed_over_by="Unknown Van Co",
                  custodian="Ward 7 nurse", occurred_at="2026-11-13T12:00:00+00:00")  # fmt: skip
    assert (await send(gateway.intake, moved, partner="demo-hospital")).status == "applied"
    infused = event("infusion.completed", the, infused_at="2026-11-14T09:00:00+00:00")
    assert (await send(gateway.intake, infused)).status == "applied"
    chain = (await http.get(f"/api/orders/{seeded.coi}/custody", headers=OPERATOR)).json()
    assert chain["complete"] is False
    assert [g["reason"] for g in chain["gaps"]] == [
        "Unknown Van Co handed over, but the chain last had it with demo-hospital",
        "starts from demo-hospital, but the chain last had it with Ward 7 nurse",
    ]


async def test_the_parties_read_the_chain_and_no_one_else(running: tuple[httpx.AsyncClient, Gateway]) -> None:
    http, gateway = running
    seeded = await journey(gateway.intake, gateway.engine, n=3)
    url = f"/api/orders/{seeded.coi}/custody"
    assert (await http.get(url, headers=HOSPITAL)).status_code == 200
    assert (await http.get(url, headers={"X-API-Key": "demo-manufacturer-key"})).status_code == 200
    assert (await http.get(url, headers=OTHER)).status_code == 403  # another site
    assert (await http.get(url)).status_code == 401
    assert (await http.get(url, headers={"X-API-Key": "nope"})).status_code == 401
    assert (await http.get("/api/orders/CHA999926ZZZZZZ/custody", headers=OPERATOR)).status_code == 404
    assert (await http.get(url + "/certificate", headers=OTHER)).status_code == 403


async def test_the_certificate_names_the_order_every_handoff_and_its_audit_hash(
    running: tuple[httpx.AsyncClient, Gateway],
) -> None:
    http, gateway = running
    seeded = await journey(gateway.intake, gateway.engine, n=4)
    chain = (await http.get(f"/api/orders/{seeded.coi}/custody", headers=OPERATOR)).json()
    answer = await http.get(f"/api/orders/{seeded.coi}/custody/certificate", headers=HOSPITAL)
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/pdf"
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(answer.content)).pages)
    assert seeded.coi in text and "COMPLETE" in text
    for step in chain["handoffs"]:
        assert step["audit"]["hash"] in text
    assert "Driver D. Example" in text and "Airport cargo hub" in text
    assert "EXCURSION minor" in text and "min -192.0 C, max -181.5 C" in text
    assert f"DIN {DIN} matches" in text
    assert "Testpatient" not in text and "MRN-" not in text  # no patient data
