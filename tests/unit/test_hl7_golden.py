"""Golden files: every fixture in tests/fixtures/hl7v2 decodes to its *.canonical.json (or fails as
its *.error.json says), through the adapter's decode with the demo site's profile, run by the
shared golden runner (tests/support/golden.py; CGT_REGOLD=1 rewrites the expected files).

hl7apy is the oracle for the parser: for every valid fixture, the fields the mapping reads are
what hl7apy reads too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from adapters.hl7v2 import er7
from gateway.canonical.envelope import utcnow
from gateway.partners import load_partners
from gateway.registry import InboundContext
from gateway.settings import Settings
from tests.support import golden
from tests.support.hl7 import configured

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hl7v2"
CASES = sorted(FIXTURES.glob("*.hl7"))
PARTNERS = load_partners(Settings().partners_file, env="test")
ADAPTER = configured()


def ctx() -> InboundContext:
    return InboundContext(PARTNERS.get("demo-hospital"), "test", utcnow())


def test_there_is_a_golden_fixture_for_every_message_type() -> None:
    kinds = set()
    for path in CASES:
        msh = (
            er7.parse(path.read_bytes()).msh
            if not path.stem.startswith(("malformed", "unsupported", "ignored"))
            else None
        )
        if msh is not None:
            kinds.add(f"{msh.value(9, 1)}^{msh.value(9, 2)}")
    assert kinds >= {
        "ORM^O01", "OML^O21", "OMB^O27", "ADT^A01", "ADT^A04", "ADT^A08", "ADT^A40",
        "SIU^S12", "SIU^S13", "SIU^S14", "SIU^S15",
    }  # fmt: skip


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_fixture_maps_to_its_golden_output(path: Path) -> None:
    golden.check(path, lambda: ADAPTER.decode(path.read_bytes(), ctx()))  # bytes: text mode turns \r into \n


ORACLE_FIELDS = {"PID": (3, 5, 7, 8), "MRG": (1,), "ORC": (1, 2, 9, 12, 16), "OBR": (2, 4, 16)}
ORACLE_FIELDS |= {
    "BPO": (1, 2),
    "SCH": (1, 6, 8, 11, 26),
    "AIS": (3, 4),
    "AIL": (3,),
    "NTE": (3,),
    "EVN": (2,),
}
VALID = sorted(p for p in CASES if p.with_suffix(".canonical.json").exists())


def _components(field: Any) -> dict[int, str]:
    """hl7apy's components of one field repetition by position. Where hl7apy does not know the
    field's data type (it reads it as one string), its own component separator splits it."""
    out = {}
    for child in field.children:
        suffix = child.name.rsplit("_", 1)[-1]
        if not suffix.isdigit():
            return {i: c for i, c in enumerate(field.to_er7().split("^"), start=1) if c}
        if child.to_er7():
            out[int(suffix)] = child.to_er7()
    return out or ({1: field.to_er7()} if field.to_er7() else {})


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.stem)
def test_the_parser_splits_what_hl7apy_splits(path: Path) -> None:
    """hl7apy as the oracle of structure: every repetition's components, as sent."""
    from hl7apy.parser import parse_message

    message = er7.parse(path.read_bytes())
    text = path.read_bytes().decode(message.charset)
    oracle = parse_message(text, find_groups=False)
    theirs_by_name = {}
    for segment in oracle.children:
        theirs_by_name.setdefault(segment.name, segment)
    compared = 0
    for name, numbers in ORACLE_FIELDS.items():
        ours_segment, theirs_segment = message.first(name), theirs_by_name.get(name)
        if ours_segment is None:
            assert theirs_segment is None
            continue
        for number in numbers:
            ours = [
                {i: c for i, c in enumerate(rep.split("^"), start=1) if c}
                for rep in ours_segment.repetitions(number)
            ]
            theirs = [_components(f) for f in theirs_segment.children if f.name == f"{name}_{number}"]
            ours, theirs = [o for o in ours if o], [t for t in theirs if t]
            # hl7apy re-escapes a hex escape on output (\\X27\\ -> \\E\\X27\\E\\): compare the others
            hex_escaped = {(r, i) for r, o in enumerate(ours) for i, c in o.items() if "\\X" in c}
            ours = [{i: c for i, c in o.items() if (r, i) not in hex_escaped} for r, o in enumerate(ours)]
            theirs = [{i: c for i, c in t.items() if (r, i) not in hex_escaped} for r, t in enumerate(theirs)]
            assert ours == theirs, f"{name}-{number}"
            compared += 1
    assert compared >= 3


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.stem)
def test_the_parser_unescapes_what_python_hl7_unescapes(path: Path) -> None:
    """python-hl7 as the oracle of escapes: every component's text, unescaped."""
    import hl7

    raw = path.read_bytes()
    message = er7.parse(raw)
    oracle = hl7.parse(raw.decode(message.charset))
    for segment in message.segments:
        for number in range(1, len(segment.fields)):
            if segment.name == "MSH" and number <= 2:
                continue
            for rep in segment.repetitions(number):
                for component in rep.split("^"):
                    if "\\X" in component:
                        continue  # python-hl7 leaves hex escapes alone; ours decodes them (tested in test_hl7_er7)
                    assert er7.leaf(component, segment.delimiters) == oracle.unescape(component).strip()


def test_the_adapters_examples_are_golden_fixtures() -> None:
    """The examples the conformance suite runs are fixtures here too, byte for byte."""
    examples = Path(__file__).resolve().parents[2] / "adapters" / "hl7v2" / "examples"
    shared = [p for p in examples.glob("*.hl7") if (FIXTURES / p.name).exists()]
    assert len(shared) >= 6
    for path in shared:
        assert path.read_bytes() == (FIXTURES / path.name).read_bytes(), path.name
