import pytest
from pydantic import ValidationError

from gateway.canonical.ids import (
    ExternalRef,
    IdentifierScope,
    mod37_2_check,
    new_coi,
    validate_coi,
    validate_din,
)


@pytest.mark.parametrize(
    ("din", "check"),
    [
        ("G123498654321", "H"),
        ("A999921123456", "3"),
        ("A999914123458", "J"),
        ("A999920000001", "*"),
        ("A999920000059", "0"),
    ],
)
def test_mod37_2_matches_the_isbt128_vectors(din: str, check: str) -> None:
    assert mod37_2_check(din) == check
    assert validate_din(din + check) == din


def test_a_wrong_check_character_is_refused() -> None:
    with pytest.raises(ValueError, match="check character"):
        validate_din("G123498654321J")


@pytest.mark.parametrize("bad", ["O123498654321", "G12349865432", "G1234986543210X", "g12349865432!"])
def test_malformed_dins_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        validate_din(bad)


def test_coi_format_and_the_data_identifier() -> None:
    assert validate_coi("&/CHA999926ABC123") == "CHA999926ABC123"
    with pytest.raises(ValueError):
        validate_coi("CHO999926ABC123")  # no letter O as a facility's first character
    issued = new_coi("A9999", 2026)
    assert issued.startswith("CHA999926") and len(issued) == 15


def test_identifier_scope_follows_the_namespace_kind() -> None:
    assert ExternalRef(namespace="site:h1:mrn", value="1").scope is IdentifierScope.patient
    assert ExternalRef(namespace="site:h1:placer-order", value="1").scope is IdentifierScope.order
    assert ExternalRef(namespace="coi", value="x").scope is IdentifierScope.order


def test_identifier_values_never_print() -> None:
    ref = ExternalRef(namespace="site:h1:mrn", value="MRN-SECRET")
    assert "MRN-SECRET" not in str(ref)


def test_namespaces_are_validated() -> None:
    with pytest.raises(ValidationError):
        ExternalRef(namespace="Site With Spaces", value="1")
