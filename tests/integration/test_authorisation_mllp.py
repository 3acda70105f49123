"""Authorisation by order over HL7 v2: a second site, a registered MLLP sender, may not cancel,
hold or re-identify the first site's order by naming its COI (the same core rule as every dialect)."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from adapters.hl7v2.serve import Hl7v2Service
from gateway.entrypoints.bootstrap import Gateway, bootstrap
from gateway.settings import Settings
from gateway.store import tables as t
from tests.fixtures.hl7v2.peers import Engine, field_of
from tests.support.partners import OTHER_SITE, with_second_site


def site_files(tmp: Path) -> tuple[Path, Path]:
    """Profiles for both sites (the second a copy of the demo's under its own namespaces) and a
    partner file where the second site sends over MLLP as OTHER_EHR / OTHER_HOSPITAL."""
    profiles = tmp / "hl7v2"
    profiles.mkdir()
    for path in (Settings().mappings_dir / "hl7v2").glob("*.yaml"):
        if not path.stem.endswith("_test"):
            shutil.copy(path, profiles / path.name)
    demo = (profiles / "demo-hospital.yaml").read_text(encoding="utf-8")
    (profiles / f"{OTHER_SITE}.yaml").write_text(demo.replace("demo-hospital", OTHER_SITE), encoding="utf-8")
    partners = with_second_site(tmp)
    document = yaml.safe_load(partners.read_text(encoding="utf-8"))
    other = next(p for p in document["partners"] if p["id"] == OTHER_SITE)
    other["auth"]["mllp"] = {"sending_application": "OTHER_EHR", "sending_facility": "OTHER_HOSPITAL"}
    partners.write_text(yaml.safe_dump(document), encoding="utf-8")
    return profiles, partners


@pytest.fixture
async def gateway(tmp_path: Path, amqp_url: str) -> AsyncIterator[Gateway]:
    profiles, partners = site_files(tmp_path)
    settings = Settings(
        env="test",
        database_url=f"sqlite+aiosqlite:///{tmp_path}/gw.db",
        amqp_url=amqp_url,
        mllp_port=0,
        adapters="canonical-json,hl7v2",
        partners_file=partners,
        profile_dirs={"hl7v2": profiles},
    )
    gw = bootstrap(settings)
    await gw.start()
    yield gw
    await gw.stop()


def message(sender: str, facility: str, control: str, *segments: str) -> bytes:
    head = f"MSH|^~\\&|{sender}|{facility}|CGT_GATEWAY|CGT|20261102091500||{{kind}}|{control}|P|2.5.1"
    kind = "ADT^A08^ADT_A01" if segments[0].startswith("EVN") else "ORM^O01^ORM_O01"
    return "\r".join([head.format(kind=kind), *segments, ""]).encode()


async def test_a_second_site_may_not_act_on_the_first_sites_order_over_mllp(gateway: Gateway) -> None:
    port = next(s for s in gateway.transports if isinstance(s, Hl7v2Service)).port
    engine = await Engine.connect(port)
    placed = await engine.send(
        message(
            "DEMO_EHR",
            "DEMO_HOSPITAL",
            "A1",
            "PID|1||MRN000001^^^DEMOHOSP^MR||Testpatient^Alpha||19700101|F",
            "ORC|NW|PO-000001",
            "OBR|1|PO-000001||S1234^Demo^ISBT128",
        )
    )
    assert field_of(placed, "MSA", 1) == "AA"
    async with gateway.engine.connect() as conn:
        coi = (await conn.execute(select(t.orders.c.coi))).scalar_one()
    theirs = f"{coi}^^^COI^RI"
    attempts = [
        (
            "B1",
            "PID|1||" + theirs + "||Testpatient^Alpha||19700101|F",
            "ORC|CA|PO-900001",
            "OBR|1|PO-900001||S1234^Demo^ISBT128",
        ),
        (
            "B2",
            "PID|1||" + theirs + "||Testpatient^Alpha||19700101|F",
            "ORC|HD|PO-900002",
            "OBR|1|PO-900002||S1234^Demo^ISBT128",
        ),
    ]
    answers = [await engine.send(message("OTHER_EHR", "OTHER_HOSPITAL", c, *s)) for c, *s in attempts]
    await engine.close()
    for answer in answers:
        assert field_of(answer, "MSA", 1) == "AR", answer
        assert "another party" in field_of(answer, "ERR", 8)
    async with gateway.engine.connect() as conn:
        status = (await conn.execute(select(t.orders.c.status))).scalar_one()
        refused = (
            await conn.execute(
                select(t.audit_records.c.detail).where(t.audit_records.c.action == "message.rejected")
            )
        ).all()
    assert status == "ordered"
    assert len(refused) == 2 and all("NotPermitted" in str(r.detail) for r in refused)
