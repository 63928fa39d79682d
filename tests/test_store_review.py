"""Schema version 2 of the call store: the recording sealed with SHA-256 at close, who hung
up, the supervisors' verdict trail, the audit log, accounts and the rules history. Real
SQLite files in tmp_path."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import struct

import pytest

from callguard.store import Store, schema
from callguard.store.store import hash_password, verify_password

T0 = 1_700_000_000.0
RULES_TEXT = '[[rule]]\nid = "x"\nterms = ["바보"]\n'


def run(coro):
    return asyncio.run(coro)


def pcm(*samples: int) -> bytes:
    return struct.pack(f"<{len(samples)}h", *samples)


async def ended_call(store: Store, **kw) -> int:
    args = {"direction": "inbound", "remote": "010-1111-2222", "source": "sip",
            "started_at": T0, "rules_version": None, "sample_rate": 8000} | kw
    cid = await store.create_call(**args)
    await store.append_audio(cid, "caller", 0, pcm(1, 2, 3, 4))
    await store.append_audio(cid, "counselor", 2, pcm(9))
    await store.end_call(cid, T0 + 1, 1.0, "final_notice", hung_up_by="agent")
    return cid


def test_the_recording_is_sealed_at_close_and_an_exported_wav_matches_it(tmp_path):
    async def main():
        async with Store.open(tmp_path / "calls.db") as store:
            cid = await ended_call(store, counselor="kim")
            call = await store.get_call(cid)
            frames = await store.export_wav(cid, tmp_path / "call.wav")
            stored, current = await store.check_recording(cid)
            return call, frames, stored, current

    call, frames, stored, current = run(main())
    wav = (tmp_path / "call.wav").read_bytes()
    assert frames == 4
    assert call.recording_sha256 == stored == current == hashlib.sha256(wav).hexdigest()
    assert call.hung_up_by == "agent" and call.counselor == "kim"


def test_altered_audio_no_longer_matches_the_seal(tmp_path):
    path = tmp_path / "calls.db"

    async def first():
        async with Store.open(path) as store:
            return await ended_call(store)

    cid = run(first())
    with sqlite3.connect(path) as conn:  # someone edits the audio behind the store's back
        conn.execute("UPDATE audio_chunks SET pcm = ? WHERE call_id = ? AND leg = 'caller'",
                     (pcm(1, 2, 3, 5), cid))

    async def second():
        async with Store.open(path) as store:
            return await store.check_recording(cid)

    stored, current = run(second())
    assert stored is not None and stored != current


def test_a_call_a_crash_left_open_is_sealed_on_recovery(tmp_path):
    path = tmp_path / "calls.db"

    async def crash():
        store = await Store.open(path)
        cid = await store.create_call("outbound", "x", "sip", T0, None)
        await store.append_audio(cid, "caller", 0, pcm(5) * 8000)
        await store.close()  # no end_call: the agent died
        return cid

    cid = run(crash())

    async def restart():
        async with Store.open(path, recover=True, now=T0 + 60) as store:
            return store.recovered, await store.get_call(cid), await store.check_recording(cid)

    recovered, call, (stored, current) = run(restart())
    assert recovered == (cid,)
    assert call.end_reason == "interrupted" and call.duration_s == pytest.approx(1.0)
    assert stored == current == call.recording_sha256


def test_reviews_are_an_append_only_audit_trail(tmp_path):
    path = tmp_path / "calls.db"

    async def main():
        async with Store.open(path) as store:
            cid = await ended_call(store)
            assert not (await store.get_call(cid)).reviewed
            await store.add_review(cid, "lee", "abuse_confirmed", "욕설 확인", at=T0 + 10)
            await store.add_review(cid, "park", "wrongful_cutoff", "", at=T0 + 20)
            with pytest.raises(ValueError, match="verdict"):
                await store.add_review(cid, "lee", "maybe")
            return cid, await store.reviews(cid), await store.get_call(cid)

    _, reviews, call = run(main())
    assert [(r.reviewer, r.verdict) for r in reviews] == [("lee", "abuse_confirmed"),
                                                          ("park", "wrongful_cutoff")]
    assert call.reviewed
    with sqlite3.connect(path) as conn:
        for sql in ("UPDATE reviews SET verdict = 'note'", "DELETE FROM reviews"):
            with pytest.raises(sqlite3.IntegrityError, match="audit trail"):
                conn.execute(sql)
        with pytest.raises(sqlite3.IntegrityError, match="audit log"):
            conn.execute("INSERT INTO audit_log (at, actor, role, kind) VALUES (1, 'a', 'admin',"
                         " 'x')")
            conn.execute("DELETE FROM audit_log")


def test_call_list_filters(tmp_path):
    async def main():
        async with Store.open(tmp_path / "calls.db") as store:
            a = await ended_call(store, counselor="kim", started_at=T0)
            b = await store.create_call("outbound", "y", "sip", T0 + 100, None, counselor="lee")
            await store.end_call(b, T0 + 110, 10.0, "counselor_hangup", "counselor")
            uid = await store.add_utterance(a, "caller", 0.0, 1.0, "바보", "ok",
                                            hits=[("x", "insult", 2, "바보", 0, 2, "바보")])
            assert uid
            await store.update_call(a, flagged=True, stage="final")
            await store.add_review(b, "park", "note", "")
            q = store.list_calls
            return {
                "all": [c.id for c in await q()],
                "kim": [c.id for c in await q(counselor="kim")],
                "out": [c.id for c in await q(direction="outbound")],
                "insult": [c.id for c in await q(category="insult")],
                "threat": [c.id for c in await q(category="threat")],
                "cut": [c.id for c in await q(action="cut_off")],
                "none": [c.id for c in await q(action="none")],
                "reviewed": [c.id for c in await q(reviewed=True)],
                "unreviewed": [c.id for c in await q(reviewed=False)],
                "window": [c.id for c in await q(since=T0 + 50, until=T0 + 200)],
                "counselors": await store.counselors(),
                "categories": await store.categories(),
            }, a, b

    got, a, b = run(main())
    assert got["all"] == [b, a]
    assert got["kim"] == [a] and got["out"] == [b]
    assert got["insult"] == [a] and got["threat"] == []
    assert got["cut"] == [a] and got["none"] == [b]
    assert got["reviewed"] == [b] and got["unreviewed"] == [a]
    assert got["window"] == [b]
    assert got["counselors"] == ["kim", "lee"] and got["categories"] == ["insult"]


def test_accounts_store_only_a_scrypt_hash(tmp_path):
    path = tmp_path / "calls.db"

    async def main():
        async with Store.open(path) as store:
            await store.set_password("boss", "supervisor", "correct horse")
            with pytest.raises(ValueError, match="8 characters"):
                await store.set_password("x", "admin", "short")
            with pytest.raises(ValueError, match="role"):
                await store.set_password("x", "counselor", "long enough")
            return (await store.check_password("boss", "correct horse"),
                    await store.check_password("boss", "wrong horse!"),
                    await store.check_password("nobody", "correct horse"),
                    await store.users())

    good, bad, unknown, users = run(main())
    assert (good, bad, unknown) == ("supervisor", None, None)
    assert users == [("boss", "supervisor")]
    with sqlite3.connect(path) as conn:
        (stored,) = conn.execute("SELECT pw_hash FROM users").fetchone()
    assert "correct horse" not in stored and stored.startswith("scrypt$")
    assert verify_password("correct horse", stored) and not verify_password("x", stored)
    assert hash_password("a") != hash_password("a")  # salted


def test_counselors_cannot_delete_recordings_and_deletion_is_audited(tmp_path):
    async def main():
        async with Store.open(tmp_path / "calls.db") as store:
            cid = await ended_call(store)
            with pytest.raises(PermissionError):
                await store.delete_recording(cid, "kim", "counselor")
            assert await store.read_audio(cid, "caller")
            await store.delete_recording(cid, "boss", "admin")
            return await store.read_audio(cid, "caller"), await store.audit_log(call_id=cid)

    audio, log = run(main())
    assert audio == b""
    assert [(e.actor, e.kind) for e in log] == [("boss", "recording_deleted")]


def test_rules_history_keeps_each_saved_version(tmp_path):
    async def main():
        async with Store.open(tmp_path / "calls.db") as store:
            v1 = await store.save_rules("rules.toml", RULES_TEXT, "admin", "first", at=T0)
            v2 = await store.save_rules("rules.toml", RULES_TEXT + "# more\n", "admin",
                                        at=T0 + 1)
            return v1, v2, await store.rules_history(), await store.ruleset(v1)

    v1, v2, history, (_, text) = run(main())
    assert [h.version for h in history] == [v2, v1]
    assert text == RULES_TEXT and v1 == hashlib.sha256(RULES_TEXT.encode()).hexdigest()


def test_a_version_1_file_with_calls_migrates_to_version_2(tmp_path, monkeypatch):
    path = tmp_path / "calls.db"
    monkeypatch.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:1])
    monkeypatch.setattr(schema, "SCHEMA_VERSION", 1)

    async def old():
        async with Store.open(path) as store:
            await store._exec("SELECT 1")  # the old code path: only version 1 tables
        with sqlite3.connect(path) as conn:
            conn.execute("INSERT INTO calls (direction, remote, source, started_at,"
                         " sample_rate) VALUES ('inbound', 'x', 'sip', 1.0, 8000)")

    run(old())
    monkeypatch.undo()

    async def new():
        async with Store.open(path) as store:
            return await store.list_calls()

    (call,) = run(new())
    assert call.counselor == "" and call.recording_sha256 is None and not call.reviewed


def test_the_notifications_watermark_is_kept_per_user_and_only_moves_forward(tmp_path):
    path = tmp_path / "calls.db"

    async def main():
        async with Store.open(path) as store:
            await store.set_password("lee", "supervisor", "correct horse")
            await store.set_password("park", "admin", "battery staple")
            before = await store.notes_seen("lee")
            moved = [await store.set_notes_seen("lee", T0 + 10, 5),
                     await store.set_notes_seen("lee", T0 + 5, 9),   # older: ignored
                     await store.set_notes_seen("lee", T0 + 10, 4),  # same time, lower id
                     await store.set_notes_seen("lee", T0 + 10, 7),  # same time, higher id
                     await store.set_notes_seen("nobody", T0, 1)]    # no such account
        async with Store.open(path) as store:  # kept across opens
            return (before, moved, await store.notes_seen("lee"),
                    await store.notes_seen("park"), await store.notes_seen("nobody"))

    before, moved, lee, park, nobody = run(main())
    assert before is None
    assert moved == [True, False, False, True, False]
    assert lee == (T0 + 10, 7)
    assert park is None and nobody is None
