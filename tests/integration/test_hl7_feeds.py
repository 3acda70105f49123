"""Hospital feeds as real EHRs send them, over a real MLLP socket to a real gateway: traffic that is
not the gateway's business is acknowledged AA, stored nowhere and counted by reason; therapy
orders in any version 2.2-2.8.2 are taken; what cannot be taken gets a specific ERR."""

from __future__ import annotations

from prometheus_client import REGISTRY
from sqlalchemy import select

from gateway.entrypoints.bootstrap import Gateway
from gateway.store import tables as t
from tests.fixtures.hl7v2.peers import Engine, field_of
from tests.integration.test_hl7_mllp import count, fixture, gateway, port  # noqa: F401

MSH = "MSH|^~\\&|DEMO_EHR|DEMO_HOSPITAL|CGT_GATEWAY|CGT|20261102091500||{kind}|{control}|P|{version}"


def message(*segments: str, kind: str = "ORM^O01^ORM_O01", control: str, version: str = "2.5.1") -> bytes:
    return "\r".join((MSH.format(kind=kind, control=control, version=version), *segments)).encode() + b"\r"


def therapy(
    n: int, *, ids: str | None = None, control: str | None = None, version: str = "2.5.1", given: str = ""
) -> bytes:
    return message(
        f"PID|1||{ids or f'MRN{n:06d}^^^DEMOHOSP^MR'}||Testpatient^{given or f'N{n}'}||19700101|F",
        f"ORC|NW|PO-{n:06d}",
        f"OBR|1|PO-{n:06d}||S1234^Demo^ISBT128",
        control=control or f"T{n}",
        version=version,
    )


def ignored(reason: str) -> float:
    """What /metrics shows for cgt_inbound_ignored_total of the demo site's HL7 traffic."""
    labels = {"partner": "demo-hospital", "adapter": "hl7v2", "reason": reason}
    return REGISTRY.get_sample_value("cgt_inbound_ignored_total", labels) or 0.0


async def test_lab_orders_are_acknowledged_stored_nowhere_and_counted(gateway: Gateway) -> None:  # noqa: F811
    before = ignored("not_a_therapy_order")
    engine = await Engine.connect(port(gateway))
    answers = [
        await engine.send(fixture(name))
        for name in (
            "ignored_orm_lab_invision_style",
            "ignored_orm_urinalysis_local_code",
            "ignored_oml_o21_four_lab_tests",
            "ignored_orm_lab_cancel",
            "ignored_orm_radiology_v22",
            "ignored_orm_pharmacy_rxo",
        )
    ]
    mixed = await engine.send(fixture("oml_o21_therapy_among_lab_tests"))
    await engine.close()
    for answer in answers:
        assert field_of(answer, "MSA", 1) == "AA" and field_of(answer, "ERR", 1) == "", answer
    assert [field_of(a, "MSA", 2) for a in answers[:2]] == ["LAB0001", "LAB0002"]
    assert ignored("not_a_therapy_order") == before + 6
    assert field_of(mixed, "MSA", 1) == "AA"
    assert await count(gateway, t.inbound_messages) == 1  # the mixed message, and only it
    assert await count(gateway, t.orders) == 1  # its therapy group; its two lab tests made nothing
    assert await count(gateway, t.events) == 1


async def test_clinic_visits_and_adt_without_a_site_mrn_are_acknowledged_and_ignored(
    gateway: Gateway,  # noqa: F811
) -> None:
    visits, no_mrn, unknown = (
        ignored(r) for r in ("not_a_therapy_appointment", "no_site_mrn", "patient_unknown")
    )
    dropped = REGISTRY.get_sample_value("cgt_hl7v2_adt_dropped_total", {"partner": "demo-hospital"}) or 0.0
    engine = await Engine.connect(port(gateway))
    visit = await engine.send(fixture("ignored_siu_clinic_visit"))
    pi_only = await engine.send(fixture("ignored_adt_a08_pi_ids_only"))
    stranger = await engine.send(fixture("adt_a08_update"))  # an MRN the gateway never saw: the ADT filter
    await engine.close()
    for answer in (visit, pi_only, stranger):
        assert field_of(answer, "MSA", 1) == "AA" and field_of(answer, "ERR", 1) == ""
    assert ignored("not_a_therapy_appointment") == visits + 1 and ignored("no_site_mrn") == no_mrn + 1
    assert ignored("patient_unknown") == unknown + 1
    assert (
        REGISTRY.get_sample_value("cgt_hl7v2_adt_dropped_total", {"partner": "demo-hospital"}) == dropped + 1
    )
    assert await count(gateway, t.inbound_messages) == 0


