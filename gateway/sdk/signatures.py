"""Signature schemes behind one small interface, for signed webhooks (gateway.sdk.webhooks).

    SignatureScheme.verify(headers, body, secrets, now) -> Verified, or raise NotAuthenticated

    CgtHmac           X-CGT-Timestamp + X-CGT-Signature: sha256=<hex> over "timestamp.body"
    StandardWebhooks  webhook-id / webhook-timestamp / webhook-signature: v1,<base64> (several,
                      space-separated) over "id.timestamp.body"; secrets whsec_<base64>
    HeaderHmac        a vendor's own header, e.g. EasyPost's X-Hmac-Signature: hmac-sha256-hex=<hex>
                      over the body alone, the secret NFKD-normalised first
    ApiKey            no signature: `Authorization: Bearer <key>` or `X-API-Key`, compared with the
                      partner's `api_key_sha256`

A partner's secrets for a scheme come from its `auth` in the partner file (`hmac_secret`,
`standard_webhooks`, `header_hmac`, `api_key_sha256`; values from the environment); two live
secrets let a partner rotate without a gap.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from gateway.credentials import check_cgt_signature, credential
from gateway.errors import ConfigError, NotAuthenticated

TOLERANCE_S = 300  # Standard Webhooks' default, and the X-CGT scheme's


@dataclass(frozen=True)
class Verified:
    """A request whose signature holds. `replay_key`: what a replay of this very attempt would
    repeat (None: the scheme signs nothing that ages, so a copy cannot be told from a resend);
    `fresh_until`: the Unix time after which its signature is refused as stale anyway."""

    replay_key: str | None = None
    fresh_until: float | None = None


class SignatureScheme(Protocol):
    @property
    def name(self) -> str:
        """Which of a partner's secrets the scheme takes (see Partners.signing_secrets)."""
        ...

    def verify(
        self, headers: Mapping[str, str], body: bytes, secrets: Sequence[str], now: float
    ) -> Verified: ...


def _header(headers: Mapping[str, str], name: str) -> bytes | None:
    value = headers.get(name)
    if value is None:
        value = next((v for k, v in headers.items() if k.lower() == name), None)
    return credential(value, name)


def _stamp(given: bytes, now: float, tolerance_s: int) -> int:
    if not given.isdigit():
        raise NotAuthenticated("the signature timestamp is not a Unix time")
    stamp = int(given)
    if abs(now - stamp) > tolerance_s:
        raise NotAuthenticated("the signature timestamp is too old or in the future")
    return stamp


@dataclass(frozen=True)
class CgtHmac:
    """The gateway's own scheme (the same check as `/api/messages`)."""

    tolerance_s: int = TOLERANCE_S
    name: str = "cgt-hmac"

    def verify(self, headers: Mapping[str, str], body: bytes, secrets: Sequence[str], now: float) -> Verified:
        stamp = _header(headers, "x-cgt-timestamp")
        given = _header(headers, "x-cgt-signature")
        if stamp is None or given is None:
            raise NotAuthenticated("a signed request is required (X-CGT-Timestamp, X-CGT-Signature)")
        digest = check_cgt_signature(secrets, body, stamp, given, tolerance_s=self.tolerance_s, now=now)
        return Verified(f"{stamp.decode()}.{digest}", int(stamp) + self.tolerance_s)


def webhook_key(secret: str) -> bytes:
    """A Standard Webhooks secret's HMAC key: `whsec_` (optional) and base64."""
    try:
        return base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError("a Standard Webhooks secret must be whsec_ and base64") from None


