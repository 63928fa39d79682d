"""The desk's outbox (store schema 6) and its uploader, against the in-memory central
server (:class:`callguard.central.fake.FakeCentral`) and a real SQLite store."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid as uuidlib

import aiosqlite
import pytest
from centralkit import make_call

from callguard.audio.compress import decode
from callguard.central.fake import FakeCentral
from callguard.central.uploader import Uploader, backoff
from callguard.store import Store
from callguard.store.schema import MIGRATIONS, split_statements


def run(coro):
    return asyncio.run(coro)


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_every_call_gets_a_uuid7_made_from_its_start(tmp_path):
    async def go():
        async with Store.open(tmp_path / "d.db") as store:
            a = await make_call(store, started_at=1_765_000_000.25, end=False)
            b = await make_call(store, started_at=1_765_000_000.25, end=False)
            return await store.call_uuid(a), await store.call_uuid(b)

    ua, ub = (uuidlib.UUID(u) for u in run(go()))
    assert ua != ub
    assert ua.version == 7 and ub.version == 7
    assert ua.int >> 80 == 1_765_000_000_250  # the first 48 bits: milliseconds of the start


def test_the_outbox_is_written_with_the_rows_it_names(tmp_path):
    async def go():
        async with Store.open(tmp_path / "d.db") as store:
            running = await make_call(store, end=False, crisis=True, protect=True)
            items = await store.outbox_due(now=1e12)
            assert [(i.kind, i.source) for i in items] == [("alert", "actions"),
                                                           ("alert", "verdicts")]
            await store.audit("counselor-1", "counselor", "supervisor_notified", "300 s",
                              call_id=running)
            await store.audit("counselor-1", "counselor", "login")  # not an alert
            await store.end_call(running, 1e9, 6.0, "caller_hangup", "remote")
            items = await store.outbox_due(now=1e12)
            return [(i.kind, i.source, i.call_id) for i in items]

    assert run(go()) == [("alert", "actions", 1), ("alert", "verdicts", 1),
                         ("alert", "audit_log", 1), ("call", None, 1)]


def test_an_older_store_queues_its_ended_calls_when_it_is_upgraded(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for version, script in enumerate(MIGRATIONS[:5], 1):
        for statement in split_statements(script):
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {version}")
    conn.execute("INSERT INTO calls (direction, remote, source, started_at, ended_at,"
                 " duration_s, end_reason, sample_rate) VALUES"
                 " ('inbound', '1', 'sip', 1000.0, 1010.0, 10, 'caller_hangup', 8000),"
                 " ('inbound', '2', 'sip', 2000.0, NULL, NULL, NULL, 8000)")
    conn.execute("INSERT INTO reviews (call_id, at, reviewer, verdict) VALUES"
                 " (1, 1.0, 'kim', 'note')")
    conn.close()

    async def go():
        async with Store.open(path) as store:
            items = await store.outbox_due(now=1e12)
            uuids = [await store.call_uuid(i) for i in (1, 2)]
            await store.add_review(1, "kim", "crisis_response", "위기 대응 완료")
            return items, uuids, await store.reviews(1)

    items, uuids, reviews = run(go())
    assert [(i.kind, i.call_id) for i in items] == [("call", 1)]  # not the open call
    assert all(uuidlib.UUID(u).version == 7 for u in uuids)
    assert uuidlib.UUID(uuids[0]).int >> 80 == 1_000_000  # from started_at
    assert [r.verdict for r in reviews] == ["note", "crisis_response"]


def test_the_uploader_delivers_calls_with_their_compressed_audio(tmp_path):
    central = FakeCentral()

    async def go():
        async with Store.open(tmp_path / "d.db") as store:
            cid = await make_call(store, seconds=5.0, crisis=True)
            uploader = Uploader(store, central, audio="flac")
            assert await uploader.run_once() == 2
            assert await uploader.run_once() == 0
            return await store.get_call(cid), await store.wav_bytes(cid), uploader

    call, wav, uploader = run(go())
    assert call.synced_at is not None
    sent = central.calls[call.uuid]
    assert sent["audio"]["codec"] == "flac" and sent["audio"]["frames"] == 5 * 8000
    frames = decode(central.blobs[sent["audio"]["sha256"]])
    # FLAC is lossless: the server holds every sample the desk sealed.
    assert frames.tobytes() == wav[44:]
    assert [a["kind"] for a in central.alerts.values()] == ["crisis"]
    assert uploader.stats.calls == 1 and uploader.stats.alerts == 1


def test_a_down_server_is_retried_with_backoff_and_nothing_is_lost(tmp_path):
    central = FakeCentral()
    clock = Clock(2e9)

    async def go():
        async with Store.open(tmp_path / "d.db") as store:
            for seed in range(3):
                await make_call(store, seconds=2.0, seed=seed)
            uploader = Uploader(store, central, audio="opus", clock=clock)
            central.down = True
            assert await uploader.run_once() == 0
            assert (await store.outbox_counts())["failing"] == 1
            central.down = False
            assert await uploader.run_once() == 2  # the failed one waits for its back-off
            clock.t += backoff(0) * 1.3
            assert await uploader.run_once() == 1
            return await store.outbox_counts()

    counts = run(go())
    assert counts == {"pending": 0, "done": 3, "failing": 0}
    assert len(central.calls) == 3 and central.deliveries == 3


def test_a_batch_delivered_twice_is_one_call_on_the_server(tmp_path):
    central = FakeCentral()

    async def go():
        async with Store.open(tmp_path / "d.db") as store:
            await make_call(store, seconds=2.0)
            uploader = Uploader(store, central, audio="opus")
            await uploader.run_once()
            # As if the desk died after the server answered but before it noted it.
            async with aiosqlite.connect(tmp_path / "d.db") as raw:
                await raw.execute("UPDATE outbox SET done_at = NULL")
                await raw.commit()
            await uploader.run_once()

    run(go())
    assert central.deliveries == 2 and len(central.calls) == 1


def test_backoff_doubles_to_five_minutes():
    import random

    rng = random.Random(1)
    waits = [backoff(n, rng) for n in range(12)]
    assert 1.0 <= waits[0] < 1.2 and 2.0 <= waits[1] < 2.4
    assert all(300 <= w <= 360 for w in waits[9:])


def test_a_tampered_recording_is_not_uploaded(tmp_path):
    central = FakeCentral()

    async def go():
        async with Store.open(tmp_path / "d.db") as store:
            cid = await make_call(store, seconds=2.0)
            async with aiosqlite.connect(tmp_path / "d.db") as raw:
                await raw.execute("UPDATE audio_chunks SET pcm = zeroblob(length(pcm))"
                                  " WHERE call_id = ? AND start_sample = 0", (cid,))
                await raw.commit()
            uploader = Uploader(store, central)
            await uploader.run_once()
            return uploader, await store.outbox_counts()

    uploader, counts = run(go())
    assert not central.calls and counts["failing"] == 1
    assert "seal" in (uploader.stats.last_error or "")


@pytest.mark.parametrize("payload_change", [
    {"uuid": "not-a-uuid"}, {"flagged": "yes"}, {"sample_rate": 0}, {"wire": 99}])
def test_a_payload_that_does_not_fit_is_refused_with_its_field(payload_change):
    from callguard.central.wire import WireError, check_call

    good = {"wire": 1, "uuid": str(uuidlib.uuid4()), "desk_call_id": 1, "counselor": "c",
            "direction": "inbound", "source": "sip", "remote": "1", "started_at": 1.0,
            "ended_at": 2.0, "duration_s": 1.0, "end_reason": "caller_hangup",
            "hung_up_by": None, "flagged": False, "stage": "none", "rules_version": None,
            "sample_rate": 8000, "recording_sha256": None, "audio": None,
            "utterances": [], "verdicts": [], "actions": []}
    check_call(good)
    with pytest.raises(WireError):
        check_call({**good, **payload_change})
