"""`sensorElementList` -> the canonical readings of a logger (payloads.Reading).

- a point reading: a report's `value` at the report's `time`, else `sensorMetadata.time`, else the
  event's time;
- an interval report: `minValue` / `maxValue` / `meanValue` from `sensorMetadata.startTime` to
  `endTime` (`at` .. `until`);
- temperatures in `CEL`; `FAR` and `KEL` converted (the table's `temperature_units`); a temperature
  in another unit, or in none, is refused;
- a report's `exception` (ALARM_CONDITION, ERROR_CONDITION) is the reading's `alarm`; a report of
  another type (humidity, light) is kept only when it raises one (its type is the probe).

Readings are grouped by device (`sensorMetadata.deviceID`; an element without one is the event's
read point's, or `unidentified`).
"""

from __future__ import annotations

from datetime import UTC, datetime

from adapters.couriers.epcis.vocabulary import Vocabulary
from adapters.couriers.epcis.wire import Event, SensorMetadata, SensorReport
from gateway.sdk import payloads

UNIDENTIFIED = "unidentified"


def readings(event: Event, vocabulary: Vocabulary) -> dict[str, list[payloads.Reading]]:
    """Each device's readings in the event, in the order sent; ValueError for a unit we cannot read."""
    by_device: dict[str, list[payloads.Reading]] = {}
    for element in event.sensors:
        meta = element.sensor_metadata or SensorMetadata()
        device = meta.device_id or (event.read_point.id if event.read_point else UNIDENTIFIED)
        for report in element.sensor_report:
            reading = _reading(event, meta, report, vocabulary)
            if reading is not None:
                by_device.setdefault(device, []).append(reading)
    return by_device


def _reading(
    event: Event, meta: SensorMetadata, report: SensorReport, vocabulary: Vocabulary
) -> payloads.Reading | None:
    kind = vocabulary.report_type(report.type)
    alarm = vocabulary.sensor_exceptions.get(report.exception) if report.exception else None
    temperature = kind in vocabulary.temperature_types
    if not temperature and alarm is None:
        return None  # humidity, light, speed...: not the cold chain's, unless alarmed
    statistics = (report.min_value, report.max_value, report.mean_value)
    interval = meta.start_time is not None and statistics != (None, None, None)
    at = _utc((meta.start_time if interval else None) or report.time or meta.time or event.event_time)
    until = _utc(meta.end_time) if interval and meta.end_time else None
    if not temperature:
        return payloads.Reading(at=at, until=until, probe=(kind or "sensor")[:50], alarm=alarm)
    if report.value is None and statistics == (None, None, None):
        return payloads.Reading(at=at, until=until, probe=_probe(report), alarm=alarm)
    unit = vocabulary.temperature_units.get(report.uom or "")
    if unit is None:
        raise ValueError(f"a temperature in {report.uom or 'no unit'!s}: CEL, FAR or KEL expected")
    low, high, mean = (None if v is None else unit.celsius(v) for v in statistics)
    return payloads.Reading(
        at=at,
        until=until,
        probe=_probe(report),
        temperature_c=None if report.value is None else unit.celsius(report.value),
        min_c=low,
        max_c=high,
        mean_c=mean,
        alarm=alarm,
    )


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


def _probe(report: SensorReport) -> str | None:
    """A report's own sensor (one logger, several probes); its last 50 characters."""
    return report.device_id[-50:] if report.device_id else None