@dataclass(frozen=True)
class StandardWebhooks:
    """Standard Webhooks 1.0, symmetric (`v1`). Other versions in the header (`v1a`) are passed
    over: only a v1 signature by one of the partner's secrets admits the request."""

    tolerance_s: int = TOLERANCE_S
    name: str = "standard-webhooks"

    def sign(self, secret: str, message_id: str, timestamp: int, body: bytes) -> str:
        """The `v1,<base64>` signature a sender puts in `webhook-signature`."""
        signed = f"{message_id}.{timestamp}.".encode() + body
        digest = hmac.new(webhook_key(secret), signed, hashlib.sha256).digest()
        return "v1," + base64.b64encode(digest).decode()

    def verify(self, headers: Mapping[str, str], body: bytes, secrets: Sequence[str], now: float) -> Verified:
        message_id = _header(headers, "webhook-id")
        given_stamp = _header(headers, "webhook-timestamp")
        given = _header(headers, "webhook-signature")
        if message_id is None or given_stamp is None or given is None:
            raise NotAuthenticated(
                "a signed request is required (webhook-id, webhook-timestamp, webhook-signature)"
            )
        if b"." in message_id:  # the id is part of the signed content: a dot could shift its parts
            raise NotAuthenticated("the webhook-id is malformed", detail="webhook-id with a dot")
        stamp = _stamp(given_stamp, now, self.tolerance_s)
        offered = [s.partition(",")[2].encode() for s in given.decode().split() if s.startswith("v1,")]
        matched = False
        for secret in secrets:  # every pair is compared: the time taken says nothing of which matched
            expected = self.sign(secret, message_id.decode(), stamp, body)[3:].encode()
            for signature in offered:
                matched |= hmac.compare_digest(expected, signature)
        if not matched:
            raise NotAuthenticated(detail="bad webhook-signature")
        # A sender's retry signs again with a new timestamp (and the same id, the idempotency
        # key): only a copy of this very attempt is a replay.
        return Verified(f"{message_id.decode()}.{stamp}", stamp + self.tolerance_s)


@dataclass(frozen=True)
class HeaderHmac:
    """A vendor's HMAC-SHA256 of the body in a header of its own, `prefix` + hex. EasyPost's
    (the default) signs no timestamp: a copy is not told from a resend, and the intake's
    idempotency on the event id answers it as a repeat."""

    header: str = "x-hmac-signature"
    prefix: str = "hmac-sha256-hex="
    normalise: bool = True  # EasyPost keys the HMAC with the secret's NFKD form, UTF-8
    name: str = "header-hmac"

    def verify(self, headers: Mapping[str, str], body: bytes, secrets: Sequence[str], now: float) -> Verified:
        given = _header(headers, self.header.lower())
        if given is None:
            raise NotAuthenticated(f"a signed request is required ({self.header})")
        matched = False
        for secret in secrets:
            key = unicodedata.normalize("NFKD", secret) if self.normalise else secret
            digest = hmac.new(key.encode("utf-8"), body, hashlib.sha256).hexdigest()
            matched |= hmac.compare_digest((self.prefix.lower() + digest).encode(), given.lower())
        if not matched:
            raise NotAuthenticated(detail=f"bad {self.header}")
        return Verified()


EASYPOST = HeaderHmac()


@dataclass(frozen=True)
class ApiKey:
    """A bearer key instead of a signature (`Authorization: Bearer <key>` or `X-API-Key`), checked
    against the SHA-256 of the partner's keys. Nothing ages: a copy is answered as a repeat by the
    intake's idempotency."""

    name: str = "api-key"

    def verify(self, headers: Mapping[str, str], body: bytes, secrets: Sequence[str], now: float) -> Verified:
        bearer = _header(headers, "authorization")
        given = bearer[7:] if bearer is not None and bearer[:7].lower() == b"bearer " else None
        given = given or _header(headers, "x-api-key")
        if not given:
            raise NotAuthenticated("an API key is required (Authorization: Bearer, or X-API-Key)")
        digest = hashlib.sha256(given).hexdigest().encode()
        matched = False
        for known in secrets:
            matched |= hmac.compare_digest(digest, known.lower().encode())
        if not matched:
            raise NotAuthenticated(detail="bad API key")
        return Verified()
