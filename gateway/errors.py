"""The gateway's exception tree: each class says what happens next to the message.

    GatewayError                      public_message (PHI-free) + detail (internal, for audit)
    ├── RejectedMessage               the sender gets an error in its own dialect; raw message kept
    │   ├── MalformedMessage          bytes that do not parse (HL7 ACK AR/CR, HTTP 400)
    │   │   └── TooLarge              a body or frame over the size limit (HTTP 413)
    │   ├── UnsupportedMessage        parses, but the gateway does not take this type (AR, 422)
    │   ├── MappingError              parses, but cannot be mapped to a canonical command (AE, 422)
    │   ├── ContractViolation         canonical data that breaks the contract (AE, 422)
    │   ├── IllegalTransition         the order's lifecycle refuses the event (AE, 409)
    │   │   └── ReleaseRefused        a release before every required QC test passed, or with
    │   │                             an open blocking deviation (the tests named; AE, 409)
    │   └── DuplicateKey              a used message id on a message that says something else
    │                                 (AR/CR with table 0357 code 205, 409)
    ├── IdentityProblem               quarantined for an operator; nothing applied
    │   ├── UnknownIdentity           no identifier resolves to an order
    │   ├── ConflictingIdentities     identifiers name different orders or patients
    │   ├── AlreadyBound              a new binding would steal an identifier from another order
    │   ├── DemographicMismatch       name / birth date disagree with the order's patient
    │   ├── IdentityChange            an update or merge would change who an open order's patient
    │   │                             is (birth date, sex, name): a person reviews it first
    │   └── ReceiptMismatch           the bag the manufacturer scanned is not the order's collection
    │                                 (COI, DIN, its check character, a missing scan): severity
    │                                 critical, and the orders it names are put on hold
    ├── NotOurs                       traffic that is not the gateway's business (a lab order, the
    │                                 ADT of an unknown patient): acknowledged positively (AA, 200),
    │                                 not stored, counted by partner and reason
    ├── NotAuthenticated              unknown or badly authenticated partner (AR, 401)
    ├── NotPermitted                  a known partner touching what is not its own (AR, 403)
    ├── NotFound                      a query for something that is not there (404)
    ├── TransientError                the sender or the broker retries (AE, 503, nack + requeue)
    │   └── ConcurrentChange          another transaction changed what this one read: run it again
    └── ConfigError                   the gateway refuses to start

Foreign exceptions (SQLAlchemy, aiormq, httpx, parsers) are translated to the most specific of
these at the edge that meets them; the service layer never sees them.
"""

from __future__ import annotations

from enum import StrEnum


class GatewayError(Exception):
    """Base class. `public_message` may be shown to a partner; `detail` stays inside."""

    public_message: str = "the message could not be processed"
    http_status: int = 500

    def __init__(self, public_message: str | None = None, *, detail: str | None = None) -> None:
        if public_message is not None:
            self.public_message = public_message
        self.detail = detail or self.public_message
        super().__init__(self.public_message)


