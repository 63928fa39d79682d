"""Who may see which call and what they may do with it (callguard.services.review_access),
on a real SQLite store in tmp_path: a counselor sees only their own calls and
notifications, records no verdict and deletes nothing; supervisors and admins see every
call, append verdicts to the trail and delete recordings (audited)."""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path

import pytest

from callguard.services import review_access
from callguard.services.accounts import Actor, PermissionDenied
from callguard.services.review_access import NoteRequired
from callguard.store import Store

T0 = 1_700_000_000.0
KIM = Actor("kim", "counselor")
LEE = Actor("lee", "counselor")
BOSS = Actor("boss", "supervisor")
ROOT = Actor("root", "admin")


def run(coro):
    return asyncio.run(coro)


async def ended_call(store: Store, counselor: str, at: float) -> int:
    cid = await store.create_call("inbound", "010-1111-2222", "sip", at, None,
                                  counselor=counselor)
    await store.append_audio(cid, "caller", 0, struct.pack("<4h", 1, 2, 3, 4))
    await store.end_call(cid, at + 1, 1.0, "caller_hangup")
    return cid


@pytest.fixture
def db(tmp_path: Path) -> tuple[Path, dict[str, int]]:
    """Two calls of kim's, one of lee's; notifications from both."""
    path = tmp_path / "calls.db"

    async def make() -> dict[str, int]:
        async with Store.open(path) as store:
            ids = {"kim1": await ended_call(store, "kim", T0),
                   "lee": await ended_call(store, "lee", T0 + 10),
                   "kim2": await ended_call(store, "kim", T0 + 20)}
            await store.audit("kim", "counselor", "rest_started", "600 s", ids["kim1"], T0 + 2)
            await store.audit("lee", "counselor", "supervisor_notified", "", ids["lee"],
                              T0 + 12)
            await store.audit("kim", "counselor", "rest_ended", "600 s", ids["kim1"], T0 + 602)
            await store.audit("boss", "supervisor", "login", "supervisor window", None, T0)
            return ids

    return path, run(make())


def with_store(path: Path, job):
    async def go():
        async with Store.open(path) as store:
            return await job(store)
    return run(go())


def test_a_counselor_lists_and_opens_only_their_own_calls(db):
    path, ids = db

    async def job(store):
        own = await review_access.list_calls(store, KIM)
        everyone = await review_access.list_calls(store, BOSS)
        opened = await review_access.open_call(store, KIM, ids["kim1"])
        return own, everyone, opened

    own, everyone, opened = with_store(path, job)
    assert [c.id for c in own] == [ids["kim2"], ids["kim1"]]
    assert [c.id for c in everyone] == [ids["kim2"], ids["lee"], ids["kim1"]]
    assert opened.id == ids["kim1"] and opened.counselor == "kim"
    # Another counselor's call, asked for directly, or their list: refused.
    with pytest.raises(PermissionDenied, match=f"call {ids['lee']} is not one of kim's"):
        with_store(path, lambda s: review_access.open_call(s, KIM, ids["lee"]))
    with pytest.raises(PermissionDenied, match="only their own calls, not lee's"):
        with_store(path, lambda s: review_access.list_calls(s, KIM, counselor="lee"))
    # Filters still apply within what may be seen; a supervisor may filter by counselor.
    assert with_store(path, lambda s: review_access.list_calls(s, KIM, counselor="kim",
                                                               since=T0 + 15)) != []
    lee_only = with_store(path, lambda s: review_access.list_calls(s, ROOT, counselor="lee"))
    assert [c.id for c in lee_only] == [ids["lee"]]


def test_predicates_follow_the_role():
    for actor in (KIM, LEE):
        assert review_access.own_calls_only(actor) == actor.name
        assert not review_access.may_record_verdict(actor)
        assert not review_access.may_delete_recording(actor)
    for actor in (BOSS, ROOT):
        assert review_access.own_calls_only(actor) is None
        assert review_access.may_record_verdict(actor)
        assert review_access.may_delete_recording(actor)
    assert review_access.needs_note("note", "  ") and not review_access.needs_note("note", "x")
    assert not review_access.needs_note("abuse_confirmed", "")


def test_verdicts_are_appended_by_supervisors_only(db):
    path, ids = db
    cid = ids["kim1"]

    async def job(store):
        first = await review_access.record_verdict(store, BOSS, cid, "abuse_confirmed")
        second = await review_access.record_verdict(store, ROOT, cid, "note", " 확인함 ")
        return first, second, await store.reviews(cid)

    first, second, trail = with_store(path, job)
    assert second > first
    assert [(r.id, r.reviewer, r.verdict, r.note) for r in trail] == [
        (first, "boss", "abuse_confirmed", ""), (second, "root", "note", "확인함")]
    with pytest.raises(PermissionDenied, match="kim \\(counselor\\) may not record verdicts"):
        with_store(path, lambda s: review_access.record_verdict(s, KIM, cid, "abuse_confirmed"))
    with pytest.raises(NoteRequired):
        with_store(path, lambda s: review_access.record_verdict(s, BOSS, cid, "note", " "))
    with pytest.raises(ValueError, match="verdict must be one of"):
        with_store(path, lambda s: review_access.record_verdict(s, BOSS, cid, "guilty"))
    # Nothing was added by the refused ones: the trail only grows by accepted verdicts.
    assert len(with_store(path, lambda s: s.reviews(cid))) == 2


def test_only_supervisors_delete_a_recording_and_it_is_audited(db):
    path, ids = db
    cid = ids["lee"]
    with pytest.raises(PermissionDenied, match="may not delete recordings"):
        with_store(path, lambda s: review_access.delete_recording(s, LEE, cid))
    assert with_store(path, lambda s: s.read_audio(cid, "caller")) != b""

    async def job(store):
        await review_access.delete_recording(store, BOSS, cid)
        return (await store.read_audio(cid, "caller"), await store.get_call(cid),
                await store.audit_log(kind="recording_deleted"))

    audio, call, audit = with_store(path, job)
    assert audio == b"" and call.id == cid  # the call's rows stay
    assert [(a.actor, a.role, a.call_id) for a in audit] == [("boss", "supervisor", cid)]


def test_a_counselor_sees_only_their_own_notifications(db):
    path, _ids = db
    mine = with_store(path, lambda s: review_access.notifications(s, KIM))
    assert [(n.actor, n.kind) for n in mine] == [("kim", "rest_ended"), ("kim", "rest_started")]
    everyone = with_store(path, lambda s: review_access.notifications(s, BOSS))
    assert [(n.actor, n.kind) for n in everyone] == [
        ("kim", "rest_ended"), ("lee", "supervisor_notified"), ("kim", "rest_started")]
    assert with_store(path, lambda s: review_access.notifications(s, BOSS, limit=1))[0].kind \
        == "rest_ended"
