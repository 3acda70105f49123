"""The HL7 corpus: a hospital's day of traffic in the shapes real EHRs send, replayed through a
running MLLP listener. Each message is taken, ignored or refused as `outcomes.yaml` says; the
table of what happened is printed by outcome (`pytest -s` shows it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from gateway.entrypoints.bootstrap import Gateway
from gateway.store import tables as t
from tests.fixtures.hl7v2.peers import Engine, field_of
from tests.integration.test_hl7_mllp import count, gateway, port  # noqa: F401

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "hl7v2" / "corpus"
EXPECTED: dict[str, dict[str, Any]] = yaml.safe_load((CORPUS / "outcomes.yaml").read_text(encoding="utf-8"))


def outcome(answer: bytes, stored: bool) -> tuple[str, str]:
    """(taken | ignored | refused, ERR code) from the ACK and whether anything was stored."""
    if field_of(answer, "MSA", 1) in ("AA", "CA"):
        return ("taken" if stored else "ignored"), ""
    # ERR-3 `code^text^HL70357` from v2.5; before, ERR-1 `segment^sequence^field^code&text&HL70357`
    modern, legacy = field_of(answer, "ERR", 3), field_of(answer, "ERR", 1)
    code = modern.split("^")[0] if modern else [*legacy.split("^"), "", "", ""][3].split("&")[0]
    return "refused", code


async def test_the_corpus_is_taken_ignored_and_refused_as_its_table_says(gateway: Gateway) -> None:  # noqa: F811
    files = sorted(CORPUS.glob("*.hl7"))
    assert {p.stem for p in files} == set(EXPECTED) and len(files) >= 20
    engine = await Engine.connect(port(gateway))
    seen: dict[str, tuple[str, str, str]] = {}
    for path in files:
        before = await count(gateway, t.inbound_messages)
        answer = await engine.send(path.read_bytes())
        stored = await count(gateway, t.inbound_messages) > before
        found, code = outcome(answer, stored)
        seen[path.stem] = (found, code, field_of(answer, "MSA", 2))
    await engine.close()

    print()
    for kind in ("taken", "ignored", "refused"):
        names = [n for n, (found, _, _) in seen.items() if found == kind]
        print(f"{kind} ({len(names)})")
        for name in names:
            code = f" {seen[name][1]}" if seen[name][1] else ""
            print(f"  {name:45}{code:5} {EXPECTED[name]['why']}")

    expected = {n: (e["outcome"], str(e.get("code", ""))) for n, e in EXPECTED.items()}
    assert {n: s[:2] for n, s in seen.items()} == expected
    assert seen["10_siu_s14_surgery_orsos_v23"][2] == " 38762"  # MSH-10 echoed as sent
    assert await count(gateway, t.orders) == 3  # 17, 18 and 23: nothing else made an order
