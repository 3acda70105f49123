"""The manufacturing order as ISA-95 B2MML, built with xml.etree (every value escaped by the
serialiser, no string templates):

    b2mml-v0600   ProcessProductionSchedule  in http://www.mesa.org/xml/B2MML-V0600
                  DataArea/ProductionSchedule/ProductionRequest
    b2mml-v07     ProcessOperationsSchedule  in http://www.mesa.org/xml/B2MML (V07 replaced the
                  production schedule by the operations schedule)
                  DataArea/OperationsSchedule/OperationsRequest

One request per order: its ID the COI, its product the process segment, the collection's
scheduled start and the planned infusion its window; the chain of identity and the label data as
parameters (`coi`, `din`, `patient-initials`, `patient-birth-date`, `ordering-site`,
`collection-site`, `kind`); the apheresis bag as the consumed material, its lot the DIN.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import date, datetime

from adapters.mes.orders.document import ManufacturingOrder

V0600 = "http://www.mesa.org/xml/B2MML-V0600"
V07 = "http://www.mesa.org/xml/B2MML"
VERSIONS = {
    "b2mml-v0600": (
        V0600,
        "ProcessProductionSchedule",
        "ProductionSchedule",
        "ProductionRequest",
        "ProductionParameter",
    ),
    "b2mml-v07": (
        V07,
        "ProcessOperationsSchedule",
        "OperationsSchedule",
        "OperationsRequest",
        "SegmentParameter",
    ),
}
XML = "application/xml"  # the content type


def _text(value: str | datetime | date) -> str:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return value.isoformat() if isinstance(value, date) else value


# Elements are named unprefixed, in the default namespace the root declares (as B2MML's own
# examples are written).
def _add(parent: ET.Element, tag: str, text: str | datetime | date | None = None) -> ET.Element:
    element = ET.SubElement(parent, tag)
    if text is not None:
        element.text = _text(text)
    return element


def _value(parent: ET.Element, tag: str, name: str, value: str | datetime | date | None) -> None:
    """An ID/Value pair (a parameter, a property), left out when there is no value."""
    if value is None:
        return
    pair = _add(parent, tag)
    _add(pair, "ID", name)
    held = _add(pair, "Value")
    _add(held, "ValueString", value)
    kind = "dateTime" if isinstance(value, datetime) else "date" if isinstance(value, date) else "string"
    _add(held, "DataType", kind)


def render_b2mml(order: ManufacturingOrder, version: str) -> bytes:
    namespace, verb, schedule_tag, request_tag, parameter = VERSIONS[version]
    root = ET.Element(verb, {"xmlns": namespace, "releaseID": "1"})
    area = _add(root, "ApplicationArea")
    _add(area, "CreationDateTime", order.sent_at)
    _add(area, "BODID", order.id)
    data = _add(root, "DataArea")
    _add(data, "Process")
    schedule = _add(data, schedule_tag)
    _add(schedule, "ID", order.id)
    if version == "b2mml-v07":
        _add(schedule, "OperationsType", "Production")
    request = _add(schedule, request_tag)
    _add(request, "ID", order.coi)
    _add(request, "Description", order.kind.replace("_", " "))
    if version == "b2mml-v07":
        _add(request, "OperationsType", "Production")
    if order.collection_scheduled_start:
        _add(request, "StartTime", order.collection_scheduled_start)
    if order.infusion_planned_at:
        _add(request, "EndTime", order.infusion_planned_at)
    segment = _add(request, "SegmentRequirement")
    _add(segment, "ProcessSegmentID", order.product_code)
    if order.product_name:
        _add(segment, "Description", order.product_name)
    if order.collection_scheduled_start:
        _add(segment, "EarliestStartTime", order.collection_scheduled_start)
    if order.infusion_planned_at:
        _add(segment, "LatestEndTime", order.infusion_planned_at)
    for name, value in (
        ("kind", order.kind),
        ("coi", order.coi),
        ("din", order.din),
        ("patient-initials", order.patient_initials),
        ("patient-birth-date", order.patient_birth_date),
        ("ordering-site", order.ordering_site),
        ("collection-site", order.collection_site),
        ("product-system", order.product_system),
    ):
        _value(segment, parameter, name, value)
    material = _add(segment, "MaterialRequirement")
    _add(material, "MaterialDefinitionID", "apheresis")
    if order.din:
        _add(material, "MaterialLotID", order.din)
    _add(material, "MaterialUse", "Consumed")
    _value(material, "MaterialRequirementProperty", "coi", order.coi)
    written: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return written
