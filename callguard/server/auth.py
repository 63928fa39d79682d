"""Who is asking: desks (bearer tokens from enrolment) and people (sessions from a login).

Tokens are 256-bit random strings shown once; the server keeps only their SHA-256, so a
copy of the database does not let anyone act as a desk or a supervisor. Passwords are
hashed with scrypt (as on the desk). Roles: a **desk** uploads its calls and alerts and
reads rules, nothing else; a **counselor** reads their own calls; a **supervisor** reads
every call, reviews and receives alerts; an **admin** also publishes rules and reads the
access log.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

DESK_PREFIX = "cgd_"
SESSION_PREFIX = "cgs_"
PEOPLE_ROLES = ("counselor", "supervisor", "admin")


def new_token(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated party of one request: a desk (``role == "desk"``, ``desk_id``
    set) or a person (``name`` is the user name)."""

    role: str
    name: str
    desk_id: int | None = None

    @property
    def is_desk(self) -> bool:
        return self.role == "desk"

    def may_read_all_calls(self) -> bool:
        return self.role in ("supervisor", "admin")
