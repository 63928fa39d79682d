"""The SQLite call store, on real files in tmp_path (asyncio.run; no pytest-asyncio)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import sqlite3
import struct
import wave
from pathlib import Path

import pytest

from callguard.store import (
    MIGRATIONS,
    SCHEMA_VERSION,
    CallNotFoundError,
    Store,
    StoreError,
    schema,
)
from callguard.store.schema import split_statements

RULES_TEXT = '# 규칙\n[[rule]]\nid = "threat.kill"\nterms = ["죽이다"]\n'
RULES_VERSION = hashlib.sha256(RULES_TEXT.encode("utf-8")).hexdigest()
REMOTE = "010-9876-5432"
TRANSCRIPT = "야 이 개새끼야 너네 집 찾아간다"
T0 = 1_700_000_000.0  # unix epoch seconds


def run(awaitable):
    """Run a coroutine or any awaitable (``Store.open(...)``) on a fresh event loop."""

    async def main():
        return await awaitable

    return asyncio.run(main())


def pcm(*samples: int) -> bytes:
    """PCM16 little-endian mono bytes of the given sample values."""
    return struct.pack(f"<{len(samples)}h", *samples)


def db_user_version(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return conn.execute("PRAGMA user_version").fetchone()[0]


def tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}


async def new_call(store: Store, **kw) -> int:
    args = {"direction": "inbound", "remote": REMOTE, "source": "sip", "started_at": T0,
            "rules_version": None, "sample_rate": 8000} | kw
    return await store.create_call(**args)


# -- schema and migrations -----------------------------------------------------------------
def test_migrates_an_empty_file_and_reopens_idempotently(tmp_path):
    path = tmp_path / "sub" / "dir" / "calls.db"  # parent directories are created

    async def first():
        async with Store.open(path) as store:
            return await new_call(store)

    call_id = run(first())
    assert db_user_version(path) == SCHEMA_VERSION == len(MIGRATIONS) == 6
    assert {"rulesets", "calls", "audio_chunks", "utterances", "hits", "verdicts",
            "actions", "reviews", "audit_log", "users", "rules_history"} <= tables(path)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"

    async def second():
        store = await Store.open(path)
        try:
            return [c.id for c in await store.list_calls()]
        finally:
            await store.close()
            await store.close()  # closing twice is harmless

    assert run(second()) == [call_id]
    assert db_user_version(path) == SCHEMA_VERSION


def test_schema_4_fills_old_rows_with_the_values_they_recorded(tmp_path):
    # A store written by schema 3: a protect press is known only by its reason sentence and
    # a played prompt only by its "<key> (<seconds> s)" detail. The migration turns those
    # into values once, so nothing reads them back from text afterwards.
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        for script in MIGRATIONS[:3]:
            for statement in split_statements(script):
                conn.execute(statement)
        conn.execute("PRAGMA user_version = 3")
        conn.execute("INSERT INTO calls (id, direction, remote, source, started_at,"
                     " sample_rate) VALUES (1, 'inbound', '', 'sip', 0, 8000)")
        conn.executemany(
            "INSERT INTO verdicts (call_id, t_s, kind, prompt, hangup, reason)"
            " VALUES (1, ?, ?, ?, ?, ?)",
            [(1.0, "warn", "warning", 0, "warning 1/2: 2 strike(s)"),
             (5.0, "final", "final", 1, "counselor pressed protect"),
             (6.0, "duration_notice", "duration_notice", 0, "call passed 900 s"),
             (7.0, "alert", None, 0, "crisis words")])
        conn.executemany(
            "INSERT INTO actions (call_id, t_s, kind, detail, ok, error) VALUES (1, ?, ?, ?, ?, ?)",
            [(1.0, "play_prompt", "warning (6.4 s)", 1, None),
             (5.0, "play_prompt", "final", 0, "bad wav"),
             (9.0, "hangup", "final", 1, None)])
        conn.execute("INSERT INTO utterances (call_id, leg, start_s, end_s, text, status)"
                     " VALUES (1, 'caller', 0.5, 1.0, '', 'ok')")

    async def read():
        async with Store.open(path) as store:
            return await store.get_call(1)
    call = run(read())
    assert db_user_version(path) == SCHEMA_VERSION
    assert [v.cause for v in call.verdicts] == ["rules", "protect", "duration", "crisis"]
    assert [(a.prompt, a.seconds) for a in call.actions] == [
        ("warning", 6.4), ("final", 0.0), (None, None)]
    assert call.utterances[0].at_s is None  # not known for old rows: the dry-run uses end_s


def test_two_openers_of_a_new_file_both_succeed_and_migrate_once(tmp_path):
    # Two connections race for the same new file (as two processes would): one applies the
    # migration, the other waits, sees the new version and skips it.
    async def race(path):
        a, b = await asyncio.gather(Store.open(path), Store.open(path))
        await asyncio.gather(a.close(), b.close())

    for i in range(5):
        path = tmp_path / f"calls{i}.db"
        run(race(path))
        assert db_user_version(path) == SCHEMA_VERSION


def test_newer_schema_is_refused_with_both_versions_and_the_file(tmp_path):
    path = tmp_path / "calls.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE future (x)")
        conn.execute("PRAGMA user_version = 7")

    with pytest.raises(StoreError) as err:
        run(Store.open(path))
    message = str(err.value)
    assert str(path) in message
    assert "version 7" in message and f"version {SCHEMA_VERSION}" in message
    assert "upgrade callguard" in message
    # Refused before anything was changed: still version 7, not switched to WAL.
    assert db_user_version(path) == 7
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"


def test_a_file_that_is_not_a_database_is_refused_naming_it(tmp_path):
    path = tmp_path / "calls.db"
    path.write_bytes(b"this is not sqlite, just some text that is long enough" * 40)
    with pytest.raises(StoreError, match=r"calls\.db: cannot open the call store"):
        run(Store.open(path))


def test_a_failing_migration_is_rolled_back_whole_and_a_good_one_applies(tmp_path,
                                                                          monkeypatch):
    path = tmp_path / "calls.db"
    async def open_close():
        async with Store.open(path) as store:
            await new_call(store)

    run(open_close())
    broken = "CREATE TABLE extra (x);\nINSERT INTO no_such_table VALUES (1);"
    monkeypatch.setattr(schema, "MIGRATIONS", (*MIGRATIONS, broken))
    current, next_version = SCHEMA_VERSION, SCHEMA_VERSION + 1
    monkeypatch.setattr(schema, "SCHEMA_VERSION", next_version)
    with pytest.raises(StoreError, match=f"migration to schema version {next_version} failed"):
        run(open_close())
    assert db_user_version(path) == current
    assert "extra" not in tables(path)  # the CREATE before the failure was rolled back

    good = "CREATE TABLE extra (x);\nCREATE INDEX extra_x ON extra (x);"
    monkeypatch.setattr(schema, "MIGRATIONS", (*MIGRATIONS, good))
    run(open_close())
    assert db_user_version(path) == next_version
    assert "extra" in tables(path)


def test_split_statements_respects_strings_comments_and_triggers():
    script = """
    -- a comment; with a semicolon
    CREATE TABLE t (x TEXT DEFAULT 'a;b');
    CREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE t SET x = 'c;d'; END;
    -- trailing comment
    """
    statements = split_statements(script)
    assert len(statements) == 2
    assert statements[0].endswith("DEFAULT 'a;b');")
    assert statements[1].startswith("CREATE TRIGGER") and statements[1].endswith("END;")
    with pytest.raises(ValueError, match="incomplete"):
        split_statements("CREATE TABLE t (x); CREATE TABLE u (y)")
    # The real migrations split into whole statements (7 tables, 6 indexes).
    assert len(split_statements(MIGRATIONS[0])) == 13


# -- a whole call --------------------------------------------------------------------------
def test_full_call_round_trip(tmp_path):
    path = tmp_path / "calls.db"
    hits = [("profanity.gaesaekki", "profanity", 2, "개새끼", 4, 7, "개새끼"),
            ("threat.visit", "threat", 3, "집 찾아가다", 12, 18, "집 찾아간다")]

    async def record():
        async with Store.open(path) as store:
            await store.ensure_ruleset(RULES_VERSION, "/etc/callguard/rules.toml", RULES_TEXT,
                                       used_at=T0 - 60)
            await store.ensure_ruleset(RULES_VERSION, "/elsewhere.toml", RULES_TEXT)  # no-op
            call_id = await new_call(store, rules_version=RULES_VERSION)
            await store.append_audio(call_id, "caller", 0, pcm(1, 2, 3))
            await store.append_audio(call_id, "counselor", 0, pcm(-1, -2))
            u1 = await store.add_utterance(call_id, "caller", 1.25, 3.5, TRANSCRIPT, "ok",
                                           asr_s=0.4, lag_s=0.6, hits=hits)
            u2 = await store.add_utterance(call_id, "counselor", 0.5, 1.0, "네 고객님",
                                           "rejected", reason="stock_phrase")
            await store.add_verdict(call_id, 3.5, "notice", None, False, "2 strike(s)")
            await store.add_verdict(call_id, 3.5, "warn", "warning", False, "warning 1/1")
            await store.add_action(call_id, 3.6, "play_prompt", "warning")
            await store.add_action(call_id, 9.0, "hangup", "BYE", ok=False, error="timeout")
            await store.update_call(call_id, flagged=True, stage="warned")
            await store.update_call(call_id, stage="notice")  # stage never goes down
            await store.update_call(call_id, note="검토 완료")
            await store.end_call(call_id, T0 + 9.5, 9.25, "final_notice")
            return call_id, u1, u2

    call_id, u1, u2 = run(record())

    async def read():
        async with Store.open(path) as store:
            return (await store.get_call(call_id), await store.list_calls(),
                    await store.ruleset(RULES_VERSION))

    call, listed, ruleset = run(read())
    assert ruleset == ("/etc/callguard/rules.toml", RULES_TEXT)
    assert (call.id, call.direction, call.source, call.remote) == (call_id, "inbound", "sip",
                                                                   REMOTE)
    assert (call.started_at, call.ended_at, call.duration_s) == (T0, T0 + 9.5, 9.25)
    assert (call.end_reason, call.flagged, call.stage) == ("final_notice", True, "warned")
    assert (call.sample_rate, call.rules_version, call.note) == (8000, RULES_VERSION, "검토 완료")

    # Utterances in call-time order: the counselor's (0.5 s) before the caller's (1.25 s).
    assert [u.id for u in call.utterances] == [u2, u1]
    counselor, caller = call.utterances
    assert (counselor.leg, counselor.text, counselor.status, counselor.reason) == (
        "counselor", "네 고객님", "rejected", "stock_phrase")
    assert counselor.hits == () and counselor.asr_s is None
    assert (caller.leg, caller.start_s, caller.end_s, caller.text) == ("caller", 1.25, 3.5,
                                                                       TRANSCRIPT)
    assert (caller.asr_s, caller.lag_s) == (0.4, 0.6)
    assert [(h.rule_id, h.category, h.severity, h.term, h.start, h.end, h.matched)
            for h in caller.hits] == hits
    assert all(h.utterance_id == u1 for h in caller.hits)
    assert TRANSCRIPT[caller.hits[0].start:caller.hits[0].end] == "개새끼"

    assert [(v.t_s, v.kind, v.prompt, v.hangup, v.reason) for v in call.verdicts] == [
        (3.5, "notice", None, False, "2 strike(s)"), (3.5, "warn", "warning", False,
                                                      "warning 1/1")]
    assert [(a.t_s, a.kind, a.detail, a.ok, a.error) for a in call.actions] == [
        (3.6, "play_prompt", "warning", True, None), (9.0, "hangup", "BYE", False, "timeout")]

    assert len(listed) == 1
    assert listed[0].id == call_id and listed[0].remote == REMOTE and listed[0].flagged


def test_list_calls_newest_first_flagged_only_and_limit(tmp_path):
    async def go():
        async with Store.open(tmp_path / "calls.db") as store:
            ids = [await new_call(store, started_at=T0 + i) for i in range(5)]
            await store.update_call(ids[1], flagged=True)
            await store.update_call(ids[3], flagged=True)
            await store.update_call(ids[3], flagged=False)  # a supervisor may unflag
            await store.update_call(ids[4], flagged=True)
            return (ids, [c.id for c in await store.list_calls()],
                    [c.id for c in await store.list_calls(flagged_only=True)],
                    [c.id for c in await store.list_calls(limit=2)])

    ids, everything, flagged, latest = run(go())
    assert everything == ids[::-1]
    assert flagged == [ids[4], ids[1]]
    assert latest == [ids[4], ids[3]]


def test_an_utterance_and_its_hits_are_stored_whole_or_not_at_all(tmp_path):
    async def go():
        async with Store.open(tmp_path / "calls.db") as store:
            call_id = await new_call(store)
            bad_hits = [("a", "insult", 1, "바보", 0, 2, "바보"),
                        ("b", "insult", 1, "멍청", 5, 3, "멍청")]  # end < start: CHECK fails
            with pytest.raises(StoreError, match="CHECK constraint failed"):
                await store.add_utterance(call_id, "caller", 0.0, 1.0, "바보 멍청이", "ok",
                                          hits=bad_hits)
            with pytest.raises(ValueError, match="rule_id, category"):
                await store.add_utterance(call_id, "caller", 0.0, 1.0, "바보", "ok",
                                          hits=[("a", "insult", 1)])
            return (await store.get_call(call_id)).utterances

    assert run(go()) == ()


def test_concurrent_writers_do_not_split_transactions(tmp_path):
    async def go():
        async with Store.open(tmp_path / "calls.db") as store:
            call_id = await new_call(store)
            hit = ("p", "profanity", 1, "씨발", 0, 2, "씨발")
            await asyncio.gather(
                *(store.add_utterance(call_id, "caller", i, i + 0.5, "씨발", "ok",
                                      hits=[hit, hit]) for i in range(20)),
                *(store.append_audio(call_id, "caller", i * 4, pcm(i, i, i, i))
                  for i in range(20)))
            return await store.get_call(call_id), await store.read_audio(call_id, "caller")

    call, audio = run(go())
    assert len(call.utterances) == 20
    assert all(len(u.hits) == 2 for u in call.utterances)
    assert audio == b"".join(pcm(i, i, i, i) for i in range(20))


def test_call_and_argument_errors(tmp_path):
    async def go():
        async with Store.open(tmp_path / "calls.db") as store:
            call_id = await new_call(store)
            with pytest.raises(ValueError, match="even"):
                await store.append_audio(call_id, "caller", 0, b"\x01\x02\x03")
            with pytest.raises(ValueError, match="even"):
                await store.append_audio(call_id, "caller", 0, b"")
            with pytest.raises(ValueError, match="leg must be one of caller, counselor"):
                await store.append_audio(call_id, "agent", 0, pcm(1))
            with pytest.raises(ValueError, match="direction"):
                await new_call(store, direction="sideways")
            with pytest.raises(ValueError, match="kind"):
                await store.add_verdict(call_id, 1.0, "shout", None, False, "x")
            with pytest.raises(ValueError, match="does not hash"):
                await store.ensure_ruleset("0" * 64, "rules.toml", RULES_TEXT)
            with pytest.raises(StoreError, match="no rules version"):
                await store.ruleset("0" * 64)
            with pytest.raises(StoreError, match="FOREIGN KEY"):  # rules must be stored first
                await new_call(store, rules_version=RULES_VERSION)
            await store.append_audio(call_id, "caller", 0, pcm(1))
            with pytest.raises(StoreError, match="UNIQUE"):  # same leg, same start
                await store.append_audio(call_id, "caller", 0, pcm(2))

            with pytest.raises(CallNotFoundError) as missing:
                await store.get_call(999)
            assert isinstance(missing.value, KeyError)
            assert str(missing.value) == "no call with id 999 in the call store"
            with pytest.raises(CallNotFoundError):
                await store.append_audio(999, "caller", 0, pcm(1))
            with pytest.raises(CallNotFoundError):
                await store.update_call(999, flagged=True)
            with pytest.raises(CallNotFoundError):
                await store.read_audio(999, "caller")

            await store.end_call(call_id, T0 + 1, 1.0, "caller_hangup")
            with pytest.raises(StoreError, match="already ended"):
                await store.end_call(call_id, T0 + 2, 2.0, "counselor_hangup")
            return store, (await store.get_call(call_id)).end_reason

    store, end_reason = run(go())
    assert end_reason == "caller_hangup"
    with pytest.raises(StoreError, match="closed"):
        run(store.list_calls())


# -- audio -----------------------------------------------------------------------------------
def test_read_audio_fills_gaps_with_silence_and_keeps_the_timeline(tmp_path):
    async def go():
        async with Store.open(tmp_path / "calls.db") as store:
            call_id = await new_call(store)
            # Appended out of order; samples 3-4 and 7 never arrived.
            await store.append_audio(call_id, "caller", 5, pcm(50, 60))
            await store.append_audio(call_id, "caller", 0, pcm(1, 2, 3))
            await store.append_audio(call_id, "caller", 8, pcm(80))
            return (await store.read_audio(call_id, "caller"),
                    await store.read_audio(call_id, "counselor"))

    caller, counselor = run(go())
    assert caller == pcm(1, 2, 3, 0, 0, 50, 60, 0, 80)
    assert counselor == b""


def test_export_wav_is_stereo_caller_left_counselor_right(tmp_path):
    wav_path = tmp_path / "out" / "call.wav"

    async def go():
        async with Store.open(tmp_path / "calls.db") as store:
            call_id = await new_call(store, sample_rate=16000)
            await store.append_audio(call_id, "caller", 0, pcm(100, -200, 300))
            await store.append_audio(call_id, "caller", 4, pcm(32767))  # gap at sample 3
            await store.append_audio(call_id, "counselor", 1, pcm(-32768, 7))
            return await store.export_wav(call_id, wav_path)

    frames = run(go())
    assert frames == 5
    with wave.open(str(wav_path), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()) == (
            2, 2, 16000, 5)
        data = w.readframes(5)
    samples = struct.unpack("<10h", data)
    assert samples[0::2] == (100, -200, 300, 0, 32767)  # left: caller
    assert samples[1::2] == (0, -32768, 7, 0, 0)  # right: counselor, padded
    assert not list(wav_path.parent.glob(".*.part"))  # no temporary file left behind


# -- crash recovery --------------------------------------------------------------------------
def test_calls_left_open_by_a_crash_are_recovered_as_interrupted(tmp_path):
    path = tmp_path / "calls.db"

    async def crash():
        store = await Store.open(path)
        open_call = await new_call(store, started_at=T0)
        silent_call = await new_call(store, started_at=T0 + 100)
        done_call = await new_call(store, started_at=T0 + 200)
        await store.end_call(done_call, T0 + 210, 10.0, "caller_hangup")
        # 2.5 s of caller audio and 3 s of counselor audio at 8 kHz, in 1 s chunks.
        for i in range(3):
            await store.append_audio(open_call, "counselor", i * 8000, bytes(16000))
        await store.append_audio(open_call, "caller", 0, bytes(16000))
        await store.append_audio(open_call, "caller", 8000, bytes(24000))
        await store.close()  # no end_call: the agent "crashed"
        return open_call, silent_call, done_call

    open_call, silent_call, done_call = run(crash())

    async def restart():
        async with Store.open(path, recover=True, now=T0 + 86_400) as store:
            again = await store.recover_interrupted(T0 + 90_000)  # nothing left to do
            calls = {c: await store.get_call(c) for c in (open_call, silent_call, done_call)}
            return store.recovered, again, calls

    recovered, again, calls = run(restart())
    assert recovered == (open_call, silent_call)
    assert again == []
    assert (calls[open_call].end_reason, calls[open_call].duration_s,
            calls[open_call].ended_at) == ("interrupted", 3.0, T0 + 3.0)
    assert (calls[silent_call].end_reason, calls[silent_call].duration_s,
            calls[silent_call].ended_at) == ("interrupted", 0.0, T0 + 100)
    assert (calls[done_call].end_reason, calls[done_call].duration_s) == ("caller_hangup", 10.0)


# -- privacy ---------------------------------------------------------------------------------
def test_transcripts_and_numbers_never_reach_the_log(tmp_path, caplog):
    # DEBUG for every logger, aiosqlite's included: stricter than the INFO promise.
    caplog.set_level(logging.DEBUG)

    async def go():
        async with Store.open(tmp_path / "calls.db", recover=True) as store:
            await store.ensure_ruleset(RULES_VERSION, "rules.toml", RULES_TEXT)
            call_id = await new_call(store, rules_version=RULES_VERSION)
            await store.add_utterance(call_id, "caller", 0.0, 2.0, TRANSCRIPT, "ok",
                                      hits=[("p", "profanity", 2, "개새끼", 4, 7, "개새끼")])
            await store.update_call(call_id, note=f"{REMOTE} 재발신")
            with pytest.raises(StoreError):  # an error message must not quote it either
                await store.add_utterance(call_id, "caller", 0.0, 2.0, TRANSCRIPT, "ok",
                                          hits=[("p", "profanity", 2, "개새끼", 9, 1, "개새끼")])
            call = await store.get_call(call_id)
            await store.list_calls()
            logging.getLogger("test").info("reviewed %r %r", call, call.utterances)
            return call_id

    call_id = run(go())
    text = caplog.text + "\n".join(str(r.args) for r in caplog.records)
    assert "aiosqlite" in {r.name for r in caplog.records}  # the requests were logged...
    assert f"call {call_id} created" in caplog.text
    # (The rule's term may be logged: it comes from the rules file, not from the caller.)
    for secret in (TRANSCRIPT, "너네 집", REMOTE, "9876", "재발신"):
        assert secret not in text  # ...but not their values
    assert "<10 SQL parameter(s)>" in caplog.text  # the utterance insert, values hidden
