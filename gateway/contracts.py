"""Generate the published contracts from the canonical models: JSON Schemas and an AsyncAPI 3.0 document.

The files under contracts/ are committed; `cgt-gateway contracts check` (and a test) fail when
they drift from what the models generate now.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from pydantic.json_schema import models_json_schema

from gateway import __version__
from gateway.adapter_contract import HasContracts
from gateway.bus.topology import DEAD_LETTERS, EVENTS
from gateway.canonical.catalogue import CATALOGUE, CONTRACT_VERSION, EventSpec
from gateway.canonical.envelope import CONTENT_TYPE, CloudEvent
from gateway.registry import load_adapters
from gateway.settings import ROOT

CONTRACTS_DIR = ROOT / "contracts"
DRAFT = "https://json-schema.org/draft/2020-12/schema"


def _envelope(spec: EventSpec, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "title": spec.type,
        "description": spec.summary,
        "additionalProperties": False,
        "required": ["specversion", "id", "source", "type", "time", "dataschema", "data"],
        "properties": {
            "specversion": {"const": "1.0"},
            "id": {"type": "string", "minLength": 1},
            "source": {"type": "string", "minLength": 1},
            "type": {"const": spec.type},
            "subject": {"type": ["string", "null"], "description": "the order's COI"},
            "time": {"type": "string", "format": "date-time"},
            "datacontenttype": {"const": "application/json"},
            "dataschema": {"const": spec.dataschema},
            "data": data,
        },
    }


def event_schema(spec: EventSpec) -> dict[str, Any]:
    """A standalone JSON Schema of one event as published (envelope and typed data)."""
    data = spec.data.model_json_schema(mode="serialization")
    defs = data.pop("$defs", {})
    schema = {"$schema": DRAFT, "$id": spec.dataschema, **_envelope(spec, data)}
    if defs:
        schema["$defs"] = defs
    return schema


def asyncapi() -> dict[str, Any]:
    specs = list(CATALOGUE.values())
    refs, top = models_json_schema(
        [(s.data, "serialization") for s in specs], ref_template="#/components/schemas/{model}"
    )
    schemas: dict[str, Any] = dict(top.get("$defs", {}))
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for spec in specs:
        data_ref = refs[(spec.data, "serialization")]
        messages[spec.name] = {
            "name": spec.name,
            "title": spec.type,
            "summary": spec.summary,
            "contentType": CONTENT_TYPE,
            "payload": _envelope(spec, data_ref),
            "bindings": {"amqp": {"deliveryMode": 2, "bindingVersion": "0.3.0"}},
        }
        channels[spec.name] = {
            "address": spec.name,
            "messages": {spec.name: {"$ref": f"#/components/messages/{spec.name}"}},
            "bindings": {
                "amqp": {
                    "is": "routingKey",
                    "exchange": {
                        "name": EVENTS,
                        "type": "topic",
                        "durable": True,
                        "autoDelete": False,
                        "vhost": "/",
                    },
                    "bindingVersion": "0.3.0",
                }
            },
        }
        operations[f"publish.{spec.name}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{spec.name}"},
            "messages": [{"$ref": f"#/channels/{spec.name}/messages/{spec.name}"}],
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "CGT gateway canonical events",
            "version": f"{CONTRACT_VERSION}.0.0",
            "description": (
                f"CloudEvents 1.0 published by the gateway (v{__version__.split('.')[0]}.x) on the "
                f"durable topic exchange `{EVENTS}`; the routing key is the event name. Consumers bind "
                f"durable quorum queues with patterns (`shipment.#`) and a dead-letter exchange "
                f"`{DEAD_LETTERS}`; delivery is at-least-once, de-duplicate on the CloudEvent `id`, "
                "which is also the AMQP `message_id`."
            ),
        },
        "defaultContentType": CONTENT_TYPE,
        "servers": {"local": {"host": "127.0.0.1:5672", "protocol": "amqp", "protocolVersion": "0.9.1"}},
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }


def render() -> dict[str, bytes]:
    """Every contract file, relative path -> bytes."""
    opts = orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE
    files = {"asyncapi.json": orjson.dumps(asyncapi(), option=opts)}
    envelope = CloudEvent.model_json_schema(mode="serialization")
    files["schemas/cloudevent.json"] = orjson.dumps({"$schema": DRAFT, **envelope}, option=opts)
    for spec in CATALOGUE.values():
        files[f"schemas/{spec.name}.json"] = orjson.dumps(event_schema(spec), option=opts)
    for adapter in load_adapters().values():  # dialects' own contracts (contracts/mes/, ...)
        if isinstance(adapter, HasContracts):
            files.update(adapter.contracts())
    return files


def write_contracts(directory: Path) -> list[Path]:
    written = []
    for rel, body in render().items():
        path = directory / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
        written.append(path)
    return written


def drift(directory: Path) -> list[str]:
    """Relative paths that differ from, are missing from, or are extra in `directory`."""
    expected = render()
    present = {str(p.relative_to(directory)) for p in directory.rglob("*.json")}
    differ = [
        rel
        for rel, body in expected.items()
        if not (directory / rel).is_file() or (directory / rel).read_bytes() != body
    ]
    return sorted(differ + sorted(present - set(expected)))
