"""What a B2MML document says, as MES events (adapters/mes/events.py). Three shapes are read:

    OperationsEvent (V07, V0600)          one event each: Category names it, OperationsEventProperty
                                          (ID, Value/ValueString, Value/UnitOfMeasure) its fields
    OperationsPerformance (V07, V0600),   one per SegmentResponse: a QC result when its SegmentData
    ProductionPerformance (V0600)         names a Test, else a step completed when its SegmentState
                                          says so; the batch is the Produced MaterialActual's lot
    MaterialLot (MaterialInformation)     a material received: the lot is the bag (its DIN), its
                                          MaterialLotProperty the scan, temperature and condition

Each event's words are looked up in mappings/mes/b2mml.yaml. `Unmappable` names where a value is
wrong, as a path of local names (`/SyncMaterialInformation/DataArea/MaterialLot[1]/...`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from xml.etree.ElementTree import Element

from adapters.mes.b2mml.document import Doc
from adapters.mes.b2mml.table import B2mmlTable
from adapters.mes.events import MesEvent

# The fields of each batch event (the rest of what a document says of it is passed over).
FIELDS_OF = {
    "step_completed": ("step",),
    "deviation_opened": ("deviation_id", "severity"),
    "deviation_closed": ("deviation_id", "outcome"),
    "released": ("certificate_of_analysis",),
    "failed": ("reason",),
    "product_shipped": ("shipment_id", "courier"),
}


class Unmappable(ValueError):
    def __init__(self, message: str, location: str) -> None:
        super().__init__(message)
        self.location = location


@dataclass
class Found:
    """One event as the document says it, before its words are looked up."""

    location: str
    kind: str | None
    values: dict[str, str] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)
    occurred_at: str | None = None


def _properties(doc: Doc, table: B2mmlTable, parent: Element, name: str, found: Found) -> None:
    for prop in doc.children(parent, name):
        key = doc.text(prop, "ID")
        meaning = table.field(key) if key else None
        value = doc.text(prop, "Value", "ValueString") or doc.text(prop, "Value")
        if meaning is None or value is None:
            continue
        found.values[meaning] = value
        if unit := doc.text(prop, "Value", "UnitOfMeasure"):
            found.units[meaning] = unit


def operations_events(doc: Doc, table: B2mmlTable) -> Iterator[Found]:
    for i, event in enumerate(doc.all(doc.root, "OperationsEvent"), 1):
        where = f"/{doc.verb}/DataArea/OperationsEvent[{i}]"
        said = doc.text(event, "Category") or doc.text(event, "OperationsEventDefinitionID")
        if said is None:
            raise Unmappable("an OperationsEvent without a Category", f"{where}/Category")
        found = Found(where, table.category(said))
        found.occurred_at = doc.text(event, "EffectiveTimeStamp") or doc.text(event, "RecordTimeStamp")
        _properties(doc, table, event, "OperationsEventProperty", found)
        yield found


def segment_responses(doc: Doc, table: B2mmlTable) -> Iterator[Found]:
    for i, segment in enumerate(doc.all(doc.root, "SegmentResponse"), 1):
        where = f"/{doc.verb}/DataArea/SegmentResponse[{i}]"
        found = Found(where, None, occurred_at=doc.text(segment, "ActualEndTime"))
        _properties(doc, table, segment, "SegmentData", found)
        for material in doc.children(segment, "MaterialActual"):
            lot = doc.text(material, "MaterialLotID")
            if lot and (doc.text(material, "MaterialUse") or "").lower() == "produced":
                found.values.setdefault("batch_id", lot)
        step = doc.text(segment, "ProcessSegmentID") or doc.text(segment, "ID")
        if step:
            found.values.setdefault("step", step)
        if "test" in found.values:
            found.kind = "qc_result"
        elif table.completed(doc.text(segment, "SegmentState") or ""):
            found.kind = "step_completed"
        else:
            continue  # a segment still running says nothing yet
        yield found


def material_lots(doc: Doc, table: B2mmlTable) -> Iterator[Found]:
    for i, lot in enumerate(doc.all(doc.root, "MaterialLot"), 1):
        found = Found(f"/{doc.verb}/DataArea/MaterialLot[{i}]", "material_received")
        _properties(doc, table, lot, "MaterialLotProperty", found)
        if lot_id := doc.text(lot, "ID"):
            found.values.setdefault("din", lot_id)
        found.occurred_at = found.values.pop("received_at", None)
        yield found


def read(doc: Doc, table: B2mmlTable) -> list[Found]:
    """Every event the document carries, by its shape (an empty list: nothing of ours in it)."""
    if "OperationsEvent" in doc.verb:
        return list(operations_events(doc, table))
    if doc.verb.endswith(("OperationsPerformance", "ProductionPerformance")):
        return list(segment_responses(doc, table))
    if doc.verb.endswith(("MaterialInformation", "MaterialLot")):
        return list(material_lots(doc, table))
    return []


def _time(value: str | None, where: str) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise Unmappable(f"not a date-time: {value[:40]!r}", where) from None
    if moment.tzinfo is None:
        raise Unmappable("a date-time without its offset", where)
    return moment


def _number(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def mes_event(found: Found, table: B2mmlTable) -> MesEvent:
    """The event, its words looked up and its values typed."""
    kind, values = found.kind, dict(found.values)
    assert kind is not None, "only events of ours are mapped"
    coi = values.pop("coi", None)
    if coi is None:
        raise Unmappable("the event names no COI (a property with ID COI)", found.location)
    occurred = _time(found.occurred_at, found.location)
    batch, din = values.pop("batch_id", None), values.pop("din", None)
    fields: dict[str, Any] = {}
    if kind == "slot_confirmed":
        fields = {
            "slot_id": values.get("slot_id"),
            "slot_start": _time(values.get("slot_start"), found.location),
        }
    elif kind == "material_received":
        unit = found.units.get("temperature_c")
        if not table.is_celsius(unit):
            raise Unmappable(f"a receipt temperature in {unit}: send degrees Celsius (CEL)", found.location)
        temperature = values.get("temperature_c")
        fields = {
            "scanned_coi": values.get("scanned_coi", coi),
            "temperature_c": _number(temperature) if temperature else None,
            "condition": values.get("condition"),
        }
        if temperature and fields["temperature_c"] is None:
            raise Unmappable(f"not a temperature: {temperature[:20]!r}", found.location)
    elif kind == "qc_result":
        fields = _qc(found, values, table)
    else:
        fields = {k: values[k] for k in FIELDS_OF.get(kind, ()) if k in values}
    return MesEvent(kind, coi, occurred, batch_id=batch, din=din, fields=fields)


def _qc(found: Found, values: dict[str, str], table: B2mmlTable) -> dict[str, Any]:
    said = values.get("result")
    result = table.result(said) if said else None
    if result is None:
        raise Unmappable(f"a QC result neither pass, fail nor pending: {str(said)[:20]!r}", found.location)
    value = values.get("value")
    number = _number(value) if value is not None else None
    return {
        "test": table.qc_test(values["test"]),
        "result": result,
        "value": number if number is not None else value,
        "unit": found.units.get("value"),
        "specification": values.get("specification"),
    }
