"""QC-gated release: the table of required tests, and the rule on the fakes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.canonical.order import Product
from gateway.errors import ConfigError
from gateway.service.release import load_release_tests
from gateway.settings import Settings
from tests.support.builders import coi, event
from tests.support.manufacturing import MAKER, TESTS, in_manufacturing, qc, released
from tests.unit.fakes import FakeTransactions
from tests.unit.test_intake_service import send, service


def test_the_shipped_table_covers_every_demo_product() -> None:
    tests = load_release_tests(Settings().release_tests_file)
    assert tests.required(Product(code="S9999")) == TESTS
    assert tests.required(Product(code="S1234")) == TESTS
    assert tests.required(Product(code="unknown", system="local:x")) == tests.default


@pytest.mark.parametrize(
    "text",
    [
        "products:\n  - {system: isbt128, code: S1, tests: []}\n",
        "products:\n  - {system: isbt128, code: S1, tests: [sterility, Sterility]}\n",
        "products:\n  - {system: isbt128, code: S1, tests: [a]}\n  - {system: isbt128, code: S1, tests: [b]}\n",
        "product: []\n",
        "products: [",
    ],
    ids=["no tests", "a test twice", "a product twice", "unknown key", "not YAML"],
)
def test_a_bad_table_refuses_to_start(tmp_path: Path, text: str) -> None:
    path = tmp_path / "release_tests.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match="release tests"):
        load_release_tests(path)


async def test_a_release_before_the_tests_passed_is_refused_naming_them() -> None:
    store = FakeTransactions()
    gate = service(store)
    placed = await in_manufacturing(send, gate, 1)
    the_coi = placed.coi or ""
    await send(
        gate,
        qc(the_coi, "Sterility"),
        qc(the_coi, "endotoxin", "fail"),
        qc(the_coi, "potency", "pending"),
        partner=MAKER,
    )
    outcome = await send(gate, released(the_coi), partner=MAKER)
    assert outcome.status == "rejected" and outcome.error == "ReleaseRefused" and outcome.http_status == 409
    assert outcome.reason == (
        "release refused: QC tests missing: mycoplasma, viability, car_expression; "
        "QC tests pending: potency; QC tests failed: endotoxin"
    )
    order = store.committed.orders[placed.order_id or ""]
    assert order.status.value == "in_manufacturing" and order.manufacturing.released_at is None
    assert store.committed.audit[-1].action == "message.rejected"
    assert store.committed.inbound[-1]["outcome"] == "rejected" and store.committed.inbound[-1]["raw"]


async def test_a_failed_test_retested_and_passed_counts_as_passed() -> None:
    store = FakeTransactions()
    gate = service(store)
    placed = await in_manufacturing(send, gate, 1)
    the_coi = placed.coi or ""
    await send(gate, *(qc(the_coi, t) for t in TESTS), partner=MAKER)
    await send(gate, qc(the_coi, "CAR expression", "fail"), partner=MAKER)
    refused = await send(gate, released(the_coi), partner=MAKER)
    assert refused.error == "ReleaseRefused" and "failed: car_expression" in (refused.reason or "")
    await send(gate, qc(the_coi, "car-expression", "pass"), partner=MAKER)
    outcome = await send(gate, released(the_coi), partner=MAKER)
    assert outcome.status == "applied"
    order = store.committed.orders[placed.order_id or ""]
    assert order.status.value == "released" and order.manufacturing.qc["car_expression"].value == "pass"


async def test_an_open_critical_deviation_blocks_the_release_until_it_is_closed() -> None:
    store = FakeTransactions()
    gate = service(store)
    placed = await in_manufacturing(send, gate, 1)
    the_coi = placed.coi or ""
    deviation: dict[str, Any] = {"batch_id": "B1", "deviation_id": "DEV-7"}
    await send(gate, *(qc(the_coi, t) for t in TESTS), partner=MAKER)
    await send(
        gate,
        event("manufacturing.deviation_opened", coi(the_coi), severity="Critical", **deviation),
        partner=MAKER,
    )
    await send(
        gate,
        event(
            "manufacturing.deviation_opened",
            coi(the_coi),
            severity="minor",
            batch_id="B1",
            deviation_id="DEV-8",
        ),
        partner=MAKER,
    )
    refused = await send(gate, released(the_coi), partner=MAKER)
    assert (
        refused.error == "ReleaseRefused"
        and refused.reason == "release refused: blocking deviations open: DEV-7"
    )
    await send(
        gate,
        event("manufacturing.deviation_closed", coi(the_coi), outcome="no impact", **deviation),
        partner=MAKER,
    )
    assert (await send(gate, released(the_coi), partner=MAKER)).status == "applied"
    assert store.committed.orders[placed.order_id or ""].manufacturing.open_deviations == {"DEV-8": "minor"}


async def test_a_release_the_lifecycle_refuses_gets_the_lifecycles_reason() -> None:
    store = FakeTransactions()
    gate = service(store)
    placed = await in_manufacturing(send, gate, 1)
    the_coi = placed.coi or ""
    await send(gate, *(qc(the_coi, t) for t in TESTS), partner=MAKER)
    assert (await send(gate, released(the_coi), partner=MAKER)).status == "applied"
    again = await send(gate, released(the_coi), partner=MAKER)
    assert again.error == "IllegalTransition"


async def test_the_product_shipped_puts_the_order_in_transit_and_the_courier_may_confirm_it() -> None:
    store = FakeTransactions()
    gate = service(store)
    placed = await in_manufacturing(send, gate, 1)
    the_coi = placed.coi or ""
    await send(gate, *(qc(the_coi, t) for t in TESTS), released(the_coi), partner=MAKER)
    shipped = event(
        "manufacturing.shipped", coi(the_coi), batch_id="B1", shipment_id="SH-OUT", courier="demo-courier"
    )
    assert (await send(gate, shipped, partner=MAKER)).status == "applied"
    order = store.committed.orders[placed.order_id or ""]
    assert order.status.value == "in_transit_to_site"
    assert order.shipment("SH-OUT") is not None and order.shipment("SH-OUT").courier == "demo-courier"  # type: ignore[union-attr]
    pickup = event("shipment.picked_up", coi(the_coi), shipment_id="SH-OUT")
    assert (await send(gate, pickup, partner="demo-courier")).status == "applied"