class RejectedMessage(GatewayError):
    """The message is refused; the sender must correct it."""

    http_status = 422

    def __init__(
        self,
        public_message: str | None = None,
        *,
        detail: str | None = None,
        location: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(public_message, detail=detail)
        # Where in the message the problem is, in the dialect's own notation
        # (HL7 "PID-3", FHIR path "Bundle.entry[0].resource.subject", JSON pointer "/data/coi").
        self.location = location
        # Dialect-specific error code, e.g. HL7 table 0357 "101".
        self.code = code


class MalformedMessage(RejectedMessage):
    public_message = "the message could not be parsed"
    http_status = 400


class TooLarge(MalformedMessage):
    public_message = "the message is larger than the gateway accepts"
    http_status = 413


class UnsupportedMessage(RejectedMessage):
    public_message = "the message type is not supported"


class MappingError(RejectedMessage):
    public_message = "the message could not be mapped to a canonical command"


class ContractViolation(RejectedMessage):
    public_message = "the message breaks the canonical contract"


class IllegalTransition(RejectedMessage):
    public_message = "the order's lifecycle does not allow this event now"
    http_status = 409


class ReleaseRefused(IllegalTransition):
    """`manufacturing.released` before the product's required QC tests all passed (or with an
    open blocking deviation): the public message names the tests, never a value."""

    public_message = "the product may not be released yet"


class DuplicateKey(RejectedMessage):
    """The sender's message id already names another message: the first keeps it (and its
    answer); this one is kept raw and refused, and must be sent again under an id of its own."""

    public_message = "the message id was used before for other content; send it under a new id"
    http_status = 409

    def __init__(self, *, detail: str | None = None) -> None:
        super().__init__(detail=detail, code="205")


class QuarantineReason(StrEnum):
    unknown_identity = "unknown_identity"
    conflicting_identities = "conflicting_identities"
    already_bound = "already_bound"
    demographic_mismatch = "demographic_mismatch"
    identity_change = "identity_change"
    disagreeing_merge = "disagreeing_merge"
    receipt_mismatch = "receipt_mismatch"


class IdentityProblem(GatewayError):
    """The message does not reconcile with the chain of identity: quarantine it."""

    reason: QuarantineReason
    http_status = 202  # accepted for review: stored, not applied
    severity = "major"  # as published on identity.mismatch


class UnknownIdentity(IdentityProblem):
    reason = QuarantineReason.unknown_identity
    public_message = "no identifier in the message resolves to a known order"


class ConflictingIdentities(IdentityProblem):
    reason = QuarantineReason.conflicting_identities
    public_message = "identifiers in the message name different orders"


class AlreadyBound(IdentityProblem):
    reason = QuarantineReason.already_bound
    public_message = "an identifier in the message is already bound to another order"


class DemographicMismatch(IdentityProblem):
    reason = QuarantineReason.demographic_mismatch
    public_message = "patient demographics disagree with the chain of identity"


class IdentityChange(IdentityProblem):
    reason = QuarantineReason.identity_change
    public_message = "the update changes identity-defining demographics of a patient with an open order"


class DisagreeingMerge(IdentityChange):
    reason = QuarantineReason.disagreeing_merge
    public_message = "the merge joins patient records whose demographics disagree"


class ReceiptMismatch(IdentityProblem):
    """The most dangerous event of the chain: possibly another patient's cells at the manufacturer.
    `order_ids` are the orders the receipt names (by its identifiers or its scans) that the sender
    may act on: each is put on hold in the same transaction as the quarantine."""

    reason = QuarantineReason.receipt_mismatch
    severity = "critical"
    public_message = "the material scanned at receipt does not match the order's collection"

    def __init__(self, *, detail: str, order_ids: tuple[str, ...] = ()) -> None:
        super().__init__(detail=detail)
        self.order_ids = order_ids


class NotOurs(GatewayError):
    """Not the gateway's business: an interface engine sends every order and every ADT, and an
    error answer would stall its queue. Acknowledged as accepted, not stored, counted by `reason`
    (a short PHI-free slug such as "not_a_therapy_order")."""

    public_message = "not for this gateway: acknowledged and ignored"
    http_status = 200

    def __init__(self, reason: str, public_message: str | None = None, *, detail: str | None = None) -> None:
        super().__init__(public_message, detail=detail)
        self.reason = reason


class NotAuthenticated(GatewayError):
    public_message = "the partner could not be authenticated"
    http_status = 401


class Replayed(NotAuthenticated):
    """A signed attempt taken before, while its signature is still fresh: a copy, not a resend."""

    public_message = "this signed request was received before"


class NotPermitted(GatewayError):
    public_message = "the partner may not act on this resource"
    http_status = 403


class NotFound(GatewayError):
    public_message = "not found"
    http_status = 404


class TransientError(GatewayError):
    public_message = "temporarily unable to process the message; retry later"
    http_status = 503


class ConcurrentChange(TransientError):
    """Raised at the store's edge for a unique key or an order version another transaction took
    first; the intake runs the message again, and reconciliation sees what the other one did."""

    public_message = "what the message touches changed concurrently; retry later"


class ConfigError(GatewayError):
    public_message = "the gateway's configuration is invalid"
