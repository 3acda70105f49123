"""Golden tests of the MES dialects: every fixture under tests/fixtures/mes/<dialect>/ decodes to
its `.canonical.json` (or `.error.json`). B2MML in both namespaces (V0600, V07), a vendor-style
export with a byte-order mark, CRLF and trailing spaces in ids, an undeclared prefix refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.mes.b2mml.adapter import adapter as b2mml
from adapters.mes.cloudevents.adapter import adapter as cloudevents
from adapters.mes.inbound.adapter import adapter as inbound
from gateway.partners import load_partners
from gateway.sdk import Adapter, InboundContext, Settings, utcnow
from tests.support.golden import canonical, check

FIXTURES = Path(__file__).parents[1] / "fixtures" / "mes"
PARTNERS = load_partners(Settings().partners_file, env="test")
CTX = InboundContext(PARTNERS.get("demo-manufacturer"), "test", utcnow())
CASES = [
    (cloudevents, p)
    for p in sorted((FIXTURES / "cloudevents").glob("*.json"))
    if ".canonical" not in p.name and ".error" not in p.name
]
CASES += [(b2mml, p) for p in sorted((FIXTURES / "b2mml").glob("*.xml"))]


@pytest.mark.parametrize(("adapter", "source"), CASES, ids=[f"{a.name}:{p.name}" for a, p in CASES])
def test_golden(adapter: Adapter, source: Path) -> None:
    check(source, lambda: adapter.decode(source.read_bytes(), CTX))


SNIFFED = [(a, p) for a, p in CASES if "not_xml" not in p.name]  # neither XML nor JSON: refused, see below


@pytest.mark.parametrize(("adapter", "source"), SNIFFED, ids=[f"{a.name}:{p.name}" for a, p in SNIFFED])
def test_the_mes_door_decodes_each_as_its_dialect_does(adapter: Adapter, source: Path) -> None:
    raw = source.read_bytes()
    assert canonical(lambda: inbound.decode(raw, CTX)) == canonical(lambda: adapter.decode(raw, CTX))


def test_the_mes_door_refuses_what_is_neither_xml_nor_json() -> None:
    from gateway.errors import UnsupportedMessage

    with pytest.raises(UnsupportedMessage, match="neither XML nor JSON"):
        inbound.decode(b"MaterialReceived;CHA999926M00001", CTX)
