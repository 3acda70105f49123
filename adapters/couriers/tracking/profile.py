"""A courier's tracking profile (mappings/couriers/tracking/<partner>.yaml): which carrier shape
it sends or answers in, which of its reference fields echo the therapy's COI or DIN, and, for a
courier without webhooks, how to poll its API."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from adapters.couriers.tracking.shapes import SHAPES
from gateway.sdk import ClientCredentials, SecretRef


class PollApi(BaseModel):
    """One GET (or POST, FedEx's way) a tracking number. `url` and `body` name it
    `{tracking_number}`; `secret_headers` come from the environment (an API key); `oauth`: a
    bearer token from the carrier's token endpoint (client credentials, as UPS and FedEx ask)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str = Field(pattern=r"^https?://", description="e.g. https://api.example/track/{tracking_number}")
    method: Literal["GET", "POST"] = "GET"
    body: str | None = Field(default=None, description="a JSON template, for POST")
    headers: dict[str, str] = {}
    secret_headers: dict[str, SecretRef] = {}
    oauth: ClientCredentials | None = None
    interval_s: float = Field(default=900.0, ge=1, description="between two polls of one shipment")

    @model_validator(mode="after")
    def _names_the_number(self) -> PollApi:
        if "{tracking_number}" not in self.url + (self.body or ""):
            raise ValueError("url or body must name {tracking_number}")
        return self


class TrackingProfile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    partner: str = Field(min_length=1)
    shape: str
    references: dict[str, Literal["coi", "isbt128:din"]] = Field(
        default={}, description="the carrier's reference type -> the shared namespace it echoes"
    )
    poll: PollApi | None = None

    @field_validator("shape")
    @classmethod
    def _known(cls, shape: str) -> str:
        if shape not in SHAPES:
            raise ValueError(f"unknown shape {shape!r} (one of {', '.join(sorted(SHAPES))})")
        return shape

    @model_validator(mode="after")
    def _pollable(self) -> TrackingProfile:
        if self.poll is not None and SHAPES[self.shape].poll is None:
            raise ValueError(f"the {self.shape} shape is not polled")
        return self
