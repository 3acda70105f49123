"""Identifiers of the chain of identity: external references, ISBT 128 DINs and COIs."""

from __future__ import annotations

import re
import secrets
import string
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

_MOD37_ALPHABET = string.digits + string.ascii_uppercase + "*"
_FACILITY = r"[A-NP-Z1-9][A-Z0-9]{4}"
_DIN_RE = re.compile(rf"^{_FACILITY}\d{{2}}\d{{6}}$")
_COI_RE = re.compile(rf"^CH{_FACILITY}\d{{2}}[A-Z0-9]{{6}}$")
_NAMESPACE_RE = r"^[a-z0-9][a-z0-9._-]*(:[A-Za-z0-9._-]+)*$"


def mod37_2_check(chars: str) -> str:
    """ISO/IEC 7064 MOD 37-2 check character over `chars` (0-9, A-Z, and '*' as the value 36)."""
    p = 0
    for c in chars:
        p = ((p + _MOD37_ALPHABET.index(c)) * 2) % 37
    return _MOD37_ALPHABET[(38 - p) % 37]


def validate_din(value: str) -> str:
    """A 13-character ISBT 128 DIN, optionally followed by its MOD 37-2 check character."""
    value = value.strip().upper()
    body, check = value[:13], value[13:]
    if not _DIN_RE.match(body) or len(check) > 1:
        raise ValueError("not an ISBT 128 DIN (facility 5, year 2, sequence 6)")
    if check and mod37_2_check(body) != check:
        raise ValueError("DIN check character does not match (ISO/IEC 7064 MOD 37-2)")
    return body


def validate_coi(value: str) -> str:
    """An ISBT 128 ST-028 chain-of-identity identifier, without its '&/' data identifier."""
    value = value.strip().upper().removeprefix("&/")
    if not _COI_RE.match(value):
        raise ValueError("not a chain-of-identity identifier (CH, facility 5, year 2, sequence 6)")
    return value


def new_coi(facility: str, year: int) -> str:
    """A fresh COI issued by the gateway under `facility` for the two-digit `year`."""
    sequence = "".join(secrets.choice(string.digits + string.ascii_uppercase) for _ in range(6))
    return validate_coi(f"CH{facility}{year % 100:02d}{sequence}")


Din = Annotated[str, AfterValidator(validate_din)]
Coi = Annotated[str, AfterValidator(validate_coi)]


class IdentifierScope(StrEnum):
    """What an identifier names: one patient (an MRN) or one therapy order (everything else)."""

    patient = "patient"
    order = "order"


PATIENT_KINDS = frozenset({"mrn", "patient", "enterprise-id"})


class ExternalRef(BaseModel):
    """An identifier as an issuer knows it: `site:demo-hospital:mrn` / `MRN0001`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    namespace: str = Field(pattern=_NAMESPACE_RE, max_length=200)
    value: str = Field(min_length=1, max_length=200)

    @property
    def scope(self) -> IdentifierScope:
        kind = self.namespace.rsplit(":", 1)[-1]
        return IdentifierScope.patient if kind in PATIENT_KINDS else IdentifierScope.order

    def __str__(self) -> str:
        # Namespaces only: identifier values may be patient data and never go to logs.
        return self.namespace


COI_NAMESPACE = "coi"


def coi_ref(coi: str) -> ExternalRef:
    return ExternalRef(namespace=COI_NAMESPACE, value=coi)
