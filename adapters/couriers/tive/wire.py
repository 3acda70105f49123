"""A logger's entries as Tive's webhook sends them (one JSON object an entry; a batch is a JSON
array of entries), with the fields a cold-chain courier adds for a dry shipper and the label.

Tive's own fields (`DeviceId`, `EntryTimeEpoch`, `Temperature`, `ProbeTemperature`, `Battery`,
`Light`, `Accelerometer`, `Shipment`) keep Tive's names; the additions are `Shipper` (the dry
shipper's serial, its LN2 level and state), `Shipment.TrackingNumber` and `Shipment.Label` (the
COI and DIN printed on the bag, when the courier's system echoes them). Fields we do not use
(location, cellular, humidity) are passed over: the vendor may add fields without breaking us.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Wire(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class Celsius(_Wire):
    Celsius: float | None = Field(default=None, ge=-273.15, le=200)


class BatteryLevel(_Wire):
    Percentage: int | None = Field(default=None, ge=0, le=100)


class LightLevel(_Wire):
    Lux: float | None = Field(default=None, ge=0)


class Motion(_Wire):
    G: float | None = Field(default=None, ge=0)


class LabelScan(_Wire):
    """What the courier read on the bag's label: checked against the order, never trusted."""

    Coi: str | None = Field(default=None, max_length=40)
    Din: str | None = Field(default=None, max_length=40)


class ShipmentInfo(_Wire):
    Id: str | None = Field(default=None, max_length=200)  # the Tive account's own name for it
    TrackingNumber: str | None = Field(default=None, min_length=1, max_length=100)
    Label: LabelScan | None = None


ShipperState = Literal["Charged", "Low", "Depleted", "Unknown"]


class DryShipper(_Wire):
    """The dry shipper the logger rides in (vapour-phase LN2)."""

    Serial: str | None = Field(default=None, min_length=1, max_length=100)  # an SSCC on GS1 labels
    Ln2LevelPercentage: float | None = Field(default=None, ge=0, le=100)
    State: ShipperState | None = None


class Entry(_Wire):
    """One entry of a logger: its readings at one time."""

    DeviceId: str = Field(min_length=1, max_length=100)  # the tracker's IMEI: the logger id
    DeviceName: str | None = Field(default=None, max_length=100)
    EntryTimeEpoch: int = Field(ge=0, le=32_503_680_000_000)  # milliseconds, before the year 3000
    Temperature: Celsius
    ProbeTemperature: Celsius | None = None
    Battery: BatteryLevel | None = None
    Light: LightLevel | None = None
    Accelerometer: Motion | None = None
    Shipment: ShipmentInfo | None = None
    Shipper: DryShipper | None = None
