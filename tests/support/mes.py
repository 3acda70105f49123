"""Manufacturers for tests: the demo partners plus `other-manufacturer` (API key
`other-manufacturer-key`, product S7777 assigned to it), synthetic MES events in both dialects,
and the orders they speak of (placed by the demo hospital, collected with a DIN)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import orjson
import yaml

from adapters.canonical_json.adapter import adapter as canonical_json
from gateway.canonical.command import Command
from gateway.canonical.ids import mod37_2_check
from gateway.sdk import Door, ExternalRef, Partners
from gateway.settings import Settings
from tests.support.builders import coi, envelope_json, event

OTHER = "other-manufacturer"
OTHER_KEY = "other-manufacturer-key"
OTHER_PRODUCT = "S7777"
DIN = "A999926123456"  # check character T


def din(n: int) -> str:
    """Order n's bag: a DIN of its own, without its check character."""
    return f"A999926{n:06d}"


def labelled(value: str) -> str:
    """A DIN as printed on the label: with its MOD 37-2 check character."""
    return value + mod37_2_check(value)


def partner_file(directory: Path) -> Path:
    document = yaml.safe_load(Settings().partners_file.read_text(encoding="utf-8"))
    document["partners"].append(
        {
            "id": OTHER,
            "kind": "manufacturer",
            "adapter": "canonical-json",
            "dialects": ["mes-cloudevents", "mes-b2mml"],
            "demo": True,
            "auth": {"api_key_sha256": [hashlib.sha256(OTHER_KEY.encode()).hexdigest()]},
        }
    )
    path = directory / "partners.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


def assignments_file(directory: Path) -> Path:
    document = yaml.safe_load(Settings().assignments_file.read_text(encoding="utf-8"))
    document["products"].append({"system": "isbt128", "code": OTHER_PRODUCT, "manufacturer": OTHER})
    path = directory / "assignments.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


def settings(directory: Path, amqp_url: str, adapters: str) -> Settings:
    return Settings(
        env="test",
        database_url=f"sqlite+aiosqlite:///{directory}/gw.db",
        amqp_url=amqp_url,
        mllp_port=0,
        adapters=adapters,
        partners_file=partner_file(directory),
        assignments_file=assignments_file(directory),
    )


def order_placed(n: int, product: str = "S1234") -> bytes:
    placed = Command.model_validate(
        {
            "event": "order.placed",
            "refs": [{"namespace": "site:demo-hospital:placer-order", "value": f"PO-MES-{n}"}],
            "payload": {
                "order": {
                    "product": {"code": product, "system": "isbt128", "name": "Demo CAR-T"},
                    "ordering_site": {"id": "demo-hospital"},
                }
            },
        }
    )
    return envelope_json(f"po-mes-{n}", placed)


def collected(order_coi: str, n: int, din: str = DIN) -> bytes:
    bag = ExternalRef(namespace="isbt128:din", value=din)  # the site binds the bag's DIN at collection
    done = event(
        "collection.completed",
        coi(order_coi),
        bag,
        binds=(bag,),
        collected_at="2026-11-10T12:00:00Z",
        din=din,
    )
    return envelope_json(f"collected-{n}", done)


async def collected_order(door: Door, partners: Partners, n: int, product: str = "S1234") -> str:
    """An order placed and collected (DIN `din(n)`) through the door; its COI."""
    hospital = partners.get("demo-hospital")
    outcome, _ = await door.accept(canonical_json, hospital, order_placed(n, product), transport="http")
    assert outcome.status == "applied" and outcome.coi, outcome
    outcome, _ = await door.accept(
        canonical_json, hospital, collected(outcome.coi, n, din(n)), transport="http"
    )
    assert outcome.status == "applied", outcome
    return outcome.coi or ""


def cloud_event(kind: str, subject: str, event_id: str, **data: Any) -> bytes:
    return orjson.dumps(
        {
            "specversion": "1.0",
            "id": event_id,
            "source": "/mes/test-plant",
            "type": f"org.cgt.mes.{kind}",
            "subject": subject,
            "time": "2026-11-12T09:30:00Z",
            "data": data,
        }
    )


def received(subject: str, event_id: str, bag: str, scanned: str | None = None) -> bytes:
    """material_received of the bag `bag` (a DIN; its check character is added)."""
    return cloud_event(
        "material_received",
        subject,
        event_id,
        scanned={"coi": scanned or subject, "din": labelled(bag)},
        received_at="2026-11-11T14:05:00Z",
        temperature_c=-160.2,
        condition="intact",
    )


def b2mml_started(
    subject: str, bod: str, batch: str, namespace: str = "http://www.mesa.org/xml/B2MML"
) -> bytes:
    """A V07 (or V0600) NotifyOperationsEvent: the batch started, with a BOM and CRLF."""
    text = f"""<?xml version="1.0" encoding="UTF-8"?>
<NotifyOperationsEvent xmlns="{namespace}">
  <ApplicationArea><CreationDateTime>2026-11-12T08:00:00Z</CreationDateTime><BODID>{bod} </BODID></ApplicationArea>
  <DataArea>
    <Notify/>
    <OperationsEvent>
      <ID>OE-{bod}</ID>
      <EffectiveTimeStamp>2026-11-12T08:00:00Z</EffectiveTimeStamp>
      <Category>BatchStarted</Category>
      <OperationsEventProperty><ID>COI</ID><Value><ValueString>{subject}</ValueString></Value></OperationsEventProperty>
      <OperationsEventProperty><ID>BatchID</ID><Value><ValueString>{batch}  </ValueString></Value></OperationsEventProperty>
    </OperationsEvent>
  </DataArea>
</NotifyOperationsEvent>
"""
    return b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode()
