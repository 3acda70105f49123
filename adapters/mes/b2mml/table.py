"""mappings/mes/b2mml.yaml, loaded and checked when the adapter loads: namespaces taken, the words
of categories, properties, QC tests and results, and what they mean."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from gateway.sdk import ROOT, ConfigError

TABLE_FILE = ROOT / "mappings" / "mes" / "b2mml.yaml"
FIELDS = frozenset(
    {
        "coi",
        "scanned_coi",
        "din",
        "batch_id",
        "slot_id",
        "slot_start",
        "received_at",
        "temperature_c",
        "condition",
        "step",
        "deviation_id",
        "severity",
        "outcome",
        "test",
        "result",
        "value",
        "specification",
        "certificate_of_analysis",
        "reason",
        "shipment_id",
        "courier",
    }
)


def word(value: str) -> str:
    """A word as compared: without case, spaces, '-', '_' or '/' ("QC Result" = "qc_result")."""
    return re.sub(r"[\s_/-]+", "", value).lower()


class B2mmlTable(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    namespaces: dict[str, str]
    categories: dict[str, str]
    properties: dict[str, str]
    qc_tests: dict[str, str]
    results: dict[str, str]
    celsius: tuple[str, ...]
    completed_states: tuple[str, ...]

    def category(self, value: str) -> str | None:
        return self._lookup(self.categories, value)

    def field(self, value: str) -> str | None:
        return self._lookup(self.properties, value)

    def qc_test(self, value: str) -> str:
        """The gateway's name of a test; a test not in the table keeps the MES's name."""
        return self._lookup(self.qc_tests, value) or value

    def result(self, value: str) -> str | None:
        return self._lookup(self.results, value)

    def completed(self, state: str) -> bool:
        return word(state) in {word(s) for s in self.completed_states}

    def is_celsius(self, unit: str | None) -> bool:
        return unit is None or unit in self.celsius

    @staticmethod
    def _lookup(table: dict[str, str], value: str) -> str | None:
        wanted = word(value)
        for key, meaning in table.items():
            if word(key) == wanted:
                return meaning
        return None


def load_table(path: Path = TABLE_FILE, events: frozenset[str] = frozenset()) -> B2mmlTable:
    """A category naming an event not in mappings/mes/events.yaml, or a property naming a field we
    do not have, refuses to start."""
    try:
        table = B2mmlTable.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise ConfigError(f"B2MML table {path}: {exc}") from exc
    unknown = {e for e in table.categories.values() if events and e not in events}
    unknown |= {f for f in table.properties.values() if f not in FIELDS}
    unknown |= {r for r in table.results.values() if r not in ("pass", "fail", "pending")}
    if unknown:
        raise ConfigError(f"B2MML table {path}: unknown meanings {sorted(unknown)}")
    return table
