"""A manufacturer's order profile (`mappings/mes/orders/<manufacturer>.yaml`): how its MES takes
the gateway's manufacturing orders and slot requests (transport, format) and which events send
one. Data, loaded and checked at start-up (gateway.sdk.Profiles)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from gateway.sdk import Profiles, SecretRef

FOLDER = "mes/orders"
Format = Literal["json", "b2mml-v0600", "b2mml-v07"]
SentOn = Literal["order.placed", "collection.scheduled"]
SENT_ON: tuple[SentOn, ...] = ("order.placed", "collection.scheduled")


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Amqp(_Model):
    """A durable quorum queue the gateway declares on its own broker; the MES consumes it.
    Messages are persistent and published with confirms."""

    kind: Literal["amqp"]
    queue: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9_.:-]+$", description="default: cgt.outbound.mes.<manufacturer>"
    )


class Rest(_Model):
    """`POST {url}/orders` with a bearer key and the event's id as `Idempotency-Key`. No URL
    (its variable unset, no default): nothing is sent to this manufacturer."""

    kind: Literal["rest"]
    url: SecretRef = Field(description="read from the environment variable it names")
    key: SecretRef
    timeout_seconds: float = Field(default=10.0, gt=0)


class OrderProfile(_Model):
    manufacturer: str = Field(min_length=1, description="the manufacturer's partner id")
    format: Format = "json"
    transport: Annotated[Amqp | Rest, Field(discriminator="kind")]
    events: tuple[SentOn, ...] = Field(default=SENT_ON, min_length=1)
    attempts: int = Field(default=3, ge=1, description="tries within one delivery")
    backoff_seconds: float = Field(default=1.0, ge=0)
    max_backoff_seconds: float = Field(default=60.0, ge=0)

    @property
    def queue(self) -> str:
        given = self.transport.queue if isinstance(self.transport, Amqp) else None
        return given or f"cgt.outbound.mes.{self.manufacturer}"


def order_profiles() -> Profiles[OrderProfile]:
    return Profiles(OrderProfile, FOLDER, dialect="mes-orders", partner_of=lambda p: p.manufacturer)
