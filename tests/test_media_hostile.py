"""Hostile RTP against a real call (issue 13, finding 3: media trust).

A real call: baresip (``bob``) calls the agent through kamailio on 127.0.0.1 and plays a
known signal; the agent is the real engine on a :class:`SipLine` with the real store. While
the call runs, a Python socket on another port of 127.0.0.1 sends RTP to the agent's RTP
port: first a stream with a foreign SSRC, then a flood with a random SSRC per packet. The
stored caller leg must still be what bob sent, second by second, and the dropped packets are
kept with the call as a fault. Before the media trust check, the injected stream replaced
the caller leg while it lasted and the flood wiped seconds of it.
"""

from __future__ import annotations

import asyncio
import random
import socket
import struct
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from fakerig import EventLog
from officepbx import agent_line, bob_calls_agent, pbx_fixture
from peers.baresip import write_wav
from rulestext import rules_toml

from callguard.asr.fake import ScriptedTranscriber
from callguard.engine.engine import Engine
from callguard.store import Store

pytestmark = pytest.mark.slow
HOST = "127.0.0.1"
RATE = 8000

# Every prompt is one short tone: the test is about the caller leg, not the prompts.
RULES = rules_toml(
    "media test", inbound={"notice_at": "10m", "final_at": "20m"},
    outbound={"notice_at": "10m", "final_at": "20m"},
    prompts={"warning": ("tone.wav", "warning"), "final": ("tone.wav", "final"),
             "duration_notice": ("tone.wav", "notice"), "duration_final": ("tone.wav", "final")},
    rules=[{"id": "media.insult", "category": "insult", "mode": "nospace", "terms": ["몰라"]}])


pbx = pbx_fixture("kamailio", "baresip")


def _caller_signal(seconds: float) -> np.ndarray:
    """Loud band-limited noise, different every second: easy to tell from anything else."""
    rng = np.random.default_rng(13)
    x = rng.standard_normal(int(seconds * RATE))
    x = np.convolve(x, np.ones(4) / 4, mode="same")  # a little low-pass
    return np.clip(x / np.std(x) * 4000, -32767, 32767).astype(np.int16)


def _rtp(ssrc: int, seq: int, ts: int, payload: bytes) -> bytes:
    return struct.pack("!BBHII", 0x80, 0, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc) + payload


def _inject(port: int, started: threading.Event, done: threading.Event) -> None:
    """(a) 3 s of a paced stream with one foreign SSRC, (b) a random-SSRC flood for 2 s,
    from a port of our own on 127.0.0.1 to the agent's RTP port."""
    rnd = random.Random(7)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        started.set()
        ssrc, seq, ts = 0x13131313, rnd.getrandbits(16), rnd.getrandbits(32)
        t0 = time.monotonic()
        for i in range(150):  # (a) 20 ms packets of loud noise, 3 s
            s.sendto(_rtp(ssrc, seq + i, ts + 160 * i, rnd.randbytes(160)), (HOST, port))
            time.sleep(max(0.0, t0 + (i + 1) * 0.02 - time.monotonic()))
        end = time.monotonic() + 2.0
        k = 0
        while time.monotonic() < end:  # (b) flood: a new SSRC every packet
            s.sendto(_rtp(rnd.getrandbits(32), rnd.getrandbits(16), rnd.getrandbits(32),
                          rnd.randbytes(160)), (HOST, port))
            k += 1
            if k % 50 == 0:
                time.sleep(0.001)
    finally:
        s.close()
        done.set()


def _per_second(got: np.ndarray, want: np.ndarray) -> list[float]:
    """Correlation of ``got`` with ``want``, second by second, at ``want``'s best
    alignment in ``got`` (searched over the first 2 s)."""
    g = got.astype(np.float64)
    w = want.astype(np.float64)
    probe = w[:RATE]
    best, off = -1.0, 0
    for o in range(0, min(2 * RATE, g.size - probe.size)):
        seg = g[o:o + probe.size]
        c = float(np.dot(seg, probe) / (np.linalg.norm(seg) * np.linalg.norm(probe) + 1e-9))
        if c > best:
            best, off = c, o
    out = []
    for sec in range(w.size // RATE):
        a = w[sec * RATE:(sec + 1) * RATE]
        b = g[off + sec * RATE:off + (sec + 1) * RATE]
        if b.size < a.size:
            # The far end hung up when its source ended: the BYE, not the attack, cut the
            # recording inside this last second. Compare what was kept of it, if enough.
            if b.size < RATE // 2:
                break
            a = a[:b.size]
        out.append(float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-9)))
    return out


