"""The call engine on the in-memory line (callguard.telephony.fake): real engine thread, real
20 ms runner, real VAD, session, policy and SQLite store; the recogniser maps marker tones to
sentences. Fast checks of what the real-peer tests in test_live_calls.py prove on SIP."""

from __future__ import annotations

import asyncio
import threading
import time
import wave
from pathlib import Path

import numpy as np
import pytest
from audiocheck import align
from synth import call_audio

from callguard.asr.fake import ToneTranscriber
from callguard.engine.audio_device import FileDevice
from callguard.engine.engine import Engine, EngineEvent
from callguard.store import Store
from callguard.telephony.base import CallState
from callguard.telephony.fake import FakeLine

RATE = 8000
ABUSE_HZ = 1000.0

RULES = """\
format = 1
name = "fake line test"
[escalation]
window = "2m"
cooldown = "1s"
notice_at = 1
warn_at = 1
warnings = 1
final_at = 1
[duration.inbound]
final_at = "{limit}"
[prompts.warning]
file = "warning.wav"
text = "경고"
[prompts.final]
file = "final.wav"
text = "종료"
[prompts.duration_final]
file = "final.wav"
text = "시간 종료"
[[rule]]
id = "t.saekki"
category = "profanity"
terms = ["새끼"]
"""


def tone(hz: float, seconds: float, amp: int = 6000) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return np.rint(amp * np.sin(2 * np.pi * hz * t)).astype(np.int16)


def write_wav(path: Path, pcm: np.ndarray) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm.astype("<i2").tobytes())
    return path


class Rig:
    def __init__(self, tmp: Path, limit: str = "10m", **engine_kw) -> None:
        self.tmp = tmp
        self.warning = tone(500, 1.0)
        self.final = tone(700, 1.2)
        write_wav(tmp / "warning.wav", self.warning)
        write_wav(tmp / "final.wav", self.final)
        self.rules = tmp / "rules.toml"
        self.rules.write_text(RULES.format(limit=limit), encoding="utf-8")
        self.db = tmp / "calls.db"
        self.line = FakeLine("kim")
        self.events: list[EngineEvent] = []
        self.cv = threading.Condition()
        self.engine = Engine(
            line=self.line, rules_path=self.rules, store_path=self.db,
            transcriber_factory=lambda: ToneTranscriber({ABUSE_HZ: "이 새끼야"}),
            auto_answer=True, on_event=self._on_event, counselor="kim", **engine_kw)

    def _on_event(self, ev: EngineEvent) -> None:
        with self.cv:
            self.events.append(ev)
            self.cv.notify_all()

    def wait(self, kind: str, timeout: float = 15, pred=lambda ev: True) -> EngineEvent:
        deadline = time.monotonic() + timeout
        with self.cv:
            while True:
                for ev in self.events:
                    if ev.kind == kind and pred(ev):
                        return ev
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no {kind} event: {[e.kind for e in self.events]}")
                self.cv.wait(left)

    def stored(self, store_id: int):
        async def read():
            async with Store.open(self.db) as store:
                return await store.get_call(store_id), await store.check_recording(store_id)
        return asyncio.run(read())


@pytest.fixture
def rig(tmp_path):
    rigs: list[Rig] = []

    def make(**kw) -> Rig:
        r = Rig(tmp_path, **kw)
        r.engine.start()
        rigs.append(r)
        return r

    yield make
    for r in rigs:
        r.engine.stop()


def test_abuse_is_warned_then_the_final_notice_plays_whole_before_the_hangup(rig):
    r = rig()
    call = r.line.ring("010-1234-5678")
    r.wait("answered")
    assert call.state is CallState.ACTIVE
    call.far_play(call_audio([(0.3, 1.2, ABUSE_HZ), (4.5, 1.2, ABUSE_HZ)], 12.0), at_s=0.0)
    ended = r.wait("ended", 20)
    assert ended.data["reason"] == "final_notice"
    assert call.hangups == 1 and call.end_reason.value == "local_hangup"
    heard = call.heard()
    w_pos, w_corr = align(heard, r.warning)
    f_pos, f_corr = align(heard, r.final)
    assert w_corr > 0.95 and f_corr > 0.95 and w_pos < f_pos
    assert f_pos + r.final.size <= heard.size  # to its last sample before the BYE
    rec, (sealed, current) = r.stored(ended.data["store_id"])
    assert rec.end_reason == "final_notice" and rec.hung_up_by == "agent"
    assert rec.counselor == "kim" and rec.stage == "final"
    assert sealed == current == rec.recording_sha256


