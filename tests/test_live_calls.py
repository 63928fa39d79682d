"""Live calls against real SIP peers on 127.0.0.1: kamailio as the office PBX, baresip as
the caller or callee, the real call engine with the bundled Whisper model, the real store.

The caller speaks real recorded Korean (../shared/data/speech-ko, read in place). The rules
target words actually spoken there (no abusive Korean speech exists to test with): "몰라"
stands in for an insult, "절대로 안 할" for a threat. The prompts are real speech clips too,
so their arrival at the far end can be found in baresip's own recording.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
import pytest
from audiocheck import RATE, align, clip, silence
from fakerig import EventLog
from officepbx import agent_line, agent_settings, bob_calls_agent, pbx_fixture
from peers.baresip import Baresip, read_wav, write_wav
from peers.kamailio import Kamailio
from rulestext import PROMPTS, rules_toml

from callguard.config import Settings
from callguard.engine.engine import Engine
from callguard.engine.wiring import transcriber_factory as whisper_factory
from callguard.store import Store
from callguard.vocabulary import PromptStarted, VerdictIssued

pytestmark = pytest.mark.slow

LIVE_RULES = [
    {"id": "live.insult", "category": "insult", "mode": "nospace", "terms": ["몰라", "몰랐"]},
    {"id": "live.threat", "category": "threat", "mode": "nospace",
     "terms": ["절대로안할", "절대안할"]},
]


pbx = pbx_fixture("kamailio", "baresip", shared=True,
                  users={"agent": "agentpw", "bob": "bobpw", "carol": "carolpw"})


class Harness:
    """The engine on a SipLine registered as ``agent``; events collected."""

    def __init__(self, pbx: Kamailio, tmp: Path, rules: str, *, auto_answer: bool,
                 transcriber_factory=None, **engine_kw) -> None:
        self.tmp = tmp
        self.warning = clip("k016")  # 2.8 s
        self.final = clip("k025")  # 2.2 s
        write_wav(tmp / "warning.wav", self.warning)
        write_wav(tmp / "final.wav", self.final)
        (tmp / "rules.toml").write_text(rules, encoding="utf-8")
        self.db = tmp / "calls.db"
        self.log = EventLog()
        self.events = self.log.events
        self.wait = self.log.wait
        self.line = agent_line(pbx, 31000, 31998)
        self.engine = Engine(line=self.line, rules_path=tmp / "rules.toml", store_path=self.db,
                             transcriber_factory=transcriber_factory
                             or whisper_factory(Settings()),
                             auto_answer=auto_answer, on_event=self.log, **engine_kw)

    def wait_registered(self, timeout: float = 10) -> None:
        self.wait("status", timeout, lambda ev: str(ev.data.state) == "registered")

    def stored(self, call_id: int | None = None):
        async def read():
            async with await Store.open(self.db) as store:
                calls = await store.list_calls()
                return await store.get_call(call_id or calls[0].id)
        return asyncio.run(read())


def _rules(in_notice="10m", in_final="20m", out_notice="10m", out_final="20m") -> str:
    """The live rules with these duration limits (TOML durations) of each direction."""
    return rules_toml("live test", inbound={"notice_at": in_notice, "final_at": in_final},
                      outbound={"notice_at": out_notice, "final_at": out_final},
                      prompts=PROMPTS, rules=LIVE_RULES)


def _inbound(pbx: Kamailio, h: Harness, caller: np.ndarray, within_s: float):
    """Bob calls the agent (auto-answer) and speaks ``caller`` (int16, 8 kHz); the call
    must end within ``within_s``. Returns (the engine's ended event, bob's CALL_CLOSED
    event, what bob heard as int16, its rate)."""
    src = write_wav(h.tmp / "caller.wav", caller)
    h.engine.start()
    try:
        h.wait_registered()
        with bob_calls_agent(pbx, src) as bob:
            ended = h.wait("ended", within_s)
            closed = bob.wait_event("CALL_CLOSED", 10)
            received, rate = read_wav(bob.received_wav())
    finally:
        h.engine.stop()
    return ended, closed, received, rate


def test_inbound_abusive_call_is_warned_then_ended_after_the_final_notice(pbx, tmp_path):
    h = Harness(pbx, tmp_path, _rules(), auto_answer=True)
    # The caller: "나도 몰라 ..." (→ warning), a pause for the warning to play, "절대로 안 할
    # 거야" (→ final notice), then talks on over the final notice.
    caller = np.concatenate([silence(1.0), clip("k009"), silence(5.0), clip("k031"),
                             silence(0.3), clip("k027"), silence(20.0)])
    ended, closed, received, rate = _inbound(pbx, h, caller, 60)
    assert rate == RATE
    runner = h.engine.finished[0]
    kinds = [e.kind for e in runner.session.timeline if isinstance(e, VerdictIssued)]
    assert kinds == ["notice", "warn", "final"], runner.session.timeline
    assert ended.data["reason"] == "final_notice"
    assert runner.control.hangups == 1 and runner.call.end_reason == "local_hangup"
    assert "CALL_CLOSED" in closed["type"]
    # Both prompts reached the caller, whole: found in baresip's recording of what it heard.
    w_pos, w_corr = align(received, h.warning)
    f_pos, f_corr = align(received, h.final)
    assert w_corr > 0.9 and f_corr > 0.9, (w_corr, f_corr)
    assert w_pos < f_pos
    # The final notice played to its last sample before the BYE: its whole length is in the
    # recording, and the call closed within a moment of its end.
    assert f_pos + h.final.size <= received.size
    assert (received.size - (f_pos + h.final.size)) / RATE < 1.0
    # The store holds the transcript, the hits and the actions.
    rec = h.stored()
    assert rec.end_reason == "final_notice"
    hits = {hit.rule_id for u in rec.utterances for hit in u.hits}
    assert {"live.insult", "live.threat"} <= hits
    acts = [a.kind for a in rec.actions]
    assert acts.count("play_prompt") == 2 and acts[-1] == "hangup"
    said = [u.text for u in rec.utterances if u.leg == "caller" and u.status == "ok"]
    assert any("몰" in t for t in said) and any("절대" in t for t in said), said


def _outbound(pbx: Kamailio, tmp_path: Path, rules: str, listen_s: float):
    """The agent dials bob (auto-answer, silent); returns (harness, bob's events, bob's
    CALL_CLOSED event or None if bob still had the call after ``listen_s``)."""
    h = Harness(pbx, tmp_path, rules, auto_answer=False)
    h.engine.start()
    try:
        h.wait_registered()
        with Baresip("bob", "bobpw", pbx, auto_answer=True, source_pad_s=listen_s + 30) as bob:
            bob.wait_registered()
            h.engine.dial("bob").result(5)
            h.wait("answered", 10)
            try:
                closed = bob.wait_event("CALL_CLOSED", listen_s)
            except TimeoutError:
                closed = None
            h.wait("ended", 10) if closed is not None else None
    finally:
        h.engine.stop()
    return h, closed


def test_outbound_call_survives_a_minute_and_the_duration_limit_ends_it(pbx, tmp_path):
    # Without the ACK fix the far end never sees our ACK and drops the call at ~32 s.
    h, closed = _outbound(pbx, tmp_path, _rules(out_notice="45s", out_final="61s"), 75)
    assert closed is not None, "the duration limit did not end the call"
    runner = h.engine.finished[0]
    assert runner.session.end_reason == "duration_limit"
    assert runner.call.end_reason == "local_hangup"  # we hung up: bob did not drop us
    # BYE at the limit plus the whole final notice (2.2 s) plus the 0.3 s margin.
    bye_at = runner.control.bye_sent_at - runner.call.media_start
    expected = 61.0 + h.final.size / RATE + 0.3
    assert abs(bye_at - expected) <= 0.5, (bye_at, expected)
    prompts = [e.key for e in runner.session.timeline if isinstance(e, PromptStarted)]
    assert prompts == ["duration_notice", "duration_final"]
    assert h.stored().direction == "outbound"


def test_without_the_ack_fix_the_far_end_drops_an_outbound_call(pbx, tmp_path):
    from callguard.telephony.pyvoip_fixes import disabled

    with disabled("ack_2xx"):
        h, closed = _outbound(pbx, tmp_path, _rules(), 45)
    assert closed is not None, "bob kept the call although our ACK was wrong"
    runner = h.engine.finished[0]
    assert runner.call.end_reason == "remote_hangup"
    lasted = time.monotonic() - runner.call.media_start
    assert 25 < lasted < 45, lasted


def _agent_config(tmp: Path, pbx: Kamailio, rules: Path) -> Path:
    cfg = tmp / "agent.toml"
    cfg.write_text(agent_settings(pbx, rules, tmp / "calls.db", rtp_low=32000, rtp_high=32998,
                                  auto_answer=True), encoding="utf-8")
    return cfg


def _start_agent(cfg: Path, log: Path):
    import subprocess
    import sys

    out = log.open("ab")
    proc = subprocess.Popen([sys.executable, "-m", "callguard", "run", "--config", str(cfg)],
                            stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while "line: registered" not in log.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"agent did not register: {log.read_text()[-2000:]}")
        time.sleep(0.1)
    return proc


def test_kill_9_mid_call_keeps_the_recording_and_marks_the_call_interrupted(pbx, tmp_path):
    import signal

    rules = tmp_path / "rules.toml"
    rules.write_text(_rules(), encoding="utf-8")
    cfg = _agent_config(tmp_path, pbx, rules)
    log = tmp_path / "agent.log"
    caller = np.concatenate([clip("k027"), clip("k016"), clip("k038"), silence(30)])
    src = write_wav(tmp_path / "caller.wav", caller)
    agent = _start_agent(cfg, log)
    try:
        with bob_calls_agent(pbx, src) as bob:
            bob.wait_event("CALL_ESTABLISHED", 10)
            time.sleep(6.0)
            agent.send_signal(signal.SIGKILL)
            killed_after = 6.0
            agent.wait(5)
            # Restart: the store is recovered at start-up.
            log = tmp_path / "agent-restarted.log"
            agent = _start_agent(cfg, log)
            assert "recovered 1 call(s)" in log.read_text()
    finally:
        agent.terminate()
        agent.wait(15)

    async def read():
        async with await Store.open(tmp_path / "calls.db") as store:
            (summary,) = await store.list_calls()
            return (await store.get_call(summary.id),
                    await store.read_audio(summary.id, "caller"))
    rec, pcm = asyncio.run(read())
    assert rec.end_reason == "interrupted"
    kept = len(pcm) / 2 / RATE
    # At most the last second (plus the 120 ms play-out delay) is lost.
    assert killed_after - 1.5 <= kept <= killed_after + 0.5, kept
    # What was kept is the caller's speech, aligned: k027 starts the call.
    got = np.frombuffer(pcm, "<i2")
    pos, corr = align(got, clip("k027"))
    assert corr > 0.9 and pos < 0.5 * RATE, (pos, corr)


class _CrashingTranscriber:
    """Recognition that dies on every utterance (a broken model, a CTranslate2 fault)."""

    name = "crashing"

    def __init__(self) -> None:
        self.calls = 0

    def transcribe(self, audio):
        self.calls += 1
        raise RuntimeError("recogniser crashed")


def test_a_recognition_crash_mid_call_keeps_the_call_and_the_duration_limit(pbx, tmp_path):
    crashing = _CrashingTranscriber()
    h = Harness(pbx, tmp_path, _rules(in_notice="5s", in_final="10s"), auto_answer=True,
                transcriber_factory=lambda: crashing)
    caller = np.concatenate([silence(0.5), clip("k009"), silence(0.5), clip("k031"),
                             silence(30)])
    _inbound(pbx, h, caller, 40)
    runner = h.engine.finished[0]
    assert crashing.calls >= 2  # the caller spoke; every recognition failed
    assert runner.session.end_reason == "duration_limit"
    bye_at = runner.control.bye_sent_at - runner.call.media_start
    assert abs(bye_at - (10.0 + h.final.size / RATE + 0.3)) <= 0.5, bye_at
    rec = h.stored()
    assert rec.end_reason == "duration_limit"
    assert any(u.status == "failed" for u in rec.utterances)
    # The whole call is recorded although nothing could be recognised.
    async def audio():
        async with await Store.open(h.db) as store:
            return await store.read_audio(rec.id, "caller")
    kept = len(asyncio.run(audio())) / 2 / RATE
    assert kept >= bye_at - 0.5, (kept, bye_at)


def _is_prompt(key: str):
    return lambda ev: (ev.kind == "timeline" and isinstance(ev.data, PromptStarted)
                       and ev.data.key == key)


def test_the_caller_hangs_up_during_the_warning(pbx, tmp_path):
    h = Harness(pbx, tmp_path, _rules(), auto_answer=True)
    caller = np.concatenate([silence(1.0), clip("k009"), silence(30.0)])
    src = write_wav(tmp_path / "caller.wav", caller)
    h.engine.start()
    try:
        h.wait_registered()
        with bob_calls_agent(pbx, src) as bob:
            h.wait("timeline", 40, _is_prompt("warning"))
            time.sleep(1.0)  # the warning (2.8 s) is playing: bob hangs up in the middle
            bob.hangup()
            ended = h.wait("ended", 10)
    finally:
        h.engine.stop()
    runner = h.engine.finished[0]
    assert ended.data["reason"] == "caller_hangup"
    assert runner.call.end_reason == "remote_hangup"
    assert runner.control.hangups == 0 and runner.faults == 0  # nothing of ours fired
    rec = h.stored()
    assert rec.end_reason == "caller_hangup" and rec.hung_up_by == "remote"
    assert [a.kind for a in rec.actions] == ["play_prompt"]  # the warning; no hangup of ours
    assert rec.actions[0].ok
    # The recording holds the call up to the hangup, the warning's start in the counselor
    # leg, and it was sealed at close.
    async def audio():
        async with Store.open(h.db) as store:
            return (await store.read_audio(rec.id, "counselor"),
                    await store.check_recording(rec.id))
    counselor, (sealed, current) = asyncio.run(audio())
    leg = np.frombuffer(counselor, "<i2")
    pos, corr = align(leg, h.warning[: RATE // 2])
    assert corr > 0.9, corr
    assert leg.size / RATE < pos / RATE + h.warning.size / RATE  # cut short by the hangup
    assert sealed == current == rec.recording_sha256


def test_the_pre_call_notice_plays_before_the_counselor_is_connected(pbx, tmp_path):
    from callguard.audio.devices import FileDevice

    notice = clip("k038")
    write_wav(tmp_path / "notice.wav", notice)
    rules = _rules() + '\n[prompts.pre_call]\nfile = "notice.wav"\ntext = "녹음 안내"\n'
    t = np.arange(RATE * 20) / RATE
    mic = write_wav(tmp_path / "mic.wav", np.rint(8000 * np.sin(2 * np.pi * 1000 * t)).astype(
        np.int16))
    speaker = tmp_path / "speaker.wav"
    h = Harness(pbx, tmp_path, rules, auto_answer=True,
                device_factory=lambda call: FileDevice(mic, speaker))
    # The caller talks from the first moment; the counselor must not hear it until the
    # notice is over, and the caller must hear the notice before the counselor's voice.
    caller = np.concatenate([clip("k009"), silence(8.0)])
    ended, _closed, received, _ = _inbound(pbx, h, caller, 40)
    assert ended.data["reason"] == "caller_hangup"
    n_pos, n_corr = align(received, notice)
    assert n_corr > 0.9 and n_pos / RATE < 0.5, (n_pos, n_corr)
    notice_end = n_pos + notice.size

    def tone_level(x: np.ndarray) -> float:
        if x.size < 400:
            return 0.0
        spec = np.abs(np.fft.rfft(x.astype(float) * np.hanning(x.size)))
        return float(spec[int(1000 * x.size / RATE)] / x.size)

    before = received[: notice_end - RATE // 10]
    after = received[notice_end + RATE // 5 : notice_end + RATE * 2]
    assert tone_level(after) > 100 * max(tone_level(before), 1e-3), (
        tone_level(before), tone_level(after))
    # The counselor's speaker got the caller only after the notice: its file is shorter
    # than the call by about the notice's length.
    heard, _ = read_wav(speaker)
    call_len = h.engine.finished[0].rpos
    assert abs((call_len - heard.size) - notice.size) < RATE // 2, (call_len, heard.size)


def test_a_second_call_while_busy_gets_486_and_the_first_goes_on(pbx, tmp_path):
    from callguard.asr.fake import ScriptedTranscriber

    h = Harness(pbx, tmp_path, _rules(), auto_answer=True,
                transcriber_factory=lambda: ScriptedTranscriber([]))
    src = write_wav(tmp_path / "caller.wav", silence(12.0))
    h.engine.start()
    try:
        h.wait_registered()
        with Baresip("bob", "bobpw", pbx, source_wav=src, source_pad_s=0) as bob, \
                Baresip("carol", "carolpw", pbx) as carol:
            bob.wait_registered()
            carol.wait_registered()
            bob.dial(pbx.uri("agent"))
            h.wait("answered", 10)
            carol.dial(pbx.uri("agent"))
            declined = h.wait("declined", 10)
            carol_closed = carol.wait_event("CALL_CLOSED", 10)
            assert h.engine.runners, "the first call must go on"
            bob_closed = bob.wait_event("CALL_CLOSED", 20)
            h.wait("ended", 10)
    finally:
        h.engine.stop()
    assert declined.data == "busy"
    assert "486" in carol_closed.get("param", ""), carol_closed
    assert "end of file" in bob_closed.get("param", "").lower(), bob_closed
    assert len(h.engine.finished) == 1
    assert h.engine.finished[0].session.end_reason == "caller_hangup"


def test_protect_from_the_headless_agent_plays_the_final_notice_then_hangs_up(pbx, tmp_path):
    import signal

    rules = tmp_path / "rules.toml"
    write_wav(tmp_path / "warning.wav", clip("k016"))
    final = clip("k025")
    write_wav(tmp_path / "final.wav", final)
    rules.write_text(_rules(), encoding="utf-8")
    cfg = _agent_config(tmp_path, pbx, rules)
    log = tmp_path / "agent.log"
    src = write_wav(tmp_path / "caller.wav", silence(40))
    agent = _start_agent(cfg, log)
    try:
        with bob_calls_agent(pbx, src) as bob:
            bob.wait_event("CALL_ESTABLISHED", 10)
            time.sleep(2.0)
            agent.send_signal(signal.SIGUSR1)  # the counselor's protect key
            closed = bob.wait_event("CALL_CLOSED", 15)
            received, _ = read_wav(bob.received_wav())
    finally:
        agent.terminate()
        agent.wait(15)
    assert "CALL_CLOSED" in closed["type"]
    pos, corr = align(received, final)
    assert corr > 0.9 and pos + final.size <= received.size, (pos, corr)

    async def read():
        async with Store.open(tmp_path / "calls.db") as store:
            (summary,) = await store.list_calls()
            return await store.get_call(summary.id)
    rec = asyncio.run(read())
    assert rec.end_reason == "final_notice" and rec.hung_up_by == "agent"
    assert any("protect" in v.reason for v in rec.verdicts), [v.reason for v in rec.verdicts]
