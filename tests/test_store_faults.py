"""Store faults (issue 13, finding 7): the real engine on the in-memory line, on a stepped
clock, writing into a real SQLite file that fails under it: the disk fills up mid-call
(a 2 MB tmpfs), the store's file system is read-only (a tmpfs mounted ``ro``; Linux refuses
to remount a file system read-only while the store holds its file open for writing, so the
agent starts on it read-only and it becomes writable mid-call), the store file is deleted
mid-call, and the file has a damaged page at start.

Each test counts samples: every sample of the caller leg that reached the agent (what the
far end sent, up to where the agent read it) is in the store after recovery, the call's
row is closed, and what was recognised during the fault (transcript, verdict, prompt) is
there, once. Needs root for ``mount`` (CI runs as root); skipped otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import subprocess
from pathlib import Path

import numpy as np
import pytest
from fakerig import ABUSE_HZ, ABUSE_TEXT, RATE, FakeRig, rules_text
from synth import call_audio

from callguard.store import Store

CALL_S = 15.0
BURST = (5.0, 1.2)  # the caller's abusive phrase: recognised at ~6.6 s, warned
CALLER = call_audio([(BURST[0], BURST[1], ABUSE_HZ)], CALL_S)


def _mount(args: list[str]) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True)


@pytest.fixture
def tmpfs(tmp_path):
    """``make(size)``: a fresh tmpfs of ``size`` under ``tmp_path``; unmounted after (ask
    for it before ``rig``, so that the engine has stopped first)."""
    mounts: list[Path] = []

    def make(size: str = "2m") -> Path:
        d = tmp_path / f"mnt{len(mounts)}"
        d.mkdir()
        try:
            _mount(["-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(d)])
        except (OSError, subprocess.CalledProcessError) as exc:
            pytest.skip(f"cannot mount a tmpfs (needs root): {exc}")
        mounts.append(d)
        return d

    yield make
    for d in reversed(mounts):
        subprocess.run(["mount", "-o", "remount,rw", str(d)], capture_output=True)
        subprocess.run(["umount", "-l", str(d)], capture_output=True)


@pytest.fixture
def rig(tmp_path):
    rigs: list[FakeRig] = []

    def make(db: Path) -> FakeRig:
        home = tmp_path / f"rig{len(rigs)}"
        home.mkdir()
        r = FakeRig(home, rules_text("10m"), auto_answer=True, stepped=True,
                    spool_dir=tmp_path / "spool")  # a second place, not the store's disk
        r.db = db
        r.engine.store_path = db
        rigs.append(r)
        return r

    yield make
    for r in rigs:
        with contextlib.suppress(RuntimeError):  # stopped by the test already
            r.stop()


def read_back(db: Path, store_id: int):
    async def read():
        async with Store.open(db) as store:
            rec = await store.get_call(store_id)
            caller = await store.read_audio(store_id, "caller")
            sealed, current = await store.check_recording(store_id)
            return rec, np.frombuffer(caller, "<i2"), sealed, current
    return asyncio.run(read())


def open_calls(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT count(*) FROM calls WHERE ended_at IS NULL").fetchone()[0]


def check_call(r: FakeRig, call, store_id: int | None) -> int:
    """The call is whole in the store; returns the caller samples kept."""
    assert store_id is not None
    rec, caller, sealed, current = read_back(r.db, store_id)
    reached = r.runner(call).rpos  # caller samples the agent read off the line
    sent = np.zeros(reached, np.int16)
    sent[: min(reached, CALLER.size)] = CALLER[:reached]
    assert reached >= CALLER.size  # the whole call reached the agent
    assert caller.size == reached and np.array_equal(caller, sent)
    assert rec.ended_at is not None and rec.end_reason == "caller_hangup"
    assert sealed == current  # sealed after the last sample was written
    assert open_calls(r.db) == 0
    # Recognised while the store failed: the transcript, the warning and its prompt, once.
    heard = [u for u in rec.utterances if u.text == ABUSE_TEXT]
    assert len(heard) == 1 and heard[0].hits
    assert [v.kind for v in rec.verdicts] == ["notice", "warn"]
    assert [a.kind for a in rec.actions] == ["play_prompt"]
    assert rec.stage == "warned" and rec.flagged
    return caller.size


def store_events(r: FakeRig) -> list[dict]:
    return [ev.data for ev in r.events if ev.kind == "store"]


def fill(directory: Path) -> Path:
    """Fill the file system holding ``directory`` to the last byte."""
    path = directory / "filler"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)
    return path


def callguard_errors(caplog) -> list[logging.LogRecord]:
    return [rec for rec in caplog.records
            if rec.levelno >= logging.ERROR and rec.name.startswith("callguard")]


def test_disk_full_through_the_end_of_a_call_loses_nothing(tmpfs, rig, caplog):
    caplog.set_level(logging.ERROR)
    mnt = tmpfs("8m")  # the new store's WAL alone takes about 2 MB
    r = rig(mnt / "calls.db")
    r.engine.start()
    call = r.answered()
    call.far_play(CALLER, at_s=0.0)
    r.advance(3.0)
    filler = fill(mnt)  # full from 3 s to after the end of the call
    r.advance(CALL_S - 3.0 + 0.2)
    call.far_hangup()
    r.advance(0.02)  # the runner sees it at its next step
    ended = r.wait("ended")
    problem = r.wait("store", pred=lambda ev: not ev.data["ok"]).data["problem"]
    assert "full" in problem
    r.advance(5.0)  # a while with the disk still full (nothing to wait for on this clock)
    errors = len(callguard_errors(caplog))
    assert errors <= 3, [rec.getMessage()[:100] for rec in callguard_errors(caplog)]
    filler.unlink()  # room again
    r.wait("store", timeout=30, pred=lambda ev: ev.data["ok"])
    store_id = r.engine.spool.store_id(r.runner(call).session.call_id)
    assert ended.data["store_id"] in (None, store_id)
    kept = check_call(r, call, store_id)
    assert kept == r.runner(call).rpos
    assert not list((r.db.parent.parent / "spool").glob("*.journal"))  # all written


def test_read_only_store_at_start_then_writable_mid_call(tmpfs, rig, caplog):
    caplog.set_level(logging.ERROR)
    mnt = tmpfs("20m")
    db = mnt / "calls.db"

    async def earlier_call():  # the store exists, with a call in it
        async with Store.open(db) as store:
            cid = await store.create_call("inbound", "1", "sip", 1.0, None)
            await store.end_call(cid, 2.0, 1.0, "caller_hangup")
    asyncio.run(earlier_call())
    _mount(["-o", "remount,ro", str(mnt)])
    r = rig(db)
    r.engine.start()  # the agent starts on a store it cannot write
    problem = r.wait("store", pred=lambda ev: not ev.data["ok"]).data["problem"]
    assert str(db) in problem
    call = r.answered()
    call.far_play(CALLER, at_s=0.0)
    r.advance(8.0)  # the phrase at 5 s is recognised and warned while read-only
    assert len(callguard_errors(caplog)) <= 3
    _mount(["-o", "remount,rw", str(mnt)])
    r.advance(CALL_S - 8.0 + 0.2)
    call.far_hangup()
    r.advance(0.02)  # the runner sees it at its next step
    r.wait("ended")
    r.wait("store", timeout=30, pred=lambda ev: ev.data["ok"])
    store_id = r.engine.spool.store_id(r.runner(call).session.call_id)
    check_call(r, call, store_id)
    assert store_id == 2  # after the earlier call, in the same file


def test_store_file_deleted_mid_call_is_replaced_and_the_call_kept(rig, tmp_path):
    db = tmp_path / "store" / "calls.db"
    r = rig(db)
    r.engine.start()
    call = r.answered()
    call.far_play(CALLER, at_s=0.0)
    r.advance(4.0)
    for suffix in ("", "-wal", "-shm"):  # someone deletes the store's files
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    r.advance(CALL_S - 4.0 + 0.2)
    call.far_hangup()
    r.advance(0.02)  # the runner sees it at its next step
    r.wait("ended")
    problem = r.wait("store", pred=lambda ev: not ev.data["ok"]).data["problem"]
    assert "deleted" in problem
    r.wait("store", timeout=30, pred=lambda ev: ev.data["ok"])
    store_id = r.engine.spool.store_id(r.runner(call).session.call_id)
    check_call(r, call, store_id)  # from sample 0, in the new file at the same path
    # The next call goes into the new file too, and both survive a restart.
    second = r.answered()
    second.far_play(CALLER[: 3 * RATE], at_s=0.0)
    r.advance(3.2)
    second.far_hangup()
    r.advance(0.02)
    r.wait("ended", pred=lambda ev: ev.call_id == second.call_id)
    r.stop()
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT id, ended_at IS NOT NULL FROM calls").fetchall()
    assert rows == [(1, 1), (2, 1)]


def _damage(db: Path, where: str) -> int:
    """Overwrite one page of the (checkpointed) store with garbage; return its number."""
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'calls'"
                            ).fetchone()[0]
    page = root if where == "interior" else pages
    with db.open("r+b") as f:
        f.seek((page - 1) * page_size)
        f.write(os.urandom(page_size))
    return page


@pytest.mark.parametrize("where", ["interior", "last"])
def test_damaged_store_at_start_is_moved_aside_and_a_new_one_started(rig, tmp_path, where):
    db = tmp_path / "store" / "calls.db"

    async def history():
        async with Store.open(db) as store:
            for n in range(5):
                cid = await store.create_call("inbound", str(n), "sip", 1.0 + n, None)
                for s in range(4):
                    await store.append_audio(cid, "caller", s * 8000, CALLER[:8000].tobytes())
                await store.end_call(cid, 2.0 + n, 4.0, "caller_hangup")
    asyncio.run(history())
    _damage(db, where)
    r = rig(db)
    r.engine.start()  # starts
    problem = r.wait("store", pred=lambda ev: not ev.data["ok"]).data["problem"]
    assert "damaged" in problem and "moved aside" in problem
    aside = [p for p in db.parent.glob("calls.db.corrupt-*")
             if not p.name.endswith(("-wal", "-shm"))]
    assert len(aside) == 1 and aside[0].name in problem  # kept for recovery
    call = r.answered()
    call.far_play(CALLER, at_s=0.0)
    r.advance(CALL_S + 0.2)
    call.far_hangup()
    r.advance(0.02)  # the runner sees it at its next step
    ended = r.wait("ended")
    check_call(r, call, ended.data["store_id"])
    assert ended.data["store_id"] == 1  # the first call of the new store


def test_a_journal_left_by_a_crash_is_replayed_at_start_exactly_once(tmp_path):
    """The spool alone: a journal a crash left (its last record torn) is written at the
    next open, once; replaying it again writes nothing twice."""
    from callguard.store.spool import Journal, SpooledStore

    db, spool = tmp_path / "calls.db", tmp_path / "spool"
    j = Journal(spool)
    pcm = CALLER[:8000].tobytes()
    for kind, f, blob in [
            ("call", {"direction": "inbound", "remote": "1", "source": "sip",
                      "started_at": 5.0, "sample_rate": 8000, "counselor": "kim",
                      "rules": None, "store": "", "call_id": None}, b""),
            ("audio", {"leg": "caller", "start": 0}, pcm),
            ("audio", {"leg": "caller", "start": 8000}, pcm),
            ("utterance", {"leg": "caller", "start_s": 0.1, "end_s": 0.9,
                           "text": ABUSE_TEXT, "status": "ok", "hits": []}, b""),
            ("verdict", {"t_s": 1.0, "kind": "warn", "prompt": "warning", "hangup": False,
                         "reason": "r", "cause": "rules"}, b"")]:
        j.write(j.add(kind, f, blob))
    with j.path.open("ab") as f:  # the crash: half a record
        f.write(b"\0\0\1\0garbage")

    records = j.records()
    assert [r.kind for r in records] == ["call", "audio", "audio", "utterance", "verdict"]

    async def start():
        s = SpooledStore(db, spool)
        await s.open()
        rec = await s.store.get_call(1)
        caller = await s.store.read_audio(1, "caller")
        await s.close()
        return rec, caller, s.recovered

    rec, caller, recovered = asyncio.run(start())
    assert len(caller) // 2 == 16000 and caller == pcm * 2
    assert [u.text for u in rec.utterances] == [ABUSE_TEXT]
    assert [v.kind for v in rec.verdicts] == ["warn"]
    assert recovered == [1] and rec.end_reason == "interrupted"  # no end in the journal
    assert not list(spool.glob("*.journal"))

    async def replay_again():
        async with Store.open(db) as store:
            for r in records:
                await store.apply_spooled(j.id, r.seq, r.kind, r.fields, r.blob, 1)
            return await store.get_call(1), await store.read_audio(1, "caller")
    rec, caller = asyncio.run(replay_again())
    assert len(caller) // 2 == 16000 and len(rec.utterances) == 1 and len(rec.verdicts) == 1
    assert rec.end_reason == "interrupted"
