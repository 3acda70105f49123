"""mappings/mes/b2mml.yaml, loaded and checked when the adapter loads: namespaces taken, the words
of categories, properties, QC tests and results, and what they mean."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, PrivateAttr, ValidationError

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


_SEPARATORS = re.compile(r"[\s_/-]+")


def word(value: str) -> str:
    """A word as compared: without case, spaces, '-', '_' or '/' ("QC Result" = "qc_result")."""
    return _SEPARATORS.sub("", value).lower()


class B2mmlTable(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    namespaces: dict[str, str]
    categories: dict[str, str]
    properties: dict[str, str]
    qc_tests: dict[str, str]
    results: dict[str, str]
    celsius: tuple[str, ...]
    completed_states: tuple[str, ...]
    # each table by its words as compared, made once: a lookup is one dict access
    _words: dict[str, dict[str, str]] = PrivateAttr(default_factory=dict)

    def model_post_init(self, _context: object) -> None:
        for name in ("categories", "properties", "qc_tests", "results"):
            self._words[name] = {word(k): v for k, v in getattr(self, name).items()}
        self._words["completed"] = {word(s): s for s in self.completed_states}

    def category(self, value: str) -> str | None:
        return self._words["categories"].get(word(value))

    def field(self, value: str) -> str | None:
        return self._words["properties"].get(word(value))

    def qc_test(self, value: str) -> str:
        """The gateway's name of a test; a test not in the table keeps the MES's name."""
        return self._words["qc_tests"].get(word(value), value)

    def result(self, value: str) -> str | None:
        return self._words["results"].get(word(value))

    def completed(self, state: str) -> bool:
        return word(state) in self._words["completed"]

    def is_celsius(self, unit: str | None) -> bool:
        return unit is None or unit in self.celsius


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
