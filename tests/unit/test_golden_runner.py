"""The one golden runner (tests/support/golden.py): what it compares, and what CGT_REGOLD=1 writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.errors import MappingError, NotOurs
from gateway.sdk import Decoded
from tests.support import golden
from tests.support.builders import place


def test_commands_and_errors_go_to_their_own_expected_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "order.hl7"
    decoded = Decoded(message_id="M1", commands=(place(1),))
    with pytest.raises(AssertionError, match=r"no golden file order\.canonical\.json"):
        golden.check(source, lambda: decoded)
    monkeypatch.setattr(golden, "REGOLD", True)
    written = golden.check(source, lambda: decoded)
    assert written == {"message_id": "M1", "commands": [place(1).model_dump(mode="json")]}
    text = (tmp_path / "order.canonical.json").read_bytes()
    assert text.startswith(b'{\n  "commands": [') and text.endswith(b'  "message_id": "M1"\n}\n')  # sorted
    monkeypatch.setattr(golden, "REGOLD", False)
    golden.check(source, lambda: decoded)  # what was written is what is read back
    with pytest.raises(AssertionError):
        golden.check(source, lambda: Decoded(message_id="M2", commands=(place(1),)))

    def refused() -> Decoded:
        raise MappingError("no MRN", location="PID-3", code="101")

    monkeypatch.setattr(golden, "REGOLD", True)
    assert golden.check(tmp_path / "bad.hl7", refused) == {
        "error": "MappingError",
        "location": "PID-3",
        "code": "101",
    }
    ignored = golden.check(tmp_path / "lab.hl7", lambda: Decoded(error=NotOurs("not_a_therapy_order")))
    assert ignored == {"error": "NotOurs", "reason": "not_a_therapy_order"}
    assert {p.name for p in tmp_path.iterdir()} == {
        "order.canonical.json",
        "bad.error.json",
        "lab.error.json",
    }
