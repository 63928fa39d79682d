"""The line's timeouts and faults during a call (issue 13, deliverable 3, and what the
counselor and the store must be told while a call runs).

The agent is the real engine on a :class:`SipLine` registered to kamailio on 127.0.0.1 with
the real store; the callers are SIPp (playing a pcap, then keeping the dialog without any
RTP, or playing silence as RTP packets) and a hand-written SIP endpoint (``RawUA`` of
tests/test_sip_hostile.py) where the test must choose every message: a hold and resume, an
INVITE never ACKed, an INVITE never answered. The timeouts are set small here (seconds) and
every bound is the timeout plus generous slack.

- media timeout: no RTP from the caller for ``media_timeout_s`` ends the call with our BYE,
  stored ``media_timeout``; silence sent as RTP is not a timeout; a hold (sendonly or
  inactive) is not either, and the timeout runs again from the resume;
- ACK timeout (Timer H) and ring timeout: stored / reported as ``no_ack`` and
  ``ring_timeout``, not a generic ``failed``;
- media from a stranger: kept with the call when it starts, not only at the end.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from fakerig import EventLog, rules_text, tone, write_tone_wav
from officepbx import agent_line, pbx_fixture
from peers import require_peers
from peers.kamailio import Kamailio
from peers.pcap import PCMA, write_audio_pcap
from peers.sipp import start_call_with_media
from test_sip_hostile import RawUA, _answered_through, _m_ports, sdp

from callguard.asr.fake import ScriptedTranscriber
from callguard.audio.g711 import alaw_encode
from callguard.engine.engine import Engine
from callguard.store import Store

pytestmark = pytest.mark.slow
HOST = "127.0.0.1"
RATE = 8000
MEDIA_TIMEOUT_S = 2.0
SLACK_S = 4.0  # generous: a loaded 2-core machine, two peers and the agent


pbx = pbx_fixture("kamailio", "sipp")


@pytest.fixture
def raw():
    ua = RawUA()
    yield ua
    ua.close()


class Agent:
    """The engine on a real SIP line with the real store in ``tmp``; ``log`` its events."""

    def __init__(self, pbx: Kamailio, tmp: Path, kiwi, *, auto_answer: bool = True,
                 **sip) -> None:
        write_tone_wav(tmp / "warning.wav", 500, 0.5)
        write_tone_wav(tmp / "final.wav", 700, 0.5)
        (tmp / "rules.toml").write_text(rules_text(), encoding="utf-8")
        self.db = tmp / "calls.db"
        self.log = EventLog()
        self.line = agent_line(pbx, 36000, 36998, **sip)
        self.engine = Engine(line=self.line, rules_path=tmp / "rules.toml", store_path=self.db,
                             transcriber_factory=lambda: ScriptedTranscriber([]),
                             auto_answer=auto_answer, on_event=self.log, analyzer=kiwi)

    def __enter__(self) -> Agent:
        self.engine.start()
        self.log.wait("status", 10, lambda ev: str(ev.data.state) == "registered")
        return self

    def __exit__(self, *exc) -> None:
        self.engine.stop()

    @property
    def port(self) -> int:
        return self.line.sip_port

    def stored(self):
        async def read():
            async with await Store.open(self.db) as store:
                return [await store.get_call(c.id) for c in await store.list_calls()]
        return asyncio.run(read())


def _pcap(tmp: Path, pcm: np.ndarray) -> Path:
    return write_audio_pcap(tmp / "media.pcap", alaw_encode(pcm), payload_type=PCMA)


def _faults(rec) -> list[tuple[float, str]]:
    return [(a.t_s, a.detail) for a in rec.actions if a.kind == "fault"]


# --- media timeout ----------------------------------------------------------------------------


def test_a_caller_that_stops_sending_rtp_is_ended_as_media_timeout(pbx, tmp_path, kiwi):
    """SIPp plays 1.5 s of audio, then keeps the dialog and sends no RTP, waiting for a BYE:
    ours comes ``media_timeout_s`` after its last packet, and the call is stored as
    ``media_timeout``, hung up by the agent."""
    media = _pcap(tmp_path, tone(440, 1.5))
    with Agent(pbx, tmp_path, kiwi, media_timeout_s=MEDIA_TIMEOUT_S) as a:
        proc = start_call_with_media(pbx.address, "agent", media, hangup="wait",
                                     recv_timeout=25, timeout=35, workdir=tmp_path / "sipp")
        answered = a.log.wait("answered", 10)
        ended = a.log.wait("ended", 30)
        result = proc.wait()
    quiet = ended.at - answered.at - 1.5
    print(f"BYE {quiet:.2f} s after the caller's last RTP (media timeout {MEDIA_TIMEOUT_S} s)")
    assert result.ok, result.describe()  # SIPp got our BYE and answered it
    assert ended.data["reason"] == "media_timeout" and ended.data["line"] == "media_timeout"
    assert MEDIA_TIMEOUT_S - 0.5 <= quiet <= MEDIA_TIMEOUT_S + SLACK_S, quiet
    (rec,) = a.stored()
    assert rec.end_reason == "media_timeout" and rec.hung_up_by == "agent"


def test_silence_sent_as_rtp_is_not_a_media_timeout(pbx, tmp_path, kiwi):
    """6 s of silence as RTP packets (three times the timeout), then SIPp hangs up: the
    call is the caller's to end."""
    media = _pcap(tmp_path, np.zeros(6 * RATE, np.int16))
    with Agent(pbx, tmp_path, kiwi, media_timeout_s=MEDIA_TIMEOUT_S) as a:
        proc = start_call_with_media(pbx.address, "agent", media, hangup="bye", hold_ms=300,
                                     timeout=30, workdir=tmp_path / "sipp")
        answered = a.log.wait("answered", 10)
        ended = a.log.wait("ended", 20)
        result = proc.wait()
    assert result.ok, result.describe()  # SIPp's own BYE was answered: we never sent one
    assert ended.data["reason"] == "caller_hangup", ended.data
    assert ended.at - answered.at >= 6.0
    (rec,) = a.stored()
    assert rec.end_reason == "caller_hangup" and rec.duration_s >= 5.5


