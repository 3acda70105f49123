"""The adapter SDK: the one part of the core an adapter imports (DESIGN §3; import-linter checks
it in `make test`). Everything an adapter needs is here, by name:

- the canonical model it maps to (commands, identifiers, the order, payloads, CloudEvents);
- the error tree, whose classes decide what happens to a message;
- the contract (`Adapter`: decode / answer / examples; `Decoded`; `InboundContext`), the ports a
  transport gets (`Runtime`: `door`, `crosswalk`, `orders`, `secrets`, `polls`, `messages`), profiles as data (`Profiles`);
- HTTP helpers for adapters that serve routes (one bounded body reader, refusal logging);
- signed webhooks (`webhook_router`, `WebhookRoute`, the schemes) and inbound AMQP queues
  (`gateway.sdk.queues`).
- the outbound contract (`Outbound`: render / deliver) and its one runner (`OutboundRunner`,
  `Destination`, `Retry`, `retrying`); OAuth client-credentials tokens for a partner's API
  (`ClientCredentials`, `BearerTokens`).
- the demo-credential checks production runs on an adapter's own keys and secrets.

Nothing here is a handle on the gateway's insides: no engine, no intake, no table.
"""

from __future__ import annotations

from gateway import __version__, errors, metrics
from gateway.adapter_contract import (
    Adapter,
    Configurable,
    Decoded,
    Example,
    HasContracts,
    HasHttpRoutes,
    InboundContext,
    Running,
    TellsRejection,
)
from gateway.canonical import payloads
from gateway.canonical.base import Canonical
from gateway.canonical.command import Command, fingerprint
from gateway.canonical.envelope import CloudEvent, utcnow
from gateway.canonical.ids import COI_NAMESPACE, ExternalRef, IdentifierScope, validate_coi, validate_din
from gateway.canonical.lifecycle import OrderStatus
from gateway.canonical.order import (
    OrderDetails,
    Party,
    PatientIdentity,
    Product,
    Shipment,
    ShipmentDirection,
    TemperatureClass,
    TherapyOrder,
)
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
from gateway.credentials import credential
from gateway.demo_credentials import jwk_thumbprint, refuse_published, secret_fingerprint
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
from gateway.http_body import bounded_body, refuse
from gateway.identity.authorise import Assignments, load_assignments
from gateway.outcome import Outcome
from gateway.partners import Partner, Partners, SecretRef
from gateway.ports import (
    Crosswalk,
    Deliveries,
    Door,
    HasTransport,
    KeptMessage,
    Messages,
    Orders,
    OrderView,
    Polls,
    PollState,
    Refusals,
    Replays,
    Runtime,
    Secrets,
)
from gateway.sdk.answers import outcome_json
from gateway.sdk.examples import examples_in
from gateway.sdk.outbound import Destination, Outbound, OutboundRunner, OutboundRuntime, Retry, retrying
from gateway.sdk.profiles import Profiles
from gateway.sdk.queues import InboundQueues, inbound_queue_name
from gateway.sdk.signatures import (
    EASYPOST,
    ApiKey,
    CgtHmac,
    HeaderHmac,
    SignatureScheme,
    StandardWebhooks,
    Verified,
)
from gateway.sdk.tokens import BearerTokens, ClientCredentials, TokenUnavailable, bearer_tokens
from gateway.sdk.webhooks import WebhookRoute, authenticate, webhook_router
from gateway.service.decoding import mapping_failure
from gateway.settings import ROOT, Settings

__all__ = [
    "COI_NAMESPACE",
    "EASYPOST",
    "ROOT",
    "Adapter",
    "ApiKey",
    "Assignments",
    "BearerTokens",
    "Canonical",
    "CgtHmac",
    "ClientCredentials",
    "CloudEvent",
    "CollectionScheduled",
    "Command",
    "ConfigError",
    "Configurable",
    "ContractViolation",
    "Crosswalk",
    "Decoded",
    "Deliveries",
    "Destination",
    "Door",
    "Example",
    "ExternalRef",
    "GatewayError",
    "HasContracts",
    "HasHttpRoutes",
    "HasTransport",
    "HeaderHmac",
    "IdentifierScope",
    "InboundContext",
    "InboundQueues",
    "InfusionScheduled",
    "KeptMessage",
    "MalformedMessage",
    "MappingError",
    "Messages",
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
    "Outbound",
    "OutboundRunner",
    "OutboundRuntime",
    "Outcome",
    "Partner",
    "PartnerKind",
    "Partners",
    "Party",
    "PatientIdentity",
    "PatientMerged",
    "PatientUpdated",
    "Payload",
    "PollState",
    "Polls",
    "Product",
    "Profiles",
    "Refusals",
    "RejectedMessage",
    "Replays",
    "Retry",
    "Running",
    "Runtime",
    "SecretRef",
    "Secrets",
    "Settings",
    "Shipment",
    "ShipmentDirection",
    "SignatureScheme",
    "StandardWebhooks",
    "TellsRejection",
    "TemperatureClass",
    "TherapyOrder",
    "TokenUnavailable",
    "TooLarge",
    "TransientError",
    "UnsupportedMessage",
    "Verified",
    "WebhookRoute",
    "WithReason",
    "__version__",
    "authenticate",
    "bearer_tokens",
    "bounded_body",
    "credential",
    "errors",
    "examples_in",
    "fingerprint",
    "inbound_queue_name",
    "jwk_thumbprint",
    "load_assignments",
    "mapping_failure",
    "metrics",
    "outcome_json",
    "payloads",
    "refuse",
    "refuse_published",
    "retrying",
    "secret_fingerprint",
    "utcnow",
    "validate_coi",
    "validate_din",
    "webhook_router",
]