def test_protect_plays_the_final_notice_and_ends_the_call(rig):
    r = rig()
    call = r.line.ring()
    r.wait("answered")
    time.sleep(0.5)
    r.engine.protect().result(5)
    ended = r.wait("ended", 10)
    heard = call.heard()
    pos, corr = align(heard, r.final)
    assert corr > 0.95 and pos + r.final.size <= heard.size
    assert call.hangups == 1
    assert r.stored(ended.data["store_id"])[0].hung_up_by == "agent"


def test_a_second_ringing_call_is_declined_while_one_is_active(rig):
    r = rig()
    first = r.line.ring()
    r.wait("answered")
    second = r.line.ring()
    r.wait("declined")
    assert second.state is CallState.ENDED and second.end_reason.value == "declined"
    assert first.state is CallState.ACTIVE
    first.far_hangup()
    assert r.wait("ended").data["reason"] == "caller_hangup"


def test_status_comes_once_a_second_with_the_duration_limit(rig):
    r = rig(limit="30s")
    r.line.ring()
    st = r.wait("call_status", 5).data
    assert st["limit_s"] == 30.0 and st["next"] in ("notice", "warn") and st["store_id"]
    assert 0.5 < st["t"] < 2.0


def test_mute_keeps_the_counselors_microphone_off_the_line(rig, tmp_path):
    mic = write_wav(tmp_path / "mic.wav", tone(1500, 10.0))
    r = rig(device_factory=lambda call: FileDevice(mic, None))
    call = r.line.ring()
    r.wait("answered")
    time.sleep(1.0)
    r.engine.set_muted(True).result(5)
    time.sleep(0.3)
    mark = call.heard().size
    time.sleep(1.0)
    call.far_hangup()
    r.wait("ended")
    heard = call.heard()
    assert np.abs(heard[RATE // 2 : RATE]).max() > 3000  # the mic was on the line
    assert np.abs(heard[mark:]).max() == 0  # muted: silence


def test_pushing_bad_rules_is_refused_and_the_rules_in_force_stay(rig, tmp_path):
    r = rig()
    before = r.engine.rules.version
    bad = tmp_path / "bad.toml"
    bad.write_text(RULES.format(limit="10m") + "enabeld = true\n", encoding="utf-8")
    result = r.engine.push_rules(bad).result(30)
    assert not result.ok and r.engine.rules.version == before
    assert "bad.toml" in str(result.problems[0])
    good = tmp_path / "good.toml"
    good.write_text(RULES.format(limit="20s"), encoding="utf-8")
    result = r.engine.push_rules(good).result(30)
    assert result.ok and r.engine.rules.version != before
    r.line.ring()
    assert r.wait("call_status", 5).data["limit_s"] == 20.0  # the next call uses them


def test_an_outbound_call_is_reported_while_dialing_and_can_be_cancelled(rig):
    r = rig()
    call = r.engine.dial("1002").result(5)
    assert r.wait("dialing").data == {"remote": "1002"}
    r.engine.hangup().result(5)
    ended = r.wait("ended")
    assert call.state is CallState.ENDED and ended.data["line"] == "cancelled"
    assert ended.data["store_id"] is None  # never answered: nothing recorded


def test_a_refused_outbound_call_ends_with_the_reason(rig):
    r = rig()
    call = r.engine.dial("1003").result(5)
    r.wait("dialing")
    call.far_reject("486 Busy Here")
    ended = r.wait("ended")
    assert ended.data["line"] == "rejected" and "486" in ended.data["detail"]


def test_while_resting_inbound_calls_are_declined(rig):
    r = rig()
    r.engine.set_available(False).result(5)
    call = r.line.ring()
    assert r.wait("declined").data == "unavailable"
    assert call.end_reason.value == "declined"
    r.engine.set_available(True).result(5)
    r.line.ring()
    r.wait("answered")


def test_the_ended_event_says_when_the_counselor_pressed_protect(rig):
    r = rig()
    r.line.ring()
    r.wait("answered")
    r.engine.protect().result(5)
    assert r.wait("ended", 10).data["protected"] is True
