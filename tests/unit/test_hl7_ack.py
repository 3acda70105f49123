"""ACKs: original and enhanced mode, MSA-2 echoing MSH-10, ERR naming location and table 0357 code.

Every ACK is read back with python-hl7 and (strictly) with hl7apy: what we send parses."""

from __future__ import annotations

import hl7
import pytest
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

from adapters.hl7v2 import ack as acks
from adapters.hl7v2.header import Header, read_header
from gateway.canonical.envelope import utcnow
from gateway.errors import MappingError, TransientError
from gateway.outcome import Outcome
from gateway.partners import load_partners
from gateway.sdk import InboundContext
from gateway.settings import Settings
from tests.support.hl7 import configured


def header(version: str = "2.5.1", extra: str = "", control: str = "MSG-0001") -> Header:
    raw = f"MSH|^~\\&|DEMO_EHR|DEMO_HOSPITAL|CGT_GATEWAY|CGT|20261102091500||ORM^O01^ORM_O01|{control}|P|{version}{extra}\r"
    found = read_header(raw.encode())
    assert found is not None
    return found


def outcome(status: str, error: str | None = None, **kw: object) -> Outcome:
    return Outcome.model_validate(
        {
            "status": status,
            "inbound_id": "i-1",
            "partner": "demo-hospital",
            "message_id": "MSG-0001",
            "error": error,
            **kw,
        }
    )


def segments(raw: bytes) -> dict[str, list[str]]:
    text = raw.decode()
    assert text.endswith("\r")
    return {line[:3]: line.split("|") for line in text.strip("\r").split("\r")}


def test_applied_is_aa_and_echoes_the_control_id_and_the_sender() -> None:
    raw = acks.render(header(), acks.verdict_of(outcome("applied")), control_id="MSG-0001")
    seg = segments(raw)
    assert seg["MSA"][:3] == ["MSA", "AA", "MSG-0001"] and "ERR" not in seg
    assert seg["MSH"][2:6] == ["CGT_GATEWAY", "CGT", "DEMO_EHR", "DEMO_HOSPITAL"]
    assert seg["MSH"][8] == "ACK^O01^ACK" and seg["MSH"][11] == "2.5.1" and seg["MSH"][10] == "P"
    parsed = hl7.parse(raw.decode())
    assert str(parsed.segment("MSA")[2]) == "MSG-0001"


def test_a_mapping_error_is_ae_with_err_location_code_and_severity() -> None:
    error = outcome("rejected", "MappingError", reason="the MRN is missing", location="PID-3", code="101")
    seg = segments(acks.render(header(), acks.verdict_of(error)))
    assert seg["MSA"][1] == "AE"
    assert seg["ERR"][2] == "PID^1^3" and seg["ERR"][3] == "101^Required field missing^HL70357"
    assert seg["ERR"][4] == "E" and seg["ERR"][8] == "the MRN is missing"


@pytest.mark.parametrize(
    ("error", "code"),
    [
        ("MalformedMessage", "100"),
        ("UnsupportedMessage", "200"),
        ("NotAuthenticated", "207"),
        ("TooLarge", "207"),
    ],
)
def test_what_the_gateway_cannot_take_is_ar(error: str, code: str) -> None:
    seg = segments(acks.render(header(), acks.verdict_of(outcome("rejected", error, reason="no"))))
    assert seg["MSA"][1] == "AR" and seg["ERR"][3].startswith(code)


def test_a_quarantine_is_aa_with_a_warning_that_says_do_not_resend() -> None:
    held = outcome(
        "quarantined", "UnknownIdentity", reason="no identifier in the message resolves to a known order"
    )
    seg = segments(acks.render(header(), acks.verdict_of(held)))
    assert seg["MSA"][1] == "AA"
    assert seg["ERR"][4] == "W" and seg["ERR"][3].startswith("0^") and seg["ERR"][5] == "UnknownIdentity^^CGT"
    assert "do not resend" in seg["ERR"][8] and "do not resend" in seg["MSA"][3]


def test_a_transient_failure_is_ae_code_206_so_the_sender_retries() -> None:
    seg = segments(acks.render(header(), acks.verdict_of_error(TransientError(detail="db down"))))
    assert seg["MSA"][1] == "AE" and seg["ERR"][3].startswith("206^") and "retry" in seg["ERR"][8]


