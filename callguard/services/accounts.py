"""Who is asking, and what their role lets them do.

Three roles, in rising order: a **counselor** takes calls and never signs in; a
**supervisor** reviews calls; an **admin** edits the rules and may do whatever a
supervisor may. Supervisor and admin accounts live in the call store (name, role, scrypt
hash of the password: :meth:`callguard.store.Store.set_password`).

An :class:`Actor` is a name and a role that the face building it vouches for: the desktop
app after its sign-in dialog, ``callguard`` after :func:`sign_in` checked a password. The
services take an actor and refuse what its role does not allow (:class:`PermissionDenied`).
Writing the rules also checks, at that moment, that the name is an admin account in the
store (:func:`require_account`).
"""

from __future__ import annotations

from dataclasses import dataclass

from callguard.errors import CallguardError
from callguard.store import Store
from callguard.vocabulary import Role

#: Every role, lowest first.
ROLES = (Role.COUNSELOR, Role.SUPERVISOR, Role.ADMIN)
#: Roles that have an account and sign in (a counselor never does).
ACCOUNT_ROLES = (Role.SUPERVISOR, Role.ADMIN)
_RANK = {role: rank for rank, role in enumerate(ROLES)}


class PermissionDenied(CallguardError, PermissionError):
    """The actor's role does not allow this, or the sign-in failed. The message says which
    role is needed; it never says whether a name or a password was wrong."""


def role_allows(role: str | None, required: str) -> bool:
    """Whether ``role`` (``None``: nobody signed in, a counselor) may do what needs
    ``required``; an admin may do whatever a supervisor may."""
    if required not in _RANK:
        raise ValueError(f"required role must be one of {', '.join(ROLES)}, not {required!r}")
    return role is not None and _RANK.get(role, 0) >= _RANK[required]


@dataclass(frozen=True, slots=True)
class Actor:
    """A person using callguard: ``name`` (an account name, or the counselor's name as the
    calls record it) and ``role`` (one of :data:`ROLES`)."""

    name: str
    role: Role

    def __post_init__(self) -> None:
        if self.role not in _RANK:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, not {self.role!r}")
        object.__setattr__(self, "role", Role(self.role))  # a plain "admin" becomes the enum
        if not self.name:
            raise ValueError("an actor needs a name")

    def allows(self, required: str) -> bool:
        """Whether this actor may do what needs ``required``."""
        return role_allows(self.role, required)

    def require(self, required: str, what: str) -> None:
        """Raise :class:`PermissionDenied` unless the role allows ``required``; ``what``
        names the action in the message (``"save rules"``)."""
        if not self.allows(required):
            raise PermissionDenied(f"{self.name} ({self.role}) may not {what}: that needs "
                                   f"the {required} role")


async def require_account(store: Store, name: str, role: str, what: str) -> None:
    """Raise :class:`PermissionDenied` unless ``name`` is an account of exactly ``role`` in
    ``store`` now (an account may have been changed since its window opened)."""
    if (name, role) not in await store.users():
        raise PermissionDenied(f"only {role} accounts may {what}; {name!r} is none")


async def sign_in(store: Store, name: str, password: str, required: str) -> Actor:
    """Check ``name``'s password and that its role allows ``required``; the signed-in
    :class:`Actor`. Audited as the desktop app's sign-in is: ``login`` (detail: where) or
    ``login_failed`` (actor ``unknown`` for a name that is no account). Raises
    :class:`PermissionDenied` for a wrong name or password, or a role too low."""
    role = await store.check_password(name, password)
    if role is None:
        known = any(n == name for n, _ in await store.users())
        await store.audit(name if known else "unknown", required, "login_failed",
                          "command line")
        raise PermissionDenied(f"wrong account name or password (the {required} role is "
                               "needed)")
    if not role_allows(role, required):
        raise PermissionDenied(f"{name} has the {role} role; this needs the {required} role")
    await store.audit(name, role, "login", "command line")
    return Actor(name, Role(role))
