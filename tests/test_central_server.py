"""The central server for real: PostgreSQL (Debian's, in a private cluster started here),
``callguard server run`` in its own process over HTTPS with a pinned certificate, and desks
with real SQLite stores syncing through the real uploader.

Faults: the server killed with -9 in the middle of an upload and restarted, PostgreSQL
restarted while desks sync, the same batch delivered twice. Afterwards every call,
utterance, hit, verdict, action and audio sample on the desks is on the server exactly once
and the audio checks out against the desks' seals."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import threading
import time

import aiosqlite
import psycopg
import pytest
from centralkit import ServerProcess, desk_counts, make_call, wait_until

from callguard.audio.compress import decode, encode, seal_of
from callguard.central.client import CHUNK, HttpCentral
from callguard.central.link import CentralLink
from callguard.central.settings import CentralSettings
from callguard.central.uploader import Uploader
from callguard.server.localpg import LocalPostgres
from callguard.server.trial import TrialError
from callguard.store import Store

pytestmark = [pytest.mark.slow]


def settings_for(server: ServerProcess, token: str, tmp, audio: str = "flac"):
    return CentralSettings(server.url, token, server.fingerprint, audio=audio,
                           cert_cache=tmp / "central.pem")


def server_counts(pg: LocalPostgres) -> dict[str, int]:
    with psycopg.connect(pg.dsn) as conn:
        return {table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                for table in ("calls", "utterances", "hits", "verdicts", "actions", "alerts")}


def test_desks_sync_through_server_and_database_faults_nothing_lost_or_doubled(
        server, pg, tmp_path):
    desks = {f"desk-{i}": tmp_path / f"desk-{i}" / "calls.db" for i in range(3)}
    tokens = {name: server.desk(name) for name in desks}
    audio = {"desk-0": "flac", "desk-1": "flac", "desk-2": "opus"}

    async def fill(name, path, n):
        path.parent.mkdir(parents=True, exist_ok=True)
        async with Store.open(path) as store:
            for k in range(n):
                await make_call(store, seconds=4.0 + k, seed=10 * int(name[-1]) + k,
                                counselor=f"counselor-{name[-1]}", flagged=k % 2 == 0,
                                crisis=k == 1, protect=k == 2)
            # One long call whose recording takes several upload pieces.
            await make_call(store, seconds=90.0, seed=700 + int(name[-1]),
                            counselor=f"counselor-{name[-1]}")

    for name, path in desks.items():
        asyncio.run(fill(name, path, 4))

    # 1. The server dies with -9 half way through an upload; the desk resumes it.
    async def half_upload():
        async with Store.open(desks["desk-0"]) as store:
            long_call = (await store.outbox_due(1e12, kinds=("call",)))[-1].call_id
            wav = await store.wav_bytes(long_call)
        enc = encode(wav, "flac")
        assert len(enc.data) > 2 * CHUNK
        central = HttpCentral(settings_for(server, tokens["desk-0"], tmp_path / "desk-0"))
        try:
            client = await central._http()
            r = await client.patch(f"/api/v1/blobs/{enc.sha256}", content=enc.data[:CHUNK],
                                   headers={"Upload-Offset": "0",
                                            "Upload-Length": str(len(enc.data))})
            assert r.status_code == 204
        finally:
            await central.aclose()
        return enc.sha256

    sha = asyncio.run(half_upload())
    server.kill()
    server.start()
    with server.client(tokens["desk-0"]) as c:
        r = c.head(f"/api/v1/blobs/{sha}")
        assert r.status_code == 404 and int(r.headers["upload-offset"]) == CHUNK

    # 2. All three desks sync at once; PostgreSQL restarts under them.
    threads = [CentralLink(path, (lambda n=name: HttpCentral(settings_for(
        server, tokens[n], desks[n].parent))), rules_target=None, rules_base=path.parent,
        audio=audio[name], idle_s=0.2) for name, path in desks.items()]
    for t in threads:
        t.start()
    wait_until(lambda: server_counts(pg)["calls"] >= 2, 60, "the first calls")
    pg.stop()
    time.sleep(2.0)
    pg.start()
    server.stop()  # then the server is unreachable for a while: the desks back off
    time.sleep(3.0)
    server.start()

    async def pending(path):
        async with Store.open(path) as store:
            return (await store.outbox_counts())["pending"]

    wait_until(lambda: all(asyncio.run(pending(p)) == 0 for p in desks.values()), 240,
               "every outbox to empty")
    for t in threads:
        t.stop()
    failures = sum(t.stats.failures for t in threads)

    # 3. The same batch delivered twice (a desk that died before noting the server's answer).
    async def redeliver():
        async with aiosqlite.connect(desks["desk-1"]) as raw:
            await raw.execute("UPDATE outbox SET done_at = NULL")
            await raw.commit()
        central = HttpCentral(settings_for(server, tokens["desk-1"], tmp_path / "desk-1"))
        try:
            async with Store.open(desks["desk-1"]) as store:
                up = Uploader(store, central, audio="flac")
                while await up.run_once():
                    pass
                return up.stats.calls, await store.outbox_counts()
        finally:
            await central.aclose()

    again, counts_after = asyncio.run(redeliver())
    assert again == 5 and counts_after["pending"] == 0

    # Every row on the desks is on the server exactly once.
    async def totals():
        total: dict[str, int] = {}
        for path in desks.values():
            async with Store.open(path) as store:
                for key, value in (await desk_counts(store)).items():
                    total[key] = total.get(key, 0) + value
        return total

    on_desks = asyncio.run(totals())
    on_server = server_counts(pg)
    alerts_expected = 3 * 2  # per desk: one crisis action, one protect press
    print(json.dumps({"desks": on_desks, "server": on_server, "failures_retried": failures}))
    for key in ("calls", "utterances", "hits", "verdicts", "actions"):
        assert on_server[key] == on_desks[key], key
    assert on_server["alerts"] == alerts_expected

    # Every recording is there and checks out: FLAC against the desk's seal, sample for
    # sample; Opus by its frame count.
    async def seals():
        out = {}
        for name, path in desks.items():
            async with Store.open(path) as store:
                for s in await store.list_calls(limit=100):
                    rec = await store.get_call(s.id)
                    wav = await store.wav_bytes(s.id)
                    out[rec.uuid] = (name, rec.recording_sha256, (len(wav) - 44) // 4)
        return out

    sup_token = (server.user("sup", "supervisor"), server.login("sup"))[1]
    with server.client(sup_token) as c, psycopg.connect(pg.dsn) as conn:
        for call_uuid, (name, seal, frames) in asyncio.run(seals()).items():
            codec, verified = conn.execute(
                "SELECT audio_codec, audio_verified FROM calls WHERE uuid = %s",
                (call_uuid,)).fetchone()
            data = c.get(f"/api/v1/calls/{call_uuid}/audio").content
            assert codec == audio[name]
            if codec == "flac":
                assert verified == "seal" and seal_of(data, "flac", 8000) == seal
            else:
                assert verified == "blob" and len(decode(data)) == frames
        blob_files = [p for p in (server.dir / "blobs").rglob("*")
                      if p.is_file() and "partial" not in p.parts]
        distinct = conn.execute("SELECT count(DISTINCT audio_sha256) FROM calls").fetchone()[0]
        assert distinct == on_server["calls"]  # every recording here differs
        assert len(blob_files) == distinct  # one file each, none doubled


def test_roles_and_the_access_log(server, pg, tmp_path):
    token = server.desk("desk-a")
    other = server.desk("desk-b")
    path_a, path_b = tmp_path / "a" / "calls.db", tmp_path / "b" / "calls.db"

    async def fill_and_sync(path, tok, counselor):
        path.parent.mkdir(parents=True, exist_ok=True)
        async with Store.open(path) as store:
            await make_call(store, seconds=3.0, counselor=counselor)
            central = HttpCentral(settings_for(server, tok, path.parent, audio="opus"))
            try:
                assert await Uploader(store, central, audio="opus").run_once() == 1
            finally:
                await central.aclose()

    asyncio.run(fill_and_sync(path_a, token, "kim"))
    asyncio.run(fill_and_sync(path_b, other, "lee"))
    server.user("kim", "counselor", team="1팀")
    server.user("lee", "counselor", team="2팀")
    server.user("sup", "supervisor")
    server.user("boss", "admin")
    kim, sup, boss = server.login("kim"), server.login("sup"), server.login("boss")

    with server.client(sup) as c:
        calls = c.get("/api/v1/calls", params={"flagged": "1"}).json()["calls"]
        assert {x["desk"] for x in calls} == {"desk-a", "desk-b"}
        lee_call = next(x["uuid"] for x in calls if x["counselor"] == "lee")
        kim_call = next(x["uuid"] for x in calls if x["counselor"] == "kim")
        assert c.get("/api/v1/calls", params={"desk": "desk-b"}).json()["calls"][0][
            "uuid"] == lee_call
        team = c.get("/api/v1/calls", params={"team": "1팀"}).json()["calls"]
        assert [x["uuid"] for x in team] == [kim_call]
        assert c.get("/api/v1/choices").json()["teams"] == ["1팀", "2팀"]
        detail = c.get(f"/api/v1/calls/{lee_call}").json()
        assert detail["utterances"][0]["hits"][0]["category"] == "insult"
        assert c.get(f"/api/v1/calls/{lee_call}/audio").status_code == 200
        assert c.post(f"/api/v1/calls/{lee_call}/export").status_code == 200
        assert c.get("/api/v1/access-log").status_code == 403  # admins only
    with server.client(kim) as c:
        mine = c.get("/api/v1/calls").json()["calls"]
        assert [x["uuid"] for x in mine] == [kim_call]
        assert c.get(f"/api/v1/calls/{lee_call}").status_code == 404
        assert c.get(f"/api/v1/calls/{lee_call}/audio").status_code == 404
        assert c.get(f"/api/v1/calls/{kim_call}").status_code == 200
    with server.client(token) as c:  # a desk token reads no calls
        assert c.get("/api/v1/calls").status_code == 403
        assert c.get(f"/api/v1/calls/{kim_call}").status_code == 403
        assert c.get("/api/v1/alerts").status_code == 403
    with server.client("cgd_not-a-token") as c:
        assert c.get("/api/v1/calls").status_code == 401
    with server.client(boss) as c:
        log = c.get("/api/v1/access-log", params={"call": lee_call}).json()["entries"]
    assert sorted((e["actor"], e["action"]) for e in log) == [
        ("sup", "export"), ("sup", "playback"), ("sup", "view")]
    with psycopg.connect(pg.dsn) as conn, pytest.raises(psycopg.errors.RaiseException):
        conn.execute("DELETE FROM access_log")


def test_audio_that_does_not_match_the_seal_is_refused(server, pg, tmp_path):
    token = server.desk("desk-x")
    path = tmp_path / "x" / "calls.db"
    path.parent.mkdir()

    async def go():
        async with Store.open(path) as store:
            cid = await make_call(store, seconds=3.0)
            good = encode(await store.wav_bytes(cid), "flac")
            other = await make_call(store, seconds=3.0, seed=99)
            wrong = encode(await store.wav_bytes(other), "flac")
            from callguard.central.wire import AudioRef, call_payload
            rec = await store.get_call(cid)
        central = HttpCentral(settings_for(server, token, path.parent))
        try:
            await central.upload_blob(wrong.sha256, wrong.data)
            payload = call_payload(rec, rec.uuid, AudioRef(wrong.sha256, "flac",
                                                           len(wrong.data), wrong.frames))
            client = await central._http()
            r = await client.post("/api/v1/calls", json=payload)
            bad_blob = await client.patch(
                f"/api/v1/blobs/{good.sha256}", content=wrong.data,
                headers={"Upload-Offset": "0", "Upload-Length": str(len(wrong.data))})
            return r.status_code, r.json(), bad_blob.status_code
        finally:
            await central.aclose()

    status, body, blob_status = asyncio.run(go())
    assert status == 422 and "seal" in body["error"]
    assert blob_status == 409  # bytes that do not hash to the name are discarded
    assert server_counts(pg)["calls"] == 0


def test_a_crisis_alert_reaches_a_signed_in_supervisor_within_two_seconds(
        server, pg, tmp_path):
    token = server.desk("desk-live")
    server.user("sup", "supervisor")
    sup = server.login("sup")
    path = tmp_path / "live" / "calls.db"
    path.parent.mkdir()
    asyncio.run(_open_and_close(path))
    got: list[tuple[float, dict]] = []
    ready = threading.Event()

    def listen():
        with server.client(sup) as c, c.stream("GET", "/api/v1/alerts/stream",
                                              timeout=30) as r:
            ready.set()
            event = None
            for line in r.iter_lines():
                if line.startswith("event:"):
                    event = line.split(":", 1)[1].strip()
                elif line.startswith("data:") and event == "alert":
                    got.append((time.time(), json.loads(line[5:])))
                    return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    assert ready.wait(10)
    uploader = CentralLink(path, lambda: HttpCentral(settings_for(server, token,
                                                                  path.parent)),
                           rules_target=None, rules_base=path.parent, idle_s=0.2)
    uploader.start()
    try:
        async def raise_crisis():
            async with Store.open(path) as store:
                cid = await make_call(store, seconds=2.0, end=False)
                raised = time.time()
                await store.add_action(cid, 1.5, "alert", "crisis: self-harm")
                return raised

        raised = asyncio.run(raise_crisis())
        uploader.kick()
        listener.join(10)
    finally:
        uploader.stop()
    assert got, "no alert reached the supervisor"
    at, alert = got[0]
    assert alert["kind"] == "crisis" and alert["desk"] == "desk-live"
    assert alert["counselor"] == "counselor-1"
    print(json.dumps({"alert_latency_s": round(at - raised, 3)}))
    assert at - raised <= 2.0
    with server.client(sup) as c:
        listing = c.get("/api/v1/alerts").json()
        assert listing["unseen"] == 1
        c.post("/api/v1/alerts/seen", json={"upto": listing["alerts"][-1]["id"]})
        assert c.get("/api/v1/alerts").json()["unseen"] == 0


async def _open_and_close(path):
    async with Store.open(path):
        pass


def test_health_and_metrics(server):
    with server.client() as c:
        assert c.get("/healthz").json() == {"ok": True}
        text = c.get("/metrics").text
    assert "callguard_desks_online" in text and "callguard_sync_lag_seconds" in text


def test_server_refuses_a_database_with_an_old_schema(pg, tmp_path):
    with psycopg.connect(pg.dsn.replace("/callguard?", "/postgres?"), autocommit=True) as c:
        c.execute("DROP DATABASE IF EXISTS callguard WITH (FORCE)")
        c.execute("CREATE DATABASE callguard")
    srv = ServerProcess(tmp_path / "srv", pg.dsn)
    with psycopg.connect(pg.dsn, autocommit=True) as c:
        c.execute("UPDATE alembic_version SET version_num = '0000'")
    with pytest.raises(TrialError, match="callguard server migrate"):
        srv.start(timeout=20)
    shutil.rmtree(tmp_path / "srv", ignore_errors=True)


def _write_tone(path, seconds=0.5):
    import wave

    import numpy as np

    pcm = (np.sin(np.arange(int(8000 * seconds)) / 8000 * 2 * np.pi * 440) * 8000)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(pcm.astype("<i2").tobytes())


POLL_S = 3.0  # the desks' rules poll in this test (30 s by default)


def test_published_rules_reach_every_desk_and_a_broken_version_is_refused_by_each(
        server, pg, tmp_path):
    from callguard.central.link import CentralLink
    from callguard.config import DEFAULT_RULES

    # The server checks prompts against its own folder, which has a prompt the desks lack:
    # a version can pass the server's check and still fail on every desk.
    server_prompts = tmp_path / "server-prompts"
    server_prompts.mkdir()
    _write_tone(server_prompts / "only-on-server.wav")
    with server.config.open("a", encoding="utf-8") as f:
        f.write(f'rules_dir = "{server_prompts}"\n')
    server.stop()
    server.start()
    server.user("boss", "admin")
    boss = server.login("boss")
    base = DEFAULT_RULES.read_text(encoding="utf-8")
    good = base.replace('name = "', 'name = "central v2 · ', 1)
    broken_on_desks = good.replace(
        "[prompts.warning]\n", '[prompts.warning]\nfile = "only-on-server.wav"\n', 1)
    assert broken_on_desks != good

    with server.client(boss) as c:
        r = c.post("/api/v1/rules", json={"text": "format = 1\n[[rule]]\nid = 3\n",
                                          "note": "typo"})
        assert r.status_code == 400 and r.json()["problems"]  # never published
        r = c.post("/api/v1/rules", json={"text": good, "note": "v2"})
        assert r.status_code == 201, r.text
        v2 = r.json()["version"]

    names = [f"desk-r{i}" for i in range(3)]
    tokens = {n: server.desk(n) for n in names}
    links = {}
    for n in names:
        d = tmp_path / n
        d.mkdir()
        asyncio.run(_open_and_close(d / "calls.db"))
        links[n] = CentralLink(
            d / "calls.db",
            lambda n=n, d=d: HttpCentral(settings_for(server, tokens[n], d)),
            rules_target=d / "central-rules.toml", rules_base=DEFAULT_RULES.parent,
            poll_s=POLL_S, idle_s=0.2)
        links[n].start()
    try:
        wait_until(lambda: all(link.state["rules"] == v2 for link in links.values()), 90,
                   "every desk to run v2")
        for n in names:
            assert (tmp_path / n / "central-rules.toml").read_text(encoding="utf-8") == good
        with server.client(boss) as c:
            r = c.post("/api/v1/rules", json={"text": broken_on_desks, "note": "v3"})
            assert r.status_code == 201, r.text
            v3 = r.json()["version"]
        wait_until(lambda: all(link.state["rules_error"] for link in links.values()), 90,
                   "every desk to refuse v3")
        for n in names:  # each keeps v2
            assert (tmp_path / n / "central-rules.toml").read_text(encoding="utf-8") == good
            assert links[n].state["rules"] == v2
        with server.client(boss) as c:
            desks = {d["name"]: d for d in c.get("/api/v1/desks").json()["desks"]}
            history = c.get("/api/v1/rules/history").json()["versions"]

        # A good version is in force on every desk within one poll interval, plus the time
        # the desks take to check and compile it (measured here on the same machine; the
        # three desks of this test share one process, so their checks queue).
        from callguard.services.rules_admin import check_text
        v4_text = good.replace("central v2", "central v4", 1)
        began = time.monotonic()
        assert check_text(v4_text, name="x.toml", base_dir=DEFAULT_RULES.parent).ok
        check_s = time.monotonic() - began
        switched: dict[str, float] = {}
        with server.client(boss) as c:
            published = time.monotonic()
            v4 = c.post("/api/v1/rules", json={"text": v4_text, "note": "v4"}).json()["version"]
        deadline = published + 60
        while len(switched) < len(names) and time.monotonic() < deadline:
            for n in names:
                if n not in switched and links[n].state["rules"] == v4:
                    switched[n] = time.monotonic() - published
            time.sleep(0.05)
        print(json.dumps({"poll_s": POLL_S, "check_s": round(check_s, 2),
                          "switched_s": {n: round(t, 2) for n, t in switched.items()}}))
        assert len(switched) == len(names)
        assert max(switched.values()) <= POLL_S + len(names) * check_s + 1.5
    finally:
        for link in links.values():
            link.stop()
    for n in names:
        assert desks[n]["rules_version"] == v2
        assert desks[n]["rules_error"].startswith(v3[:12])
        assert "only-on-server.wav" in desks[n]["rules_error"]
    assert [h["version"] for h in history[:2]] == [v3, v2]
    assert history[0]["published_by"] == "boss" and history[0]["note"] == "v3"


def test_a_caller_flagged_on_one_desk_is_a_repeat_caller_on_another(server, pg, tmp_path):
    from callguard.central.link import CallerCache

    a, b = server.desk("desk-a"), server.desk("desk-b")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()

    async def go():
        async with Store.open(tmp_path / "a" / "calls.db") as store:
            await make_call(store, seconds=2.0, remote="sip:010-5555-1234@pbx.local")
            await make_call(store, seconds=2.0, remote="010-9999-0000", flagged=False)
            central = HttpCentral(settings_for(server, a, tmp_path / "a"))
            try:
                assert await Uploader(store, central).run_once() == 2
            finally:
                await central.aclose()
        cache = CallerCache(tmp_path / "b" / "central-callers.json")
        central = HttpCentral(settings_for(server, b, tmp_path / "b"))
        try:
            await cache.refresh(central, time.time())
        finally:
            await central.aclose()
        return cache

    cache = asyncio.run(go())
    hit = cache.lookup("+82 10-5555-1234")  # another spelling of the same number
    assert hit is not None and hit.flagged == 1 and hit.days == 30
    assert cache.lookup("010-9999-0000") is None  # called, but never flagged
    assert cache.lookup("010-1111-2222") is None
    text = (tmp_path / "b" / "central-callers.json").read_text(encoding="utf-8")
    assert "5555" not in text  # keyed hashes only
    server.stop()  # the server is down: the desk still knows
    again = CallerCache(tmp_path / "b" / "central-callers.json")
    assert again.lookup("01055551234").flagged == 1


def test_central_review_lists_opens_reviews_and_exports_every_desks_calls(server, pg, tmp_path):
    from callguard.central.review import CentralReviewStore, SignInRefused
    from callguard.evidence import EvidenceError, export_package, verify_package
    from callguard.services import review_access
    from callguard.services.accounts import Actor

    desks = {"desk-f": ("flac", "kim"), "desk-o": ("opus", "lee")}
    for name, (codec, counselor) in desks.items():
        home = tmp_path / name
        home.mkdir()
        token = server.desk(name)

        async def fill(home=home, token=token, codec=codec, counselor=counselor):
            async with Store.open(home / "calls.db") as store:
                await make_call(store, seconds=3.0, counselor=counselor, crisis=True)
                central = HttpCentral(settings_for(server, token, home, audio=codec))
                try:
                    assert await Uploader(store, central, audio=codec).run_once() == 2
                finally:
                    await central.aclose()
        asyncio.run(fill())
    server.user("sup", "supervisor")
    server.user("kim", "counselor")

    async def review():
        with pytest.raises(SignInRefused):
            await CentralReviewStore.sign_in(server.url, server.fingerprint, "sup", "wrong",
                                             folder=tmp_path)
        store = await CentralReviewStore.sign_in(server.url, server.fingerprint, "sup",
                                                 "password-123", folder=tmp_path)
        try:
            sup = Actor("sup", "supervisor")
            calls = await review_access.list_calls(store, sup, flagged_only=True)
            by_counselor = {c.counselor: c for c in calls}
            assert set(by_counselor) == {"kim", "lee"}
            assert await store.desks() == ["desk-f", "desk-o"]
            assert [c.counselor for c in await store.list_calls(desk="desk-o")] == ["lee"]
            kim_call = await review_access.open_call(store, sup, by_counselor["kim"].id)
            assert kim_call.utterances[0].hits[0].term == "새끼"
            await review_access.record_verdict(store, sup, kim_call.id, "crisis_response",
                                               "위기 대응: 보호자 연락")
            assert [r.verdict for r in await store.reviews(kim_call.id)] == ["crisis_response"]
            caller = await store.read_audio(kim_call.id, "caller")
            assert len(caller) == 3 * 8000 * 2
            notes = await review_access.notifications(store, sup)
            flac_pkg = await export_package(store, kim_call.id, tmp_path / "kim.zip", "sup",
                                            b"k" * 32)
            with pytest.raises(EvidenceError):  # lossy: no longer the sealed recording
                await export_package(store, by_counselor["lee"].id, tmp_path / "lee.zip",
                                     "sup", b"k" * 32)
            return kim_call.uuid, flac_pkg, notes
        finally:
            await store.close()

    kim_uuid, pkg, notes = asyncio.run(review())
    report = verify_package(pkg, b"k" * 32)
    assert report.ok and report.signature == "valid", report.lines
    assert sorted((n.kind, n.detail) for n in notes) == [("crisis", "desk-f: crisis: self-harm"),
                                                         ("crisis", "desk-o: crisis: self-harm")]
    with psycopg.connect(pg.dsn) as conn:
        actions = [r[0] for r in conn.execute(
            "SELECT action FROM access_log WHERE call_uuid = %s AND actor = 'sup'"
            " ORDER BY id", (kim_uuid,)).fetchall()]
    assert {"view", "playback", "review", "export"} <= set(actions), actions

    async def as_counselor():
        store = await CentralReviewStore.sign_in(server.url, server.fingerprint, "kim",
                                                 "password-123", folder=tmp_path)
        try:
            kim = Actor("kim", "counselor")
            mine = await review_access.list_calls(store, kim)
            return [c.counselor for c in mine], await store.audit_log()
        finally:
            await store.close()

    mine, kim_notes = asyncio.run(as_counselor())
    assert mine == ["kim"] and kim_notes == []

    # The same export from the command line, as a supervisor at a PC with no store.
    import subprocess
    import sys
    out = tmp_path / "cli" / "kim.zip"
    out.parent.mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "callguard", "central", "export", kim_uuid, "--out", str(out),
         "--user", "sup", "--password-stdin", "--key", str(tmp_path / "cli" / "site.key"),
         "--url", server.url, "--fingerprint", server.fingerprint],
        input="password-123\n", capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    from callguard.evidence import read_key
    assert verify_package(out, read_key(tmp_path / "cli" / "site.key")).ok


def test_an_alert_is_answered_with_the_supervisors_who_have_it_on_screen(server, pg):
    token = server.desk("desk-w")
    server.user("sup", "supervisor")
    sup = server.login("sup")
    alert = {"kind": "crisis", "raised_at": time.time(), "counselor": "kim", "call_uuid": None}
    with server.client(token) as desk:
        nobody = desk.post("/api/v1/alerts", json={**alert, "key": "a/1"}).json()
    assert nobody == {"created": True, "recipients": []}
    ready, done = threading.Event(), threading.Event()

    def watch():
        import httpx

        with contextlib.suppress(httpx.HTTPError), server.client(sup) as c, \
                c.stream("GET", "/api/v1/alerts/stream", params={"after": 10**9},
                         timeout=30) as r:
            for _ in r.iter_lines():  # ends when the server stops at the test's end
                ready.set()
                if done.is_set():
                    return

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    assert ready.wait(10)
    with server.client(token) as desk:
        seen = desk.post("/api/v1/alerts", json={**alert, "key": "a/2"}).json()
        again = desk.post("/api/v1/alerts", json={**alert, "key": "a/2"}).json()
    done.set()
    assert seen == {"created": True, "recipients": ["sup"]}
    assert again["created"] is False  # delivered twice: one alert
    assert server_rows_alerts(pg) == 2


def server_rows_alerts(pg) -> int:
    with psycopg.connect(pg.dsn) as conn:
        return conn.execute("SELECT count(*) FROM alerts").fetchone()[0]


def test_an_admin_publishes_rules_and_sees_the_desks_from_the_command_line(server, tmp_path):
    import subprocess
    import sys

    from callguard.config import DEFAULT_RULES

    server.user("boss", "admin")
    server.user("sup", "supervisor")
    server.desk("desk-cli")

    def central(*args: str, user: str = "boss") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "callguard", "central", *args, "--user", user,
             "--password-stdin", "--url", server.url, "--fingerprint", server.fingerprint],
            input="password-123\n", capture_output=True, text=True, timeout=180, check=False)

    good = tmp_path / "rules.toml"
    good.write_text(DEFAULT_RULES.read_text(encoding="utf-8"), encoding="utf-8")
    for prompt in DEFAULT_RULES.parent.glob("*.wav"):
        (tmp_path / prompt.name).write_bytes(prompt.read_bytes())
    done = central("publish", str(good), "--note", "from the CLI")
    assert done.returncode == 0 and "published" in done.stdout, done.stderr
    broken = tmp_path / "broken.toml"
    broken.write_text("format = 1\n[[rule]]\nid = 3\n", encoding="utf-8")
    refused = central("publish", str(broken))
    assert refused.returncode == 2  # refused here, before anything is sent
    assert central("publish", str(good), user="sup").returncode != 0  # admins only
    listing = central("desks")
    assert listing.returncode == 0 and "desk-cli" in listing.stdout
    with server.client(server.login("boss")) as c:
        history = c.get("/api/v1/rules/history").json()["versions"]
    assert [(h["published_by"], h["note"]) for h in history] == [("boss", "from the CLI")]
