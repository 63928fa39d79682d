"""Desk-side helpers for the central-server tests: a realistic ended call written into a
real SQLite store (both audio legs, an utterance with a rule hit, verdicts, actions), and
counts of what a store holds, to compare with what the server holds."""

from __future__ import annotations

import hashlib
import time

import numpy as np
import psycopg
import pytest

from callguard.server import trial
from callguard.server.localpg import LocalPostgres
from callguard.store import Store
from callguard.vocabulary import ActionKind, Cause, VerdictKind

RATE = 8000


def speechlike(seconds: float, seed: int) -> bytes:
    """PCM16 LE at 8 kHz: noise bursts shaped like speech (what the codecs must carry)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    env = (np.sin(np.arange(n) / RATE * 2 * np.pi * 1.5) > 0).astype(np.float32)
    return (rng.standard_normal(n) * 2500 * env).astype("<i2").tobytes()


def wait_until(predicate, timeout: float, what: str) -> None:
    """Poll ``predicate()`` every 0.2 s until it is true; after ``timeout`` seconds fail
    with an AssertionError naming ``what`` was waited for."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


async def make_call(store: Store, *, seconds: float = 6.0, seed: int = 0,
                    counselor: str = "counselor-1", remote: str = "010-1234-5678",
                    flagged: bool = True, crisis: bool = False, protect: bool = False,
                    end: bool = True, started_at: float | None = None) -> int:
    """One call: ``seconds`` of audio on each leg in 1 s chunks, one abusive utterance
    with a hit (when ``flagged``), a warning verdict and its prompt action, optionally a
    crisis alert action and a protect press; ended (and sealed) unless ``end`` is False."""
    started = time.time() - seconds - 1 if started_at is None else started_at
    cid = await store.create_call("inbound", remote, "sip", started, None, RATE, counselor)
    caller, counselor_leg = speechlike(seconds, seed), speechlike(seconds, seed + 1000)
    for i in range(0, len(caller), RATE * 2):
        await store.append_audio(cid, "caller", i // 2, caller[i:i + RATE * 2])
        await store.append_audio(cid, "counselor", i // 2, counselor_leg[i:i + RATE * 2])
    if flagged:
        await store.add_utterance(cid, "caller", 1.0, 2.0, "이 새끼야 진짜", "ok",
                                  hits=[("insult-1", "insult", 2, "새끼", 2, 4, "새끼")],
                                  at_s=2.3)
        await store.add_verdict(cid, 2.3, VerdictKind.WARN, "warning", False, "rule insult-1",
                                Cause.RULES)
        await store.add_action(cid, 2.3, ActionKind.PLAY_PROMPT, "warning (3.0 s)",
                               prompt="warning", seconds=3.0)
        await store.update_call(cid, flagged=True)
    await store.add_utterance(cid, "caller", 3.0, 4.0, "네 알겠습니다", "ok", at_s=4.2)
    if crisis:
        await store.add_action(cid, 4.5, ActionKind.ALERT, "crisis: self-harm")
    if protect:
        await store.add_verdict(cid, 5.0, VerdictKind.FINAL, "final", True,
                                "counselor pressed protect", Cause.PROTECT)
    if end:
        await store.end_call(cid, started + seconds, seconds, "caller_hangup", "remote")
    return cid


async def desk_counts(store: Store) -> dict[str, int]:
    """How many calls, utterances, hits, verdicts, actions and audio samples per leg a
    desk's store holds (ended calls only)."""
    conn = store._conn  # a test may look inside

    async def one(sql: str) -> int:
        async with conn.execute(sql) as cur:
            row = await cur.fetchone()
        return int(row[0] or 0)

    ended = "SELECT id FROM calls WHERE ended_at IS NOT NULL"
    return {
        "calls": await one(f"SELECT count(*) FROM ({ended})"),
        "utterances": await one(f"SELECT count(*) FROM utterances WHERE call_id IN ({ended})"),
        "hits": await one("SELECT count(*) FROM hits h JOIN utterances u ON u.id ="
                          f" h.utterance_id WHERE u.call_id IN ({ended})"),
        "verdicts": await one(f"SELECT count(*) FROM verdicts WHERE call_id IN ({ended})"),
        "actions": await one(f"SELECT count(*) FROM actions WHERE call_id IN ({ended})"),
    }


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- a real central server on 127.0.0.1 ---------------------------------------------------


class ServerProcess(trial.ServerProcess):
    """``callguard server run`` in its own process (:mod:`callguard.server.trial`), with
    desks and accounts made by the admin's commands (``callguard server desk add`` /
    ``user add``), so the tests go through them too."""

    def desk(self, name: str) -> str:
        return self.cli("desk", "add", name).splitlines()[0].strip()

    def user(self, name: str, role: str, password: str = "password-123",
             team: str = "") -> None:
        self.cli("user", "add", name, "--role", role, "--team", team, "--password-stdin",
                 stdin=password + "\n")


private_tmp = trial.private_tmp


@pytest.fixture(scope="module")
def pg():
    """A private PostgreSQL cluster for a test module (Debian's binaries, in /tmp)."""
    cluster = LocalPostgres(private_tmp("callguard-pg-"))
    cluster.start()
    yield cluster
    cluster.remove()


@pytest.fixture
def server(pg, tmp_path):
    """The real server process on a fresh database of ``pg``."""
    with psycopg.connect(pg.dsn.replace("/callguard?", "/postgres?"), autocommit=True) as c:
        c.execute("DROP DATABASE IF EXISTS callguard WITH (FORCE)")
        c.execute("CREATE DATABASE callguard")
    srv = ServerProcess(tmp_path / "srv", pg.dsn)
    srv.start()
    yield srv
    srv.stop()

