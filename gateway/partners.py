"""The partner registry: who may talk to the gateway, how they prove it, and what they may touch."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from gateway.canonical.command import Command
from gateway.canonical.ids import COI_NAMESPACE, ExternalRef
from gateway.canonical.parties import PartnerKind
from gateway.canonical.payloads import ShipmentBooked
from gateway.credentials import check_cgt_signature, credential
from gateway.demo_credentials import refuse_published, secret_fingerprint
from gateway.errors import ConfigError, NotAuthenticated, NotPermitted

__all__ = ["Partner", "PartnerKind", "Partners", "load_partners"]

# Namespaces any partner may carry: they name the therapy, not a partner's own records.
SHARED_NAMESPACES = frozenset({COI_NAMESPACE, "isbt128:din", "gs1:sscc"})


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SecretRef(_Model):
    """A secret read from the environment; a demo partner may fall back to a public default."""

    env: str = Field(pattern=r"^[A-Z][A-Z0-9_]*$")
    demo_default: str | None = None

    def resolve(self, production: bool) -> str | None:
        value = os.environ.get(self.env)
        if value:
            return value
        return None if production else self.demo_default


class MllpAuth(_Model):
    sending_application: str
    sending_facility: str
    sources: tuple[str, ...] = ("127.0.0.0/8", "::1/128")

    def admits(self, address: str) -> bool:
        ip = ipaddress.ip_address(address)
        return any(ip in ipaddress.ip_network(net, strict=False) for net in self.sources)


# An API key's SHA-256 as 64 hex digits (compared, and checked against the demo list, in lowercase).
ApiKeyHash = Annotated[str, Field(pattern=r"^[0-9a-fA-F]{64}$"), AfterValidator(str.lower)]


class SigningSecrets(_Model):
    """The secrets a signed-webhook scheme checks against: two while one is being rotated out."""

    secrets: tuple[SecretRef, ...] = Field(min_length=1, max_length=2)


class PartnerAuth(_Model):
    api_key_sha256: tuple[ApiKeyHash, ...] = ()
    hmac_secret: SecretRef | None = None
    mllp: MllpAuth | None = None
    standard_webhooks: SigningSecrets | None = None  # webhook-id/-timestamp/-signature, whsec_ secrets
    header_hmac: SigningSecrets | None = None  # a vendor's own signature header (gateway.sdk.signatures)

    def signing(self) -> dict[str, tuple[SecretRef, ...]]:
        """Secret references by signature scheme (the names gateway.sdk.signatures's schemes use)."""
        refs = {
            "cgt-hmac": (self.hmac_secret,) if self.hmac_secret else (),
            "standard-webhooks": self.standard_webhooks.secrets if self.standard_webhooks else (),
            "header-hmac": self.header_hmac.secrets if self.header_hmac else (),
        }
        return {scheme: found for scheme, found in refs.items() if found}


class Partner(_Model):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=100)
    kind: PartnerKind
    name: str | None = None
    adapter: str
    dialects: tuple[str, ...] = Field(
        default=(), description="further adapters it may send with (a courier's tracking, telemetry, EPCIS)"
    )
    profile: str | None = None
    demo: bool = False
    auth: PartnerAuth = PartnerAuth()

    def speaks(self, adapter: str) -> bool:
        """May this partner's messages come through `adapter`? Its own, or one of its dialects."""
        return adapter == self.adapter or adapter in self.dialects

    @property
    def own_namespace(self) -> str:
        return f"{self.kind.namespace_prefix}:{self.id}:"

    def check_commands(self, commands: list[Command]) -> None:
        """A partner carries only shared identifiers and identifiers it issued itself, and the
        tracking number of a shipment it books with a courier (`booked_tracking`)."""
        for command in commands:
            booked = booked_tracking(command)
            for ref in command.refs:
                if (
                    ref != booked
                    and ref.namespace not in SHARED_NAMESPACES
                    and not ref.namespace.startswith(self.own_namespace)
                ):
                    raise NotPermitted(
                        f"identifier namespace {ref.namespace} is not this partner's",
                        detail=f"{self.id} used {ref.namespace}",
                    )


def booked_tracking(command: Command) -> ExternalRef | None:
    """The courier's tracking number a `shipment.booked` binds, when it declares one: the shipper
    (a site, a manufacturer, the gateway booking on its behalf) has it from the courier, and binds
    it so that the courier's own messages naming it find the order. Exactly the courier and number
    the shipment names, nothing else of the courier's."""
    payload = command.payload
    if not isinstance(payload, ShipmentBooked):
        return None
    shipment = payload.shipment
    if shipment.courier is None or shipment.tracking_number is None:
        return None
    namespace = f"{PartnerKind.courier.namespace_prefix}:{shipment.courier}:tracking"
    return ExternalRef(namespace=namespace, value=shipment.tracking_number)


