"""The adapter SDK: the one part of the core an adapter imports (DESIGN §3; import-linter checks
it in `make test`). Everything an adapter needs is here, by name:

- the canonical model it maps to (commands, identifiers, the order, payloads, CloudEvents);
- the error tree, whose classes decide what happens to a message;
- the contract (`Adapter`: decode / answer / examples; `Decoded`; `InboundContext`), the ports a
  transport gets (`Runtime`: `door`, `crosswalk`, `orders`), profiles as data (`Profiles`);
- HTTP helpers for adapters that serve routes (one bounded body reader, refusal logging).

Nothing here is a handle on the gateway's insides: no engine, no intake, no table.
"""

from __future__ import annotations

from gateway import __version__, errors, metrics
from gateway.canonical import payloads
from gateway.canonical.base import Canonical
from gateway.canonical.command import Command, fingerprint
from gateway.canonical.envelope import CloudEvent, utcnow
from gateway.canonical.ids import COI_NAMESPACE, ExternalRef, IdentifierScope, validate_coi, validate_din
from gateway.canonical.lifecycle import OrderStatus
from gateway.canonical.order import OrderDetails, Party, PatientIdentity, Product, TherapyOrder
from gateway.canonical.parties import PartnerKind
from gateway.canonical.payloads import (
    CollectionScheduled,
    InfusionScheduled,
    OrderChanges,
    OrderPlaced,
    OrderUpdated,
    PatientMerged,
    PatientUpdated,
    Payload,
    WithReason,
)
from gateway.entrypoints.limits import bounded_body, refuse
from gateway.errors import (
    ConfigError,
    ContractViolation,
    GatewayError,
    MalformedMessage,
    MappingError,
    NotAuthenticated,
    NotFound,
    NotOurs,
    NotPermitted,
    RejectedMessage,
    TooLarge,
    TransientError,
    UnsupportedMessage,
)
from gateway.partners import Partner, Partners, SecretRef, credential
from gateway.sdk.contract import (
    Adapter,
    Configurable,
    Decoded,
    Example,
    HasHttpRoutes,
    HasTransport,
    InboundContext,
    Running,
)
from gateway.sdk.ports import Crosswalk, Door, Orders, OrderView, Runtime
from gateway.sdk.profiles import Profiles
from gateway.service.intake import mapping_failure
from gateway.service.outcome import Outcome
from gateway.settings import ROOT, Settings

__all__ = [
    "COI_NAMESPACE",
    "ROOT",
    "Adapter",
    "Canonical",
    "CloudEvent",
    "CollectionScheduled",
    "Command",
    "ConfigError",
    "Configurable",
    "ContractViolation",
    "Crosswalk",
    "Decoded",
    "Door",
    "Example",
    "ExternalRef",
    "GatewayError",
    "HasHttpRoutes",
    "HasTransport",
    "IdentifierScope",
    "InboundContext",
    "InfusionScheduled",
    "MalformedMessage",
    "MappingError",
    "NotAuthenticated",
    "NotFound",
    "NotOurs",
    "NotPermitted",
    "OrderChanges",
    "OrderDetails",
    "OrderPlaced",
    "OrderStatus",
    "OrderUpdated",
    "OrderView",
    "Orders",
    "Outcome",
    "Partner",
    "PartnerKind",
    "Partners",
    "Party",
    "PatientIdentity",
    "PatientMerged",
    "PatientUpdated",
    "Payload",
    "Product",
    "Profiles",
    "RejectedMessage",
    "Running",
    "Runtime",
    "SecretRef",
    "Settings",
    "TherapyOrder",
    "TooLarge",
    "TransientError",
    "UnsupportedMessage",
    "WithReason",
    "__version__",
    "bounded_body",
    "credential",
    "errors",
    "fingerprint",
    "mapping_failure",
    "metrics",
    "payloads",
    "refuse",
    "utcnow",
    "validate_coi",
    "validate_din",
]