async def test_versions_2_2_to_2_8_2_are_taken_and_a_2_6_merge_applies(gateway: Gateway) -> None:  # noqa: F811
    engine = await Engine.connect(port(gateway))
    placed = [  # one person registered twice (2 and 3): the merge joins records that agree
        await engine.send(therapy(n, version=v, given="Twice" if n in (2, 3) else ""))
        for n, v in enumerate(("2.2", "2.6", "2.7", "2.8.2"), 1)
    ]
    merge = message(
        "EVN|A40|20261102120000",
        "PID|||MRN000002^^^DEMOREG^MR||",
        "MRG|MRN000003^^^DEMOREG",
        kind="ADT^A40^ADT_A39",
        control="M1",
        version="2.6",
    )
    merged = await engine.send(merge)
    await engine.close()
    for answer in (*placed, merged):
        assert field_of(answer, "MSA", 1) == "AA" and field_of(answer, "ERR", 1) == "", answer
    assert [field_of(a, "MSH", 12) for a in placed] == ["2.2", "2.6", "2.7", "2.8.2"]  # answered in kind
    async with gateway.engine.connect() as conn:
        types = sorted(ty for (ty,) in (await conn.execute(select(t.events.c.type))).all())
    assert types.count("org.cgt.order.placed") == 4 and "org.cgt.patient.merged" in types


async def test_msh_10_with_spaces_is_echoed_as_sent_and_a_byte_order_mark_is_accepted(
    gateway: Gateway,  # noqa: F811
) -> None:
    engine = await Engine.connect(port(gateway))
    spaced = await engine.send(therapy(11, control=" 38762 "))
    bom = await engine.send(b"\xef\xbb\xbf" + therapy(12))
    again = await engine.send(therapy(11, control=" 38762 "))  # the same message: the same answer
    await engine.close()
    assert field_of(spaced, "MSA", 1) == "AA" and field_of(spaced, "MSA", 2) == " 38762 "
    assert again == spaced
    assert field_of(bom, "MSA", 1) == "AA" and field_of(bom, "MSA", 2) == "T12"
    assert await count(gateway, t.orders) == 2


async def test_two_mrns_get_205_and_an_mr_of_another_authority_is_the_demo_sites_mrn(
    gateway: Gateway,  # noqa: F811
) -> None:
    engine = await Engine.connect(port(gateway))
    two = await engine.send(therapy(21, ids="MRN000021^^^DEMOHOSP^MR~E000021^^^DEMOENT^MR"))
    other = await engine.send(therapy(22, ids="MRN000022^^^DEMOREG^MR~Z22^^^EPI^EPI"))
    await engine.close()
    assert field_of(two, "MSA", 1) == "AE" and field_of(two, "ERR", 2) == "PID^1^3"
    assert field_of(two, "ERR", 3) == "205^Duplicate key identifier^HL70357"
    assert "2 different MRNs" in field_of(two, "ERR", 8)
    assert field_of(other, "MSA", 1) == "AA" and field_of(other, "ERR", 1) == ""
    assert await count(gateway, t.orders) == 1


async def test_a_field_of_too_many_repetitions_is_refused_ar_naming_it_and_kept(gateway: Gateway) -> None:  # noqa: F811
    ids = "~".join(f"MRN{n:07d}^^^DEMOHOSP^MR" for n in range(150))
    engine = await Engine.connect(port(gateway))
    refused = await engine.send(therapy(31, ids=ids))
    fine = await engine.send(therapy(32))
    await engine.close()
    assert field_of(refused, "MSA", 1) == "AR" and field_of(refused, "MSA", 2) == "T31"
    assert field_of(refused, "ERR", 2) == "PID^1^3" and field_of(refused, "ERR", 3).startswith("207^")
    assert "150 repetitions; at most 100" in field_of(refused, "ERR", 8)
    assert field_of(fine, "MSA", 1) == "AA"
    assert await count(gateway, t.inbound_messages, t.inbound_messages.c.outcome == "rejected") == 1
