"""FedEx Track API responses (`output.completeTrackResults[].trackResults[].scanEvents[]`), for
polling: one event a scan, its `eventType` the code (PU, IT, OD, DL, DE, SE, HL...)."""

from __future__ import annotations

from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from adapters.couriers.tracking.events import TrackEvent, malformed, place, text


class _Wire(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class Address(_Wire):
    city: str | None = None
    stateOrProvinceCode: str | None = None
    postalCode: str | None = None
    countryCode: str | None = None


class ScanEvent(_Wire):
    date: AwareDatetime
    eventType: str = Field(min_length=1, max_length=10)
    eventDescription: str | None = None
    exceptionDescription: str | None = None
    scanLocation: Address | None = None


class NumberInfo(_Wire):
    trackingNumber: str = Field(min_length=1, max_length=100)


class Identifier(_Wire):
    type: str = ""
    value: str = ""


class Additional(_Wire):
    packageIdentifiers: list[Identifier] = []


class Delivery(_Wire):
    signedByName: str | None = None
    receivedByName: str | None = None


class DateAndTime(_Wire):
    type: str = ""
    dateTime: str | None = None


class TrackResult(_Wire):
    trackingNumberInfo: NumberInfo
    additionalTrackingInfo: Additional | None = None
    deliveryDetails: Delivery | None = None
    scanEvents: list[ScanEvent] = []


class Complete(_Wire):
    trackResults: list[TrackResult] = []


class Output(_Wire):
    completeTrackResults: list[Complete] = []


class TrackApi(_Wire):
    output: Output


def track_api(document: Any) -> list[TrackEvent]:
    try:
        answer = TrackApi.model_validate(document)
    except ValidationError as exc:
        raise malformed(exc, "a FedEx Track API response") from None
    found: list[TrackEvent] = []
    for c, complete in enumerate(answer.output.completeTrackResults):
        for r, result in enumerate(complete.trackResults):
            sent = document["output"]["completeTrackResults"][c]["trackResults"][r]["scanEvents"]
            extra = result.additionalTrackingInfo
            refs = tuple(
                (i.type, i.value.strip()) for i in (extra.packageIdentifiers if extra else []) if i.value
            )
            signer = result.deliveryDetails.signedByName if result.deliveryDetails else None
            for s, scan in enumerate(result.scanEvents):
                where = scan.scanLocation
                found.append(
                    TrackEvent(
                        carrier="fedex",
                        tracking_number=result.trackingNumberInfo.trackingNumber.strip(),
                        codes={"event_type": scan.eventType},
                        carrier_code=scan.eventType,
                        occurred_at=scan.date,
                        location=place(
                            where.city, where.stateOrProvinceCode, where.postalCode, where.countryCode
                        )
                        if where
                        else None,
                        signed_by=text(signer) if scan.eventType == "DL" else None,
                        note=text(scan.exceptionDescription or scan.eventDescription, 500),
                        references=refs,
                        source=sent[s],
                    )
                )
    return found
