"""Synthetic messages for tests: invented patients, invented identifiers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from gateway.canonical.command import Command
from gateway.canonical.envelope import CloudEvent
from gateway.canonical.ids import ExternalRef

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def mrn(value: str, site: str = "demo-hospital") -> ExternalRef:
    return ExternalRef(namespace=f"site:{site}:mrn", value=value)


def placer(value: str, site: str = "demo-hospital") -> ExternalRef:
    return ExternalRef(namespace=f"site:{site}:placer-order", value=value)


def coi(value: str) -> ExternalRef:
    return ExternalRef(namespace="coi", value=value)


def place(
    n: int,
    *,
    family: str = "Testpatient",
    birth: str = "1970-01-01",
    site: str = "demo-hospital",
    **extra: Any,
) -> Command:
    return Command.model_validate(
        {
            "event": "order.placed",
            "refs": [mrn(f"MRN-{n:06d}", site), placer(f"PO-{n:06d}", site), *extra.pop("refs", [])],
            "patient": {"family_name": family, "given_name": "Alpha", "birth_date": birth},
            "payload": {
                "occurred_at": T0,
                "order": {
                    "product": {"code": "S9999", "name": "Demo autologous CAR-T"},
                    "ordering_site": {"id": site},
                },
            },
            **extra,
        }
    )


def event(name: str, *refs: ExternalRef, binds: tuple[ExternalRef, ...] = (), **payload: Any) -> Command:
    return Command.model_validate(
        {"event": name, "refs": list(refs), "binds": list(binds), "payload": payload}
    )


def envelope_json(message_id: str, *commands: Command) -> bytes:
    return orjson.dumps({"message_id": message_id, "commands": [c.model_dump(mode="json") for c in commands]})


def status_event(name: str, *, time: datetime = T0, **data: Any) -> CloudEvent:
    """A published status event of one synthetic order, as an outbound adapter receives it."""
    return CloudEvent(
        id="6f1c2a4e-0000-4000-8000-00000000abcd",
        source="/partners/demo-manufacturer/canonical-json",
        type=f"org.cgt.{name}",
        subject="CHA999926ABC123",
        time=time,
        dataschema=f"urn:cgt:contracts:{name}:v1",
        data={"order_id": "o-1", "coi": "CHA999926ABC123", "patient_id": "p-1", **data},
    )
