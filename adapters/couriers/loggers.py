"""What every logger dialect makes of its readings: one `shipment.readings_reported` command per
shipment and device in a message, carrying every identifier the logger gave for the shipment.

A shipment is named, in this order of preference, by the courier's tracking number
(`courier:<partner>:tracking`), the dry shipper's SSCC (`gs1:sscc`) or the logger's own id
(`courier:<partner>:logger`); the payload's `shipment_id` is the key that named it. A COI or DIN
the logger echoes from the bag's label rides along as `coi` / `isbt128:din`, so that a label of
another order makes the message a mismatch (quarantined) rather than a reading of this one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.sdk import (
    COI_NAMESPACE,
    ROOT,
    Command,
    ConfigError,
    ExternalRef,
    payloads,
    validate_coi,
    validate_din,
)

SSCC_NAMESPACE = "gs1:sscc"
DIN_NAMESPACE = "isbt128:din"
ALARMS_FILE = ROOT / "mappings" / "couriers" / "logger_alarms.yaml"
UNKNOWN_ALARM = "unknown_alarm"

AlarmCode = Annotated[str, Field(pattern=r"^[a-z0-9_]+$", max_length=50)]


class AlarmTable(BaseModel):
    """logger_alarms.yaml: each logger family's words for its alarms -> the reading's `alarm`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    shipper_states: dict[str, AlarmCode | None]
    milesight: dict[str, AlarmCode | None]

    def alarm(self, table: str, said: str) -> str | None:
        """The canonical alarm for what the logger said; a word the table lacks is kept as unknown."""
        words: dict[str, str | None] = getattr(self, table)
        return words.get(said, UNKNOWN_ALARM)


def load_alarms(path: Path = ALARMS_FILE) -> AlarmTable:
    """Read when the adapters load, at start-up: a bad table refuses to start, naming the file."""
    try:
        return AlarmTable.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise ConfigError(f"logger alarms {path}: {exc}") from exc


ALARMS = load_alarms()


def is_sscc(value: str) -> bool:
    """An 18-digit GS1 SSCC whose last digit is its GS1 mod-10 check digit."""
    if len(value) != 18 or not value.isascii() or not value.isdigit():
        return False
    weighted = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(value[:-1])))
    return (10 - weighted % 10) % 10 == int(value[-1])


@dataclass(frozen=True)
class ShipmentKeys:
    """What a logger says about the shipment it rides with. `coi` and `din` raise ValueError when
    they are given but are not a COI / a DIN (the caller knows where they came from)."""

    logger: str
    sscc: str | None = None
    tracking: str | None = None
    coi: str | None = None
    din: str | None = None

    @property
    def shipment_id(self) -> str:
        return self.tracking or self.sscc or self.logger

    def refs(self, partner: str) -> tuple[ExternalRef, ...]:
        own = f"courier:{partner}:"
        found = [ExternalRef(namespace=own + "logger", value=self.logger)]
        if self.sscc:
            found.append(ExternalRef(namespace=SSCC_NAMESPACE, value=self.sscc))
        if self.tracking:
            found.append(ExternalRef(namespace=own + "tracking", value=self.tracking))
        if self.coi:
            found.append(ExternalRef(namespace=COI_NAMESPACE, value=validate_coi(self.coi)))
        if self.din:
            found.append(ExternalRef(namespace=DIN_NAMESPACE, value=validate_din(self.din)))
        return tuple(found)


def readings_commands(
    partner: str, readings: Iterable[tuple[ShipmentKeys, payloads.Reading]]
) -> tuple[Command, ...]:
    """One command per (shipment keys) group, readings in time order, in the order the groups
    first appear. Raises ValueError for a label that is not a COI or DIN."""
    groups: dict[ShipmentKeys, list[payloads.Reading]] = {}
    for keys, reading in readings:
        groups.setdefault(keys, []).append(reading)
    return tuple(
        Command(
            event="shipment.readings_reported",
            refs=keys.refs(partner),
            payload=payloads.ShipmentReadings(
                occurred_at=max(r.at for r in found),
                shipment_id=keys.shipment_id,
                device_id=keys.logger,
                readings=tuple(sorted(found, key=lambda r: (r.at, r.probe or ""))),
            ),
        )
        for keys, found in groups.items()
    )


def batch_id(prefix: str, said: bytes) -> str:
    """A batch's id when the sender gives none: what it says (its commands' fingerprint, or its
    bytes when they cannot be mapped), hashed. A resend is the same batch; readings are
    de-duplicated by (device, time, probe) when stored, whatever batch brought them."""
    return f"{prefix}:{hashlib.sha256(said).hexdigest()[:40]}"