def _rtp_for(raw: RawUA, port: int, seconds: float, seq0: int = 0) -> int:
    """Paced PCMU packets (a faint tone) from the caller's declared RTP socket."""
    payload = bytes([0x7F, 0xFF] * 80)
    n = int(seconds * 50)
    t0 = time.monotonic()
    for i in range(n):
        raw.rtp.sendto(struct.pack("!BBHII", 0x80, 0, (seq0 + i) & 0xFFFF, (seq0 + i) * 160,
                                   0x5EED) + payload, (HOST, port))
        time.sleep(max(0.0, t0 + (i + 1) * 0.02 - time.monotonic()))
    return seq0 + n


@pytest.mark.parametrize("hold", ["sendonly", "inactive"])
def test_a_hold_is_not_a_media_timeout_and_the_resume_rearms_it(pbx, raw, tmp_path, kiwi,
                                                                 hold):
    """The caller (through kamailio) sends RTP, puts us on hold and sends nothing for 2.5
    times the timeout: the call goes on. It resumes and still sends nothing: our BYE comes
    a timeout after the resume, stored ``media_timeout``."""
    with Agent(pbx, tmp_path, kiwi, media_timeout_s=MEDIA_TIMEOUT_S) as a:
        cid, tag = f"{time.time_ns()}@hold", "holder"
        ok, agent_tag, target = _answered_through(pbx, raw, a.port, cid, tag)
        agent_rtp = _m_ports(ok.body)[0]
        seq = _rtp_for(raw, agent_rtp, 1.0)

        def reinvite(cseq: int, direction: str) -> None:
            raw.send(raw.request("INVITE", target, call_id=cid, from_tag=tag,
                                 to_tag=agent_tag, cseq=cseq,
                                 body=sdp(raw.rtp_port, direction=direction)), a.port)
            raw.expect(lambda m: m.code == 200 and m.h("cseq") == f"{cseq} INVITE", 3,
                       f"200 OK to the {direction} re-INVITE")
            raw.send(raw.request("ACK", target, call_id=cid, from_tag=tag, to_tag=agent_tag,
                                 cseq=cseq), a.port)

        reinvite(2, hold)
        raw.poll(2.5 * MEDIA_TIMEOUT_S)  # held, silent on the wire: a known state
        assert not [m for m in raw.inbox if m.method == "BYE"], "hung up during a hold"
        assert a.engine.runners, "the call ended during a hold"
        seq = _rtp_for(raw, agent_rtp, 0.5, seq)  # a little audio after the hold ...
        reinvite(3, "sendrecv")
        resumed = time.monotonic()  # ... then nothing at all after the resume
        bye = raw.expect(lambda m: m.method == "BYE", MEDIA_TIMEOUT_S + SLACK_S + 2,
                         "BYE after the resume")
        after = time.monotonic() - resumed
        raw.reply(bye, 200, "OK", a.port)
        ended = a.log.wait("ended", 10)
    print(f"BYE {after:.2f} s after the resume (media timeout {MEDIA_TIMEOUT_S} s)")
    assert MEDIA_TIMEOUT_S - 0.5 <= after <= MEDIA_TIMEOUT_S + SLACK_S, after
    assert ended.data["reason"] == "media_timeout"
    (rec,) = a.stored()
    assert rec.end_reason == "media_timeout"


