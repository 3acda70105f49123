"""Temperature classes as data (`mappings/couriers/temperature_classes.yaml`): each class's range,
tolerated excursion and cumulative budget, and the class each product travels in on each leg.

Read and checked at start-up: a bad file refuses to start, naming the file.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from gateway.canonical.order import Product, ShipmentDirection, TemperatureClass
from gateway.errors import ConfigError

DEFAULT_FILE = (
    Path(__file__).resolve().parent.parent.parent / "mappings" / "couriers" / "temperature_classes.yaml"
)


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ClassLimits(_Model):
    """One temperature class: its range and what it tolerates outside it."""

    code: TemperatureClass
    min_c: float | None = None
    max_c: float | None = None
    tolerated_minutes: float = Field(ge=0)
    budget_minutes: float = Field(ge=0)
    critical_margin_c: float = Field(gt=0)
    hold_hours: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _a_range(self) -> ClassLimits:
        if self.min_c is None and self.max_c is None:
            raise ValueError("a class needs min_c, max_c or both")
        if self.min_c is not None and self.max_c is not None and self.min_c >= self.max_c:
            raise ValueError("min_c must be below max_c")
        return self

    def limit_crossed(self, low: float, high: float) -> float | None:
        """The limit that a reading spanning low..high crosses (None: in range)."""
        if self.max_c is not None and high > self.max_c:
            return self.max_c
        if self.min_c is not None and low < self.min_c:
            return self.min_c
        return None


class ProductLegs(_Model):
    system: str = Field(min_length=1)
    code: str = Field(min_length=1)
    inbound: str
    outbound: str
    viability_hours: float | None = Field(default=None, gt=0)


class ColdChain(_Model):
    """The whole file."""

    battery_low_pct: float = Field(default=20, ge=0, le=100)
    no_data_minutes: float = Field(default=60, gt=0)
    summary_hours: float = Field(default=4, gt=0)
    classes: dict[str, ClassLimits] = Field(min_length=1)
    products: tuple[ProductLegs, ...] = ()

    @model_validator(mode="after")
    def _known_classes(self) -> ColdChain:
        codes = [c.code for c in self.classes.values()]
        if len(codes) != len(set(codes)):
            raise ValueError("two classes share a code")
        for p in self.products:
            for leg in (p.inbound, p.outbound):
                if leg not in self.classes:
                    raise ValueError(f"product {p.system}/{p.code} names an unknown class {leg!r}")
        return self

    def by_code(self, code: TemperatureClass) -> tuple[str, ClassLimits]:
        return next((name, c) for name, c in self.classes.items() if c.code is code)

    def named(self, given: str) -> TemperatureClass | None:
        """A class given by its name (`fresh`) or its code (`2-8C`)."""
        if given in self.classes:
            return self.classes[given].code
        return next((c.code for c in self.classes.values() if c.code.value == given), None)

    def _product(self, product: Product) -> ProductLegs | None:
        return next((p for p in self.products if (p.system, p.code) == (product.system, product.code)), None)

    def for_leg(self, product: Product, direction: ShipmentDirection) -> TemperatureClass | None:
        legs = self._product(product)
        if legs is None:
            return None
        name = legs.inbound if direction is ShipmentDirection.to_manufacturer else legs.outbound
        return self.classes[name].code

    def viability_hours(self, product: Product) -> float | None:
        legs = self._product(product)
        return legs.viability_hours if legs else None


def load_cold_chain(path: Path) -> ColdChain:
    try:
        return ColdChain.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")) or {})
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise ConfigError(f"temperature classes {path}: {exc}") from exc


@cache
def default_cold_chain() -> ColdChain:
    """The shipped file, for an intake built without settings (tests, tools)."""
    return load_cold_chain(DEFAULT_FILE)
