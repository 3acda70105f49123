"""A FHIR request as the route reads it before handing it in: the REST interaction around the
body, and the body decoded and validated once.

The route needs the body read before the intake: a token's scopes are checked against the types
of a Bundle's entries, and the mapping must know what only a lookup tells (whether a placer
number names a known order, whether a patient is known). It hands the request to the adapter's
`decode` as `InboundContext.request`, which reads the body again only if it is not this one.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Self

from adapters.fhir.message import ACTED_ON, Interaction
from adapters.fhir.patients import patient_refs_named
from adapters.fhir.profile import SiteProfile
from adapters.fhir.resources import Json, identifiers_of, refs_of
from adapters.fhir.validation import ORDER_TYPES, contents, decode, validate
from gateway.sdk import ExternalRef, GatewayError, OrderStatus


@dataclass(frozen=True)
class Received:
    interaction: Interaction
    raw: bytes
    read: Json | GatewayError  # the document, or why it cannot be read

    @classmethod
    def of(cls, raw: bytes, interaction: Interaction) -> Self:
        try:
            document = decode(raw)
            validate(document, interaction.accepted)
        except GatewayError as exc:
            return cls(interaction, raw, exc)
        return cls(interaction, raw, document)

    def document(self) -> Json:
        if isinstance(self.read, GatewayError):
            raise self.read
        return self.read

    def acted_on(self) -> list[str]:
        """The resource types of a Bundle's entries that the gateway acts on (for token scopes)."""
        if isinstance(self.read, GatewayError):
            return []  # decode raises it again, inside the intake, so that it is recorded
        found = contents(self.read, method=self.interaction.method)
        return sorted({e.type for e in found.entries if e.type in ACTED_ON})

    def orders_to_look_up(self, profile: SiteProfile) -> list[ExternalRef]:
        """Placer numbers of orders PUT (changed): a known one is a therapy order whatever code
        the change carries, and an active PUT of it is an update or a resumption. (A POST places:
        it needs its product code, and no lookup.)"""
        if isinstance(self.read, GatewayError):
            return []
        found = contents(self.read, method=self.interaction.method)
        wanted: list[ExternalRef] = []
        for located in found.of_type(*ORDER_TYPES):
            if located.method == "PUT":
                wanted += refs_of(identifiers_of(located.resource), profile, "placer_order")
        return wanted

    def patients_to_look_up(self, profile: SiteProfile) -> list[ExternalRef]:
        """The MRNs of a patient update or merge (a request about no order), to know whether the
        gateway knows the patient at all."""
        if isinstance(self.read, GatewayError):
            return []
        found = contents(self.read, method=self.interaction.method)
        if found.of_type(*ORDER_TYPES, "Appointment", "BiologicallyDerivedProduct", "Procedure"):
            return []
        return patient_refs_named(self.read, found, profile)

    def knowing(
        self,
        orders: dict[ExternalRef, OrderStatus] | None = None,
        patients: set[ExternalRef] | None = None,
    ) -> Self:
        """The request with what the lookups found."""
        interaction = self.interaction
        if orders is not None:
            interaction = replace(interaction, known_orders=dict(orders))
        if patients is not None:
            interaction = replace(interaction, known_patients=frozenset(patients))
        return replace(self, interaction=interaction)
