"""Disclosure profiles: which fields of the canonical order each destination may receive.

Profiles are data (`mappings/disclosure/`): one file a partner kind, `<kind>.yaml`, and optional
per-partner overrides, `partners/<partner-id>.yaml`, which replace the kind's lists. Each lists

    fields        dotted paths into the TherapyOrder (`coi`, `shipments`, `patient.sex`, ...)
    identifiers   which identifiers of the order and its patient: `own` (the partner's own
                  namespaces), `shared` (COI, DIN)

`disclose(order, refs, partner, disclosure)` is the one filter: every outbound path reads an
order through `Orders.view`, which returns what it gives. The order's skeleton (ALWAYS: its ids,
status, product and ordering site, which a TherapyOrder cannot go without) is always kept; any
other field not listed is reset to its empty default, so a patient's names, birth date and sex
travel only where `patient.*` is listed. `patient.initials` is derived from the names when the
view is made (given-name initial, family-name initial), so a profile may allow the initials
without the names. Files are read and checked at start-up: a bad one
refuses to start, naming the file and the field.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.canonical.ids import ExternalRef
from gateway.canonical.order import TherapyOrder, initials
from gateway.canonical.parties import PartnerKind
from gateway.errors import ConfigError
from gateway.partners import SHARED_NAMESPACES, Partner

# Derived, never stored: the patient's initials from their names (gateway.canonical.order.initials),
# for a destination that may have initials but not names (a manufacturer's labels).
DERIVED_INITIALS = "patient.initials"

# Kept in every view: without them there is no order to speak of (and no valid TherapyOrder).
ALWAYS = frozenset(
    {
        "order_id",
        "coi",
        "patient_id",
        "status",
        "version",
        "created_at",
        "updated_at",
        "product",
        "ordering_site",
    }
)


class Profile(BaseModel):
    """What one destination may receive of an order."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    fields: tuple[str, ...] = Field(min_length=1)
    identifiers: tuple[Literal["own", "shared"], ...] = ("own", "shared")


def _check_path(model: type[BaseModel], path: str) -> None:
    """`path` names a field of `model`, through nested models (`collection.site.name`)."""
    head, _, rest = path.partition(".")
    field = model.model_fields.get(head)
    if field is None:
        raise ValueError(f"{path!r}: {model.__name__} has no field {head!r}")
    if rest:
        nested = field.annotation
        if not (isinstance(nested, type) and issubclass(nested, BaseModel)):
            raise ValueError(f"{path!r}: {head} has no fields of its own")
        _check_path(nested, rest)


def _parse(path: Path) -> Profile:
    try:
        profile = Profile.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
        for dotted in profile.fields:
            _check_path(TherapyOrder, dotted)
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise ConfigError(f"disclosure profile {path}: {exc}") from exc
    except ValueError as exc:
        raise ConfigError(f"disclosure profile {path}: fields: {exc}") from exc
    return profile


@dataclass(frozen=True)
class Disclosure:
    """Every destination's profile: its kind's, unless the partner has one of its own."""

    kinds: dict[PartnerKind, Profile]
    partners: dict[str, Profile]

    def profile(self, partner: Partner) -> Profile:
        return self.partners.get(partner.id) or self.kinds[partner.kind]


def load_disclosure(directory: Path, partners: Iterable[Partner]) -> Disclosure:
    """Read and check `directory`: a profile for every partner kind; overrides only of known partners."""
    kinds: dict[PartnerKind, Profile] = {}
    for kind in PartnerKind:
        path = directory / f"{kind.value}.yaml"
        if not path.is_file():
            raise ConfigError(f"disclosure profile {path}: missing (every partner kind needs one)")
        kinds[kind] = _parse(path)
    known = {p.id for p in partners}
    overrides: dict[str, Profile] = {}
    for path in sorted((directory / "partners").glob("*.yaml")):
        if path.stem not in known:
            raise ConfigError(f"disclosure profile {path}: no partner {path.stem!r} is registered")
        overrides[path.stem] = _parse(path)
    return Disclosure(kinds, overrides)


def _keep(value: dict[str, Any], paths: list[list[str]]) -> dict[str, Any]:
    """The parts of `value` the paths name (a path of one word keeps the whole field)."""
    out: dict[str, Any] = {}
    for head in {p[0] for p in paths}:
        if head not in value:
            continue
        deeper = [p[1:] for p in paths if p[0] == head]
        if any(not rest for rest in deeper) or not isinstance(value[head], dict):
            out[head] = value[head]
        else:
            out[head] = _keep(value[head], deeper)
    return out


def disclose(
    order: TherapyOrder, refs: Iterable[ExternalRef], partner: Partner, disclosure: Disclosure
) -> tuple[TherapyOrder, tuple[ExternalRef, ...]]:
    """The order and identifiers as `partner` may receive them (pure)."""
    profile = disclosure.profile(partner)
    paths = [p.split(".") for p in (*ALWAYS, *profile.fields)]
    shown = _keep(order.model_dump(), paths)
    if DERIVED_INITIALS in profile.fields:
        shown.setdefault("patient", {})["initials"] = initials(order.patient)
    kept = TherapyOrder.model_validate(shown)
    visible = tuple(
        r
        for r in refs
        if ("shared" in profile.identifiers and r.namespace in SHARED_NAMESPACES)
        or ("own" in profile.identifiers and r.namespace.startswith(partner.own_namespace))
    )
    return kept, visible
