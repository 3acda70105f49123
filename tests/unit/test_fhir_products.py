"""Which codes name a therapy product: ISBT 128 cellular therapy codes by their shape, the site's
own codes by its table, nothing without a system; a table that translates into ISBT 128 must
translate into codes of that shape."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from adapters.fhir.products import is_isbt128_cellular, product_of
from adapters.fhir.profile import ProductSystem, load_profile

ISBT = "urn:oid:2.16.840.1.113883.6.18"
PHARMACY = "urn:oid:2.16.840.1.113883.3.9999.3"


@pytest.mark.parametrize("code", ["S9999", "S1234V00", "S0001A0B"])
def test_cellular_therapy_product_codes_have_the_shape(code: str) -> None:
    assert is_isbt128_cellular(code)


@pytest.mark.parametrize(
    "code", ["E0001", "E0001V00", "T1234", "S999", "S99999", "s9999", "S9999V0", "LIPID"]
)
def test_other_codes_do_not(code: str) -> None:
    assert not is_isbt128_cellular(code)


@pytest.mark.parametrize(
    ("coding", "expected"),
    [
        ({"system": ISBT, "code": "S9999"}, ("S9999", "isbt128")),
        ({"system": ISBT, "code": "E0001V00"}, None),
        ({"code": "S9999"}, None),  # no system, no default
        ({"system": PHARMACY, "code": "CART-DEMO-01"}, ("S9999", "isbt128")),
        ({"system": PHARMACY, "code": "PARACETAMOL-500"}, None),
        ({"system": "http://snomed.info/sct", "code": "S9999"}, None),
    ],
)
def test_a_coding_names_a_product_of_the_sites_profile_or_none(
    coding: dict[str, str], expected: tuple[str, str] | None
) -> None:
    product = product_of(coding, load_profile("demo-hospital"))
    assert (product.code, product.system) == expected if product else expected is None


def test_a_table_into_isbt128_with_a_code_of_another_shape_is_refused_at_load() -> None:
    with pytest.raises(ValidationError, match="LOCAL-1"):
        ProductSystem(system=PHARMACY, codes={"LOCAL-1": {"code": "E0001"}})
    assert ProductSystem(system=PHARMACY, canonical_system="site:x:product", codes={"L": {"code": "E0001"}})
