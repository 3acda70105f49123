"""OAuth 2.0 client credentials (RFC 6749 §4.4) for a partner's API, as the large carriers ask
(UPS and FedEx issue bearer tokens for an hour or so to an API client's id and secret).

A partner's profile names the token endpoint and where the id and secret come from:

    oauth:
      token_url: https://wwwcie.ups.com/security/v1/oauth/token
      client_id: {env: CGT_SECRET_UPS_CLIENT_ID}
      client_secret: {env: CGT_SECRET_UPS_CLIENT_SECRET}
      client_auth: basic          # basic: HTTP Basic (UPS); body: form fields (FedEx)
      scope: null

`BearerTokens` fetches a token the first time one is needed, keeps it until a minute before it
expires, and fetches again after `invalidate` (the API answered 401: revoked, or expired early).
Callers that need one at the same moment share one fetch. The secret never leaves the token
request; a failure says what went wrong without the endpoint's body (it may echo the secret).
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field

from gateway.errors import TransientError
from gateway.partners import SecretRef

MARGIN_S = 60.0  # a token is fetched again this long before it expires
DEFAULT_LIFETIME_S = 300.0  # when the endpoint does not say (`expires_in` is only recommended)


class ClientCredentials(BaseModel):
    """Where a partner's API issues tokens, and the client's id and secret (from the environment)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    token_url: str = Field(pattern=r"^https?://")
    client_id: SecretRef
    client_secret: SecretRef
    client_auth: Literal["basic", "body"] = "basic"
    scope: str | None = None


class TokenUnavailable(TransientError):
    public_message = "the partner's token endpoint gave no token"


@dataclass
class BearerTokens:
    """A bearer token of one API client, fetched when needed and kept until it is due."""

    config: ClientCredentials
    client_id: str
    client_secret: str
    clock: Callable[[], float] = time.monotonic
    _token: str | None = None
    _due: float = 0.0
    _fetching: asyncio.Lock = field(default_factory=asyncio.Lock)
    fetched: int = 0  # tokens fetched so far

    async def header(self, http: httpx.AsyncClient) -> dict[str, str]:
        """`Authorization: Bearer <token>`, with a token fetched first when none is live."""
        if self._token is None or self.clock() >= self._due:
            async with self._fetching:  # callers that arrive meanwhile use the one fetched
                if self._token is None or self.clock() >= self._due:
                    await self._fetch(http)
        return {"Authorization": f"Bearer {self._token}"}

    def invalidate(self) -> None:
        """The API refused the token: the next `header` fetches another."""
        self._token = None

    async def _fetch(self, http: httpx.AsyncClient) -> None:
        form = {"grant_type": "client_credentials"}
        if self.config.scope:
            form["scope"] = self.config.scope
        headers = {"Accept": "application/json"}
        if self.config.client_auth == "basic":
            pair = f"{self.client_id}:{self.client_secret}".encode()
            headers["Authorization"] = f"Basic {base64.b64encode(pair).decode()}"
        else:
            form |= {"client_id": self.client_id, "client_secret": self.client_secret}
        started = self.clock()
        try:
            response = await http.post(self.config.token_url, data=form, headers=headers)
        except httpx.HTTPError as exc:
            raise TokenUnavailable(detail=f"token endpoint: {type(exc).__name__}") from None
        if response.status_code != 200:
            raise TokenUnavailable(detail=f"token endpoint: HTTP {response.status_code}")
        try:
            body = response.json()
            token = body["access_token"]
            lifetime = float(body.get("expires_in") or DEFAULT_LIFETIME_S)
        except (ValueError, KeyError, TypeError):
            raise TokenUnavailable(detail="token endpoint: no access_token in the answer") from None
        if not isinstance(token, str) or not token:
            raise TokenUnavailable(detail="token endpoint: no access_token in the answer")
        self._token, self._due = token, started + max(lifetime - MARGIN_S, lifetime / 2)
        self.fetched += 1


def bearer_tokens(config: ClientCredentials, production: bool) -> BearerTokens | None:
    """The partner's tokens, or None when its id or secret is unset in the environment."""
    client_id, secret = config.client_id.resolve(production), config.client_secret.resolve(production)
    if not client_id or not secret:
        return None
    return BearerTokens(config, client_id, secret)
