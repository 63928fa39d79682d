"""Who may see which call, and what they may do with it.

- A **counselor** sees only their own calls (the calls whose ``counselor`` is their name)
  and their own notifications; records no verdicts and deletes nothing.
- A **supervisor** (and an admin) sees every call and every notification, records verdicts
  (appended to the call's trail, never changed) and deletes recordings (the call's rows and
  transcript stay; the deletion is audited by the store).

Each use case takes the :class:`~callguard.services.accounts.Actor` asking and refuses
what it may not do (:class:`~callguard.services.accounts.PermissionDenied`, a
``PermissionError``), also when a face asks for something it would not have offered (a
call id typed in, say). The predicates (:func:`may_record_verdict`, ...) let a face grey
out what the actor cannot do.

Notifications are the counselors' entries in the audit log written by the rest offered
after an abusive call (:data:`NOTE_KINDS`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from callguard.errors import InputError
from callguard.services.accounts import Actor, PermissionDenied
from callguard.store import AuditRecord, CallRecord, CallSummary, Store
from callguard.vocabulary import ReviewVerdict, Role

#: The role that reviews: records verdicts, deletes recordings, sees every call.
SUPERVISOR = Role.SUPERVISOR
#: A supervisor's verdicts on a call.
VERDICTS = tuple(ReviewVerdict)
#: Audit entries shown as notifications: the rest offered after an abusive call; with the
#: central server also every desk's alerts: a crisis and a protect press.
NOTE_KINDS = ("supervisor_notified", "rest_started", "rest_ended", "rest_skipped", "crisis",
              "protect")
#: Notifications shown at once, the newest.
NOTE_LIMIT = 200
#: How far back a counselor's own notifications are looked for (others' are left out after
#: the query, so it reads more entries than it shows).
OWN_NOTE_LOOKBACK = 1000


class NoteRequired(InputError, ValueError):
    """A verdict of kind ``note`` needs the note's text."""


class _Call(Protocol):
    id: int
    counselor: str


# -- what an actor may do ----------------------------------------------------------------------
def own_calls_only(actor: Actor) -> str | None:
    """The counselor whose calls alone ``actor`` may see (``None``: every call)."""
    return None if actor.allows(SUPERVISOR) else actor.name


def may_see(actor: Actor, call: _Call) -> bool:
    """Whether ``actor`` may open ``call`` (a record or a list row)."""
    own = own_calls_only(actor)
    return own is None or call.counselor == own


def check_visible(actor: Actor, call: _Call) -> None:
    """Raise :class:`PermissionDenied` unless ``actor`` may open ``call``."""
    if not may_see(actor, call):
        raise PermissionDenied(f"call {call.id} is not one of {actor.name}'s calls")


def may_record_verdict(actor: Actor) -> bool:
    return actor.allows(SUPERVISOR)


def may_delete_recording(actor: Actor) -> bool:
    return actor.allows(SUPERVISOR)


def needs_note(verdict: str, note: str) -> bool:
    """Whether a verdict would be refused for want of its note (``note`` with no text)."""
    return verdict == ReviewVerdict.NOTE and not note.strip()


def visible_filters(actor: Actor, filters: dict[str, Any]) -> dict[str, Any]:
    """``filters`` (keyword arguments of :meth:`Store.list_calls`) narrowed to what
    ``actor`` may see: a counselor's own calls. Asking for another counselor's calls is
    refused rather than answered with an empty list."""
    own = own_calls_only(actor)
    if own is None:
        return dict(filters)
    asked = filters.get("counselor")
    if asked is not None and asked != own:
        raise PermissionDenied(f"{actor.name} may see only their own calls, not {asked}'s")
    return {**filters, "counselor": own}


# -- use cases ---------------------------------------------------------------------------------
async def list_calls(store: Store, actor: Actor, limit: int = 100,
                     **filters: Any) -> list[CallSummary]:
    """The latest ``limit`` calls ``actor`` may see matching ``filters`` (see
    :meth:`Store.list_calls`), newest first."""
    return await store.list_calls(limit=limit, **visible_filters(actor, filters))


async def open_call(store: Store, actor: Actor, call_id: int) -> CallRecord:
    """Everything recorded about call ``call_id``, if ``actor`` may see it."""
    call = await store.get_call(call_id)
    check_visible(actor, call)
    return call


async def record_verdict(store: Store, actor: Actor, call_id: int, verdict: str,
                         note: str = "") -> int:
    """Append ``actor``'s verdict (one of :data:`VERDICTS`) with ``note`` to the call's
    trail; its id. Supervisors and admins only; a ``note`` verdict needs text
    (:class:`NoteRequired`). The trail is append-only: a new verdict never changes an old
    one, the last is the call's current verdict."""
    if not may_record_verdict(actor):
        raise PermissionDenied(f"{actor.name} ({actor.role}) may not record verdicts: only "
                               "supervisors and admins do")
    if verdict not in VERDICTS:
        raise ValueError(f"verdict must be one of {', '.join(VERDICTS)}, not {verdict!r}")
    note = note.strip()
    if needs_note(verdict, note):
        raise NoteRequired("a note verdict needs the note's text")
    await open_call(store, actor, call_id)
    return await store.add_review(call_id, actor.name, verdict, note)


async def delete_recording(store: Store, actor: Actor, call_id: int) -> None:
    """Delete call ``call_id``'s audio (its rows and transcript stay), audited by the store
    (``recording_deleted``, with the actor and role). Supervisors and admins only."""
    if not may_delete_recording(actor):
        raise PermissionDenied(f"{actor.name} ({actor.role}) may not delete recordings: only "
                               "supervisors and admins do")
    await open_call(store, actor, call_id)
    await store.delete_recording(call_id, actor.name, actor.role)


def notifications_from(records: Sequence[AuditRecord], own_only: str | None = None,
                       limit: int = NOTE_LIMIT) -> list[AuditRecord]:
    """The notification entries among ``records`` (any order), newest first, at most
    ``limit``; only ``own_only``'s if given."""
    keep = [r for r in records
            if r.kind in NOTE_KINDS and (own_only is None or r.actor == own_only)]
    keep.sort(key=lambda r: (r.at, r.id), reverse=True)
    return keep[:limit]


async def notifications(store: Store, actor: Actor,
                        limit: int = NOTE_LIMIT) -> list[AuditRecord]:
    """The notifications ``actor`` may see, newest first, at most ``limit``: a counselor
    only their own (looked for among the latest :data:`OWN_NOTE_LOOKBACK` of each kind)."""
    own = own_calls_only(actor)
    look = limit if own is None else max(limit, OWN_NOTE_LOOKBACK)
    records: list[AuditRecord] = []
    for kind in NOTE_KINDS:
        records += await store.audit_log(kind=kind, limit=look)
    return notifications_from(records, own, limit)
