"""mappings/couriers/epcis.yaml, read and checked at start-up, and the CBV checks it feeds.

A CBV value is a short name (`shipping`) or a full URI (`https://ref.gs1.org/cbv/BizStep-shipping`,
`urn:epcglobal:cbv:bizstep:shipping`). A bare word outside the CBV, or a GS1 CBV URI naming no CBV
term, is refused: the official JSON Schema lets `in_transport` through as a "URI", we do not. A URI
of another authority is a partner's own vocabulary: it passes, and means nothing to the mapping.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from gateway.sdk import ROOT, Command, ConfigError

MAPPING_FILE = ROOT / "mappings" / "couriers" / "epcis.yaml"

# kind -> the URI prefixes of its CBV terms
PREFIXES = {
    "bizsteps": ("https://ref.gs1.org/cbv/BizStep-", "urn:epcglobal:cbv:bizstep:", "cbv:BizStep-"),
    "dispositions": ("https://ref.gs1.org/cbv/Disp-", "urn:epcglobal:cbv:disp:", "cbv:Disp-"),
    "transaction_types": ("https://ref.gs1.org/cbv/BTT-", "urn:epcglobal:cbv:btt:", "cbv:BTT-"),
    "source_destination_types": ("https://ref.gs1.org/cbv/SDT-", "urn:epcglobal:cbv:sdt:", "cbv:SDT-"),
}
GS1_VOCABULARY = ("https://ref.gs1.org/cbv/", "urn:epcglobal:cbv:", "cbv:")


class Unit(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    scale: float
    offset: float

    def celsius(self, value: float) -> float:
        return round(value * self.scale + self.offset, 3)


class Cbv(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    bizsteps: frozenset[str]
    dispositions: frozenset[str]
    transaction_types: frozenset[str]
    source_destination_types: frozenset[str]


class Vocabulary(BaseModel):
    """epcis.yaml: what a courier's EPCIS events mean for a shipment."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    bizsteps: dict[str, str | None]
    exception_dispositions: frozenset[str]
    custody_types: frozenset[str]
    tracking_transaction: str
    temperature_types: frozenset[str]
    temperature_units: dict[str, Unit]
    sensor_exceptions: dict[str, str]
    cbv: Cbv

    def term(self, kind: str, value: str) -> str | None:
        """The CBV short name `value` stands for; None for another authority's URI; ValueError
        for a word or a GS1 URI that is no CBV term of `kind`."""
        known: frozenset[str] = getattr(self.cbv, kind)
        for prefix in PREFIXES[kind]:
            if value.startswith(prefix):
                value = value.removeprefix(prefix)
                break
        else:
            if value.startswith(GS1_VOCABULARY):
                raise ValueError(f"{value!r} is not a CBV {_label(kind)}")
            if ":" in value:  # an absolute URI of another authority: the partner's own vocabulary
                return None
        if value not in known:
            raise ValueError(f"{value!r} is not a CBV {_label(kind)}")
        return value

    def report_type(self, value: str | None) -> str | None:
        """A sensor report's measurement type, as a short name (`gs1:Temperature` -> Temperature)."""
        return None if value is None else _short_type(value)


@lru_cache(maxsize=256)
def _short_type(value: str) -> str:
    for prefix in ("gs1:", "https://gs1.org/voc/", "https://ref.gs1.org/voc/"):
        value = value.removeprefix(prefix)
    return value


def _label(kind: str) -> str:
    return {
        "bizsteps": "business step",
        "dispositions": "disposition",
        "transaction_types": "business transaction type",
        "source_destination_types": "source/destination type",
    }[kind]


def load_vocabulary(path: Path = MAPPING_FILE) -> Vocabulary:
    """Read at start-up: a bad table refuses to start, naming the file."""
    try:
        table = Vocabulary.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
        for step, event in table.bizsteps.items():
            if step not in table.cbv.bizsteps:
                raise ValueError(f"bizsteps: {step} is not a CBV business step")
            if event is not None:  # each must be a canonical shipment update
                Command.model_validate(
                    {
                        "event": event,
                        "refs": [{"namespace": "coi", "value": "x"}],
                        "payload": {"shipment_id": "x"},
                    }
                )
        unknown = table.exception_dispositions - table.cbv.dispositions
        if unknown:
            raise ValueError(f"exception_dispositions: not CBV: {sorted(unknown)}")
        if table.tracking_transaction not in table.cbv.transaction_types:
            raise ValueError("tracking_transaction is not a CBV business transaction type")
    except (OSError, yaml.YAMLError, ValidationError, ValueError) as exc:
        raise ConfigError(f"epcis mapping {path}: {exc}") from exc
    return table