# --- ACK and ring timeouts ------------------------------------------------------------------


def test_an_answered_call_never_acked_is_stored_as_no_ack(pbx, raw, tmp_path, kiwi):
    with Agent(pbx, tmp_path, kiwi, allow=(f"{HOST}:{raw.port}",), ack_timeout_s=2.0) as a:
        cid = f"{time.time_ns()}@noack"
        raw.send(raw.request("INVITE", f"sip:agent@{HOST}:{a.port}", call_id=cid,
                             body=sdp(raw.rtp_port)), a.port)
        raw.expect(lambda m: m.code == 200, 5, "200 OK")
        bye = raw.expect(lambda m: m.method == "BYE", 2.0 + SLACK_S + 2, "BYE (no ACK)")
        raw.reply(bye, 200, "OK", a.port)
        ended = a.log.wait("ended", 10)
    assert ended.data["reason"] == "no_ack" and ended.data["line"] == "no_ack", ended.data
    (rec,) = a.stored()
    assert rec.end_reason == "no_ack" and rec.hung_up_by == "agent"


def test_a_call_nobody_answers_ends_as_ring_timeout(pbx, raw, tmp_path, kiwi):
    """Never answered, so no call row: the engine's ``ended`` event (what ``run`` prints and
    the counselor's window shows) says ``ring_timeout``; the caller got 480."""
    with Agent(pbx, tmp_path, kiwi, auto_answer=False, allow=(f"{HOST}:{raw.port}",),
               ring_timeout_s=1.5) as a:
        cid = f"{time.time_ns()}@ring"
        raw.send(raw.request("INVITE", f"sip:agent@{HOST}:{a.port}", call_id=cid,
                             body=sdp(raw.rtp_port)), a.port)
        a.log.wait("ringing", 5)
        final = raw.expect(lambda m: m.code >= 200, 1.5 + SLACK_S, "final answer")
        ended = a.log.wait("ended", 5)
    assert final.code == 480, final.start
    assert ended.data["reason"] == "ring_timeout" and ended.data["store_id"] is None
    assert a.stored() == []


def test_our_call_nobody_answers_is_cancelled_as_ring_timeout(pbx, tmp_path, kiwi):
    """The agent dials bob (baresip through kamailio), whose phone rings and is never
    answered: after the ring timeout our CANCEL ends it at bob's end too, and the engine's
    ``ended`` event says ``ring_timeout``."""
    require_peers("baresip")
    from peers.baresip import Baresip

    with Agent(pbx, tmp_path, kiwi, ring_timeout_s=2.0) as a, \
            Baresip("bob", "bobpw", pbx) as bob:
        bob.wait_registered()
        a.engine.dial("bob").result(5)
        bob.wait_event("CALL_INCOMING", 10)
        rang = time.monotonic()
        ended = a.log.wait("ended", 2.0 + SLACK_S + 2)
        took = time.monotonic() - rang
        bob.wait_event("CALL_CLOSED", 5)  # our CANCEL reached the phone
    print(f"cancelled {took:.2f} s after bob's phone rang (ring timeout 2.0 s)")
    assert ended.data["reason"] == "ring_timeout", ended.data
    assert took <= 2.0 + SLACK_S
    assert a.stored() == []


