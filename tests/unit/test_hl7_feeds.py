"""Hospital feeds as real EHRs send them, mapping side: what a therapy product is, the MRN's
authority, limits on one message, versions, a byte-order mark, MSH-10 as sent."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from adapters.hl7v2 import ack as acks
from adapters.hl7v2 import er7
from adapters.hl7v2.common import Coded
from adapters.hl7v2.header import header, read_header
from adapters.hl7v2.profile import SiteProfile, parse_within_limits
from adapters.hl7v2.routing import commands_for
from adapters.hl7v2.therapy import kind_of
from gateway.errors import MappingError, NotOurs, TooLarge
from gateway.partners import load_partners
from gateway.settings import Settings
from tests.support.hl7 import SHIPPED as PROFILES
from tests.support.hl7 import commands_of, configured, load_profile

DEMO = load_profile("demo-hospital")
PARTNER = load_partners(Settings().partners_file, env="test").get("demo-hospital")


def message(
    *segments: str, version: str = "2.5.1", kind: str = "ORM^O01^ORM_O01", control: str = "F1"
) -> bytes:
    msh = f"MSH|^~\\&|DEMO_EHR|DEMO_HOSPITAL|CGT_GATEWAY|CGT|20261102091500||{kind}|{control}|P|{version}"
    return "\r".join((msh, *segments)).encode() + b"\r"


def mapped(raw: bytes, profile: SiteProfile = DEMO) -> list[str]:
    parsed = er7.parse(raw)
    return [c.event for c in commands_for(parsed, header(parsed), profile, PARTNER)]


@pytest.mark.parametrize(
    ("code", "system", "kind"),
    [
        ("S1234", "ISBT128", "therapy"),
        ("S1234A00", "99ISBT", "therapy"),  # with type of donation and division
        ("E0336", "ISBT128", "other"),  # a blood component, not a cellular therapy product
        ("S12", "ISBT128", "other"),
        ("CART-DEMO", "L", "therapy"),  # a listed site code under the site's local system
        ("CART-CERNER", "", "therapy"),  # ... or under none
        ("003038", "L", "other"),  # a local lab code
        ("CAI", "", "other"),  # no coding system, not a listed code
        ("58410-2", "LN", "other"),  # a coding system the profile does not know
        ("S4321", "", "unclear"),  # a therapy shape without a coding system: refused, not guessed
        ("CART-DEMO", "99EPIC", "unclear"),  # a site code under an unknown system: refused
    ],
)
def test_what_a_therapy_product_is(code: str, system: str, kind: str) -> None:
    assert kind_of(Coded(code, "", system, "OBR-4"), DEMO) == kind


def test_an_order_message_of_lab_tests_only_is_not_ours_and_one_mixed_keeps_its_therapy_group() -> None:
    labs = [f"ORC|NW|L{n}\rOBR|{n}|L{n}||{code}^Test^LN" for n, code in enumerate(("2345-7", "2951-2"), 1)]
    with pytest.raises(NotOurs) as caught:
        mapped(message("PID|1||M1^^^DEMOHOSP^MR", *labs))
    assert caught.value.reason == "not_a_therapy_order"
    therapy = "ORC|NW|PO-1\rOBR|3|PO-1||S1234^CAR-T^ISBT128"
    assert mapped(message("PID|1||M1^^^DEMOHOSP^MR", labs[0], therapy, labs[1])) == ["order.placed"]


def test_a_lab_message_is_not_ours_before_its_patient_identifiers_are_read() -> None:
    with pytest.raises(NotOurs):  # two MRNs would be refused in a therapy order
        mapped(message("PID|1||M1^^^A^MR~M2^^^B^MR", "ORC|NW|L1", "OBR|1|L1||CAI^CALCIUM IONIZED"))


def listing(*authorities: str) -> SiteProfile:
    return DEMO.model_copy(update={"mrn": DEMO.mrn.model_copy(update={"assigning_authorities": authorities})})


def test_a_site_that_lists_authorities_is_told_which_authority_came_and_which_it_takes() -> None:
    raw = message("PID|1||M1^^^OTHERHOSP^MR~9^^^X^PI", "ORC|NW|PO-1", "OBR|1|PO-1||S1234^CAR-T^ISBT128")
    assert mapped(raw) == ["order.placed"]  # the demo site takes an MR of any authority
    with pytest.raises(MappingError) as caught:
        mapped(raw, listing("DEMOHOSP", "DEMOREG"))
    error = caught.value
    assert error.code == "103" and error.location == "PID-3"
    assert "'OTHERHOSP'" in error.public_message and "DEMOHOSP, DEMOREG" in error.public_message
    with pytest.raises(MappingError) as none:
        mapped(message("PID|1||9^^^X^PI", "ORC|NW|PO-1", "OBR|1|PO-1||S1234^CAR-T^ISBT128"))
    assert none.value.code == "101" and "identifier type MR" in none.value.public_message


def test_a_merge_takes_untyped_prior_ids_of_the_surviving_mrns_authority_only() -> None:
    raw = message("PID|||MR1^^^XYZ^MR", "MRG|MR2^^^XYZ~77^^^OTHER", kind="ADT^A40^ADT_A39", version="2.6")
    parsed = er7.parse(raw)
    (merged,) = commands_for(parsed, header(parsed), DEMO, PARTNER)
    assert [r.value for r in merged.refs] == ["MR1", "MR2"]


def test_repetitions_and_segments_above_the_profiles_caps_are_refused_naming_where() -> None:
    at_cap = "~".join(f"{n}^^^X^PI" for n in range(99)) + "~M1^^^DEMOHOSP^MR"
    assert mapped(message(f"PID|1||{at_cap}", "ORC|NW|PO-1", "OBR|1|PO-1||S1234^C^ISBT128")) == [
        "order.placed"
    ]
    with pytest.raises(TooLarge) as caught:
        er7.parse(message(f"PID|1||{at_cap}~M2^^^X^PI"))
    assert caught.value.location == "PID-3" and caught.value.code == "207"
    assert "101 repetitions; at most 100" in caught.value.public_message
    er7.parse(message(*["NTE|1||x"] * 999))
    with pytest.raises(TooLarge, match="more than 1000 segments"):
        er7.parse(message(*["NTE|1||x"] * 1000))
    with pytest.raises(TooLarge):
        er7.parse(message("PID|1||1~2~3"), max_repetitions=2)


def test_a_40000_repetition_pid_3_is_refused_by_the_adapter() -> None:
    from gateway.canonical.envelope import utcnow
    from gateway.registry import InboundContext

    huge = "~".join(f"MRN{n:07d}^^^DEMOHOSP^MR" for n in range(40_000))
    with pytest.raises(TooLarge):
        commands_of(configured().decode(message(f"PID|1||{huge}"), InboundContext(PARTNER, "test", utcnow())))


def test_a_profile_names_its_own_limits(tmp_path: Path) -> None:
    document = yaml.safe_load((PROFILES / "demo-hospital.yaml").read_text(encoding="utf-8"))
    (tmp_path / "tight.yaml").write_text(yaml.safe_dump(document | {"limits": {"repetitions": 5}}))
    tight = load_profile("tight", tmp_path)
    assert tight.limits.repetitions == 5 and DEMO.limits.segments == 1000
    with pytest.raises(TooLarge, match="PID-3 has 6 repetitions; at most 5"):
        parse_within_limits(message("PID|1||1~2~3~4~5~6"), tight)


@pytest.mark.parametrize("version", ["2.2", "2.6", "2.7", "2.7.1", "2.8.2"])
def test_versions_2_2_to_2_8_2_map_alike(version: str) -> None:
    raw = message(
        "PID|1||M1^^^DEMOHOSP^MR", "ORC|NW|PO-1", "OBR|1|PO-1||S1234^CAR-T^ISBT128", version=version
    )
    assert mapped(raw) == ["order.placed"]


def test_a_byte_order_mark_is_read_past_by_the_header_and_the_parser() -> None:
    raw = b"\xef\xbb\xbf" + message("PID|1||M1^^^DEMOHOSP^MR", "ORC|NW|PO-1", "OBR|1|PO-1||S1234^C^ISBT128")
    head = read_header(raw)
    assert head is not None and head.control_id == "F1"
    assert mapped(raw) == ["order.placed"]


def test_msa_2_echoes_msh_10_as_sent_spaces_and_escapes_included() -> None:
    head = read_header(message("PID|1||M1^^^DEMOHOSP^MR", control=" 38762 "))
    assert head is not None and head.control_id == "38762"
    answer = acks.render(head, acks.ACCEPTED, control_id="38762").decode()
    assert answer.split("\r")[1] == "MSA|AA| 38762 "
    escaped = read_header(message(control="A\\F\\B"))
    assert escaped is not None
    assert acks.render(escaped, acks.ACCEPTED).decode().split("\r")[1] == "MSA|AA|A\\F\\B"
