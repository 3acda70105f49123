"""The review desk: what the HTTP API and the CLI ask of quarantine review, with the operator
authenticated by name and password on every call that shows patient data or signs.

Listing shows no patient data (partner, reason, age, internal detail). Inspecting an item shows
the raw message as received, what it claimed (identifiers, demographics) beside what the chain
of identity holds, and why it was held; each inspection is audited as `quarantine.viewed`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway import audit
from gateway.canonical.command import Command
from gateway.canonical.ids import COI_NAMESPACE
from gateway.errors import NotAuthenticated, NotFound
from gateway.service.operators import (
    ROLES,
    Operator,
    Refused,
    authenticate,
    check_password,
    hash_password,
    needs_rehash,
    parse_role,
)
from gateway.service.review import Decision, Notices, approve, no_notice, reject, shown, viewed
from gateway.service.transaction import Rules
from gateway.settings import Settings
from gateway.store import logins, reviews
from gateway.store.unit_of_work import SqlTransactions


class LockedOut(NotAuthenticated):
    public_message = "too many failed logins for this user: try again later"


@dataclass(frozen=True)
class Lockout:
    """After `failures` wrong passwords in a row a user name is locked for `period`, whatever
    password comes next (the console, the API's Basic credentials and every signature alike)."""

    failures: int = 5
    period: timedelta = timedelta(minutes=15)

    @classmethod
    def of(cls, settings: Settings) -> Lockout:
        return cls(settings.login_lockout_failures, timedelta(minutes=settings.login_lockout_minutes))


class ReviewDesk:
    def __init__(
        self,
        engine: AsyncEngine,
        rules: Rules,
        *,
        production: bool,
        on_commit: Callable[[], None] | None = None,
        lockout: Lockout | None = None,
        notices: Notices = no_notice,
    ) -> None:
        self.engine = engine
        self.rules = rules
        self.production = production
        self.lockout = lockout or Lockout()
        self.notices = notices
        self.transactions = SqlTransactions(engine, audit.append, pipelined=False)
        self.on_commit = on_commit or (lambda: None)

    # -- users ----------------------------------------------------------------------------------
    async def add_user(self, name: str, role: str, printed_name: str, password: str) -> Operator:
        if role not in ROLES:
            raise Refused(f"the role must be one of: {', '.join(ROLES)}")
        if not name.strip() or not printed_name.strip():
            raise Refused("a user needs a name and a printed name")
        check_password(password, production=self.production)
        stored = hash_password(password)
        try:
            async with self.engine.begin() as conn:
                await reviews.add_operator(conn, name, role, printed_name, stored, self.rules.clock())
        except IntegrityError as exc:
            raise Refused("a user of this name exists") from exc
        return Operator(name, parse_role(role), printed_name)

    async def login(self, name: str, password: str) -> Operator:
        """The operator, or NotAuthenticated; failures in a row lock the name (LockedOut). A good
        password over a hash from before Argon2id replaces the hash."""
        now, name = self.rules.clock(), name[:100]
        async with self.engine.connect() as conn:
            row = await reviews.operator_row(conn, name)
            failures = await logins.failures_of(conn, name)
        if failures and failures["locked_until"] and failures["locked_until"] > now:
            raise LockedOut(detail=f"{name} locked until {failures['locked_until'].isoformat()}")
        found = None
        if row is not None:
            found = (
                Operator(row["name"], parse_role(row["role"]), row["printed_name"]),
                str(row["password_hash"]),
            )
        try:
            operator = authenticate(found, password, production=self.production)
        except NotAuthenticated:
            lockout = self.lockout
            locked = await self.transactions.run(
                lambda uow: logins.failed(uow.conn, name, now, lockout.failures, lockout.period)
            )
            if locked:
                raise LockedOut(detail=f"{name} locked after {self.lockout.failures} failures") from None
            raise
        assert found is not None
        if failures or needs_rehash(found[1]):
            rehashed = hash_password(password) if needs_rehash(found[1]) else None
            await self.transactions.run(lambda uow: logins.succeeded(uow.conn, name, rehashed))
        return operator

    # -- reads ----------------------------------------------------------------------------------
    async def held(
        self,
        *,
        partner: str | None = None,
        reason: str | None = None,
        older_than: timedelta | None = None,
        coi: str | None = None,
    ) -> list[dict[str, Any]]:
        before = self.rules.clock() - older_than if older_than is not None else None
        async with self.engine.connect() as conn:
            items = await reviews.held(conn, partner=partner, reason=reason, before=before)
            if coi:
                items = [i for i in items if coi.upper() in await _cois(conn, i)]
        for i in items:
            del i["command"]  # identifiers are patient data: shown by inspection only
        return items

    async def inspect(self, quarantine_id: str, viewer: Operator) -> dict[str, Any]:
        viewer.require("operator")
        async with self.engine.connect() as conn:
            held = await reviews.item(conn, quarantine_id)
            if held is None:
                raise NotFound("no quarantined message has this id")
            commands = [Command.model_validate(c) for c in held["command"]["commands"]]
            refs = [(r.namespace, r.value) for c in commands for r in c.refs]
            chain = await reviews.chain_of(conn, refs)
        await self.transactions.run(
            partial(viewed, quarantine_id=quarantine_id, viewer=viewer, now=self.rules.clock())
        )
        self.on_commit()
        return {
            "quarantine_id": quarantine_id,
            "status": held["status"],
            "partner": held["partner"],
            "held_at": held["created_at"],
            "why": {"reason": held["reason"], "detail": held["detail"]},
            "message": {
                "inbound_id": held["inbound_id"],
                "message_id": held["message_id"],
                "transport": held["transport"],
                "adapter": held["adapter"],
                "content_type": held["content_type"],
                "received_at": held["received_at"],
                "raw": held["raw"].decode("utf-8", errors="replace"),
            },
            "claimed": [
                {
                    "event": c.event,
                    "identifiers": [{"namespace": r.namespace, "value": r.value} for r in c.refs],
                    "demographics": c.patient.model_dump(mode="json") if c.patient else None,
                }
                for c in commands
            ],
            "chain": chain,
            "signatures": [
                {k: s[k] for k in ("operator", "printed_name", "meaning", "signed_at")}
                for s in held["signatures"]
            ],
        }

    async def patient_shown(self, subject: str, viewer: Operator, action: str) -> None:
        """Audit that patient data of `subject` was shown to `viewer` (every view, as inspections)."""
        viewer.require("operator")
        now = self.rules.clock()
        await self.transactions.run(partial(shown, subject=subject, viewer=viewer, now=now, action=action))
        self.on_commit()

    # -- decisions ------------------------------------------------------------------------------
    async def approve(self, quarantine_id: str, name: str, password: str, meaning: str) -> Decision:
        """A signature: the password is asked again for each one (§11.200)."""
        signer = await self.login(name, password)
        meaning = _stated(meaning, "a signature needs its meaning")
        decision = await self.transactions.run(
            partial(approve, quarantine_id=quarantine_id, signer=signer, meaning=meaning, rules=self.rules)
        )
        self.on_commit()
        return decision

    async def reject(self, quarantine_id: str, name: str, password: str, reason: str) -> Decision:
        signer = await self.login(name, password)
        reason = _stated(reason, "a rejection needs its reason")
        decision = await self.transactions.run(
            partial(
                reject,
                quarantine_id=quarantine_id,
                signer=signer,
                reason=reason,
                rules=self.rules,
                notices=self.notices,
            )
        )
        self.on_commit()
        return decision


async def _cois(conn: Any, held: dict[str, Any]) -> set[str]:
    """The COIs an item names or whose identifiers are bound to."""
    refs = [(r["namespace"], r["value"]) for c in held["command"]["commands"] for r in c["refs"]]
    chain = await reviews.chain_of(conn, refs)
    named = {v for n, v in refs if n == COI_NAMESPACE}
    bound = {b["bound"]["coi"] for b in chain["identifiers"] if b["bound"] and b["bound"]["coi"]}
    return {c.upper() for c in named | bound}


def _stated(text: str, missing: str) -> str:
    text = text.strip()
    if not text:
        raise Refused(missing)
    if len(text) > 1000:
        raise Refused("the text is longer than 1000 characters")
    return text


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_age(text: str) -> timedelta:
    """`90s`, `30m`, `2h`, `7d` (a bare number: seconds)."""
    unit = _UNITS.get(text[-1:].lower())
    number = text[:-1] if unit else text
    try:
        value = float(number)
    except ValueError:
        raise Refused("an age is a number with a unit: 90s, 30m, 2h, 7d") from None
    return timedelta(seconds=value * (unit or 1))
