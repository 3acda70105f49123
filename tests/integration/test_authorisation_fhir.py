"""Authorisation by order over FHIR: a second site may not revoke or hold the first site's order by
naming its COI (the same core rule as every dialect), and cannot read it either."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import orjson
import pytest
from sqlalchemy import select

from gateway.entrypoints.bootstrap import Gateway
from gateway.settings import Settings
from gateway.store import tables as t
from tests.integration.test_fhir_support import KEY, fixture, order_bundle, running, settings
from tests.support.partners import OTHER_SITE, OTHER_SITE_KEY, with_second_site

OTHER = {"X-API-Key": OTHER_SITE_KEY}


def fhir_profiles(tmp: Path) -> Path:
    """The shipped FHIR profiles plus the second site's: a copy of the demo's under its own name."""
    folder = tmp / "fhir"
    folder.mkdir()
    for path in (Settings().mappings_dir / "fhir").glob("*.yaml"):
        if not path.stem.endswith("_test"):
            shutil.copy(path, folder / path.name)
    demo = (folder / "demo-hospital.yaml").read_text(encoding="utf-8")
    (folder / f"{OTHER_SITE}.yaml").write_text(demo.replace("demo-hospital", OTHER_SITE), encoding="utf-8")
    return folder


@pytest.fixture
async def app(tmp_path: Path, amqp_url: str) -> AsyncIterator[tuple[Gateway, httpx.AsyncClient]]:
    config = settings(
        tmp_path,
        amqp_url,
        partners_file=with_second_site(tmp_path),
        profile_dirs={"fhir": fhir_profiles(tmp_path)},
    )
    async with running(config) as pair:
        yield pair


async def test_a_second_site_may_not_revoke_or_read_the_first_sites_order(
    app: tuple[Gateway, httpx.AsyncClient],
) -> None:
    gateway, http = app
    placed = await http.post("/fhir/r4", content=orjson.dumps(order_bundle(1)), headers=KEY)
    assert placed.status_code == 201, placed.text
    async with gateway.engine.connect() as conn:
        order_id, coi, before = (
            await conn.execute(select(t.orders.c.order_id, t.orders.c.coi, t.orders.c.status))
        ).one()
    revoke = fixture("servicerequest-revoked.json")
    revoke["id"] = "sr-900001"
    revoke["identifier"] = [
        {"system": "urn:oid:2.16.840.1.113883.3.9999.2", "value": "PO-900001"},
        {"system": "urn:cgt:coi", "value": coi},
    ]
    refused = await http.put("/fhir/r4/ServiceRequest/sr-900001", content=orjson.dumps(revoke), headers=OTHER)
    assert refused.status_code == 403, refused.text
    outcome = refused.json()
    assert outcome["resourceType"] == "OperationOutcome" and outcome["issue"][0]["code"] == "forbidden"
    assert (await http.get(f"/fhir/r4/Task/{order_id}", headers=OTHER)).status_code == 404
    async with gateway.engine.connect() as conn:
        status = (await conn.execute(select(t.orders.c.status))).scalar_one()
        rejected = (
            await conn.execute(
                select(t.audit_records.c.detail).where(t.audit_records.c.action == "message.rejected")
            )
        ).all()
    assert status == before
    assert len(rejected) == 1 and "NotPermitted" in str(rejected[0].detail)