def test_version_2_3_answers_with_err_1_and_a_two_part_message_type() -> None:
    error = MappingError("bad", location="ORC-1", code="103")
    seg = segments(acks.render(header("2.3"), acks.verdict_of_error(error)))
    assert seg["MSH"][8] == "ACK^O01" and seg["MSH"][11] == "2.3"
    assert seg["ERR"] == ["ERR", "ORC^1^1^103&Table value not found&HL70357"]


@pytest.mark.parametrize(
    ("msh15", "msh16", "status", "sent"),
    [
        ("AL", "NE", "applied", "CA"),
        ("AL", "NE", "rejected", "CR"),
        ("AL", "AL", "quarantined", "CA"),
        ("NE", "AL", "applied", None),
        ("NE", "AL", "rejected", None),
        ("ER", "NE", "applied", None),
        ("ER", "NE", "rejected", "CR"),
        ("SU", "NE", "applied", "CA"),
        ("SU", "NE", "rejected", None),
        ("", "AL", "applied", "CA"),  # MSH-16 alone: enhanced mode, commit ACK always
        ("", "", "quarantined", "AA"),  # neither: original mode
    ],
)
def test_enhanced_mode_answers_commit_codes_as_msh15_asks(
    msh15: str, msh16: str, status: str, sent: str | None
) -> None:
    head = header(extra=f"|||{msh15}|{msh16}")
    error = (
        None if status == "applied" else "UnsupportedMessage" if status == "rejected" else "UnknownIdentity"
    )
    raw = acks.render(head, acks.verdict_of(outcome(status, error, reason="r")))
    assert (segments(raw)["MSA"][1] if raw else None) == sent


def test_control_ids_and_texts_are_escaped() -> None:
    error = outcome("rejected", "MappingError", reason="bad ORC-1 | value ^ here", message_id="A|B")
    raw = acks.render(header(), acks.verdict_of(error), control_id="A|B")
    seg = segments(raw)
    assert seg["MSA"][2] == "A\\F\\B" and seg["ERR"][8] == "bad ORC-1 \\F\\ value \\S\\ here"


def test_an_unparseable_frame_still_gets_an_ack() -> None:
    raw = acks.render(
        None, acks.verdict_of(outcome("rejected", "MalformedMessage", message_id=None, reason="x"))
    )
    seg = segments(raw)
    assert seg["MSA"][:3] == ["MSA", "AR", ""] and seg["MSH"][11] == "2.5.1"


def test_the_adapter_answers_one_message_in_its_own_version() -> None:
    raw = b"MSH|^~\\&|DEMO_EHR|DEMO_HOSPITAL|CGT|CGT|20261102091500||ADT^A08|M77|P|2.4\r"
    adapter = configured()
    partner = load_partners(Settings().partners_file, env="test").get("demo-hospital")
    decoded = adapter.decode(raw, InboundContext(partner, "test", utcnow()))
    seg = segments(adapter.answer(outcome("applied", message_id=None), decoded))
    assert seg["MSA"][2] == "M77" and seg["MSH"][11] == "2.4" and seg["MSH"][8] == "ACK^A08^ACK"
    plain = segments(adapter.answer(outcome("applied"), None))
    assert plain["MSA"][2] == "MSG-0001" and plain["MSH"][11] == "2.5.1"


@pytest.mark.parametrize("version", ["2.3.1", "2.4", "2.5", "2.5.1"])
@pytest.mark.parametrize("status", ["applied", "quarantined", "rejected"])
def test_every_ack_is_valid_hl7_for_hl7apy_strict(version: str, status: str) -> None:
    error = {"applied": None, "quarantined": "UnknownIdentity", "rejected": "MappingError"}[status]
    raw = acks.render(
        header(version), acks.verdict_of(outcome(status, error, reason="r", location="PID-3", code="101"))
    )
    message = parse_message(raw.decode(), validation_level=VALIDATION_LEVEL.STRICT, find_groups=True)
    message.validate()
    assert message.msa.msa_2.to_er7() == "MSG-0001"
