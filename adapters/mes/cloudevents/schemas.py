"""The dialect's JSON Schemas, generated from its wire models, for manufacturers to validate their
events before they send them: contracts/mes/<event>.json, one a type, each the whole CloudEvent.
`cgt-gateway contracts export` writes them and `contracts check` fails when they drift."""

from __future__ import annotations

from typing import Any

import orjson

from adapters.mes.cloudevents.wire import DATA, TYPE_PREFIX, MesCloudEvent

DRAFT = "https://json-schema.org/draft/2020-12/schema"
BASE = "https://cgt-gateway.example/contracts/mes"


def event_schema(name: str) -> dict[str, Any]:
    """One event type's schema: the envelope, with `type` fixed and `data` its model's."""
    envelope = MesCloudEvent.model_json_schema(mode="validation")
    data = DATA[name].model_json_schema(mode="validation")
    defs = {**envelope.pop("$defs", {}), **data.pop("$defs", {})}
    properties = dict(envelope["properties"])
    properties["type"] = {"const": f"{TYPE_PREFIX}{name}"}
    properties["subject"] = {
        "type": "string",
        "minLength": 1,
        "maxLength": 40,
        "description": "the order's chain-of-identity identifier (COI)",
    }
    properties["data"] = data
    schema: dict[str, Any] = {
        "$schema": DRAFT,
        "$id": f"{BASE}/{name}.json",
        "title": f"{TYPE_PREFIX}{name}",
        "description": f"A manufacturer's MES event {name}, as a CloudEvent in structured JSON mode.",
        "type": "object",
        "required": sorted({*envelope.get("required", ()), "subject", "data"}),
        "properties": properties,
    }
    if defs:
        schema["$defs"] = defs
    return schema


def contract_files() -> dict[str, bytes]:
    """Relative path under contracts/ -> the file's bytes."""
    opts = orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE
    return {f"mes/{name}.json": orjson.dumps(event_schema(name), option=opts) for name in sorted(DATA)}