class PartnerFile(_Model):
    partners: tuple[Partner, ...]

    @model_validator(mode="after")
    def _unique(self) -> PartnerFile:
        ids = [p.id for p in self.partners]
        if len(ids) != len(set(ids)):
            raise ValueError("partner ids must be unique")
        return self


class Partners:
    """Look partners up by id or by credential; comparisons of secrets are constant-time."""

    def __init__(self, partners: tuple[Partner, ...], *, production: bool) -> None:
        self.production = production
        self._by_id = {p.id: p for p in partners}
        self._secrets = {
            p.id: s
            for p in partners
            if p.auth.hmac_secret and (s := p.auth.hmac_secret.resolve(production)) is not None
        }
        self._signing = {
            (p.id, scheme): tuple(s for ref in refs if (s := ref.resolve(production)) is not None)
            for p in partners
            for scheme, refs in p.auth.signing().items()
        }

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._by_id.values())

    def get(self, partner_id: str) -> Partner:
        try:
            return self._by_id[partner_id]
        except KeyError:
            raise NotAuthenticated(detail=f"unknown partner {partner_id!r}") from None

    def signing_secrets(self, partner: Partner, scheme: str) -> tuple[str, ...]:
        """The partner's live secrets for a signature scheme (none: it does not sign that way);
        for `api-key`, the SHA-256 of its API keys."""
        if scheme == "api-key":
            return partner.auth.api_key_sha256
        return self._signing.get((partner.id, scheme), ())

    def by_api_key(self, key: str | None) -> Partner:
        given = credential(key, "API key")
        if given is None:
            raise NotAuthenticated("an API key is required (X-API-Key)")
        digest = hashlib.sha256(given).hexdigest()
        found: Partner | None = None
        for partner in self._by_id.values():
            for known in partner.auth.api_key_sha256:
                if hmac.compare_digest(digest, known):
                    found = partner
        if found is None:
            raise NotAuthenticated(detail="no partner has this API key")
        return found

    def verify_hmac(
        self,
        partner_id: str,
        body: bytes,
        timestamp: str | None,
        signature: str | None,
        *,
        tolerance_s: int = 300,
        now: float | None = None,
    ) -> Partner:
        """Check `sha256=hex(HMAC-SHA256(secret, f"{timestamp}.{body}"))` and that the timestamp is
        fresh. Only that form is taken: a bare hex digest or another prefix is refused."""
        given = credential(signature, "signature")
        stamp = credential(timestamp, "signature timestamp")
        partner = self.get(partner_id)
        secret = self._secrets.get(partner.id)
        if secret is None or stamp is None or given is None:
            raise NotAuthenticated("a signed request is required", detail=f"{partner_id}: no signature")
        check_cgt_signature(
            (secret,),
            body,
            stamp,
            given,
            tolerance_s=tolerance_s,
            now=now if now is not None else time.time(),
            who=partner_id,
        )
        return partner

    def by_mllp(self, sending_application: str, sending_facility: str, address: str) -> Partner:
        for partner in self._by_id.values():
            mllp = partner.auth.mllp
            if (
                mllp
                and mllp.sending_application == sending_application
                and mllp.sending_facility == sending_facility
                and mllp.admits(address)
            ):
                return partner
        raise NotAuthenticated("unknown sender", detail="no partner matches MSH-3/MSH-4 and address")


def credentials_of(partners: Iterable[Partner]) -> Iterator[tuple[str, str | None]]:
    """Where each partner credential is configured, and its fingerprint (production's values)."""
    for partner in partners:
        for i, digest in enumerate(partner.auth.api_key_sha256):
            yield f"partner {partner.id}: auth.api_key_sha256[{i}]", digest
        ref = partner.auth.hmac_secret
        secret = ref.resolve(production=True) if ref else None
        if ref and secret:
            yield f"partner {partner.id}: auth.hmac_secret ({ref.env})", secret_fingerprint(secret)
        for field in ("standard_webhooks", "header_hmac"):
            signing: SigningSecrets | None = getattr(partner.auth, field)
            for i, ref in enumerate(signing.secrets if signing else ()):
                if secret := ref.resolve(production=True):
                    yield (
                        f"partner {partner.id}: auth.{field}.secrets[{i}] ({ref.env})",
                        secret_fingerprint(secret),
                    )


def load_partners(path: Path, *, env: Literal["development", "test", "production"]) -> Partners:
    production = env == "production"
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        parsed = PartnerFile.model_validate(document)
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise ConfigError(f"partners file {path}: {exc}") from exc
    if production:
        demo = [p.id for p in parsed.partners if p.demo]
        if demo:
            raise ConfigError(
                f"demo partners are refused in production: {', '.join(demo)}; "
                "set CGT_PARTNERS_FILE to your own partner file"
            )
        refuse_published(credentials_of(parsed.partners))
        for partner in parsed.partners:
            for refs in partner.auth.signing().values():
                for ref in refs:
                    if not os.environ.get(ref.env):
                        raise ConfigError(f"partner {partner.id}: secret {ref.env} is not set")
    return Partners(parsed.partners, production=production)
