"""The ER7 parser: delimiters, escapes, character sets, field paths; and it never hangs or crashes."""

from __future__ import annotations

import random
import time

import pytest

from adapters.hl7v2 import er7
from adapters.hl7v2.header import read_header
from gateway.errors import GatewayError, MalformedMessage, UnsupportedMessage

MSH = "MSH|^~\\&|DEMO_EHR|DEMO_HOSPITAL|CGT|CGT|20261102091500||ADT^A08^ADT_A01|M1|P|2.5.1"


def message(*segments: str, msh: str = MSH, charset: str = "utf-8") -> er7.Message:
    return er7.parse("\r".join([msh, *segments]).encode(charset))


@pytest.mark.parametrize(
    ("sent", "read"),
    [
        ("a\\F\\b", "a|b"),
        ("a\\S\\b", "a^b"),
        ("a\\T\\b", "a&b"),
        ("a\\R\\b", "a~b"),
        ("a\\E\\b", "a\\b"),
        ("O\\X27\\Brien", "O'Brien"),
        ("caf\\XC3A9\\", "café"),
        ("line\\.br\\next", "line\nnext"),
        ("\\H\\bold\\N\\", "bold"),
        ("keep \\Q\\ unknown", "keep \\Q\\ unknown"),
        ("lone \\ escape", "lone \\ escape"),
        ('""', ""),
    ],
)
def test_escape_sequences_are_undone_on_the_leaf(sent: str, read: str) -> None:
    assert message(f"NTE|1||{sent}").get("NTE-3") == read


def test_an_escaped_separator_never_splits_a_component() -> None:
    msg = message("PID|1||A\\S\\1^^^AUTH\\T\\X^MR~B2^^^AUTH^PI||Fam\\F\\ily^Given")
    assert msg.get("PID-3.1") == "A^1"
    assert msg.get("PID-3.4") == "AUTH&X"
    assert msg.get("PID-3.4.1") == "AUTH&X"  # the escaped & is data, not a subcomponent separator
    assert msg.get("PID-3[2].1") == "B2"
    assert msg.get("PID-5.1") == "Fam|ily"


def test_escape_round_trips_whatever_the_text() -> None:
    d = er7.Delimiters()
    rng = random.Random(7)
    alphabet = "ab|^~\\&\r\n é"
    for _ in range(2000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        escaped = er7.escape(text, d)
        assert not set(escaped) & set("|^~&\r")
        assert er7.unescape(escaped, d) == text


def test_other_delimiters_are_honoured() -> None:
    msh = "MSH#*$!@#DEMO_EHR#DEMO_HOSPITAL#CGT#CGT#20261102091500##ADT*A08#M1#P#2.5.1"
    msg = er7.parse(f"{msh}\rPID#1##M1***AUTH*MR$M2***AUTH*PI##Fam!S!ily*Given".encode())
    assert msg.delimiters.field == "#" and msg.get("MSH-9.2") == "A08"
    assert msg.get("PID-3[2].1") == "M2" and msg.get("PID-3[2].5") == "PI"
    assert msg.get("PID-5.1") == "Fam*ily"
    assert msg.get("PID-5.2") == "Given"


@pytest.mark.parametrize(
    ("declared", "encoding"),
    [
        ("", "utf-8"),
        ("UNICODE UTF-8", "utf-8"),
        ("UTF-8", "utf-8"),
        ("8859/1", "iso-8859-1"),
        ("ISO-8859-1", "iso-8859-1"),
    ],
)
def test_msh18_decides_the_character_set(declared: str, encoding: str) -> None:
    msh = MSH + "||||||" + declared if declared else MSH
    msg = message("PID|1||M1^^^A^MR||Müller^Zoë", msh=msh, charset=encoding)
    assert msg.get("PID-5.1") == "Müller" and msg.get("PID-5.2") == "Zoë"


@pytest.mark.parametrize(
    ("declared", "encoding"), [("ASCII", "utf-8"), ("UNICODE UTF-8", "iso-8859-1"), ("", "iso-8859-1")]
)
def test_bytes_that_are_not_the_declared_character_set_are_malformed(declared: str, encoding: str) -> None:
    msh = MSH + "||||||" + declared if declared else MSH
    with pytest.raises(MalformedMessage) as caught:
        message("PID|1||M1^^^A^MR||Müller^Zoë", msh=msh, charset=encoding)
    assert caught.value.location == "MSH-18" and caught.value.code == "102"


def test_a_character_set_mllp_cannot_carry_is_unsupported() -> None:
    with pytest.raises(UnsupportedMessage, match="MSH-18"):
        message(msh=MSH + "||||||UNICODE UTF-16")


def test_lf_and_crlf_segment_endings_are_tolerated() -> None:
    for sep in ("\n", "\r\n"):
        msg = er7.parse(sep.join([MSH, "EVN|A08", "PID|1||M1^^^A^MR", ""]).encode())
        assert [s.name for s in msg.segments] == ["MSH", "EVN", "PID"]


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"MSH",
        b"PID|1||X\r",
        b"MSH|^~\\&\r",
        b"MSH|^^^^|A\r",
        b"MSH|^~\\&|A\rpid|1\r",
        MSH.encode() + b"\r" + MSH.encode(),
    ],
)
def test_what_is_not_one_hl7_message_is_malformed(raw: bytes) -> None:
    with pytest.raises(MalformedMessage):
        er7.parse(raw)


def test_random_bytes_never_hang_or_crash_the_parser() -> None:
    rng = random.Random(42)
    started = time.perf_counter()
    for n in range(3000):
        body = bytes(rng.randrange(256) for _ in range(rng.randint(0, 300)))
        raw = (MSH.encode() + b"\r" + body) if n % 2 else body
        try:
            msg = er7.parse(raw)
            msg.get("PID-3.1")
        except GatewayError:
            pass
        read_header(raw)  # the header reader never fails at all
    assert time.perf_counter() - started < 10


@pytest.mark.parametrize(
    ("path", "parts"),
    [
        ("PID-3", ("PID", 3, 0, 0, 0)),
        ("PID.3.1", ("PID", 3, 0, 1, 0)),
        ("pid-3[2].4.1", ("PID", 3, 2, 4, 1)),
        ("ZCT-2", ("ZCT", 2, 0, 0, 0)),
    ],
)
def test_field_paths_are_strings(path: str, parts: tuple[object, ...]) -> None:
    p = er7.field_path(path)
    assert (p.segment, p.field, p.repetition, p.component, p.subcomponent) == parts
    assert er7.field_path(str(p)) == p


@pytest.mark.parametrize("path", ["PID", "PID-", "PID-3.x", "P1-3", "PID 3"])
def test_a_bad_field_path_is_refused(path: str) -> None:
    with pytest.raises(ValueError, match="not an HL7 field path"):
        er7.field_path(path)


def test_msh_fields_are_numbered_as_the_standard_numbers_them() -> None:
    msg = message()
    assert msg.get("MSH-1") == "|" and msg.get("MSH-2") == "^~\\&"
    assert msg.get("MSH-3") == "DEMO_EHR" and msg.get("MSH-10") == "M1" and msg.get("MSH-12") == "2.5.1"
    assert repr(msg.msh) == "Segment(MSH, 12 fields)"  # names, never values


def test_the_first_non_empty_repetition_is_the_default() -> None:
    assert message("PID|1||~M2^^^A^MR").get("PID-3.1") == "M2"
