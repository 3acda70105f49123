"""Receipt verification: the scans against the ISBT 128 vectors, and the rule on the fakes."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.canonical.ids import mod37_2_check
from gateway.canonical.order import TherapyOrder
from gateway.canonical.payloads import MaterialReceived
from gateway.identity.receipt import receipt_findings, scanned_din
from tests.support.builders import T0
from tests.support.manufacturing import MAKER, collected, din_of, din_ref, keyed, receipt
from tests.unit.fakes import FakeTransactions
from tests.unit.test_intake_service import send, service

# The DIN vectors of ISBT 128 ST-001 v6.2.2 (Appendix A.1-A.2, Figure 2, section 7.5.1.1) and
# the bar code of a public parser's tests, as collected with their check characters recomputed
# (ISO/IEC 7064 MOD 37-2) in the shared isbt128-check-character-vectors file: the values only.
DIN_VECTORS: list[dict[str, Any]] = [
    {"din13": "G123417654321", "K": "A", "type3_flag": "70", "ds001_data_content": "G12341765432170",
     "barcode": "=G12341765432170"},
    {"din13": "A999921123456", "K": "3"},
    {"din13": "A999818123456", "K": "N"},
    {"din13": "A999917123456", "K": "9", "barcode": "=A99991712345600"},
]  # fmt: skip


@pytest.mark.parametrize("vector", DIN_VECTORS, ids=lambda v: v["din13"])
def test_the_check_character_of_every_isbt128_vector(vector: dict[str, Any]) -> None:
    din = vector["din13"]
    assert mod37_2_check(din) == vector["K"]
    assert scanned_din(din + vector["K"]) == din  # keyed with its check character
    assert scanned_din(din) == din  # a bar code carries none
    wrong = next(c for c in "0123456789" if c != vector["K"])
    with pytest.raises(ValueError, match="check character"):
        scanned_din(din + wrong)


@pytest.mark.parametrize("vector", [v for v in DIN_VECTORS if "type3_flag" in v], ids=lambda v: v["din13"])
def test_type_3_flags_carry_the_check_value(vector: dict[str, Any]) -> None:
    assert scanned_din(vector["barcode"]) == vector["din13"]
    assert scanned_din(vector["ds001_data_content"]) == vector["din13"]
    other = f"{(int(vector['type3_flag']) - 59) % 37 + 60:02d}"
    with pytest.raises(ValueError, match="check character"):
        scanned_din(vector["din13"] + other)


def test_other_flags_are_not_a_check() -> None:
    assert scanned_din("=A99991712345600") == "A999917123456"


def order(din: str | None = "A999921123456") -> TherapyOrder:
    return TherapyOrder.model_validate(
        {
            "order_id": "o1",
            "coi": "CHA999926ABC123",
            "patient_id": "p1",
            "product": {"code": "S9999"},
            "ordering_site": {"id": "demo-hospital"},
            "collection": {"din": din},
            "created_at": T0,
            "updated_at": T0,
        }
    )


@pytest.mark.parametrize(
    ("scans", "finding"),
    [
        ({"scanned_coi": "CHA999926ABC123", "din": "A9999211234563"}, None),
        ({"scanned_coi": "CHA999926ABC999", "din": "A9999211234563"}, "the scanned COI is not the order's"),
        ({"scanned_coi": "CHA999926ABC123", "din": "A9999211234571"}, "not the order's collection DIN"),
        ({"scanned_coi": "CHA999926ABC123", "din": "A9999211234564"}, "check character does not match"),
        ({"scanned_coi": "CHA999926ABC123"}, "no DIN scanned"),
        ({"din": "A9999211234563"}, "no COI scanned"),
    ],
)
def test_receipt_findings(scans: dict[str, str], finding: str | None) -> None:
    found = receipt_findings(order(), MaterialReceived.model_validate(scans))
    assert (finding is None and found == []) or (finding is not None and finding in "; ".join(found))


def test_an_order_without_a_collection_din_cannot_verify_a_receipt() -> None:
    scans = MaterialReceived(scanned_coi="CHA999926ABC123", din="A9999211234563")
    assert receipt_findings(order(din=None), scans) == [
        "the order has no collection DIN to verify the scan against"
    ]


# -- the rule in the intake, on the fakes ---------------------------------------------------------
async def test_a_matching_receipt_is_applied() -> None:
    store = FakeTransactions()
    gate = service(store)
    placed = await collected(send, gate, 1)
    outcome = await send(gate, receipt(placed.coi or "", din=keyed(din_of(1))), partner=MAKER)
    assert outcome.status == "applied"
    assert store.committed.orders[placed.order_id or ""].status.value == "received_by_manufacturer"


async def test_the_bag_of_another_patient_holds_both_orders() -> None:
    store = FakeTransactions()
    gate = service(store)
    mine, theirs = await collected(send, gate, 1), await collected(send, gate, 2)
    outcome = await send(gate, receipt(mine.coi or "", din=keyed(din_of(2))), partner=MAKER)
    assert outcome.status == "quarantined" and outcome.error == "ReceiptMismatch"
    state = store.committed
    assert [q["reason"] for q in state.quarantine] == ["receipt_mismatch"]
    last = state.events[-3:]
    assert [e.routing_key for e, _, _ in last] == ["identity.mismatch", "order.held", "order.held"]
    assert last[0][0].data["severity"] == "critical"
    assert {o for _, o, _ in last[1:]} == {mine.order_id, theirs.order_id}
    for placed in (mine, theirs):
        held = state.orders[placed.order_id or ""]
        assert held.status.value == "on_hold" and held.status_before_hold is not None
        assert held.status_before_hold.value == "collected"  # the receipt itself is not applied
    assert [a.action for a in state.audit[-3:]] == ["message.quarantined", "order.held", "order.held"]
    assert all(a.actor == "gateway" for a in state.audit[-2:])


async def test_a_receipt_whose_own_identifiers_name_two_orders_is_a_receipt_mismatch() -> None:
    store = FakeTransactions()
    gate = service(store)
    mine, theirs = await collected(send, gate, 1), await collected(send, gate, 2)
    scanned = receipt(mine.coi or "", din_ref(din_of(2)), din=din_of(2))
    outcome = await send(gate, scanned, partner=MAKER)
    assert outcome.status == "quarantined" and outcome.error == "ReceiptMismatch"
    assert {store.committed.orders[p.order_id or ""].status.value for p in (mine, theirs)} == {"on_hold"}


@pytest.mark.parametrize(
    "scans",
    [
        {"din": keyed("A999926009999")},  # a DIN bound nowhere
        {"din": din_of(1) + "Z"},  # a wrong check character
        {"din": None},  # no scan
        {"din": keyed(din_of(1)), "scanned_coi": "CHA999926ZZZ999"},
    ],
    ids=["unknown DIN", "wrong check character", "missing scan", "another COI"],
)
async def test_a_receipt_that_is_not_the_collection_holds_its_order(scans: dict[str, Any]) -> None:
    store = FakeTransactions()
    gate = service(store)
    placed = await collected(send, gate, 1)
    outcome = await send(gate, receipt(placed.coi or "", **scans), partner=MAKER)
    assert outcome.status == "quarantined" and outcome.http_status == 202
    assert store.committed.orders[placed.order_id or ""].status.value == "on_hold"
    assert [e.routing_key for e, _, _ in store.committed.events[-2:]] == ["identity.mismatch", "order.held"]


async def test_a_receipt_for_an_order_on_hold_keeps_it_on_hold_and_says_so_again() -> None:
    store = FakeTransactions()
    gate = service(store)
    placed = await collected(send, gate, 1)
    await send(gate, receipt(placed.coi or "", din=None), partner=MAKER)
    again = await send(gate, receipt(placed.coi or "", din=keyed("A999926009999")), partner=MAKER)
    assert again.status == "quarantined"
    held = store.committed.orders[placed.order_id or ""]
    assert (
        held.status.value == "on_hold"
        and held.status_before_hold
        and held.status_before_hold.value == "collected"
    )
    assert [e.routing_key for e, _, _ in store.committed.events].count("order.held") == 2


async def test_a_receipt_from_a_partner_that_may_not_send_one_is_refused_and_holds_nothing() -> None:
    store = FakeTransactions()
    gate = service(store)
    placed = await collected(send, gate, 1)
    outcome = await send(gate, receipt(placed.coi or "", din=None), partner="demo-lab-courier")
    assert outcome.status == "rejected" and outcome.http_status == 403
    assert store.committed.orders[placed.order_id or ""].status.value == "collected"
    assert "order.held" not in [e.routing_key for e, _, _ in store.committed.events]


def test_a_scan_is_kept_as_read_with_spaces_dropped() -> None:
    scans = MaterialReceived(scanned_coi="CHA999926ABC123", din=" a9999211234563 ")
    assert scans.din == "A9999211234563" and receipt_findings(order(), scans) == []
