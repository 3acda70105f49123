"""Which MES dialect a message is in: its content type says, and a message without one is told by
its first byte (`<` XML, `{` JSON). A content type that names neither is refused, naming both.

    application/cloudevents+json, application/json      mes-cloudevents
    application/xml, text/xml                           mes-b2mml
"""

from __future__ import annotations

from collections.abc import Mapping

from adapters.mes.b2mml.adapter import adapter as b2mml
from adapters.mes.cloudevents.adapter import adapter as cloudevents
from gateway.sdk import Adapter, UnsupportedMessage

DIALECTS: Mapping[str, Adapter] = {a.name: a for a in (cloudevents, b2mml)}
BY_MEDIA_TYPE = {
    "application/cloudevents+json": cloudevents.name,
    "application/json": cloudevents.name,
    "application/xml": b2mml.name,
    "text/xml": b2mml.name,
}
TAKEN = "application/cloudevents+json (CloudEvents) or application/xml (B2MML)"


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def dialect_of(content_type: str | None, body: bytes, enabled: Mapping[str, Adapter] = DIALECTS) -> Adapter:
    media = media_type(content_type)
    if media:
        name = BY_MEDIA_TYPE.get(media)
        if name is None:
            raise UnsupportedMessage(f"content type {media[:80]} is not an MES dialect: send {TAKEN}")
    else:
        first = body.removeprefix(b"\xef\xbb\xbf").lstrip()[:1]
        name = {b"<": b2mml.name, b"{": cloudevents.name}.get(first)
        if name is None:
            raise UnsupportedMessage(
                f"the message has no content type and is neither XML nor JSON: send {TAKEN}"
            )
    adapter = enabled.get(name)
    if adapter is None:
        raise UnsupportedMessage(f"the dialect {name} is not enabled on this gateway")
    return adapter
