"""Carriers' status code tables (mappings/couriers/status/<carrier>.yaml): a carrier's status
fields -> the canonical shipment event they are, or `ignore`, or nothing (an unknown code).

Every scalar is read as a string (YAML's BaseLoader): UPS writes its description codes with
leading zeros ("021"), which a YAML 1.1 loader would read as octal numbers. A table whose values
are not canonical shipment updates stops the gateway at start-up, naming the file.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from gateway.sdk import ROOT, Command, ConfigError, payloads

TABLES = ROOT / "mappings" / "couriers" / "status"
IGNORE = "ignore"


class CodeTable(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    carrier: str = Field(min_length=1)
    lookup: tuple[str, ...] = Field(min_length=1, description="the status fields, most specific first")
    tables: dict[str, dict[str, str]]

    @model_validator(mode="after")
    def _every_field_has_a_table(self) -> CodeTable:
        missing = [f for f in self.lookup if f not in self.tables]
        if missing:
            raise ValueError(f"no table for {', '.join(missing)}")
        return self

    def resolve(self, codes: Mapping[str, str]) -> str | None:
        """The canonical event (or `ignore`) of the most specific code known; None: unknown."""
        for field in self.lookup:
            code = codes.get(field)
            if code is not None and code in self.tables[field]:
                return self.tables[field][code]
        return None


def _check(event: str) -> None:
    if event == IGNORE:
        return
    probe = {"event": event, "refs": [{"namespace": "coi", "value": "x"}], "payload": {"shipment_id": "p"}}
    try:
        command = Command.model_validate(probe)
    except ValidationError:
        command = None
    if command is None or not isinstance(command.payload, payloads.ShipmentUpdate):
        raise ValueError(f"{event} is not a shipment update")


def load_table(path: Path) -> CodeTable:
    try:
        document = yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.BaseLoader)  # noqa: S506
        if not isinstance(document, dict):
            raise ValueError("not a mapping")
        carrier, lookup = document.pop("carrier", None), document.pop("lookup", None)
        table = CodeTable.model_validate({"carrier": carrier, "lookup": lookup, "tables": document})
        for codes in table.tables.values():
            for event in set(codes.values()):
                _check(event)
    except (OSError, yaml.YAMLError, ValidationError, ValueError) as exc:
        raise ConfigError(f"carrier status codes {path}: {exc}") from exc
    if table.carrier != path.stem:
        raise ConfigError(f"carrier status codes {path}: carrier {table.carrier!r} is not {path.stem!r}")
    return table


def load_tables(directory: Path = TABLES) -> dict[str, CodeTable]:
    """Every table of the folder, by carrier (files `*_test.yaml` are their cases)."""
    paths = [p for p in sorted(directory.glob("*.yaml")) if not p.stem.endswith("_test")]
    return {p.stem: load_table(p) for p in paths}