def test_injected_rtp_is_dropped_counted_and_the_caller_leg_kept(pbx, tmp_path: Path):
    write_wav(tmp_path / "tone.wav",
              (3000 * np.sin(np.arange(RATE // 2) * 2 * np.pi * 440 / RATE)).astype(np.int16))
    (tmp_path / "rules.toml").write_text(RULES, encoding="utf-8")
    db = tmp_path / "calls.db"
    log = EventLog()
    line = agent_line(pbx, 35000, 35998)
    engine = Engine(line=line, rules_path=tmp_path / "rules.toml", store_path=db,
                    transcriber_factory=lambda: ScriptedTranscriber([]), auto_answer=True,
                    on_event=log)
    caller = _caller_signal(10.0)
    src = write_wav(tmp_path / "caller.wav", caller)
    started, done = threading.Event(), threading.Event()
    engine.start()
    try:
        log.wait("status", 10, lambda ev: str(ev.data.state) == "registered")
        with bob_calls_agent(pbx, src) as bob:
            log.wait("answered", 10)
            (runner,) = list(engine.runners.values())
            port = runner.call.fixed.rtp.inPort
            time.sleep(1.5)
            threading.Thread(target=_inject, args=(port, started, done), daemon=True).start()
            assert done.wait(15)
            bob.wait_event("CALL_CLOSED", 20)
            log.wait("ended", 10)
    finally:
        engine.stop()

    async def read():
        async with await Store.open(db) as store:
            (summary,) = await store.list_calls()
            return (await store.get_call(summary.id),
                    await store.read_audio(summary.id, "caller"))

    rec, audio = asyncio.run(read())
    got = np.frombuffer(audio, dtype="<i2")
    corr = _per_second(got, caller)
    print("per-second correlation:", [round(c, 2) for c in corr])
    # Every second the caller sent is in the caller leg: none replaced, none wiped, and
    # the recording reaches into the caller's last second (nothing cut short).
    assert len(corr) >= caller.size // RATE - 1 and min(corr) >= 0.9, corr
    faults = [a.detail for a in rec.actions if a.kind == "fault"]
    print("faults:", faults)
    assert any(f.startswith("rtp: ") and "dropped" in f for f in faults), faults
    dropped = int(next(f for f in faults if f.startswith("rtp: ")).split()[1])
    assert dropped >= 150, dropped  # at least the foreign-SSRC stream; the flood on top


def test_rtp_latches_the_first_ssrc_and_a_reinvite_allows_a_new_one():
    """The RTP client alone on 127.0.0.1: the SDP address's first SSRC is taken, another
    SSRC from the same address is dropped, until set_target (a re-INVITE) runs again;
    another port is dropped unless it sent first after the offer."""
    from pyVoIP import RTP

    from callguard.telephony.pyvoip_fixes import FixedRTPClient

    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind((HOST, 0))
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind((HOST, 0))
    port = probe.getsockname()[1]
    probe.close()
    rtp = FixedRTPClient({0: RTP.PayloadType.PCMU}, HOST, port, HOST, peer.getsockname()[1],
                         RTP.TransmitType.SENDRECV)
    rtp.set_target(HOST, peer.getsockname()[1])
    rtp.start()
    try:
        def send(ssrc: int, n: int, seq0: int) -> None:
            for i in range(n):
                peer.sendto(_rtp(ssrc, seq0 + i, 160 * (seq0 + i), b"\x00" * 160),
                            (HOST, port))
                time.sleep(0.002)
            time.sleep(0.3)

        send(0xA, 5, 0)
        assert (rtp.packets_in, rtp.dropped_rtp, rtp.latched_ssrc) == (5, 0, 0xA)
        send(0xB, 5, 5)  # same address, another SSRC: refused
        assert (rtp.packets_in, rtp.dropped_ssrc, rtp.latched_ssrc) == (5, 5, 0xA)
        rtp.set_target(HOST, peer.getsockname()[1])  # a re-INVITE: the next SSRC latches
        send(0xB, 5, 10)
        assert (rtp.packets_in, rtp.dropped_rtp, rtp.latched_ssrc) == (10, 5, 0xB)
        stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        stranger.sendto(_rtp(0xB, 15, 2400, b"\x00" * 160), (HOST, port))
        stranger.close()
        time.sleep(0.3)
        assert (rtp.packets_in, rtp.dropped_foreign) == (10, 1)
        # A far end sending from another port of the SDP's IP (as SIPp does): that port is
        # learned if it sends first after an offer, every other port stays refused.
        rtp.set_target(HOST, 9)
        send(0xC, 3, 16)
        assert (rtp.packets_in, rtp.learned) == (13, peer.getsockname())
        stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        stranger.sendto(_rtp(0xC, 19, 3040, b"\x00" * 160), (HOST, port))
        stranger.close()
        time.sleep(0.3)
        assert (rtp.packets_in, rtp.dropped_foreign) == (13, 2)
    finally:
        rtp.stop()
        peer.close()
