"""The MES door's choice of dialect by content type (and by first byte without one), and the
cases of mappings/mes/b2mml.yaml's words."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from adapters.mes.b2mml.adapter import adapter as b2mml
from adapters.mes.b2mml.table import TABLE_FILE, load_table
from adapters.mes.cloudevents.adapter import adapter as cloudevents
from adapters.mes.inbound.dialects import dialect_of
from gateway.errors import ConfigError, UnsupportedMessage

CASES = yaml.safe_load(TABLE_FILE.with_name("b2mml_test.yaml").read_text(encoding="utf-8"))["cases"]


@pytest.mark.parametrize(
    ("content_type", "body", "name"),
    [
        ("application/cloudevents+json", b"<not looked at>", cloudevents.name),
        ("application/cloudevents+json; charset=utf-8", b"{}", cloudevents.name),
        ("Application/JSON", b"{}", cloudevents.name),
        ("application/xml", b"{not looked at}", b2mml.name),
        ("text/xml; charset=UTF-8", b"<x/>", b2mml.name),
        (None, b"\xef\xbb\xbf\r\n  <?xml version='1.0'?><x/>", b2mml.name),
        ("", b'  {"specversion": "1.0"}', cloudevents.name),
    ],
)
def test_the_content_type_names_the_dialect(content_type: str | None, body: bytes, name: str) -> None:
    assert dialect_of(content_type, body).name == name


@pytest.mark.parametrize(
    ("content_type", "body", "says"),
    [
        ("text/csv", b"COI;DIN", "text/csv is not an MES dialect"),
        ("application/cloudevents-batch+json", b"[]", "not an MES dialect"),
        (None, b"COI;DIN", "neither XML nor JSON"),
    ],
)
def test_anything_else_is_refused_naming_what_is_taken(
    content_type: str | None, body: bytes, says: str
) -> None:
    with pytest.raises(UnsupportedMessage, match=says) as refused:
        dialect_of(content_type, body)
    assert "application/cloudevents+json" in refused.value.public_message


def test_a_dialect_not_enabled_is_refused() -> None:
    with pytest.raises(UnsupportedMessage, match="not enabled"):
        dialect_of("application/xml", b"<x/>", {cloudevents.name: cloudevents})


@pytest.mark.parametrize("case", CASES, ids=[f"{c['table']}:{c['word']}" for c in CASES])
def test_the_words_of_the_b2mml_table(case: dict[str, Any]) -> None:
    table = b2mml.table
    lookup = {
        "categories": table.category,
        "properties": table.field,
        "qc_tests": table.qc_test,
        "results": table.result,
    }[case["table"]]
    assert lookup(case["word"]) == case["means"]


def test_a_table_naming_an_unknown_event_refuses_to_start(tmp_path: Any) -> None:
    document = yaml.safe_load(TABLE_FILE.read_text(encoding="utf-8"))
    document["categories"]["BatchPaused"] = "batch_paused"
    path = tmp_path / "b2mml.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    with pytest.raises(ConfigError, match="batch_paused"):
        load_table(path, events=frozenset(cloudevents.events.events))
