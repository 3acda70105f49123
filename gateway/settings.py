"""Settings from the environment (prefix CGT_), with embedded defaults that run on a laptop."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

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
    mappings_dir: Path = Field(
        default=ROOT / "mappings", description="where each dialect's profiles live, one folder a dialect"
    )
    profile_dirs: dict[str, Path] = Field(
        default_factory=dict,
        description='a dialect folder elsewhere, e.g. CGT_PROFILE_DIRS=\'{"fhir": "/etc/cgt/fhir"}\'',
    )
    assignments_file: Path = Field(
        default=ROOT / "mappings" / "mes" / "assignments.yaml",
        description="which manufacturer makes which product (who may act on an order)",
    )
    release_tests_file: Path = Field(
        default=ROOT / "mappings" / "mes" / "release_tests.yaml",
        description="the QC tests each product must pass before `manufacturing.released` is applied",
    )
    schedule_file: Path = Field(
        default=ROOT / "mappings" / "mes" / "schedule.yaml",
        description="manufacturing time per product and outbound transit per manufacturer and site",
    )
    risk_margin_hours: float = Field(
        default=48.0,
        ge=0,
        description="an order is at risk when its projected delivery passes infusion less this",
    )
    risk_slack_step_hours: float = Field(
        default=12.0,
        gt=0,
        description="while at risk, `order.at_risk` is published again when slack moves this much",
    )
    disclosure_dir: Path = Field(
        default=ROOT / "mappings" / "disclosure",
        description="what each destination may receive of an order: <kind>.yaml, partners/<id>.yaml",
    )
    temperature_classes_file: Path = Field(
        default=ROOT / "mappings" / "couriers" / "temperature_classes.yaml",
        description="temperature classes, and the class and viability window of each product's legs",
    )
    clock_sweep_seconds: float = Field(
        default=30.0, gt=0, description="how often the serving process sweeps the shipments' clocks"
    )
    webhook_refused_kept_per_hour: int = Field(
        default=100, ge=0, description="refused webhook requests kept (raw) per known partner per hour"
    )
    webhook_refused_kept_bytes_per_hour: int = Field(
        default=10_485_760, ge=0, description="and at most these bytes of them; beyond either, counted only"
    )
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
    outbox_keep_hours: float = Field(
        default=168.0,
        gt=0,
        description="published outbox rows, consumers' settled marks and stale failed logins are deleted this long after",
    )
    consumer_delivery_limit: int = Field(default=5, ge=1)
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    audit_checkpoint_seconds: float = Field(
        default=300.0, gt=0, description="sign the audit chain's head at least this often (when it moved)"
    )
    audit_checkpoint_records: int = Field(
        default=10_000, ge=1, description="and sooner, once this many records were added since the last"
    )
    audit_checkpoints_file: Path | None = Field(
        default=None,
        description="append-only copy of every checkpoint, out of the database users' reach (default:"
        " audit-checkpoints.jsonl beside an SQLite database, var/audit-checkpoints.jsonl otherwise)",
    )
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
    http_access_log: bool = Field(
        default=False,
        description="a line a request: method, route template (never the raw path or query, which"
        " carry identifiers), status, milliseconds",
    )
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
    login_lockout_failures: int = Field(
        default=5, ge=1, description="wrong passwords in a row that lock an operator's user name"
    )
    login_lockout_minutes: float = Field(
        default=15.0, gt=0, description="how long a locked name stays locked"
    )
    console_session_minutes: float = Field(
        default=30.0, gt=0, description="an operator console session ends after this long unused"
    )
    log_phi: bool = Field(
        default=False, description="never true in production: lets payloads into debug logs"
    )

    @property
    def checkpoints_file(self) -> Path:
        """One file a database: checkpoints of another chain would not match this one."""
        if self.audit_checkpoints_file is not None:
            return self.audit_checkpoints_file
        url = make_url(self.database_url)
        if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
            return Path(url.database).parent / "audit-checkpoints.jsonl"
        return ROOT / "var" / "audit-checkpoints.jsonl"
