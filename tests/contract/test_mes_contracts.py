"""contracts/mes/: the CloudEvents dialect's JSON Schemas, as its wire models generate them
(drift-checked with every contract by test_contracts), valid schemas, and what manufacturers
validate against: every valid example passes its type's schema, a broken one does not."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from jsonschema import Draft202012Validator

from adapters.mes.cloudevents.schemas import contract_files
from adapters.mes.cloudevents.wire import DATA
from gateway.contracts import CONTRACTS_DIR

FIXTURES = Path(__file__).parents[1] / "fixtures" / "mes" / "cloudevents"


def schema(name: str) -> Draft202012Validator:
    document = orjson.loads((CONTRACTS_DIR / "mes" / f"{name}.json").read_bytes())
    Draft202012Validator.check_schema(document)
    return Draft202012Validator(document)


def test_one_committed_schema_for_each_event_type() -> None:
    assert set(contract_files()) == {f"mes/{name}.json" for name in DATA}
    for rel, body in contract_files().items():
        assert (CONTRACTS_DIR / rel).read_bytes() == body, "run: cgt-gateway contracts export"


@pytest.mark.parametrize("name", sorted(DATA))
def test_the_example_of_each_type_obeys_its_schema(name: str) -> None:
    event = orjson.loads((FIXTURES / f"{name}.json").read_bytes())
    assert not list(schema(name).iter_errors(event))


@pytest.mark.parametrize(
    ("name", "fixture"),
    [
        ("material_received", "malformed_no_time"),
        ("qc_result", "qc_result_bad_result"),
        ("released", "no_subject"),
    ],
)
def test_a_broken_event_fails_its_schema(name: str, fixture: str) -> None:
    event = orjson.loads((FIXTURES / f"{fixture}.json").read_bytes())
    event["type"] = f"org.cgt.mes.{name}"
    assert list(schema(name).iter_errors(event))
