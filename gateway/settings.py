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
    # MLLP limits against a hostile network (adapters/hl7v2/limits.py; README's table says more)
    mllp_idle_seconds: float = Field(default=300.0, gt=0)
    mllp_frame_seconds: float = Field(default=30.0, gt=0)
    mllp_max_connections: int = Field(default=512, ge=1)
    mllp_max_connections_per_source: int = Field(default=32, ge=1)
    mllp_unknown_max_bytes: int = Field(default=65_536, ge=0)
    mllp_unknown_messages: int = Field(default=60, ge=0)
    mllp_unknown_volume_bytes: int = Field(default=1_048_576, ge=0)
    mllp_unknown_window_seconds: float = Field(default=3600.0, gt=0)
    mllp_offload_bytes: int = Field(default=65_536, ge=0)
    mllp_offload: Literal["process", "thread"] = "process"
    log_phi: bool = Field(
        default=False, description="never true in production: lets payloads into debug logs"
    )
