"""The console's sessions, kept in the database: the cookie carries a random token, the table its
SHA-256 with the operator and the session's CSRF token. A session ends when logged out or after
`idle` unused; the operator's role is read again at every request (a change takes effect at once).

Cookies: HttpOnly, SameSite=Strict, Path=/ui/, and Secure unless the request came over plain
HTTP outside production (a developer's http://127.0.0.1). Before a session exists, the login form
carries a token of its own, doubled in a short-lived cookie (a forged cross-site login fails).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import Response

from gateway.service.desk import ReviewDesk
from gateway.service.operators import Operator, parse_role
from gateway.store import logins, reviews

COOKIE = "cgt_console"
LOGIN_COOKIE = "cgt_console_login"
PATH = "/ui/"
TOUCH_EVERY = timedelta(seconds=60)  # a session's expiry slides, written at most once a minute


@dataclass(frozen=True)
class Session:
    operator: Operator
    csrf: str
    token_sha256: str

    def csrf_ok(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self.csrf.encode())


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Sessions:
    def __init__(
        self,
        engine: AsyncEngine,
        desk: ReviewDesk,
        *,
        idle: timedelta,
        production: bool,
        clock: Callable[[], datetime],
    ) -> None:
        self.engine, self.desk, self.idle, self.production, self.clock = engine, desk, idle, production, clock

    def secure(self, request: Request) -> bool:
        return self.production or request.url.scheme == "https"

    async def open(self, name: str, password: str, response: Response, request: Request) -> Operator:
        """Log in (the desk's check: lock-out, Argon2id) and set the session's cookie."""
        operator = await self.desk.login(name, password)
        token, now = secrets.token_urlsafe(32), self.clock()
        async with self.engine.begin() as conn:
            await logins.close_expired(conn, now)
            await logins.open_session(
                conn, _digest(token), operator.name, secrets.token_urlsafe(32), now, now + self.idle
            )
        response.set_cookie(
            COOKIE,
            token,
            path=PATH,
            httponly=True,
            samesite="strict",
            secure=self.secure(request),
        )
        response.delete_cookie(LOGIN_COOKIE, path=PATH)
        return operator

    async def current(self, request: Request) -> Session | None:
        token = request.cookies.get(COOKIE)
        if not token or len(token) > 200:
            return None
        digest, now = _digest(token), self.clock()
        async with self.engine.connect() as conn:
            row = await logins.session(conn, digest)
            user = await reviews.operator_row(conn, row["operator"]) if row else None
        if row is None or user is None or row["expires_at"] <= now:
            return None
        if now - row["seen_at"] >= TOUCH_EVERY:
            async with self.engine.begin() as conn:
                await logins.seen(conn, digest, now, now + self.idle)
        operator = Operator(user["name"], parse_role(user["role"]), user["printed_name"])
        return Session(operator, row["csrf"], digest)

    async def close(self, session: Session, response: Response) -> None:
        async with self.engine.begin() as conn:
            await logins.close_session(conn, session.token_sha256)
        response.delete_cookie(COOKIE, path=PATH)

    def login_token(self, request: Request) -> str:
        """The login form's token: the one its cookie holds, or a new one."""
        given = request.cookies.get(LOGIN_COOKIE)
        return given if given and len(given) <= 100 else secrets.token_urlsafe(32)

    def keep_login_token(self, token: str, response: Response, request: Request) -> None:
        response.set_cookie(
            LOGIN_COOKIE,
            token,
            max_age=3600,
            path=PATH,
            httponly=True,
            samesite="strict",
            secure=self.secure(request),
        )

    @staticmethod
    def login_token_ok(request: Request, given: str | None) -> bool:
        kept = request.cookies.get(LOGIN_COOKIE)
        return bool(kept and given) and hmac.compare_digest(str(kept).encode(), str(given).encode())
