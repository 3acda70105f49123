"""Re-processing a stored message after a profile fix (gateway.service.reprocess): an HL7 order
refused because the site's profile named the wrong MRN authority, the profile fixed, the kept
message run again: in a dry run nothing is written and the difference is shown; for real it is
applied through the intake, audited as a re-processing by the operator, its event in the outbox;
a second run changes nothing. On SQLite and PostgreSQL; the CLI as a separate process."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.hl7v2.adapter import Hl7v2
from gateway.adapter_contract import Adapter
from gateway.errors import MappingError
from gateway.service.door import IntakeDoor
from gateway.service.inbound import accept
from gateway.service.intake import Intake
from gateway.service.reprocess import Report, reprocess
from gateway.store import tables as t
from gateway.store.db import create_engine, dispose
from gateway.store.migrate import migrate
from tests.integration.test_cli import cli
from tests.support.drive import AUTHORITY, PARTNERS
from tests.support.hl7 import SHIPPED, configured

MRN, PLACER = "MRN700001", "PO-700001"


def order() -> bytes:
    return "\r".join(
        [
            "MSH|^~\\&|DEMO_EHR|DEMO_HOSPITAL|CGT_GATEWAY|CGT|20261102091500||ORM^O01^ORM_O01|RP1|P|2.5.1",
            f"PID|1||{MRN}^^^DEMOHOSP^MR||Testpatient^Rena||19700101|F",
            f"ORC|NW|{PLACER}",
            f"OBR|1|{PLACER}||S1234^Demo^ISBT128",
            "",
        ]
    ).encode()


def profiles(directory: Path, *, authorities: list[str]) -> Path:
    """The shipped demo profile, with the MRN's assigning authorities the site's table names."""
    document = yaml.safe_load((SHIPPED / "demo-hospital.yaml").read_text(encoding="utf-8"))
    document["mrn"]["assigning_authorities"] = authorities
    directory.mkdir(exist_ok=True)
    (directory / "demo-hospital.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")
    return directory


async def counts(engine: AsyncEngine) -> dict[str, int]:
    tables = (t.inbound_messages, t.events, t.outbox, t.audit_records, t.orders, t.idempotency_keys)
    async with engine.connect() as conn:
        return {
            table.name: int((await conn.execute(select(func.count()).select_from(table))).scalar_one())
            for table in tables
        }


async def refused_first(engine: AsyncEngine, tmp_path: Path) -> tuple[Intake, str]:
    """The order sent while the profile was wrong: kept, rejected."""
    intake = Intake(engine, coi_facility="A9999", authority=AUTHORITY)
    wrong = configured(profiles(tmp_path / "wrong", authorities=["OTHERHOSP"]))
    outcome, _ = await accept(intake, wrong, PARTNERS.get("demo-hospital"), order(), transport="mllp")
    assert outcome.status == "rejected" and outcome.error == MappingError.__name__
    assert outcome.inbound_id is not None
    return intake, outcome.inbound_id


async def run(
    engine: AsyncEngine,
    intake: Intake,
    adapter: Adapter,
    inbound_id: str,
    *,
    operator: str | None,
    dry_run: bool,
    show_values: bool = False,
) -> Report:
    return await reprocess(
        engine,
        intake,
        PARTNERS,
        {"hl7v2": adapter},
        inbound_id,
        operator=operator,
        dry_run=dry_run,
        show_values=show_values,
    )


async def test_a_refused_order_is_reprocessed_after_the_profile_fix(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    intake, first_id = await refused_first(engine, tmp_path)
    fixed = configured(profiles(tmp_path / "wrong", authorities=["DEMOHOSP"]))  # the table fixed
    before = await counts(engine)

    dry = await run(engine, intake, fixed, first_id, operator=None, dry_run=True)
    assert await counts(engine) == before  # a dry run writes nothing
    assert str(dry.first) == "rejected MappingError" and dry.first is not None and dry.first.events == ()
    assert dry.now is not None and dry.now.status == "would apply" and dry.now.events == ("order.placed",)
    assert dry.changed and dry.refused is None
    assert dry.difference() == ["outcome: rejected MappingError -> applied", "+ order.placed"]
    assert dry.commands == (
        {
            "event": "order.placed",
            "identifiers": ["site:demo-hospital:mrn", "site:demo-hospital:placer-order"],
            "binds": [],
        },
    )
    assert MRN not in json.dumps(dry.as_json())  # PHI-free unless asked
    shown = await run(engine, intake, fixed, first_id, operator=None, dry_run=True, show_values=True)
    assert MRN in json.dumps(shown.as_json())

    applied = await run(engine, intake, fixed, first_id, operator="ops-anna", dry_run=False)
    assert applied.now is not None and applied.now.status == "applied"
    assert applied.now.events == ("order.placed",) and not applied.repeat
    new_id = applied.new_inbound_id
    assert new_id and new_id != first_id
    after = await counts(engine)
    assert after["orders"] == before["orders"] + 1 and after["outbox"] == before["outbox"] + 1
    async with engine.connect() as conn:
        kept = (await conn.execute(select(t.inbound_messages).where(t.inbound_messages.c.id == new_id))).one()
        assert kept.partner == "demo-hospital" and kept.message_id == f"reprocess:{first_id}"
        assert kept.raw == order() and kept.outcome == "applied"
        routing = (await conn.execute(select(t.outbox.c.routing_key))).scalars().all()
        assert any("order.placed" in r for r in routing)
        records = (await conn.execute(select(t.audit_records).order_by(t.audit_records.c.seq))).all()
    placed = next(r for r in records if r.action == "order.placed")
    assert placed.actor == "partner:demo-hospital"
    assert placed.detail["reprocessing_of"] == first_id and placed.detail["operator"] == "ops-anna"
    by_operator = next(r for r in records if r.action == "message.reprocessed")
    assert by_operator.actor == "operator:ops-anna" and by_operator.subject == first_id
    assert by_operator.detail["inbound_id"] == new_id and by_operator.detail["status"] == "applied"

    again = await run(engine, intake, fixed, first_id, operator="ops-anna", dry_run=False)
    assert again.repeat and again.new_inbound_id == new_id
    assert again.now is not None and again.now.status == "applied"
    assert await counts(engine) == after  # the second run changes nothing


async def test_a_message_of_an_unknown_sender_cannot_be_reprocessed(engine: AsyncEngine) -> None:
    intake = Intake(engine, coi_facility="A9999", authority=AUTHORITY)
    outcome, _ = await IntakeDoor(intake).keep_unattributed(
        "hl7v2", order(), MappingError("no partner sends as this"), lambda o: b"", transport="mllp"
    )
    assert outcome.inbound_id is not None
    before = await counts(engine)
    report = await run(engine, intake, Hl7v2(), outcome.inbound_id, operator="ops-anna", dry_run=False)
    assert report.refused is not None and "never identified" in report.refused
    missing = await run(engine, intake, Hl7v2(), "no-such-id", operator=None, dry_run=True)
    assert missing.refused == "no inbound message has this id"
    assert await counts(engine) == before


async def test_the_cli_reprocesses_in_dry_run_then_for_real(database_url: str, tmp_path: Path) -> None:
    engine = create_engine(database_url)
    await migrate(engine)
    _, first_id = await refused_first(engine, tmp_path)
    before = await counts(engine)
    fixed = profiles(tmp_path / "fixed", authorities=["DEMOHOSP"])
    env = {"CGT_PROFILE_DIRS": json.dumps({"hl7v2": str(fixed)}), "CGT_ENV": "test"}

    dry = cli("messages", "reprocess", first_id, "--dry-run", database_url=database_url, env=env)
    assert dry.returncode == 0, dry.stderr
    assert "first time: rejected MappingError" in dry.stdout
    assert "now: would apply: order.placed (dry run: nothing written)" in dry.stdout
    assert "difference: outcome: rejected MappingError -> applied; + order.placed" in dry.stdout
    assert MRN not in dry.stdout and await counts(engine) == before

    refused = cli("messages", "reprocess", first_id, database_url=database_url, env=env)
    assert refused.returncode == 2 and "--operator" in refused.stderr

    done = cli(
        "messages",
        "reprocess",
        first_id,
        "--operator",
        "ops-anna",
        "--json",
        database_url=database_url,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    (message,) = json.loads(done.stdout)["messages"]
    assert message["now"] == {"status": "applied", "error": None, "events": ["order.placed"]}
    assert message["first"]["status"] == "rejected" and not message["repeat"]
    after = await counts(engine)
    assert after["outbox"] == before["outbox"] + 1

    again = cli(
        "messages",
        "reprocess",
        first_id,
        "--operator",
        "ops-anna",
        "--json",
        database_url=database_url,
        env=env,
    )
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["messages"][0]["repeat"] is True
    assert await counts(engine) == after
    await dispose(engine)


async def test_a_reprocessing_still_refused_is_audited_and_leaves_its_key_free(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    intake, first_id = await refused_first(engine, tmp_path)
    still_wrong = configured(tmp_path / "wrong")
    report = await run(engine, intake, still_wrong, first_id, operator="ops-ben", dry_run=False)
    assert report.now is not None and str(report.now) == "rejected MappingError"
    assert not report.changed and report.difference() == []
    async with engine.connect() as conn:
        records = (await conn.execute(select(t.audit_records).order_by(t.audit_records.c.seq))).all()
    rejected = [r for r in records if r.action == "message.rejected"]
    assert [r.detail.get("reprocessing_of") for r in rejected] == [None, first_id]
    assert rejected[1].detail["operator"] == "ops-ben"
    assert [(r.actor, r.detail["status"]) for r in records if r.action == "message.reprocessed"] == [
        ("operator:ops-ben", "rejected")
    ]

    fixed = configured(profiles(tmp_path / "fixed", authorities=[]))
    applied = await run(engine, intake, fixed, first_id, operator="ops-ben", dry_run=False)
    assert applied.now is not None and applied.now.status == "applied" and not applied.repeat
