"""The canonical model: the only shapes that travel on the gateway's bus."""

from gateway.canonical.catalogue import CATALOGUE, EventSpec, Scope, spec_for
from gateway.canonical.command import Command
from gateway.canonical.envelope import CloudEvent
from gateway.canonical.ids import ExternalRef, IdentifierScope
from gateway.canonical.lifecycle import OrderStatus
from gateway.canonical.order import PatientIdentity, TherapyOrder

__all__ = [
    "CATALOGUE",
    "CloudEvent",
    "Command",
    "EventSpec",
    "ExternalRef",
    "IdentifierScope",
    "OrderStatus",
    "PatientIdentity",
    "Scope",
    "TherapyOrder",
    "spec_for",
]
