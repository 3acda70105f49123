"""OAuth2 client credentials, SMART Backend Services style: a site's backend signs a JWT assertion
with its private key (public key in the site's FHIR profile), gets a short bearer token back.

Assertion checks: alg RS384/ES384, key by `kid`, iss == sub == client_id, aud == the token URL,
exp at most five minutes ahead, jti never seen before (per process: see docs/fhir.md).
"""

from __future__ import annotations

import os
import re
import secrets
import time
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

import jwt

from adapters.fhir.profile import OAuthClient, all_profiles
from gateway.errors import ConfigError, NotAuthenticated
from gateway.settings import Settings

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ALGORITHMS = ["RS384", "ES384"]
ISSUER = "urn:cgt:gateway:fhir"
SECRET_ENV = "CGT_FHIR_TOKEN_SECRET"  # noqa: S105 (the name of the variable, not a secret)
MAX_ASSERTION_LIFETIME = 300
_SCOPE = re.compile(r"^system/(\*|[A-Za-z]+)\.(\*|read|write|[cruds]+)$")


class OAuthError(Exception):
    """An RFC 6749 §5.2 error answer."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error, self.description, self.status = error, description, status

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


@dataclass(frozen=True)
class Grant:
    partner: str
    client_id: str
    scopes: frozenset[str]


def check_token_secret(settings: Settings) -> None:
    production = settings.env == "production"
    if production and not os.environ.get(SECRET_ENV) and any(p.oauth.clients for p in all_profiles()):
        raise ConfigError(f"{SECRET_ENV} must be set to issue FHIR bearer tokens in production")


@cache
def _process_secret() -> str:
    # Without CGT_FHIR_TOKEN_SECRET, tokens hold for this process only (development and tests).
    return os.environ.get(SECRET_ENV) or secrets.token_urlsafe(32)


def permits(scopes: frozenset[str] | None, resource_type: str, access: Literal["read", "write"]) -> bool:
    """SMART system scopes, v1 (`system/Task.read`) and v2 (`system/Task.rs`). None: an API key."""
    if scopes is None:
        return True
    letters = {"read": set("rs"), "write": set("cu")}[access]
    for scope in scopes:
        match = _SCOPE.match(scope)
        if not match or match[1] not in ("*", resource_type):
            continue
        if match[2] in ("*", access) or (len(match[2]) <= 5 and letters & set(match[2])):
            return True
    return False


class TokenService:
    def __init__(self, secret: str, clients: dict[str, tuple[str, OAuthClient]], lifetime: int = 300) -> None:
        self.secret = secret
        self.clients = clients  # client_id -> (partner id, client)
        self.lifetime = lifetime
        self._seen: dict[str, float] = {}  # jti -> when it may be forgotten

    def issue(self, form: dict[str, str], token_url: str, now: float | None = None) -> dict[str, Any]:
        now = time.time() if now is None else now
        if form.get("grant_type") != "client_credentials":
            raise OAuthError("unsupported_grant_type", "grant_type must be client_credentials")
        if form.get("client_assertion_type") != ASSERTION_TYPE or not form.get("client_assertion"):
            raise OAuthError("invalid_request", f"a client_assertion of type {ASSERTION_TYPE} is required")
        partner, client, claims = self._verify_assertion(form["client_assertion"], token_url, now)
        requested = set((form.get("scope") or "").split())
        granted = frozenset(requested & set(client.scopes))
        if not granted:
            raise OAuthError("invalid_scope", f"grantable scopes: {' '.join(client.scopes)}")
        self._seen[str(claims["jti"])] = float(claims["exp"]) + 60
        token = jwt.encode(
            {
                "iss": ISSUER,
                "aud": ISSUER,
                "sub": partner,
                "client_id": client.client_id,
                "scope": " ".join(sorted(granted)),
                "iat": int(now),
                "exp": int(now) + self.lifetime,
                "jti": secrets.token_urlsafe(16),
            },
            self.secret,
            algorithm="HS256",
        )
        return {
            "access_token": token,
            "token_type": "bearer",
            "expires_in": self.lifetime,
            "scope": " ".join(sorted(granted)),
        }

    def _verify_assertion(
        self, assertion: str, token_url: str, now: float
    ) -> tuple[str, OAuthClient, dict[str, Any]]:
        invalid = OAuthError("invalid_client", "the client assertion is not valid", 401)
        try:
            header = jwt.get_unverified_header(assertion)
            unverified = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise invalid from None
        found = self.clients.get(str(unverified.get("iss")))
        if found is None or header.get("alg") not in ALGORITHMS:
            raise invalid
        partner, client = found
        keys = [
            k for k in client.jwks.get("keys", []) if not header.get("kid") or k.get("kid") == header["kid"]
        ]
        for key in keys:
            try:
                claims: dict[str, Any] = jwt.decode(
                    assertion,
                    jwt.PyJWK(key).key,
                    algorithms=ALGORITHMS,
                    audience=token_url,
                    issuer=client.client_id,
                    options={"require": ["iss", "sub", "aud", "exp", "jti"]},
                    leeway=30,
                )
            except jwt.PyJWTError:
                continue
            if claims["sub"] != client.client_id or float(claims["exp"]) > now + MAX_ASSERTION_LIFETIME + 30:
                raise invalid
            self._forget(now)
            if str(claims["jti"]) in self._seen:
                raise OAuthError("invalid_client", "this client assertion was used before", 401)
            return partner, client, claims
        raise invalid

    def _forget(self, now: float) -> None:
        for jti in [j for j, until in self._seen.items() if until < now]:
            del self._seen[jti]

    def verify(self, token: str) -> Grant:
        try:
            claims = jwt.decode(token, self.secret, algorithms=["HS256"], audience=ISSUER, issuer=ISSUER)
        except jwt.PyJWTError:
            raise NotAuthenticated("the bearer token is not valid or has expired") from None
        return Grant(str(claims["sub"]), str(claims["client_id"]), frozenset(str(claims["scope"]).split()))


@cache
def token_service() -> TokenService:
    clients = {c.client_id: (p.partner, c) for p in all_profiles() for c in p.oauth.clients}
    lifetimes = [p.oauth.token_lifetime_seconds for p in all_profiles()] or [300]
    return TokenService(_process_secret(), clients, min(lifetimes))
