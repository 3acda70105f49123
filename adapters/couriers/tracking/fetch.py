"""One poll of a carrier's tracking API, sans schedule: the conditional request, and what its
answer means (new content, nothing new, slow down, failed). httpx's exceptions end here.

    Fresh(document, etag, last_modified)   200: the answer, and its validators for next time
    Unchanged()                            304: nothing new (If-None-Match / If-Modified-Since)
    SlowDown(retry_after_s)                429 or 503, with the server's Retry-After when given
    Failed(reason)                         anything else: a network error, a 4xx/5xx, not JSON
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import httpx
import orjson

from adapters.couriers.tracking.profile import PollApi


@dataclass(frozen=True)
class Fresh:
    document: Any
    etag: str | None
    last_modified: str | None


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
