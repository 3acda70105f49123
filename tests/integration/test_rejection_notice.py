"""A QA rejection tells the sender where its dialect allows it, on the SDK's outbound runner:
an HL7 v2 site with an outbound link gets an application reject (ACK, MSA AR naming the held
message's MSH-10, ERR 204) from a real MLLP endpoint's point of view; a FHIR site with Task push
gets a Task with status `rejected` on its server; a canonical JSON sender cannot be told, and the
API answer and the audit record say so."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import select

from adapters.hl7v2.serve import Hl7v2Service
from gateway.entrypoints.bootstrap import Gateway
from gateway.entrypoints.http import create_app
from gateway.registry import rejection_notices
from gateway.service.desk import ReviewDesk
from gateway.store import tables as t
from tests.fixtures.hl7v2.peers import Ehr, Engine, field_of
from tests.integration.test_fhir_notify import SiteFhirServer, fast_profile, site, until
from tests.integration.test_fhir_support import KEY, fixture, order_bundle, running, settings, valid_fhir
from tests.integration.test_hl7_outbound import gateways, place_over_mllp
from tests.integration.test_quarantine_review import cancel_with_other_birth_date
from tests.support.builders import place
from tests.support.drive import send

__all__ = ["fast_profile", "gateways", "site"]  # fixtures, used by name
QA = ("bo", "bo-password-4567")


async def desk_of(gw: Gateway) -> ReviewDesk:
    desk = ReviewDesk(
        gw.engine, gw.intake.rules, production=False, notices=rejection_notices(gw.adapters, gw.partners)
    )
    await desk.add_user(*QA[:1], "qa", "Bo Sample", QA[1])
    return desk


async def held(gw: Gateway) -> str:
    async with gw.engine.connect() as conn:
        found: str = (await conn.execute(select(t.quarantine.c.quarantine_id))).scalar_one()
    return found


async def test_an_hl7_site_gets_an_application_reject_naming_its_message(
    ehr: Ehr, gateways: Callable[..., Any]
) -> None:
    gw = await gateways(ehr.port)
    await place_over_mllp(gw, 1)
    service = next(s for s in gw.transports if isinstance(s, Hl7v2Service))
    engine = await Engine.connect(service.port)
    ack = await engine.send(
        b"MSH|^~\\&|DEMO_EHR|DEMO_HOSPITAL|CGT_GATEWAY|CGT|20261102101500||ORM^O01^ORM_O01|ORM-CA-7|P|2.5.1\r"
        b"PID|1||MRN000001^^^DEMOHOSP^MR||Testpatient^Alpha||19810203|F\r"
        b"ORC|CA|PO-000001\rOBR|1|PO-000001||S1234^Demo autologous CAR-T^ISBT128\r"
    )
    await engine.close()
    assert field_of(ack, "MSA", 1) == "AA" and b"held for identity review" in ack  # held, not refused
    decision = await (await desk_of(gw)).reject(
        await held(gw), *QA, "not this patient: wrong order cancelled"
    )
    assert decision.sender_told is True and "application reject" in str(decision.sender_notice)
    message = await asyncio.wait_for(ehr.arrived.get(), 20)
    assert field_of(message, "MSH", 9).startswith("ACK")
    assert field_of(message, "MSA", 1) == "AR" and field_of(message, "MSA", 2) == "ORM-CA-7"
    assert field_of(message, "ERR", 3).startswith("204^Unknown key identifier")
    assert b"rejected on identity review" in message
    assert b"Testpatient" not in message and b"MRN000001" not in message


@pytest.mark.usefixtures("fast_profile")
async def test_a_fhir_site_gets_a_task_with_status_rejected(
    tmp_path: Path, amqp_url: str, site: tuple[SiteFhirServer, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, url = site
    monkeypatch.setenv("CGT_FHIR_HOOK_URL_DEMO_HOSPITAL", url)
    async with running(settings(tmp_path, amqp_url)) as (gw, http):
        assert (
            await http.post("/fhir/r4", content=orjson.dumps(order_bundle(1)), headers=KEY)
        ).status_code == 201
        reborn = {**fixture("patient-update.json"), "birthDate": "2024-02-02", "meta": {"versionId": "8"}}
        answer = await http.put("/fhir/r4/Patient/pat-000001", content=orjson.dumps(reborn), headers=KEY)
        assert answer.status_code == 202, answer.text
        item = await held(gw)
        decision = await (await desk_of(gw)).reject(item, *QA, "the EHR sent another patient's birth date")
        assert decision.sender_told is True and "rejected" in str(decision.sender_notice)

        async def told() -> bool:
            return any(line == f"PUT /fhir/Task/rejected-{item}" for line, _, _ in server.received)

        await until(told)
    body = next(b for line, _, b in server.received if line.endswith(f"rejected-{item}"))
    task = valid_fhir(orjson.loads(body))
    assert task["status"] == "rejected" and task["identifier"][0]["value"] == item
    assert "2024-02-02" not in body.decode()


async def test_a_sender_whose_dialect_cannot_be_told_hears_nothing_and_the_answer_says_so(
    database_url: str, amqp_url: str
) -> None:
    from gateway.entrypoints.bootstrap import bootstrap
    from gateway.settings import Settings

    gw = bootstrap(Settings(env="test", database_url=database_url, amqp_url=amqp_url, mllp_port=0))
    await gw.start()
    try:
        app = create_app(gw)
        await app.state.desk.add_user("bo", "qa", "Bo Sample", QA[1])
        assert (await send(gw.intake, place(1))).status == "applied"
        assert (await send(gw.intake, cancel_with_other_birth_date(1))).status == "quarantined"
        item = await held(gw)
        basic = "Basic " + base64.b64encode(f"{QA[0]}:{QA[1]}".encode()).decode()
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gateway"
        ) as http:
            answer = await http.post(
                f"/api/quarantine/{item}/rejection",
                json={"password": QA[1], "reason": "wrong patient"},
                headers={"Authorization": basic},
            )
        assert answer.status_code == 201, answer.text
        assert answer.json()["sender"] == {
            "told": False,
            "how": "the canonical-json dialect has no way to tell demo-hospital after its answer",
        }
        async with gw.engine.connect() as conn:
            a = t.audit_records
            row = (await conn.execute(select(a.c.detail).where(a.c.action == "quarantine.rejected"))).one()
            resolved = (
                await conn.execute(
                    select(t.events.c.envelope).where(t.events.c.type == "org.cgt.identity.resolved")
                )
            ).one()
        assert row.detail["sender_told"] is False and "no way" in row.detail["sender_notice"]
        assert resolved.envelope["data"]["partner"] == "demo-hospital"
        assert resolved.envelope["data"]["adapter"] == "canonical-json"
    finally:
        await gw.stop()
