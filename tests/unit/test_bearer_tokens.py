"""OAuth 2.0 client credentials for a partner's API (gateway.sdk.tokens), against the token
endpoint mocked with respx: one fetch while the token lives, another when it is due or refused,
the client authenticated as the profile says, one fetch for callers that ask at once, and a
failure that names no secret."""

from __future__ import annotations

import asyncio
import base64
from urllib.parse import parse_qs

import httpx
import pytest
import respx

from gateway.partners import SecretRef
from gateway.sdk import BearerTokens, ClientCredentials, TokenUnavailable, bearer_tokens

TOKEN_URL = "https://carrier.test/oauth/token"


def config(client_auth: str = "basic", scope: str | None = None) -> ClientCredentials:
    return ClientCredentials.model_validate(
        {
            "token_url": TOKEN_URL,
            "client_id": {"env": "CGT_TEST_TOKEN_CLIENT", "demo_default": "client-1"},
            "client_secret": {"env": "CGT_TEST_TOKEN_SECRET", "demo_default": "s3cret:with/colon"},
            "client_auth": client_auth,
            "scope": scope,
        }
    )


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def issued(token: str, expires_in: int = 3600) -> httpx.Response:
    return httpx.Response(200, json={"access_token": token, "token_type": "Bearer", "expires_in": expires_in})


async def test_a_token_is_fetched_once_while_it_lives_and_again_when_it_is_due() -> None:
    clock = Clock()
    tokens = bearer_tokens(config(), production=False)
    assert tokens is not None
    tokens.clock = clock
    with respx.mock() as mock:
        route = mock.post(TOKEN_URL).mock(side_effect=[issued("t-1"), issued("t-2")])
        async with httpx.AsyncClient() as http:
            assert await tokens.header(http) == {"Authorization": "Bearer t-1"}
            clock.now += 3500  # less than an hour, minus the minute's margin
            assert await tokens.header(http) == {"Authorization": "Bearer t-1"}
            clock.now += 100
            assert await tokens.header(http) == {"Authorization": "Bearer t-2"}
    assert route.call_count == 2 and tokens.fetched == 2
    request = route.calls[0].request
    assert parse_qs(request.content.decode()) == {"grant_type": ["client_credentials"]}
    assert (
        request.headers["authorization"]
        == "Basic " + base64.b64encode(b"client-1:s3cret:with/colon").decode()
    )


async def test_a_refused_token_is_fetched_again_and_the_client_may_authenticate_in_the_body() -> None:
    tokens = bearer_tokens(config("body", scope="track"), production=False)
    assert tokens is not None
    with respx.mock() as mock:
        route = mock.post(TOKEN_URL).mock(side_effect=[issued("t-1"), issued("t-2")])
        async with httpx.AsyncClient() as http:
            assert (await tokens.header(http))["Authorization"] == "Bearer t-1"
            tokens.invalidate()  # the API answered 401
            assert (await tokens.header(http))["Authorization"] == "Bearer t-2"
    form = parse_qs(route.calls[0].request.content.decode())
    assert form == {
        "grant_type": ["client_credentials"],
        "scope": ["track"],
        "client_id": ["client-1"],
        "client_secret": ["s3cret:with/colon"],
    }
    assert "authorization" not in route.calls[0].request.headers


async def test_callers_that_ask_at_once_share_one_fetch() -> None:
    tokens = bearer_tokens(config(), production=False)
    assert tokens is not None

    async def slowly(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.05)
        return issued("t-1")

    with respx.mock() as mock:
        route = mock.post(TOKEN_URL).mock(side_effect=slowly)
        async with httpx.AsyncClient() as http:
            headers = await asyncio.gather(*(tokens.header(http) for _ in range(5)))
    assert route.call_count == 1 and {h["Authorization"] for h in headers} == {"Bearer t-1"}


@pytest.mark.parametrize(
    ("answer", "detail"),
    [
        (httpx.Response(401, json={"error": "invalid_client", "echo": "s3cret:with/colon"}), "HTTP 401"),
        (httpx.Response(200, json={"token_type": "Bearer"}), "no access_token"),
        (httpx.Response(200, content=b"<html>"), "no access_token"),
    ],
)
async def test_a_failed_fetch_is_transient_and_names_no_secret(answer: httpx.Response, detail: str) -> None:
    tokens = bearer_tokens(config(), production=False)
    assert tokens is not None
    with respx.mock() as mock:
        mock.post(TOKEN_URL).mock(return_value=answer)
        async with httpx.AsyncClient() as http:
            with pytest.raises(TokenUnavailable) as raised:
                await tokens.header(http)
    assert detail in raised.value.detail and "s3cret" not in raised.value.detail


def test_no_tokens_without_the_client_id_and_secret_in_production() -> None:
    assert bearer_tokens(config(), production=True) is None
    assert isinstance(bearer_tokens(config(), production=False), BearerTokens)
    assert SecretRef(env="CGT_TEST_TOKEN_CLIENT").resolve(True) is None
