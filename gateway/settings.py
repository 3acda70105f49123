"""Settings from the environment (prefix CGT_), with embedded defaults that run on a laptop."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CGT_", extra="ignore")

    env: Literal["development", "test", "production"] = "development"
    database_url: str = f"sqlite+aiosqlite:///{ROOT / 'var' / 'gateway.db'}"
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    mllp_port: int = 2575
    partners_file: Path = ROOT / "mappings" / "partners" / "demo.yaml"
    coi_facility: str = Field(
        default="A9999",
        pattern=r"^[A-NP-Z1-9][A-Z0-9]{4}$",
        description="ISBT 128 facility id under which the gateway issues COIs",
    )
    adapters: str | None = Field(
        default=None,
        description="comma-separated adapters to enable (default: every installed adapter)",
    )
    relay: Literal["embedded", "separate"] = Field(
        default="embedded",
        description="embedded: serve publishes the outbox itself; separate: run `cgt-gateway relay`"
        " processes beside it (they use other cores, and several share the work)",
    )
    outbox_batch: int = Field(default=500, ge=1, le=10_000)
    outbox_poll_seconds: float = Field(default=0.5, gt=0)
    outbox_linger_seconds: float = Field(default=0.02, ge=0)
    outbox_lease_seconds: float = Field(default=30.0, gt=0)
    consumer_delivery_limit: int = Field(default=5, ge=1)
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    http_max_header_bytes: int = Field(
        default=16_384, ge=1024, description="largest request line and headers (400 above)"
    )
    http_head_timeout_seconds: float = Field(
        default=10.0, gt=0, description="a connection whose request head is not complete by then is closed"
    )
    http_keepalive_seconds: int = Field(
        default=5, ge=1, description="idle keep-alive connections close after"
    )
    http_max_concurrency: int = Field(
        default=512,
        ge=1,
        description="connections or requests in flight; 503 above (uvicorn limit_concurrency)",
    )
    log_phi: bool = Field(
        default=False, description="never true in production: lets payloads into debug logs"
    )
