"""Milesight's LoRaWAN payload (TS201 temperature logger, EM300-TH), sans I/O: bytes in, the frames
of telemetry they hold out, in the vendor's own terms (its decoder's keys and strings), then
what each frame is as a reading.

The payload is a run of channels, each `channel id, channel type, value`; integers little-endian,
temperatures int16 in tenths of a degree. The current frame is stamped with the time the network
received it; each history record (0x20 0xCE) carries its own Unix time. A channel we do not know
is refused, never skipped: its length is unknown, so nothing after it could be trusted. The
vendor's alarm words become canonical alarms through mappings/couriers/logger_alarms.yaml.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from adapters.couriers.loggers import ALARMS

ALARM_TYPES = {0: "Threshold Alarm Release", 1: "Threshold Alarm", 2: "Mutation Alarm"}
ERRORS = {0: "Read Error", 1: "Overload"}
HISTORY_EVENTS = {0: "", 1: "Periodic", 2: "Alarm(Threshold or Mutation)", 3: "Alarm Release"}
READ_STATUS = {0: "Success", 1: "Read Error", 2: "Overload"}

# (channel id, channel type) -> length of its value, for the channels that only describe the device
DEVICE_INFO = {(0xFF, 0x01): 1, (0xFF, 0x09): 2, (0xFF, 0x0A): 2, (0xFF, 0x0F): 1, (0xFF, 0x16): 8}
DEVICE_INFO |= {(0xFF, 0xFF): 2}


class PayloadError(ValueError):
    """The bytes are not a Milesight payload we know; `offset` is where reading them stopped."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(f"{message} at byte {offset}")
        self.offset = offset


@dataclass
class Frame:
    """Telemetry at one time: `ts` in Unix milliseconds, `values` under the vendor's keys."""

    ts: int
    values: dict[str, Any] = field(default_factory=dict)


def _int16(data: bytes, at: int) -> int:
    return int.from_bytes(data[at : at + 2], "little", signed=True)


def _celsius(data: bytes, at: int) -> float:
    return _int16(data, at) / 10


def _take(data: bytes, at: int, length: int) -> int:
    if at + length > len(data):
        raise PayloadError("the payload ends inside a channel", at)
    return at + length


def decode(data: bytes, received_ms: int) -> list[Frame]:
    """The frames in `data`: the current one first (always, even empty), then each history record."""
    now = Frame(received_ms)
    frames = [now]
    i = 0
    while i < len(data):
        channel = (data[i], data[i + 1]) if i + 1 < len(data) else (data[i], -1)
        at = _take(data, i, 2)
        if channel in DEVICE_INFO:
            i = _take(data, at, DEVICE_INFO[channel])
        elif channel == (0xFF, 0x0B):
            i = _take(data, at, 1)
            now.values["device_status"] = "on"
        elif channel == (0x01, 0x75):
            i = _take(data, at, 1)
            now.values["battery"] = data[at]
        elif channel == (0x03, 0x67):
            i = _take(data, at, 2)
            now.values["temperature"] = _celsius(data, at)
        elif channel == (0x04, 0x68):
            i = _take(data, at, 1)
            now.values["humidity"] = data[at] / 2
        elif channel == (0x83, 0x67):
            i = _take(data, at, 3)
            now.values["temperature"] = _celsius(data, at)
            now.values["temperature_alarm"] = ALARM_TYPES.get(data[at + 2], "Unknown")
        elif channel == (0x93, 0x67):
            i = _take(data, at, 5)
            now.values["temperature"] = _celsius(data, at)
            now.values["temperature_mutation"] = int.from_bytes(data[at + 2 : at + 4], "little") / 10
            now.values["temperature_alarm"] = ALARM_TYPES.get(data[at + 4], "Unknown")
        elif channel == (0xB3, 0x67):
            i = _take(data, at, 1)
            now.values["temperature_error"] = ERRORS.get(data[at], "Unknown")
        elif channel == (0x20, 0xCE):
            i = _take(data, at, 7)
            kind = data[at + 4]
            values = {
                "temperature": _celsius(data, at + 5),
                "read_status": READ_STATUS.get(kind >> 4, "Unknown"),
                "event_type": HISTORY_EVENTS.get(kind & 0x0F, "Unknown"),
            }
            frames.append(Frame(int.from_bytes(data[at : at + 4], "little") * 1000, values))
        else:
            raise PayloadError(f"unknown channel {channel[0]:02x} {channel[1] & 0xFF:02x}", i)
    return frames


@dataclass(frozen=True)
class Measured:
    """A frame as a reading: what the canonical `Reading` takes of it (None: the frame says nothing)."""

    ts: int
    temperature_c: float | None
    battery_pct: float | None
    alarm: str | None


def measured(frame: Frame) -> Measured | None:
    v = frame.values
    failed = v.get("read_status", "Success") != "Success"  # a failed read's value means nothing
    temperature = None if failed or "temperature_error" in v else v.get("temperature")
    said = v.get("temperature_error") or (v["read_status"] if failed else None)
    said = said or v.get("temperature_alarm") or v.get("event_type")
    alarm = ALARMS.alarm("milesight", said or "")
    battery = v.get("battery")
    if temperature is None and battery is None and alarm is None:
        return None
    return Measured(frame.ts, temperature, battery, alarm)
