"""A site's FHIR profile, loaded from `mappings/fhir/<profile>.yaml` (or the folder
`CGT_PROFILE_DIRS='{"fhir": ...}'` names): what its identifier systems mean, which codes name
products and appointments, how it may authenticate and where it wants push. All are loaded and
validated when the gateway starts."""

from __future__ import annotations

import os
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gateway.sdk import ROOT, Partner, Profiles, SecretRef, Settings

FOLDER = "fhir"
PROFILES_DIR = ROOT / "mappings" / FOLDER  # the shipped profiles (and the Task status table)
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
NOT_PROFILES = {"task-status"}  # other tables that live beside the profiles
IdentifierKind = Literal["mrn", "placer_order", "coi", "din"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Code(_Model):
    system: str = Field(min_length=1)
    code: str = Field(min_length=1)


class IdentifierRule(_Model):
    """Identifiers in any of `systems`, or whose `type` carries one of `types`, mean `namespace`."""

    namespace: str
    systems: tuple[str, ...] = Field(min_length=1)
    types: tuple[Code, ...] = ()

    @property
    def system(self) -> str:
        """The system the gateway writes when it renders this identifier back (Task)."""
        return self.systems[0]


class Identifiers(_Model):
    mrn: IdentifierRule
    placer_order: IdentifierRule
    coi: IdentifierRule
    din: IdentifierRule


class ProductEntry(_Model):
    code: str = Field(min_length=1, max_length=50)
    name: str | None = None


# ISBT 128 product code of a cellular therapy product: the product description code (S and four
# digits), optionally followed by the type of donation and the division (S1234V00).
ISBT128_CELLULAR = re.compile(r"^S[0-9]{4}(?:[0-9A-Z][0-9A-Z]{2})?$")


class ProductSystem(_Model):
    """A code system that names products. `pass_through`: the code is the canonical product code
    (ISBT 128 product codes of cellular therapy, stored as given); otherwise `codes` translates it."""

    system: str = Field(min_length=1)
    canonical_system: str = "isbt128"
    pass_through: bool = False
    codes: dict[str, ProductEntry] = {}

    @model_validator(mode="after")
    def _isbt128_codes_have_the_shape(self) -> ProductSystem:
        if self.canonical_system == "isbt128":
            bad = sorted(k for k, e in self.codes.items() if not ISBT128_CELLULAR.fullmatch(e.code))
            if bad:
                raise ValueError(f"not ISBT 128 cellular therapy product codes: {', '.join(bad)}")
        return self


class AppointmentKinds(_Model):
    collection: tuple[Code, ...] = Field(min_length=1)
    infusion: tuple[Code, ...] = Field(min_length=1)


class OAuthClient(_Model):
    """A SMART Backend Services client: it signs its assertions with a key in `jwks`."""

    client_id: str = Field(min_length=1)
    scopes: tuple[str, ...] = Field(min_length=1)
    jwks: dict[str, Any]


class OAuth(_Model):
    clients: tuple[OAuthClient, ...] = ()
    token_lifetime_seconds: int = Field(default=300, ge=30, le=3600)


class EnvValue(_Model):
    env: str = Field(pattern=r"^[A-Z][A-Z0-9_]*$")
    default: str | None = None

    def resolve(self) -> str | None:
        return os.environ.get(self.env) or self.default


class Notifications(_Model):
    """Push of the order's Task to the site: PUT {url}/Task/{id} (an R4 rest-hook with payload)."""

    url: EnvValue
    secret: SecretRef
    events: tuple[str, ...] = Field(min_length=1)
    timeout_seconds: float = Field(default=3.0, gt=0, le=30)
    backoff_seconds: float = Field(default=0.5, ge=0)
    max_backoff_seconds: float = Field(default=5.0, ge=0)


class SiteProfile(_Model):
    partner: str
    identifiers: Identifiers
    products: tuple[ProductSystem, ...] = Field(min_length=1)
    appointments: AppointmentKinds
    oauth: OAuth = OAuth()
    notifications: Notifications | None = None

    @model_validator(mode="after")
    def _namespaces_are_the_partners(self) -> SiteProfile:
        for kind in ("mrn", "placer_order"):
            rule: IdentifierRule = getattr(self.identifiers, kind)
            if not rule.namespace.startswith(f"site:{self.partner}:"):
                raise ValueError(f"{kind} namespace must be site:{self.partner}:...")
        return self

    def rule(self, kind: IdentifierKind) -> IdentifierRule:
        rule: IdentifierRule = getattr(self.identifiers, kind)
        return rule

    def kind_of_system(self, system: str) -> IdentifierKind | None:
        for kind in ("mrn", "placer_order", "coi", "din"):
            if system in self.rule(kind).systems:
                return kind
        return None


PROFILES: Profiles[SiteProfile] = Profiles(
    SiteProfile, FOLDER, dialect="FHIR", skip=NOT_PROFILES, partner_of=lambda p: p.partner
)


def load_profiles(settings: Settings) -> Profiles[SiteProfile]:
    """Read and validate every profile of the settings' folder (at start-up)."""
    PROFILES.load(settings)
    return PROFILES


def profiles() -> Profiles[SiteProfile]:
    """The loaded profiles; outside a running gateway (tools, tests), those of the default settings."""
    return PROFILES if PROFILES.directory is not None else load_profiles(Settings())


def load_profile(name: str) -> SiteProfile:
    """A shipped profile, by name."""
    return PROFILES.read(PROFILES_DIR / f"{name}.yaml")


def profile_for(partner: Partner) -> SiteProfile | None:
    """The partner's FHIR profile, or None when it does not speak FHIR here."""
    return profiles().for_partner(partner)


def all_profiles() -> list[SiteProfile]:
    return profiles().all()
