"""One poll of a carrier's tracking API, sans schedule: the conditional request, and what its
answer means (new content, nothing new, slow down, failed). httpx's exceptions end here.

    Fresh(document, etag, last_modified)   200: the answer (`pages`: its further pages, when it
                                           links them), and its validators for next time
    Unchanged()                            304: nothing new (If-None-Match / If-Modified-Since)
    SlowDown(retry_after_s)                429 or 503, with the server's Retry-After when given
    Failed(reason)                         anything else: a network error, a 4xx/5xx, not JSON
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import httpx
import orjson

from adapters.couriers.tracking.profile import PollApi

log = logging.getLogger(__name__)
MAX_PAGES = 10  # pages of one answer followed: a shipment's history fits in one or two


@dataclass(frozen=True)
class Fresh:
    document: Any
    etag: str | None
    last_modified: str | None
    pages: tuple[Any, ...] = ()  # the answer's further pages, in order

    @property
    def documents(self) -> tuple[Any, ...]:
        return (self.document, *self.pages)


@dataclass(frozen=True)
class Unchanged:
    pass


@dataclass(frozen=True)
class SlowDown:
    retry_after_s: float | None


@dataclass(frozen=True)
class Failed:
    reason: str
    status: int | None = None  # the HTTP status, when there was an answer


Answer = Fresh | Unchanged | SlowDown | Failed


def retry_after(value: str | None, now: datetime) -> float | None:
    """Retry-After as seconds: delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when.astimezone(UTC) - now).total_seconds())


def request_for(
    api: PollApi, tracking_number: str, secrets: dict[str, str], etag: str | None, modified: str | None
) -> httpx.Request:
    url = api.url.replace("{tracking_number}", quote(tracking_number, safe=""))
    headers = {"Accept": "application/json", **api.headers, **secrets}
    if etag:
        headers["If-None-Match"] = etag
    if modified:
        headers["If-Modified-Since"] = modified
    content = None
    if api.body is not None:  # a JSON string inside a JSON template: escaped as JSON
        content = api.body.replace("{tracking_number}", json.dumps(tracking_number)[1:-1]).encode()
        headers.setdefault("Content-Type", "application/json")
    return httpx.Request(api.method, url, headers=headers, content=content)


def page_request(api: PollApi, link: str, secrets: dict[str, str]) -> httpx.Request | None:
    """A GET of the page `link` names (relative to the API's URL), or None when it points at
    another origin: the carrier's credentials go to the carrier's API only."""
    url = urljoin(api.url, link)
    if urlsplit(url)[:2] != urlsplit(api.url)[:2]:
        return None
    headers = {"Accept": "application/json", **api.headers, **secrets}
    return httpx.Request("GET", url, headers=headers)


async def fetch(client: httpx.AsyncClient, request: httpx.Request, now: datetime) -> Answer:
    try:
        response = await client.send(request)
    except httpx.HTTPError as exc:
        return Failed(f"{type(exc).__name__}")
    if response.status_code == 304:
        return Unchanged()
    if response.status_code in (429, 503):
        return SlowDown(retry_after(response.headers.get("retry-after"), now))
    if response.status_code != 200:
        return Failed(f"HTTP {response.status_code}", response.status_code)
    try:
        document = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return Failed("the answer is not JSON")
    return Fresh(document, response.headers.get("etag"), response.headers.get("last-modified"))


async def with_pages(
    client: httpx.AsyncClient,
    api: PollApi,
    first: Fresh,
    secrets: dict[str, str],
    next_page: Callable[[Any], str | None],
    now: datetime,
) -> Answer:
    """`first` with the further pages it links, read in turn (MAX_PAGES in all at most, on the
    API's own origin). A page that fails fails the poll: it is asked again whole, and the events
    taken already are known by their digests."""
    pages: list[Any] = []
    link = next_page(first.document)
    while link is not None and len(pages) + 1 < MAX_PAGES:
        request = page_request(api, link, secrets)
        if request is None:
            log.warning("carrier tracking poll: a next page on another origin, not followed")
            break
        answer = await fetch(client, request, now)
        if isinstance(answer, Unchanged):  # asked without validators: a 304 is not an answer
            return Failed("a later page answered 304")
        if not isinstance(answer, Fresh):
            return answer
        pages.append(answer.document)
        link = next_page(answer.document)
    return replace(first, pages=tuple(pages))
