"""OAuth2 client credentials, SMART Backend Services style: a site's backend signs a JWT assertion
with its private key (public key in the site's FHIR profile), gets a short bearer token back.

Assertion checks: alg RS384/ES384, key by `kid`, iss == sub == client_id, aud == the token URL,
exp at most five minutes ahead, jti never seen before. Both the replay memory and the token
signing key live in the database, so they hold across restarts and replicas (docs/fhir.md).
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
from sqlalchemy import delete, insert, select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.fhir.profile import OAuthClient, all_profiles
from gateway.demo_credentials import jwk_thumbprint, refuse_published, secret_fingerprint
from gateway.errors import ConfigError, NotAuthenticated, TransientError
from gateway.settings import Settings
from gateway.store.tables import gateway_secrets, smart_assertions

log = logging.getLogger(__name__)
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ALGORITHMS = ["RS384", "ES384"]
ISSUER = "urn:cgt:gateway:fhir"
SECRET_ENV = "CGT_FHIR_TOKEN_SECRET"  # noqa: S105 (the name of the variable, not a secret)
SECRET_NAME = "fhir-token-signing"  # noqa: S105 (its row in gateway_secrets)
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
    if settings.env != "production" or not any(p.oauth.clients for p in all_profiles()):
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
        refuse_published(fhir_credentials())


async def signing_secret(engine: AsyncEngine) -> str:
    """The environment's key; else the one stored in the database, made by the first replica
    that needed it (a race between two is settled by the primary key: both read the winner's)."""
    configured = os.environ.get(SECRET_ENV)
    if configured:
        return configured
    chosen = select(gateway_secrets.c.secret).where(gateway_secrets.c.name == SECRET_NAME)
    try:
        async with engine.begin() as conn:
            stored = (await conn.execute(chosen)).scalar_one_or_none()
            if stored is not None:
                return str(stored)
        try:
            async with engine.begin() as conn:
                made = secrets.token_urlsafe(MIN_SECRET_LENGTH)
                row = {"name": SECRET_NAME, "secret": made, "created_at": datetime.now(UTC)}
                await conn.execute(insert(gateway_secrets).values(row))
                return made
        except IntegrityError:
            async with engine.connect() as conn:
                return str((await conn.execute(chosen)).scalar_one())
    except DBAPIError as exc:
        raise TransientError("the database is unavailable", detail=str(exc.orig)) from exc


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
        engine: AsyncEngine,
        secret: str | None,
        clients: dict[str, tuple[str, OAuthClient]],
        lifetime: int = 300,
    ) -> None:
        self.engine = engine
        self._secret = secret
        self.clients = clients  # client_id -> (partner id, client)
        self.lifetime = lifetime

    async def secret(self) -> str:
        """The signing key, read (or made) when first needed if the database could not give it at
        start-up: a gateway whose database is briefly unwritable still starts and says so."""
        if self._secret is None:
            self._secret = await signing_secret(self.engine)
        return self._secret

    async def issue(self, form: dict[str, str], token_url: str, now: float | None = None) -> dict[str, Any]:
        now = time.time() if now is None else now
        if form.get("grant_type") != "client_credentials":
            raise OAuthError("unsupported_grant_type", "grant_type must be client_credentials")
        if form.get("client_assertion_type") != ASSERTION_TYPE or not form.get("client_assertion"):
            raise OAuthError("invalid_request", f"a client_assertion of type {ASSERTION_TYPE} is required")
        partner, client, claims = self._verify_assertion(form["client_assertion"], token_url, now)
        if not await self._first_use(client.client_id, str(claims["jti"]), float(claims["exp"]) + 60, now):
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

    async def _first_use(self, client_id: str, jti: str, until: float, now: float) -> bool:
        """Take the assertion's jti for good; False when any replica took it before. Expired
        jtis are purged on the way: their assertions are refused by `exp` anyway."""
        try:
            async with self.engine.begin() as conn:
                expired = smart_assertions.c.expires_at < datetime.fromtimestamp(now, UTC)
                await conn.execute(delete(smart_assertions).where(expired))
                row = {"client_id": client_id, "jti": jti, "expires_at": datetime.fromtimestamp(until, UTC)}
                await conn.execute(insert(smart_assertions).values(row))
        except IntegrityError:
            return False
        except DBAPIError as exc:
            raise OAuthError("temporarily_unavailable", "try again shortly", 503) from exc
        return True

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


# The running token service of each gateway (tests run several in one process), by its engine.
_RUNNING: weakref.WeakKeyDictionary[AsyncEngine, TokenService] = weakref.WeakKeyDictionary()


async def start_token_service(engine: AsyncEngine) -> TokenService:
    clients = {c.client_id: (p.partner, c) for p in all_profiles() for c in p.oauth.clients}
    lifetimes = [p.oauth.token_lifetime_seconds for p in all_profiles()] or [300]
    try:
        secret: str | None = await signing_secret(engine)
    except TransientError:
        log.warning("FHIR token key not available at start-up (database); read when first needed")
        secret = None
    service = TokenService(engine, secret, clients, min(lifetimes))
    _RUNNING[engine] = service
    return service


def token_service_of(engine: AsyncEngine) -> TokenService:
    try:
        return _RUNNING[engine]
    except KeyError:
        raise TransientError("the token service is not running yet") from None
