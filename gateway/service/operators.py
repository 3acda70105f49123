"""The gateway's own users (operators), their roles, and their passwords.

Roles, each including the one before: `viewer` lists the quarantine (no patient data);
`operator` also inspects an item (patient data, audited) and signs approvals; `qa` also rejects.
Passwords are kept as salted scrypt hashes (standard library), compared in constant time.
Production refuses the published demo users' passwords (gateway.demo_credentials).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass
from typing import Literal, get_args

from gateway.demo_credentials import PUBLISHED, secret_fingerprint
from gateway.errors import GatewayError, NotAuthenticated, NotPermitted

Role = Literal["viewer", "operator", "qa"]
ROLES: tuple[Role, ...] = get_args(Role)

# The demo users a development database may be given (`cgt-gateway users demo`); their passwords
# are published in the README, so production refuses them.
DEMO_USERS: tuple[tuple[str, Role, str, str], ...] = (
    ("demo-operator", "operator", "Dana Demo-Operator", "demo-operator-password"),
    ("demo-qa", "qa", "Quinn Demo-QA", "demo-qa-password"),
)

# scrypt cost: n=2**14, r=8, p=1 (about 16 MiB, tens of milliseconds): a signature is rare.
_N, _R, _P = 2**14, 8, 1


class Refused(GatewayError):
    """A request the review refuses as asked (a short password, a missing meaning)."""

    http_status = 422


class Forbidden(NotPermitted):
    public_message = "this user's role may not do this"
    http_status = 403


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
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P)
    return "$".join(("scrypt", str(_N), str(_R), str(_P), _b64(salt), _b64(digest)))


def password_matches(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    expected = base64.b64decode(digest)
    given = hashlib.scrypt(
        password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=len(expected)
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
        hashlib.scrypt(password.encode(), salt=b"0" * 16, n=_N, r=_R, p=_P)  # the same time either way
        raise NotAuthenticated("the user name or password is wrong")
    operator, stored = found
    if not password_matches(password, stored):
        raise NotAuthenticated("the user name or password is wrong")
    if production and is_published(password):
        raise NotAuthenticated("production refuses the published demo users")
    return operator


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()