# --- media from strangers, noted when it starts ------------------------------------------------


def _foreign_rtp(port: int, packets: int) -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for i in range(packets):
            s.sendto(struct.pack("!BBHII", 0x80, 8, i, 160 * i, 0xBAD5EED) + b"\xd5" * 160,
                     (HOST, port))
            time.sleep(0.02)
    finally:
        s.close()


def test_dropped_rtp_is_noted_when_it_starts_and_counted_at_the_end(pbx, tmp_path, kiwi):
    """SIPp plays 8 s of silence; 1.5 s in, a stranger's socket sends 50 packets to the
    agent's RTP port. A fault is kept with the call while it still runs (the counselor's
    timeline sees it then), and the final count at the end."""
    media = _pcap(tmp_path, np.zeros(8 * RATE, np.int16))
    with Agent(pbx, tmp_path, kiwi, media_timeout_s=30.0) as a:
        proc = start_call_with_media(pbx.address, "agent", media, hangup="bye", hold_ms=300,
                                     timeout=30, workdir=tmp_path / "sipp")
        a.log.wait("answered", 10)
        (runner,) = list(a.engine.runners.values())
        time.sleep(1.5)
        _foreign_rtp(runner.call.fixed.rtp.inPort, 50)
        early = a.log.wait("timeline", 5, lambda ev: type(ev.data).__name__ == "FaultNoted"
                           and ev.data.detail.startswith("media: "))
        running = bool(a.engine.runners)  # the call was still going when it was noted
        ended = a.log.wait("ended", 20)
        result = proc.wait()
    assert result.ok, result.describe()
    assert running and early.at < ended.at
    print("noted at", round(early.data.at_s, 2), "s:", early.data.detail)
    assert early.data.at_s < 5.0  # within a few seconds of the first stray packet (at 1.5)
    (rec,) = a.stored()
    faults = [f for f in _faults(rec) if f[1].startswith(("rtp: ", "media: "))]
    print("faults:", faults)
    assert len(faults) == 2, faults  # once when it began, and the count at the end
    assert faults[0][0] < 5.0 and "being dropped" in faults[0][1]
    assert faults[1][1] == ("rtp: 50 packets dropped (not from the caller's SDP address and "
                            "SSRC)"), faults
    assert rec.end_reason == "caller_hangup"


# --- threads -------------------------------------------------------------------------------


def test_no_thread_is_left_behind(pbx, tmp_path, kiwi):
    """The media watch is a timer on the SIP thread, not a thread per call."""
    media = _pcap(tmp_path, tone(440, 1.0))
    before = threading.active_count()
    with Agent(pbx, tmp_path, kiwi, media_timeout_s=MEDIA_TIMEOUT_S) as a:
        proc = start_call_with_media(pbx.address, "agent", media, hangup="wait",
                                     recv_timeout=20, timeout=30, workdir=tmp_path / "sipp")
        a.log.wait("ended", 25)
        proc.wait()
    time.sleep(1.0)
    assert threading.active_count() <= before + 2, threading.enumerate()


# --- the settings ---------------------------------------------------------------------------


def test_media_timeout_setting(tmp_path):
    from callguard.config import ConfigError, load_settings
    from callguard.engine.wiring import sip_line

    path = tmp_path / "config.toml"
    path.write_text("[sip]\n", encoding="utf-8")
    assert load_settings(path).sip.media_timeout_s == 60.0
    path.write_text('[sip]\nserver = "127.0.0.1"\nuser = "a"\nlocal_ip = "127.0.0.1"\n'
                    "media_timeout_s = 2.5\n", encoding="utf-8")
    settings = load_settings(path)
    assert settings.sip.media_timeout_s == 2.5
    line = sip_line(settings)  # the wiring hands it to the line
    assert line.config.media_timeout_s == 2.5 and line.phone.media_timeout_s == 2.5
    for bad in ("0", "-1", "true", '"60"', "86400"):
        path.write_text(f"[sip]\nmedia_timeout_s = {bad}\n", encoding="utf-8")
        with pytest.raises(ConfigError, match=r"sip\.media_timeout_s"):
            load_settings(path)
