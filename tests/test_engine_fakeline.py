"""The call engine on the in-memory line (callguard.telephony.fake): real engine thread, real
20 ms runner, real VAD, session, policy and SQLite store; the recogniser maps marker tones to
sentences. Fast checks of what the real-peer tests in test_live_calls.py prove on SIP."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest
from audiocheck import align
from fakerig import ABUSE_HZ, RATE, FakeRig, rules_text, tone, write_wav
from synth import call_audio

from callguard.audio.devices import FileDevice
from callguard.store import Store
from callguard.telephony.base import CallState


def stored(rig: FakeRig, store_id: int):
    """The stored call and its (sealed, current) recording hashes."""
    async def read():
        async with Store.open(rig.db) as store:
            return await store.get_call(store_id), await store.check_recording(store_id)
    return asyncio.run(read())


@pytest.fixture
def rig(tmp_path):
    rigs: list[FakeRig] = []

    def make(limit: str = "10m", **kw) -> FakeRig:
        r = FakeRig(tmp_path, rules_text(limit), auto_answer=True, **kw)
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
    rec, (sealed, current) = stored(r, ended.data["store_id"])
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
    assert stored(r, ended.data["store_id"])[0].hung_up_by == "agent"


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
    assert st.limit_s == 30.0 and st.next in ("notice", "warn") and st.store_id
    assert 0.5 < st.at_s < 2.0


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
    bad.write_text(rules_text("10m") + "enabeld = true\n", encoding="utf-8")
    result = r.engine.push_rules(bad).result(30)
    assert not result.ok and r.engine.rules.version == before
    assert "bad.toml" in str(result.problems[0])
    good = tmp_path / "good.toml"
    good.write_text(rules_text("20s"), encoding="utf-8")
    result = r.engine.push_rules(good).result(30)
    assert result.ok and r.engine.rules.version != before
    r.line.ring()
    assert r.wait("call_status", 5).data.limit_s == 20.0  # the next call uses them


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


def test_a_headset_that_cannot_be_opened_never_costs_the_call(rig):
    class Broken:
        closed = 0

        def read(self, n: int) -> np.ndarray:
            raise OSError("the card went away")

        def write(self, pcm: np.ndarray) -> None:
            raise OSError("the card went away")

        def close(self) -> None:
            raise OSError("the card went away")

    def no_card(call):
        raise RuntimeError("cannot open the headset microphone ('USB'): no such device")

    # A card that is gone before the call: the call goes on without it, and says so.
    r = rig(device_factory=no_card)
    call = r.line.ring()
    headset = r.wait("headset")
    assert headset.data == {"ok": False,
                            "error": "cannot open the headset microphone ('USB'): no such "
                                     "device"}
    r.wait("answered")
    r.engine.protect().result(5)
    ended = r.wait("ended", 10)
    pos, corr = align(call.heard(), r.final)
    assert corr > 0.95 and pos + r.final.size <= call.heard().size
    assert ended.data["reason"] == "final_notice"
    rec, _ = stored(r, ended.data["store_id"])
    assert [a.detail for a in rec.actions if a.kind == "fault"] == [
        "headset: cannot open the headset microphone ('USB'): no such device"]

    # A card that fails during the call: every step fails over to the recording going on.
    r2 = rig(device_factory=lambda call: Broken())
    call2 = r2.line.ring()
    r2.wait("answered")
    call2.far_play(call_audio([(0.3, 1.2, ABUSE_HZ), (4.5, 1.2, ABUSE_HZ)], 12.0), at_s=0.0)
    failed = r2.wait("headset", 5)
    assert failed.data == {"ok": False, "error": "OSError: the card went away"}
    ended2 = r2.wait("ended", 25)
    assert ended2.data["reason"] == "final_notice"  # warned and cut off all the same
    pos, corr = align(call2.heard(), r2.final)
    assert corr > 0.95 and pos + r2.final.size <= call2.heard().size
    assert len([e for e in r2.log.events if e.kind == "headset"]) == 1  # said once
    rec, (sealed, current) = stored(r2, ended2.data["store_id"])
    assert sealed == current == rec.recording_sha256
    faults = [a.detail for a in rec.actions if a.kind == "fault"]
    assert faults == ["headset: OSError: the card went away"]
