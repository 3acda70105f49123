"""The gateway's tables. One metadata; Alembic migrations are written against it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on every database (SQLite hands back naive datetimes otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# BIGINT autoincrement on PostgreSQL, INTEGER PRIMARY KEY (rowid) on SQLite.
Id = BigInteger().with_variant(Integer(), "sqlite")
Time = UtcDateTime()

# Every message as received, kept whatever became of it.
inbound_messages = Table(
    "inbound_messages",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("partner", String(100), nullable=False),
    Column("transport", String(50), nullable=False),
    Column("adapter", String(100), nullable=False),
    Column("message_id", String(200)),
    Column("received_at", Time, nullable=False),
    Column("content_type", String(100)),
    Column("raw", LargeBinary, nullable=False),
    Column("outcome", String(20), nullable=False),
    Column("reason", Text),
    Column("order_id", String(36)),
)
Index("ix_inbound_partner_received", inbound_messages.c.partner, inbound_messages.c.received_at)
# The refused ones alone, for the hourly cap on keeping them (gateway.store.refusals).
Index(
    "ix_inbound_refused",
    inbound_messages.c.partner,
    inbound_messages.c.received_at,
    sqlite_where=inbound_messages.c.outcome == "refused",
    postgresql_where=inbound_messages.c.outcome == "refused",
)

# (partner, message id) -> the first answer of an applied or quarantined message, and the SHA-256
# of what that message said. The same content again gets the same answer and changes nothing; other
# content under the same id is refused (HL7 table 0357 code 205). NULL: a key from before hashes.
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("partner", String(100), primary_key=True),
    Column("message_id", String(200), primary_key=True),
    Column("inbound_id", String(36), ForeignKey("inbound_messages.id"), nullable=False),
    Column("outcome", String(20), nullable=False),
    Column("answer", JSON, nullable=False),
    Column("rendered", LargeBinary),
    Column("content_hash", String(64)),
)

patients = Table(
    "patients",
    metadata,
    Column("patient_id", String(36), primary_key=True),
    Column("identity", JSON, nullable=False),
    Column("merged_into", String(36)),
    Column("updated_at", Time, nullable=False),
)

orders = Table(
    "orders",
    metadata,
    Column("order_id", String(36), primary_key=True),
    Column("coi", String(20), nullable=False, unique=True),
    Column("patient_id", String(36), ForeignKey("patients.patient_id"), nullable=False),
    Column("status", String(40), nullable=False),
    Column("version", Integer, nullable=False),
    Column("document", JSON, nullable=False),
    Column("created_at", Time, nullable=False),
    Column("updated_at", Time, nullable=False),
)

# (namespace, value) -> patient, and for order identifiers, order.
crosswalk = Table(
    "crosswalk",
    metadata,
    Column("namespace", String(200), primary_key=True),
    Column("value", String(200), primary_key=True),
    Column("patient_id", String(36), ForeignKey("patients.patient_id"), nullable=False),
    Column("order_id", String(36), ForeignKey("orders.order_id")),
    Column("bound_at", Time, nullable=False),
    Column("inbound_id", String(36)),
)
Index("ix_crosswalk_order", crosswalk.c.order_id)
Index("ix_crosswalk_patient", crosswalk.c.patient_id)

# The order's timeline: every canonical event applied to it (and quarantine notices).
events = Table(
    "events",
    metadata,
    Column("event_id", String(36), primary_key=True),
    Column("order_id", String(36)),
    Column("type", String(100), nullable=False),
    Column("time", Time, nullable=False),
    Column("envelope", JSON, nullable=False),
    Column("inbound_id", String(36)),
)
Index("ix_events_order_time", events.c.order_id, events.c.time)

# Append-only, hash-chained. seq is assigned under the chain head's lock, so it has no gaps.
audit_records = Table(
    "audit_records",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("at", Time, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(100), nullable=False),
    Column("subject", String(100)),
    Column("detail", JSON, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)

audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
)

# The chain's head signed with a key outside the database (gateway.audit.checkpoint). A copy of
# each goes to an append-only file and onto the bus: an attacker who rewrites these rows too
# still cannot make the chain agree with the copies elsewhere, nor sign a new head.
audit_checkpoints = Table(
    "audit_checkpoints",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
    Column("at", Time, nullable=False),
    Column("key_id", String(32), nullable=False),
    Column("signature", String(64), nullable=False),
    Column("event_id", String(36), nullable=False),
)
Index("ix_audit_checkpoints_seq", audit_checkpoints.c.seq)

outbox = Table(
    "outbox",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("event_id", String(36), nullable=False, unique=True),
    Column("routing_key", String(100), nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("created_at", Time, nullable=False),
    Column("claimed_until", Time),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("sent_at", Time),
    Column("last_error", Text),
)
Index(
    "ix_outbox_unsent",
    outbox.c.id,
    sqlite_where=outbox.c.sent_at.is_(None),
    postgresql_where=outbox.c.sent_at.is_(None),
)

quarantine = Table(
    "quarantine",
    metadata,
    Column("quarantine_id", String(36), primary_key=True),
    Column("inbound_id", String(36), ForeignKey("inbound_messages.id"), nullable=False),
    Column("partner", String(100), nullable=False),
    Column("reason", String(50), nullable=False),
    Column("detail", Text, nullable=False),
    Column("command", JSON, nullable=False),
    Column("status", String(20), nullable=False),
    Column("created_at", Time, nullable=False),
)
Index("ix_quarantine_status", quarantine.c.status)

# Local users who review quarantine: a role (viewer, operator, qa), the printed name their
# signatures carry (21 CFR Part 11 §11.50), a salted password hash (gateway.service.operators).
operators = Table(
    "operators",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("role", String(20), nullable=False),
    Column("printed_name", String(200), nullable=False),
    Column("password_hash", String(300), nullable=False),
    Column("created_at", Time, nullable=False),
)

# One approval of a quarantined message by one operator: the primary key makes the same user
# twice impossible. Two of them release the message.
review_signatures = Table(
    "review_signatures",
    metadata,
    Column("quarantine_id", String(36), ForeignKey("quarantine.quarantine_id"), primary_key=True),
    Column("operator", String(100), primary_key=True),
    Column("printed_name", String(200), nullable=False),
    Column("meaning", Text, nullable=False),
    Column("signed_at", Time, nullable=False),
)

# Consumers' de-duplication: one row per (consumer, CloudEvent id) handled.
consumed_events = Table(
    "consumed_events",
    metadata,
    Column("consumer", String(100), primary_key=True),
    Column("event_id", String(36), primary_key=True),
    Column("consumed_at", Time, nullable=False),
)
Index("ix_consumed_events_at", consumed_events.c.consumed_at)  # housekeeping deletes by age

# SMART Backend Services: a client assertion's jti is taken once, by whichever replica sees it
# first; the row is kept until the assertion expires, then purged.
smart_assertions = Table(
    "smart_assertions",
    metadata,
    Column("client_id", String(200), primary_key=True),
    Column("jti", String(200), primary_key=True),
    Column("expires_at", Time, nullable=False),
)
Index("ix_smart_assertions_expires", smart_assertions.c.expires_at)

# Secrets the gateway makes for itself, generated once and shared by every replica (outside
# production, the FHIR token signing key; in production that key comes from the environment).
gateway_secrets = Table(
    "gateway_secrets",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("secret", String(200), nullable=False),
    Column("created_at", Time, nullable=False),
)

# Signed webhooks: a signed attempt (partner and the scheme's replay key, hashed) is taken once,
# by whichever replica sees it first; kept until its signature would be stale anyway, then purged.
webhook_receipts = Table(
    "webhook_receipts",
    metadata,
    Column("scope", String(200), primary_key=True),
    Column("key", String(64), primary_key=True),
    Column("expires_at", Time, nullable=False),
)
Index("ix_webhook_receipts_expires", webhook_receipts.c.expires_at)

# A shipment's logger readings, compactly: one row a reading, never one bus event a reading.
# (device_id, at, probe) is unique: a reading sent twice is kept once. `extra` holds what a
# logger adds beyond temperature (LN2 level, battery, light, shock, its own alarm).
shipment_readings = Table(
    "shipment_readings",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("order_id", String(36), nullable=False),
    Column("shipment_id", String(100), nullable=False),
    Column("device_id", String(100), nullable=False),
    Column("probe", String(50), nullable=False, server_default=""),
    Column("at", Time, nullable=False),
    Column("until", Time),
    Column("temperature_c", Float),
    Column("min_c", Float),
    Column("max_c", Float),
    Column("mean_c", Float),
    Column("extra", JSON),
    Column("inbound_id", String(36)),
)
Index(
    "ux_readings_device_time",
    shipment_readings.c.device_id,
    shipment_readings.c.at,
    shipment_readings.c.probe,
    unique=True,
)
Index(
    "ix_readings_shipment_time",
    shipment_readings.c.order_id,
    shipment_readings.c.shipment_id,
    shipment_readings.c.at,
)

# Clocks that outlive the process: a shipment's viability window, a dry shipper's hold time, a
# promised delivery window. Swept on a schedule; `warned_pct` is the last warning given (75, 90,
# 100 at breach), `stopped_at` set when what it waited for happened (the receipt, the delivery).
deadlines = Table(
    "deadlines",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("order_id", String(36), nullable=False),
    Column("shipment_id", String(100)),
    Column("clock", String(50), nullable=False),
    Column("starts_at", Time, nullable=False),
    Column("due_at", Time, nullable=False),
    Column("warned_pct", Integer, nullable=False, server_default="0"),
    Column("stopped_at", Time),
    Column("next_at", Time),  # its next warning (gateway.coldchain.steps); None: stopped or all given
)
Index("ux_deadlines_clock", deadlines.c.order_id, deadlines.c.shipment_id, deadlines.c.clock, unique=True)
Index("ix_deadlines_due", deadlines.c.stopped_at, deadlines.c.due_at)
Index("ix_deadlines_next", deadlines.c.next_at)

# What a poller asks a partner's API about, and when: one row a (poller, partner, key), e.g. a
# courier's tracking number. `seen` holds short digests of the events already handed to the door
# (JSON list), so that no event is taken twice across restarts; `etag` / `last_modified` make the
# next request conditional. Replicas claim rows with a lease (`claim`, `claimed_until`).
poll_schedule = Table(
    "poll_schedule",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("poller", String(100), nullable=False),
    Column("partner", String(100), nullable=False),
    Column("key", String(200), nullable=False),
    Column("order_id", String(36)),
    Column("next_at", Time, nullable=False),
    Column("claim", String(36)),
    Column("claimed_until", Time),
    Column("etag", String(500)),
    Column("last_modified", String(100)),
    Column("seen", Text),
    Column("last_event_at", Time),
    Column("failures", Integer, nullable=False, server_default="0"),
    Column("done_at", Time),
    Column("created_at", Time, nullable=False),
)
Index(
    "ux_poll_schedule_key", poll_schedule.c.poller, poll_schedule.c.partner, poll_schedule.c.key, unique=True
)
Index(
    "ix_poll_schedule_due",
    poll_schedule.c.poller,
    poll_schedule.c.partner,
    poll_schedule.c.done_at,
    poll_schedule.c.next_at,
)

# The operator console's sessions, kept server-side: the cookie carries a random token, the row
# its SHA-256 (a copy of the table opens no session), the operator, and the session's CSRF token.
console_sessions = Table(
    "console_sessions",
    metadata,
    Column("token_sha256", String(64), primary_key=True),
    Column("operator", String(100), nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("created_at", Time, nullable=False),
    Column("seen_at", Time, nullable=False),
    Column("expires_at", Time, nullable=False),
)
Index("ix_console_sessions_expires", console_sessions.c.expires_at)

# Failed logins in a row by user name (known or not): past the limit the name is locked for a
# while, whatever password comes next. A good password resets the count.
login_failures = Table(
    "login_failures",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("last_failed_at", Time, nullable=False),
    Column("locked_until", Time),
)
Index("ix_login_failures_at", login_failures.c.last_failed_at)  # for housekeeping

# What a shipment's readings meant so far (gateway.coldchain.excursions.ColdState, as JSON): read
# and written once for each batch of readings, so that no reading is read again to evaluate the next.
cold_chain_states = Table(
    "cold_chain_states",
    metadata,
    Column("order_id", String(36), primary_key=True),
    Column("shipment_id", String(100), primary_key=True),
    Column("state", JSON, nullable=False),
    Column("updated_at", Time, nullable=False),
)
