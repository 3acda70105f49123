"""One MES event, whichever dialect it came in, and the canonical command it is.

Both dialects read their wire format into a `MesEvent` (what happened, to which order, with which
fields) and `command()` makes the Command: the COI as the order's identifier, the manufacturer's
own identifiers in its namespace (`mes:<manufacturer>:batch`, `:slot`), the scanned DIN as
`isbt128:din` so that reconciliation compares it with the order's collection.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from gateway.sdk import COI_NAMESPACE, ROOT, Command, ConfigError, ExternalRef, validate_coi, validate_din

EVENTS_FILE = ROOT / "mappings" / "mes" / "events.yaml"
DIN_NAMESPACE = "isbt128:din"
# Events about a batch: they carry its id (payload batch_id, and the manufacturer's namespace).
BATCH_EVENTS = frozenset(
    {
        "manufacturing_started",
        "step_completed",
        "deviation_opened",
        "deviation_closed",
        "qc_result",
        "released",
        "failed",
        "product_shipped",
    }
)


class EventTable(BaseModel):
    """mappings/mes/events.yaml: the MES event's name -> the canonical event it is."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    events: dict[str, str]


def load_events(path: Path = EVENTS_FILE) -> EventTable:
    """Read when the adapters load: a table naming an unknown event refuses to start."""
    try:
        table = EventTable.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
        for name, canonical in table.events.items():
            probe = MesEvent(name, "CHA999926M00001", None, batch_id="probe", fields=_PROBES.get(name, {}))
            command(probe, canonical, "probe")
    except (OSError, yaml.YAMLError, ValidationError, ValueError) as exc:
        raise ConfigError(f"MES events {path}: {exc}") from exc
    return table


_PROBES: dict[str, dict[str, Any]] = {
    "slot_confirmed": {"slot_id": "probe"},
    "step_completed": {"step": "probe"},
    "deviation_opened": {"deviation_id": "probe"},
    "deviation_closed": {"deviation_id": "probe"},
    "qc_result": {"test": "probe", "result": "pass"},
}


@dataclass(frozen=True)
class MesEvent:
    """What a manufacturer says happened. `fields`: the payload's own fields (step, test, ...)."""

    kind: str  # slot_confirmed, material_received, ... (mappings/mes/events.yaml)
    coi: str
    occurred_at: datetime | None
    batch_id: str | None = None
    din: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)


def command(event: MesEvent, canonical: str, manufacturer: str) -> Command:
    """The canonical command; ValueError (a pydantic ValidationError is one) names what is wrong."""
    own = f"mes:{manufacturer}"
    refs = [ExternalRef(namespace=COI_NAMESPACE, value=validate_coi(event.coi))]
    binds: list[ExternalRef] = []
    payload: dict[str, Any] = {**event.fields}
    if event.occurred_at is not None:
        payload["occurred_at"] = event.occurred_at.astimezone(UTC)
    if event.kind in BATCH_EVENTS:
        if not event.batch_id:
            raise ValueError("a batch event names its batch")
        batch = ExternalRef(namespace=f"{own}:batch", value=event.batch_id)
        refs.append(batch)
        payload["batch_id"] = event.batch_id
        if event.kind == "manufacturing_started":
            binds.append(batch)
    if event.kind == "slot_confirmed":
        payload["manufacturer"] = {"id": manufacturer}
        slot = ExternalRef(namespace=f"{own}:slot", value=str(payload.get("slot_id", "")))
        refs.append(slot)
        binds.append(slot)
    if event.kind == "material_received":
        payload["manufacturer"] = {"id": manufacturer}
        if event.din:
            din = validate_din(event.din)
            payload["din"] = din
            refs.append(ExternalRef(namespace=DIN_NAMESPACE, value=din))
    return Command.model_validate({"event": canonical, "refs": refs, "binds": binds, "payload": payload})
