"""The gateway's own users (operators), their roles, and their passwords.

Roles, each including the one before: `viewer` lists the quarantine (no patient data);
`operator` also inspects an item (patient data, audited) and signs approvals; `qa` also rejects.
Passwords are kept as Argon2id hashes (argon2-cffi, its default parameters). Hashes from before
(salted scrypt) still verify, and are replaced by an Argon2id hash at the next good login
(`needs_rehash`). Production refuses the published demo users' passwords (gateway.demo_credentials).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from typing import Literal, get_args

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from gateway.demo_credentials import PUBLISHED, secret_fingerprint
from gateway.errors import GatewayError, NotAuthenticated, NotPermitted

Role = Literal["viewer", "operator", "qa"]
ROLES: tuple[Role, ...] = get_args(Role)

# The demo users a development database may be given (`cgt-gateway users demo`); their passwords
# are published in the README, so production refuses them.
DEMO_USERS: tuple[tuple[str, Role, str, str], ...] = (
    ("demo-viewer", "viewer", "Val Demo-Viewer", "demo-viewer-password"),
    ("demo-operator", "operator", "Dana Demo-Operator", "demo-operator-password"),
    ("demo-qa", "qa", "Quinn Demo-QA", "demo-qa-password"),
)

_ARGON2 = PasswordHasher()
# An unknown user's password is checked against this, so that the answer takes the same time.
_NOBODY = _ARGON2.hash("no user has this password")


class Refused(GatewayError):
    """A request the review refuses as asked (a short password, a missing meaning)."""

    http_status = 422


class Forbidden(NotPermitted):
    public_message = "this user's role may not do this"
    http_status = 403


def parse_role(value: str) -> Role:
    for role in ROLES:
        if role == value:
            return role
    raise GatewayError(detail=f"unknown role stored: {value}")


@dataclass(frozen=True)
class Operator:
    name: str
    role: Role
    printed_name: str

    def may(self, role: Role) -> bool:
        """Whether this operator holds `role` or one above it."""
        return ROLES.index(self.role) >= ROLES.index(role)

    def require(self, role: Role) -> None:
        if not self.may(role):
            raise Forbidden(detail=f"{self.name} is {self.role}, needs {role}")


def hash_password(password: str) -> str:
    return _ARGON2.hash(password)


def password_matches(password: str, stored: str) -> bool:
    if stored.startswith("$argon2"):
        try:
            return _ARGON2.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False
    return _scrypt_matches(password, stored)


def needs_rehash(stored: str) -> bool:
    """Whether a stored hash (scrypt from before, or weaker Argon2 parameters) should be replaced."""
    return not stored.startswith("$argon2") or _ARGON2.check_needs_rehash(stored)


def _scrypt_matches(password: str, stored: str) -> bool:
    """The hashes of before Argon2id: `scrypt$n$r$p$salt$digest` (base64)."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    expected = base64.b64decode(digest)
    given = hashlib.scrypt(
        password.encode(),
        salt=base64.b64decode(salt),
        n=int(n),
        r=int(r),
        p=int(p),
        maxmem=2**26,
        dklen=len(expected),
    )
    return hmac.compare_digest(given, expected)


def is_published(password: str) -> bool:
    return secret_fingerprint(password) in PUBLISHED


def check_password(password: str, *, production: bool) -> None:
    """A new password: long enough, and in production not one the project publishes."""
    if len(password) < 12:
        raise Refused("a password needs at least 12 characters")
    if production and is_published(password):
        raise Refused("production refuses the published demo passwords")


def authenticate(found: tuple[Operator, str] | None, password: str, *, production: bool) -> Operator:
    """The operator whose stored hash the password matches, or NotAuthenticated (the same answer
    for an unknown user and a wrong password). Production refuses the demo users' passwords."""
    if found is None:
        password_matches(password, _NOBODY)  # the same time either way
        raise NotAuthenticated("the user name or password is wrong")
    operator, stored = found
    if not password_matches(password, stored):
        raise NotAuthenticated("the user name or password is wrong")
    if production and is_published(password):
        raise NotAuthenticated("production refuses the published demo users")
    return operator
