"""Golden tests of the EPCIS dialect: synthetic documents in the shapes of GS1's examples
(tests/fixtures/epcis/*.jsonld) and what each decodes to (`*.canonical.json`, `*.error.json`).
CGT_REGOLD=1 rewrites the expected files."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.couriers.epcis.adapter import adapter
from gateway.canonical.envelope import utcnow
from gateway.partners import load_partners
from gateway.sdk import InboundContext
from gateway.settings import Settings
from tests.support.golden import check

FIXTURES = Path(__file__).parents[1] / "fixtures" / "epcis"
COURIER = load_partners(Settings().partners_file, env="test").get("demo-courier")


@pytest.mark.parametrize("source", sorted(FIXTURES.glob("*.jsonld")), ids=lambda p: p.stem)
def test_each_fixture_decodes_to_its_golden_file(source: Path) -> None:
    actual = check(
        source, lambda: adapter.decode(source.read_bytes(), InboundContext(COURIER, "test", utcnow()))
    )
    assert ("error" in actual) == source.stem.startswith("invalid_"), actual
