"""The published demo credentials, as fingerprints, and the production start-up check against them.

Production refuses to start when any configured credential equals one the project publishes for
its demo, whatever the partner file says about itself (`demo: true` or not). Only fingerprints are
kept and compared: the SHA-256 of a key or secret (hex), the RFC 7638 SHA-256 thumbprint of a
public JWK (base64url). Errors name where the credential is configured, never its value.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from gateway.errors import ConfigError

# fingerprint -> what it is. Add to this list whenever a demo credential is published.
PUBLISHED: dict[str, str] = {
    "fa490b4da00a55598dbb3e4e3d9918e91bc90da7db1e2845822f6d37eb2cb254": "the demo hospital's API key",
    "c23faafb0ae6a18ca97f57a03900f4f18177d6a11aa24dd1041d3cf1c78c69d6": "the demo manufacturer's API key",
    "b21ba3bcfb8ad665405ae57371b7f088e32c81e99d5ec88c869dffc5de89e3b9": "the demo courier's HMAC secret",
    "4a7c449d22a99026fac16a47621ff68792ff589f72334ea3950ce186a5615e9a": "the demo operator key",
    "6f25d1859be7dd331603e7e02ebaea629c287cdd23d458976d38a4a796c4693b": "the demo hospital's push secret",
    "h_4v1sotNRHrJCwMDx1OEh7u8yFz9h7O4-hobBdFbqc": "the demo hospital backend's FHIR client key pair",
    "41370b8f439e13a21af129f4417cf1dd0c646957b0c5f859ece075ef8d3b5e72": "the demo lab courier's webhook secret",
    "d3d7d4a235fef4f3ad986a76c6a154fece4789fe06b4c6499f20ab172a507078": "the demo operator user's password",
    "4b520f2815530c2376e0b97d8744410d86201a7980f077698de8191cba3d5c15": "the demo QA user's password",
    "68c0afa1612503da201ca62ab92e471727ed6f7fdffb4d40996f7f56838fb150": "the demo viewer user's password",
    "de4df3f2518cfddb2dccc3aeea40831e79e8754c358b91d8c63bcbd931695d61": "the demo courier's webhook secret",
}

# RFC 7638 §3.2: the members that make up a key's thumbprint, by key type.
_THUMBPRINT_MEMBERS = {"EC": ("crv", "kty", "x", "y"), "RSA": ("e", "kty", "n"), "OKP": ("crv", "kty", "x")}


def secret_fingerprint(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def jwk_thumbprint(jwk: Mapping[str, Any]) -> str | None:
    """RFC 7638 SHA-256 thumbprint, base64url; None for a key type without one here."""
    members = _THUMBPRINT_MEMBERS.get(str(jwk.get("kty")))
    if members is None or any(m not in jwk for m in members):
        return None
    canonical = json.dumps({m: jwk[m] for m in members}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()


def refuse_published(configured: Iterable[tuple[str, str | None]]) -> None:
    """`configured`: (where the credential is configured, its fingerprint). ConfigError naming
    every one that is a published demo credential."""
    found = [f"{where} is {PUBLISHED[mark]}" for where, mark in configured if mark in PUBLISHED]
    if found:
        raise ConfigError(
            "production refuses published demo credentials: "
            + "; ".join(found)
            + ". Replace them with credentials of your own."
        )
