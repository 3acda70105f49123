"""OAuth2 client credentials, SMART Backend Services style: a site's backend signs a JWT assertion
with its private key (public key in the site's FHIR profile), gets a short bearer token back.

Assertion checks: alg RS384/ES384, key by `kid`, iss == sub == client_id, aud == the token URL,
exp at most five minutes ahead, jti never seen before. Both the replay memory and the token
signing key are the gateway's (the Secrets port: in its database), so they hold across restarts
and replicas (docs/fhir.md).
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import time
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import jwt

from adapters.fhir.profile import OAuthClient, all_profiles, load_profiles
from gateway.sdk import (
    ConfigError,
    NotAuthenticated,
    Secrets,
    Settings,
    TransientError,
    jwk_thumbprint,
    refuse_published,
    secret_fingerprint,
)

log = logging.getLogger(__name__)
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ALGORITHMS = ["RS384", "ES384"]
ISSUER = "urn:cgt:gateway:fhir"
SECRET_ENV = "CGT_FHIR_TOKEN_SECRET"  # noqa: S105 (the name of the variable, not a secret)
SECRET_NAME = "fhir-token-signing"  # noqa: S105 (the name of the gateway's own secret)
MIN_SECRET_LENGTH = 32
MAX_ASSERTION_LIFETIME = 300
MAX_JTI = 200  # characters, the column's width
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
    """Production signs tokens with a key from the environment, outside the database."""
    if settings.env != "production" or not any(p.oauth.clients for p in load_profiles(settings).all()):
        return
    secret = os.environ.get(SECRET_ENV, "")
    if len(secret) < MIN_SECRET_LENGTH:
        raise ConfigError(
            f"{SECRET_ENV} must be set, at least {MIN_SECRET_LENGTH} characters, "
            "to issue FHIR bearer tokens in production"
        )


def fhir_credentials() -> Iterator[tuple[str, str | None]]:
    """Where each FHIR credential is configured, and its fingerprint (production's values)."""
    for profile in all_profiles():
        for client in profile.oauth.clients:
            for i, key in enumerate(client.jwks.get("keys", [])):
                name = key.get("kid") or str(i)
                yield (
                    f"FHIR profile {profile.partner}: client {client.client_id} key {name}",
                    jwk_thumbprint(key),
                )
        push = profile.notifications
        secret = push.secret.resolve(production=True) if push else None
        if push and secret:
            yield (
                f"FHIR profile {profile.partner}: notifications secret ({push.secret.env})",
                secret_fingerprint(secret),
            )


def check_credentials(settings: Settings) -> None:
    """Production refuses a published demo key pair or secret in any FHIR profile."""
    if settings.env == "production":
        load_profiles(settings)
        refuse_published(fhir_credentials())


async def signing_secret(store: Secrets) -> str:
    """The environment's key; else the gateway's own, made by the first replica that needed it."""
    return os.environ.get(SECRET_ENV) or await store.secret(SECRET_NAME)


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
    def __init__(
        self,
        store: Secrets,
        secret: str | None,
        clients: dict[str, tuple[str, OAuthClient]],
        lifetime: int = 300,
    ) -> None:
        self.store = store
        self._secret = secret
        self.clients = clients  # client_id -> (partner id, client)
        self.lifetime = lifetime

    async def secret(self) -> str:
        """The signing key, read (or made) when first needed if the database could not give it at
        start-up: a gateway whose database is briefly unwritable still starts and says so."""
        if self._secret is None:
            self._secret = await signing_secret(self.store)
        return self._secret

    async def issue(self, form: dict[str, str], token_url: str, now: float | None = None) -> dict[str, Any]:
        now = time.time() if now is None else now
        if form.get("grant_type") != "client_credentials":
            raise OAuthError("unsupported_grant_type", "grant_type must be client_credentials")
        if form.get("client_assertion_type") != ASSERTION_TYPE or not form.get("client_assertion"):
            raise OAuthError("invalid_request", f"a client_assertion of type {ASSERTION_TYPE} is required")
        partner, client, claims = self._verify_assertion(form["client_assertion"], token_url, now)
        if not await self._first_use(client.client_id, str(claims["jti"]), float(claims["exp"]) + 60):
            raise OAuthError("invalid_client", "this client assertion was used before", 401)
        requested = set((form.get("scope") or "").split())
        granted = frozenset(requested & set(client.scopes))
        if not granted:
            raise OAuthError("invalid_scope", f"grantable scopes: {' '.join(client.scopes)}")
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
            await self.secret(),
            algorithm="HS256",
        )
        return {
            "access_token": token,
            "token_type": "bearer",
            "expires_in": self.lifetime,
            "scope": " ".join(sorted(granted)),
        }

    async def _first_use(self, client_id: str, jti: str, until: float) -> bool:
        """Take the assertion's jti for good; False when any replica took it before."""
        try:
            return await self.store.first_use(client_id, jti, datetime.fromtimestamp(until, UTC))
        except TransientError as exc:
            raise OAuthError("temporarily_unavailable", "try again shortly", 503) from exc

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
            if not 0 < len(str(claims["jti"])) <= MAX_JTI:
                raise invalid
            return partner, client, claims
        raise invalid

    async def verify(self, token: str) -> Grant:
        secret = await self.secret()
        try:
            claims = jwt.decode(token, secret, algorithms=["HS256"], audience=ISSUER, issuer=ISSUER)
        except jwt.PyJWTError:
            raise NotAuthenticated("the bearer token is not valid or has expired") from None
        return Grant(str(claims["sub"]), str(claims["client_id"]), frozenset(str(claims["scope"]).split()))


# The running token service of each gateway (tests run several in one process), by its secrets.
_RUNNING: weakref.WeakKeyDictionary[Secrets, TokenService] = weakref.WeakKeyDictionary()


async def start_token_service(store: Secrets) -> TokenService:
    clients = {c.client_id: (p.partner, c) for p in all_profiles() for c in p.oauth.clients}
    lifetimes = [p.oauth.token_lifetime_seconds for p in all_profiles()] or [300]
    try:
        secret: str | None = await signing_secret(store)
    except TransientError:
        log.warning("FHIR token key not available at start-up (database); read when first needed")
        secret = None
    service = TokenService(store, secret, clients, min(lifetimes))
    _RUNNING[store] = service
    return service


def token_service_of(store: Secrets) -> TokenService:
    try:
        return _RUNNING[store]
    except KeyError:
        raise TransientError("the token service is not running yet") from None
