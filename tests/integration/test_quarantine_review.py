"""Quarantine review over HTTP on both databases: list and filter, inspection audited, release by
two different users (four eyes) through the normal path, rejection by QA, and the refusals."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.canonical.command import Command
from gateway.canonical.envelope import utcnow
from gateway.entrypoints.bootstrap import Gateway, bootstrap
from gateway.entrypoints.http import create_app
from gateway.errors import NotAuthenticated
from gateway.service.desk import ReviewDesk
from gateway.service.intake import Intake
from gateway.service.operators import DEMO_USERS, Refused
from gateway.service.transaction import Rules
from gateway.settings import Settings
from gateway.store import tables as t
from gateway.store.db import create_engine, dispose
from tests.support.builders import coi, envelope_json, event, mrn, place, placer
from tests.support.drive import AUTHORITY, send

HOSPITAL = {"X-API-Key": "demo-hospital-key", "Content-Type": "application/json"}
OPERATOR_KEY = {"X-API-Key": "demo-operator-key"}
PASSWORDS = {"ana": "ana-password-123", "bo": "bo-password-4567", "vi": "vi-password-8910"}


def as_user(name: str, password: str | None = None) -> dict[str, str]:
    token = base64.b64encode(f"{name}:{password or PASSWORDS[name]}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def cli(*args: str, database_url: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CGT_DATABASE_URL": database_url}
    command = [sys.executable, "-m", "gateway.entrypoints.cli", *args]
    return subprocess.run(command, env=env, input=stdin, capture_output=True, text=True, timeout=60)


def sign(name: str, meaning: str) -> dict[str, Any]:
    return {"password": PASSWORDS[name], "meaning": meaning}


@pytest.fixture
async def review(database_url: str, amqp_url: str) -> AsyncIterator[tuple[httpx.AsyncClient, Gateway]]:
    settings = Settings(env="test", database_url=database_url, amqp_url=amqp_url, mllp_port=0)
    gateway = bootstrap(settings)
    await gateway.start()
    app = create_app(gateway)
    desk: ReviewDesk = app.state.desk
    await desk.add_user("ana", "operator", "Ana Example", PASSWORDS["ana"])
    await desk.add_user("bo", "qa", "Bo Sample", PASSWORDS["bo"])
    await desk.add_user("vi", "viewer", "Vi Viewer", PASSWORDS["vi"])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
        yield http, gateway
    await gateway.stop()


async def post(http: httpx.AsyncClient, message_id: str, *commands: Command) -> dict[str, Any]:
    response = await http.post(
        "/api/messages", content=envelope_json(message_id, *commands), headers=HOSPITAL
    )
    body: dict[str, Any] = response.json()
    return body


def cancel_with_other_birth_date(n: int) -> Command:
    """A cancellation of a known order that claims a patient born on another day."""
    return Command.model_validate(
        {
            "event": "order.cancelled",
            "refs": [placer(f"PO-{n:06d}").model_dump()],
            "patient": {"family_name": "Testpatient", "given_name": "Alpha", "birth_date": "1981-02-03"},
            "payload": {},
        }
    )


async def held_id(http: httpx.AsyncClient, **filters: str) -> str:
    listed = (await http.get("/api/quarantine", params=filters, headers=OPERATOR_KEY)).json()
    assert listed["count"] == 1, listed
    found: str = listed["items"][0]["quarantine_id"]
    return found


async def audit_rows(gateway: Gateway, action: str) -> list[Any]:
    async with gateway.engine.connect() as conn:
        rows = await conn.execute(select(t.audit_records).where(t.audit_records.c.action == action))
        return list(rows)


async def test_list_filters_by_partner_reason_age_and_coi(review: tuple[httpx.AsyncClient, Gateway]) -> None:
    http, _ = review
    placed = await post(http, "p1", place(1))
    assert (await post(http, "q1", cancel_with_other_birth_date(1)))["outcome"] == "quarantined"
    assert (await post(http, "q2", event("order.cancelled", coi("CHA999926ZZZZZZ"))))[
        "outcome"
    ] == "quarantined"

    async def count(headers: dict[str, str] | None = None, **filters: str) -> int:
        response = await http.get("/api/quarantine", params=filters, headers=headers or OPERATOR_KEY)
        assert response.status_code == 200, response.text
        return int(response.json()["count"])

    assert await count() == 2
    assert await count(as_user("vi")) == 2  # a viewer may list: no patient data in a listing
    assert await count(reason="demographic_mismatch") == 1
    assert await count(reason="unknown_identity") == 1
    assert await count(partner="demo-hospital") == 2 and await count(partner="demo-manufacturer") == 0
    assert await count(older_than="1h") == 0 and await count(older_than="0s") == 2
    assert await count(coi=placed["coi"]) == 1  # bound to the order through its placer number
    assert await count(coi="CHA999926ZZZZZZ") == 1  # named by the message
    listed = (await http.get("/api/quarantine", headers=OPERATOR_KEY)).json()
    assert "PO-000001" not in str(listed) and "1981" not in str(listed)
    assert (
        await http.get("/api/quarantine", params={"older_than": "soon"}, headers=OPERATOR_KEY)
    ).status_code == 422
    assert (await http.get("/api/quarantine", headers=as_user("vi", "wrong-password"))).status_code == 401


async def test_inspection_shows_claim_beside_chain_and_is_audited(
    review: tuple[httpx.AsyncClient, Gateway],
) -> None:
    http, gateway = review
    await post(http, "p1", place(1))
    await post(http, "q1", cancel_with_other_birth_date(1))
    item = await held_id(http)
    assert (await http.get(f"/api/quarantine/{item}", headers=OPERATOR_KEY)).status_code == 401
    assert (await http.get(f"/api/quarantine/{item}", headers=as_user("vi"))).status_code == 403
    shown = await http.get(f"/api/quarantine/{item}", headers=as_user("ana"))
    assert shown.status_code == 200, shown.text
    body = shown.json()
    assert body["why"]["reason"] == "demographic_mismatch" and "birth_date" in body["why"]["detail"]
    assert "PO-000001" in body["message"]["raw"]  # the raw message as received
    assert body["claimed"][0]["demographics"]["birth_date"] == "1981-02-03"
    bound = body["chain"]["identifiers"][0]
    assert bound["value"] == "PO-000001" and bound["bound"]["coi"]
    assert body["chain"]["patients"][bound["bound"]["patient_id"]]["birth_date"] == "1970-01-01"
    viewed = await audit_rows(gateway, "quarantine.viewed")
    assert [(r.actor, r.subject) for r in viewed] == [("operator:ana", item)]
    assert viewed[0].detail["printed_name"] == "Ana Example"
    assert (await http.get("/api/quarantine/nope", headers=as_user("ana"))).status_code == 404


async def test_two_users_release_the_message_through_the_normal_path(
    review: tuple[httpx.AsyncClient, Gateway],
) -> None:
    http, gateway = review
    placed = await post(http, "p1", place(1))
    await post(http, "q1", cancel_with_other_birth_date(1))
    item = await held_id(http)
    url = f"/api/quarantine/{item}/approvals"
    first = await http.post(
        url, json=sign("ana", "reviewed: same patient, typo in the birth date"), headers=as_user("ana")
    )
    assert first.status_code == 201 and first.json()["status"] == "open", first.text
    again = await http.post(url, json=sign("ana", "again"), headers=as_user("ana"))
    assert again.status_code == 409  # the same user can never be both signatures
    order = (await http.get(f"/api/orders/{placed['coi']}", headers=OPERATOR_KEY)).json()
    assert order["order"]["status"] == "ordered"  # one signature releases nothing
    second = await http.post(
        url, json=sign("bo", "confirmed with the site: same patient"), headers=as_user("bo")
    )
    assert second.status_code == 201, second.text
    released = second.json()
    assert released["status"] == "released" and released["coi"] == placed["coi"]
    assert [s["printed_name"] for s in released["signatures"]] == ["Ana Example", "Bo Sample"]
    order = (await http.get(f"/api/orders/{placed['coi']}", headers=OPERATOR_KEY)).json()
    assert order["order"]["status"] == "cancelled"
    # both at the time of release, on the order's timeline
    assert sorted(e["type"] for e in order["timeline"][-2:]) == [
        "org.cgt.identity.resolved",
        "org.cgt.order.cancelled",
    ]
    async with gateway.engine.connect() as conn:
        outbox = [r.routing_key for r in await conn.execute(select(t.outbox.c.routing_key))]
        status = (await conn.execute(select(t.quarantine.c.status))).scalar_one()
    assert any(k.endswith("identity.resolved") for k in outbox) and status == "released"
    approved = await audit_rows(gateway, "quarantine.approved")
    assert [(r.actor, r.detail["printed_name"], r.detail["meaning"]) for r in approved] == [
        ("operator:ana", "Ana Example", "reviewed: same patient, typo in the birth date"),
        ("operator:bo", "Bo Sample", "confirmed with the site: same patient"),
    ]
    (release,) = await audit_rows(gateway, "quarantine.released")
    assert release.detail["resolution"] == "apply as is"
    assert [s["meaning"] for s in release.detail["signatures"]][1] == "confirmed with the site: same patient"
    assert (await http.get("/api/quarantine", headers=OPERATOR_KEY)).json()["count"] == 0
    late = await http.post(url, json=sign("vi", "late"), headers=as_user("vi"))
    assert late.status_code == 403


async def test_refusals_a_viewer_a_wrong_password_and_an_unknown_identity_still_held(
    review: tuple[httpx.AsyncClient, Gateway],
) -> None:
    http, gateway = review
    await post(http, "q2", event("order.cancelled", coi("CHA999926ZZZZZZ")))
    item = await held_id(http)
    url = f"/api/quarantine/{item}/approvals"
    assert (await http.post(url, json=sign("vi", "looks fine"), headers=as_user("vi"))).status_code == 403
    wrong = {"password": "not-the-password", "meaning": "reviewed"}
    assert (await http.post(url, json=wrong, headers=as_user("ana"))).status_code == 401
    assert (
        await http.post(url, json={"password": PASSWORDS["ana"]}, headers=as_user("ana"))
    ).status_code == 422
    assert (await http.post(url, json=sign("ana", "known now?"), headers=as_user("ana"))).status_code == 201
    still = await http.post(url, json=sign("bo", "known now?"), headers=as_user("bo"))
    assert still.status_code == 409 and "still does not reconcile" in still.json()["detail"]
    assert await audit_rows(gateway, "quarantine.released") == []
    assert (await http.get("/api/quarantine", headers=OPERATOR_KEY)).json()["count"] == 1


async def test_qa_rejects_with_a_reason_and_an_operator_may_not(
    review: tuple[httpx.AsyncClient, Gateway],
) -> None:
    http, gateway = review
    await post(http, "q2", event("order.cancelled", coi("CHA999926ZZZZZZ")))
    item = await held_id(http)
    url = f"/api/quarantine/{item}/rejection"
    refused = await http.post(url, json={"password": PASSWORDS["ana"], "reason": "x"}, headers=as_user("ana"))
    assert refused.status_code == 403
    reason = "not our patient: the site sent it to the wrong gateway"
    rejected = await http.post(
        url, json={"password": PASSWORDS["bo"], "reason": reason}, headers=as_user("bo")
    )
    assert rejected.status_code == 201 and rejected.json()["status"] == "rejected", rejected.text
    (audited,) = await audit_rows(gateway, "quarantine.rejected")
    assert audited.actor == "operator:bo" and audited.detail["meaning"] == reason
    assert audited.detail["printed_name"] == "Bo Sample"
    async with gateway.engine.connect() as conn:
        outbox = [r.routing_key for r in await conn.execute(select(t.outbox.c.routing_key))]
        outcome = (await conn.execute(select(t.inbound_messages.c.outcome))).scalar_one()
    assert any(k.endswith("identity.resolved") for k in outbox) and outcome == "rejected"
    again = await http.post(url, json={"password": PASSWORDS["bo"], "reason": reason}, headers=as_user("bo"))
    assert again.status_code == 409


async def test_production_refuses_the_demo_users(engine: AsyncEngine) -> None:
    rules = Rules("A9999", AUTHORITY, utcnow)
    development = ReviewDesk(engine, rules, production=False)
    production = ReviewDesk(engine, rules, production=True)
    for name, role, printed, password in DEMO_USERS:
        await development.add_user(name, role, printed, password)
        assert (await development.login(name, password)).printed_name == printed
        with pytest.raises(NotAuthenticated):  # a demo user in a production database signs nothing
            await production.login(name, password)
        with pytest.raises(Refused):
            await production.add_user(f"{name}-2", role, printed, password)
    await production.add_user("own-qa", "qa", "Own QA", "a-password-of-our-own")
    assert (await production.login("own-qa", "a-password-of-our-own")).role == "qa"
    with pytest.raises(Refused):
        await production.add_user("own-qa", "qa", "Own QA", "a-password-of-our-own")  # the name is taken
    with pytest.raises(Refused):
        await production.add_user("short", "qa", "Short", "too-short")


async def test_the_cli_adds_users_lists_shows_approves_and_rejects(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/cli.db"
    assert cli("migrate", database_url=url).returncode == 0
    assert cli("users", "demo", database_url=url).returncode == 0
    added = cli(
        "users",
        "add",
        "ana",
        "--role",
        "operator",
        "--printed-name",
        "Ana Example",
        "--password-stdin",
        database_url=url,
        stdin=PASSWORDS["ana"] + "\n",
    )
    assert added.returncode == 0, added.stderr
    engine = create_engine(url)
    gate = Intake(engine, coi_facility="A9999", authority=AUTHORITY)
    placed = await send(gate, place(1))
    await send(gate, cancel_with_other_birth_date(1))
    await send(gate, event("order.cancelled", coi("CHA999926ZZZZZZ")))
    await dispose(engine)
    listed = json.loads(
        cli("quarantine", "list", "--reason", "demographic_mismatch", database_url=url).stdout
    )
    (item,) = [i["quarantine_id"] for i in listed]
    shown = cli(
        "quarantine", "show", item, "-u", "ana", "--password-stdin", database_url=url, stdin=PASSWORDS["ana"]
    )
    assert (
        shown.returncode == 0
        and json.loads(shown.stdout)["claimed"][0]["demographics"]["birth_date"] == "1981-02-03"
    )

    def approve(user: str, password: str) -> subprocess.CompletedProcess[str]:
        return cli(
            "quarantine",
            "approve",
            item,
            "-u",
            user,
            "--meaning",
            "reviewed: same patient",
            "--password-stdin",
            database_url=url,
            stdin=password,
        )

    assert json.loads(approve("ana", PASSWORDS["ana"]).stdout)["status"] == "open"
    twice = approve("ana", PASSWORDS["ana"])
    assert twice.returncode == 1 and "twice" in twice.stderr
    released = approve("demo-qa", "demo-qa-password")
    assert released.returncode == 0 and json.loads(released.stdout) == {
        "quarantine_id": item,
        "status": "released",
        "coi": placed.coi,
    }
    (other,) = [i["quarantine_id"] for i in json.loads(cli("quarantine", "list", database_url=url).stdout)]
    rejected = cli(
        "quarantine",
        "reject",
        other,
        "-u",
        "demo-qa",
        "--reason",
        "not ours",
        "--password-stdin",
        database_url=url,
        stdin="demo-qa-password",
    )
    assert rejected.returncode == 0 and json.loads(rejected.stdout)["status"] == "rejected"
    assert json.loads(cli("quarantine", "list", database_url=url).stdout) == []


async def test_a_released_identity_change_and_disagreeing_merge_apply_as_is(engine: AsyncEngine) -> None:
    gate = Intake(engine, coi_facility="A9999", authority=AUTHORITY)
    desk = ReviewDesk(engine, Rules("A9999", AUTHORITY, utcnow), production=False)
    await desk.add_user("ana", "operator", "Ana Example", PASSWORDS["ana"])
    await desk.add_user("bo", "qa", "Bo Sample", PASSWORDS["bo"])
    for n, birth in ((1, "1970-01-01"), (2, "1985-05-05")):
        await send(gate, place(n, birth=birth))
    change = event("patient.updated", mrn("MRN-000001"), patient={"birth_date": "1971-01-01"})
    assert (await send(gate, change)).error == "IdentityChange"
    old = mrn("MRN-000002")
    merge = Command.model_validate(
        {"event": "patient.merged", "refs": [mrn("MRN-000001"), old], "payload": {"prior": [old]}}
    )
    assert (await send(gate, merge)).error == "DisagreeingMerge"
    for held in await desk.held(reason="identity_change") + await desk.held(reason="disagreeing_merge"):
        await desk.approve(held["quarantine_id"], "ana", PASSWORDS["ana"], "reviewed: the site corrected it")
        decision = await desk.approve(held["quarantine_id"], "bo", PASSWORDS["bo"], "confirmed with the site")
        assert decision.status == "released", held["reason"]
    async with engine.connect() as conn:
        identities = [r.identity for r in await conn.execute(select(t.patients.c.identity))]
        merged = [r for (r,) in await conn.execute(select(t.patients.c.merged_into)) if r]
    assert any(i["birth_date"] == "1971-01-01" for i in identities) and len(merged) == 1
    assert await desk.held() == []
