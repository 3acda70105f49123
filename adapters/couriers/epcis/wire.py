"""EPCIS 2.0 JSON-LD as couriers send it: the document, and each event on its own (so that one bad
event can be told from the others). What the gateway reads is typed; everything else (user
extensions, certification info, quantities) is allowed and passed over."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

Action = Literal["ADD", "OBSERVE", "DELETE"]
_OFFSET = r"^[+-]([01]\d|2[0-3]):[0-5]\d$"


class Wire(BaseModel):
    model_config = ConfigDict(frozen=True, extra="allow", populate_by_name=True)


class Body(Wire):
    event_list: list[Any] = Field(alias="eventList")


class QueryResults(Wire):
    results_body: Body = Field(alias="resultsBody")


class QueryBody(Wire):
    query_results: QueryResults = Field(alias="queryResults")


class Document(Wire):
    """An EPCISDocument, or an EPCISQueryDocument (the binding's capture takes both)."""

    context: Any = Field(alias="@context")
    id: str | None = Field(default=None, max_length=200)
    type: Literal["EPCISDocument", "EPCISQueryDocument"]
    schema_version: str | None = Field(default=None, alias="schemaVersion")  # required of an EPCISDocument
    creation_date: AwareDatetime | None = Field(default=None, alias="creationDate")  # likewise
    epcis_body: Body | QueryBody = Field(alias="epcisBody")

    @property
    def events(self) -> list[dict[str, Any]]:
        body = self.epcis_body
        return body.query_results.results_body.event_list if isinstance(body, QueryBody) else body.event_list

    @property
    def events_path(self) -> str:
        return (
            "/epcisBody/queryResults/resultsBody/eventList"
            if isinstance(self.epcis_body, QueryBody)
            else "/epcisBody/eventList"
        )


class Place(Wire):
    id: str = Field(min_length=1)


class BizTransaction(Wire):
    type: str | None = None
    biz_transaction: str = Field(alias="bizTransaction", min_length=1)


class Source(Wire):
    type: str
    source: str


class Destination(Wire):
    type: str
    destination: str


class SensorMetadata(Wire):
    time: AwareDatetime | None = None
    start_time: AwareDatetime | None = Field(default=None, alias="startTime")
    end_time: AwareDatetime | None = Field(default=None, alias="endTime")
    device_id: str | None = Field(default=None, alias="deviceID")


class SensorReport(Wire):
    type: str | None = None
    device_id: str | None = Field(default=None, alias="deviceID")
    time: AwareDatetime | None = None
    value: float | None = None
    min_value: float | None = Field(default=None, alias="minValue")
    max_value: float | None = Field(default=None, alias="maxValue")
    mean_value: float | None = Field(default=None, alias="meanValue")
    uom: str | None = None
    exception: Literal["ALARM_CONDITION", "ERROR_CONDITION"] | None = None


class SensorElement(Wire):
    sensor_metadata: SensorMetadata | None = Field(default=None, alias="sensorMetadata")
    sensor_report: list[SensorReport] = Field(alias="sensorReport", min_length=1)


class ErrorDeclaration(Wire):
    declaration_time: AwareDatetime = Field(alias="declarationTime")
    reason: str | None = None
    corrective_event_ids: list[str] = Field(default_factory=list, alias="correctiveEventIDs")


class PersistentDisposition(Wire):
    set: list[str] = Field(default_factory=list)
    unset: list[str] = Field(default_factory=list)


class Event(Wire):
    """Any EPCIS event. `action` is required of all but TransformationEvent (checked by the mapping)."""

    type: Literal[
        "ObjectEvent", "AggregationEvent", "TransactionEvent", "TransformationEvent", "AssociationEvent"
    ]
    event_time: AwareDatetime = Field(alias="eventTime")
    event_time_zone_offset: str = Field(alias="eventTimeZoneOffset", pattern=_OFFSET)
    event_id: str | None = Field(default=None, alias="eventID")
    action: Action | None = None
    biz_step: str | None = Field(default=None, alias="bizStep")
    disposition: str | None = None
    persistent_disposition: PersistentDisposition | None = Field(default=None, alias="persistentDisposition")
    epc_list: list[str] = Field(default_factory=list, alias="epcList")
    child_epcs: list[str] = Field(default_factory=list, alias="childEPCs")
    parent_id: str | None = Field(default=None, alias="parentID")
    read_point: Place | None = Field(default=None, alias="readPoint")
    biz_location: Place | None = Field(default=None, alias="bizLocation")
    biz_transactions: list[BizTransaction] = Field(default_factory=list, alias="bizTransactionList")
    sources: list[Source] = Field(default_factory=list, alias="sourceList")
    destinations: list[Destination] = Field(default_factory=list, alias="destinationList")
    sensors: list[SensorElement] = Field(default_factory=list, alias="sensorElementList")
    error_declaration: ErrorDeclaration | None = Field(default=None, alias="errorDeclaration")
    ilmd: dict[str, Any] | None = None
