"""The call engine on the in-memory line (callguard.telephony.fake): real engine thread, real
20 ms runner, real VAD, session, policy and SQLite store; the recogniser maps marker tones to
sentences. Fast checks of what the real-peer tests in test_live_calls.py prove on SIP.

The line and the engine run on a stepped clock (``FakeRig(stepped=True)``): call time moves
only when a test calls ``advance``, so the tests never sleep and assert exact call times.
Positions are samples at 8 kHz; the runner steps every 160 samples (20 ms) and writes the
counselor leg ``LEAD`` (320 samples) ahead, so a prompt started at call time *t* is heard
from sample ``t * 8000 + LEAD``. One test runs on real time, as a line does.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from audiocheck import align
from fakerig import ABUSE_HZ, RATE, FakeRig, first_step_at, rules_text, tone, write_wav
from synth import call_audio

from callguard.asr.fake import ToneTranscriber
from callguard.asr.worker import RecognitionWorker
from callguard.audio.devices import FileDevice, NullDevice
from callguard.clock import RealClock, StepClock
from callguard.engine.prompts import PromptLibrary
from callguard.engine.runner import LEAD, CallRunner, LiveCallControl
from callguard.rules.active import ActiveRules
from callguard.session.call import CallSession
from callguard.store import Store
from callguard.telephony.base import FRAME, CallState
from callguard.telephony.fake import FakeLine

EPOCH = 1_767_225_600.0  # the StepClock's time() at 0
HANGUP_MARGIN_S = 0.3  # after a final prompt's end, before the BYE (the session's)


def stored(rig: FakeRig, store_id: int):
    """The stored call and its (sealed, current) recording hashes."""
    async def read():
        async with Store.open(rig.db) as store:
            return await store.get_call(store_id), await store.check_recording(store_id)
    return asyncio.run(read())


def actions(rec) -> list[tuple[str, float, str]]:
    return [(a.kind, a.t_s, a.detail) for a in rec.actions]


@pytest.fixture
def rig(tmp_path):
    rigs: list[FakeRig] = []

    def make(limit: str = "10m", *, stepped: bool = True, **kw) -> FakeRig:
        home = tmp_path / f"rig{len(rigs)}"
        home.mkdir()
        r = FakeRig(home, rules_text(limit), auto_answer=True, stepped=stepped, **kw)
        r.engine.start()
        rigs.append(r)
        return r

    yield make
    for r in rigs:
        r.stop()


ABUSE = call_audio([(0.3, 1.2, ABUSE_HZ), (4.5, 1.2, ABUSE_HZ)], 12.0)
# On that call (VAD, early look, 120 ms play-out delay, recognition taking no call time):
WARNED_AT = 1.82  # the first burst (0.3-1.5 s) is recognised: warning
FINAL_AT = 6.04  # the second (4.5-5.7 s), after the warning: final notice
BYE_DUE = 7.55  # the final notice (1.21 s) has played, plus the 0.3 s margin
BYE_POS = 60480  # 7.56 s: the first 20 ms step at or after that


def check_abusive_call(r: FakeRig, call, store_id: int) -> None:
    """The call above, warned and then cut off: every time exact."""
    run = r.runner(call)
    heard = call.heard()
    w_pos, w_corr = align(heard, r.warning)
    f_pos, f_corr = align(heard, r.final)
    assert w_corr > 0.95 and f_corr > 0.95
    assert w_pos == round(WARNED_AT * RATE) + LEAD  # mixed in from the next step
    assert f_pos == round(FINAL_AT * RATE) + LEAD
    assert FINAL_AT + r.final.size / RATE + HANGUP_MARGIN_S == pytest.approx(BYE_DUE)
    assert first_step_at(BYE_DUE) == BYE_POS
    assert run.control.bye_pos == BYE_POS and run.control.hangups == 1
    # The far end heard everything sent up to the BYE, the final notice to its last sample.
    assert heard.size == BYE_POS and f_pos + r.final.size <= heard.size
    rec, (sealed, current) = stored(r, store_id)
    assert [(k, t) for k, t, _ in actions(rec) if k != "fault"] == [
        ("play_prompt", WARNED_AT), ("play_prompt", FINAL_AT),
        ("hangup", pytest.approx(BYE_DUE))]
    assert rec.started_at == EPOCH  # answered at 0 on the test's clock
    assert rec.ended_at == EPOCH + BYE_POS / RATE  # stored when the BYE was sent
    assert rec.duration_s == pytest.approx(BYE_DUE)
    assert rec.end_reason == "final_notice" and rec.hung_up_by == "agent"
    assert sealed == current == rec.recording_sha256


def test_abuse_is_warned_then_the_final_notice_plays_whole_before_the_hangup(rig):
    r = rig()
    call = r.answered("010-1234-5678")
    assert call.state is CallState.ACTIVE
    call.far_play(ABUSE, at_s=0.0)
    r.advance(BYE_POS / RATE - 0.02)
    assert call.state is CallState.ACTIVE  # one step before the BYE
    assert r.runner(call).control.decided_s is None  # due at 7.55 s: not yet
    r.advance(0.02)
    assert call.state is CallState.ENDED and call.end_reason.value == "local_hangup"
    ended = r.wait("ended")
    assert ended.data["reason"] == "final_notice"
    check_abusive_call(r, call, ended.data["store_id"])
    rec, _ = stored(r, ended.data["store_id"])
    assert rec.counselor == "kim" and rec.stage == "final"


def test_protect_plays_the_final_notice_and_ends_the_call(rig):
    r = rig()
    call = r.answered()
    r.advance(0.51)  # between two steps (0.50 and 0.52)
    r.engine.protect().result(5)  # at call time 0.51
    r.advance(2.0)
    ended = r.wait("ended")
    heard = call.heard()
    pos, corr = align(heard, r.final)
    assert corr > 0.95
    # Queued at 0.51, mixed in from the step at 0.52, which writes from 0.50 + LEAD.
    assert pos == round(0.50 * RATE) + LEAD
    # Due at 0.51 + 1.21 + 0.3 = 2.02 s: BYE at the step at 2.02 s.
    assert r.runner(call).control.bye_pos == 16160 == heard.size
    assert pos + r.final.size <= heard.size
    assert call.hangups == 1
    rec, _ = stored(r, ended.data["store_id"])
    assert rec.hung_up_by == "agent"
    assert [(k, t) for k, t, _ in actions(rec)] == [("play_prompt", 0.51),
                                                   ("hangup", pytest.approx(2.02))]


def test_a_second_ringing_call_is_declined_while_one_is_active(rig):
    r = rig()
    first = r.answered()
    second = r.line.ring()
    r.wait("declined")
    assert second.state is CallState.ENDED and second.end_reason.value == "declined"
    assert first.state is CallState.ACTIVE
    r.advance(1.0)
    first.far_hangup()
    r.advance(0.02)  # the runner sees it at its next step
    assert r.wait("ended").data["reason"] == "caller_hangup"
    rec, _ = stored(r, r.wait("ended").data["store_id"])
    assert rec.duration_s == 1.02 and rec.ended_at == EPOCH + 1.02


def test_status_comes_once_a_second_with_the_duration_limit(rig):
    r = rig(limit="30s")
    r.answered()
    r.advance(1.0)  # steps at 0.00, 0.02, ..., 0.98: the 50th reports
    st = r.wait("call_status", 1).data
    assert st.limit_s == 30.0 and st.next in ("notice", "warn") and st.store_id
    assert st.at_s == 0.98
    r.advance(1.0)
    assert [e.data.at_s for e in r.events if e.kind == "call_status"] == [0.98, 1.98]


def test_mute_keeps_the_counselors_microphone_off_the_line(rig, tmp_path):
    voice = tone(1500, 10.0)
    mic = write_wav(tmp_path / "mic.wav", voice)
    r = rig(device_factory=lambda call: FileDevice(mic, None))
    call = r.answered()
    r.advance(1.0)
    r.engine.set_muted(True).result(5)  # at 1.00 s: written up to 1.00 s + LEAD so far
    r.advance(1.0)
    call.far_hangup()
    r.advance(0.02)
    r.wait("ended")
    heard = call.heard()
    cut = round(1.0 * RATE) + LEAD
    assert np.array_equal(heard[:cut], voice[:cut])  # the mic, sample for sample
    assert heard.size == 2 * RATE and not heard[cut:].any()  # muted: silence


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
    r.answered()
    r.advance(1.0)
    assert r.wait("call_status", 1).data.limit_s == 20.0  # the next call uses them


def test_the_duration_limit_ends_the_call_at_its_exact_step(rig):
    r = rig(limit="3s")
    call = r.answered()
    r.advance(10.0)
    ended = r.wait("ended")
    assert ended.data["reason"] == "duration_limit"
    # The limit is checked once a second of call time: the final notice at 3.00 s, the
    # BYE at the first step after it has played (3.00 + 1.21 + 0.3 = 4.51 s).
    assert r.runner(call).control.bye_pos == first_step_at(4.51) == 36160
    rec, _ = stored(r, ended.data["store_id"])
    assert [(k, t) for k, t, _ in actions(rec)] == [("play_prompt", 3.0),
                                                   ("hangup", pytest.approx(4.51))]


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
    r.answered()


def test_the_ended_event_says_when_the_counselor_pressed_protect(rig):
    r = rig()
    r.answered()
    r.engine.protect().result(5)
    r.advance(2.0)
    assert r.wait("ended").data["protected"] is True


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
    call = r.answered()
    headset = r.wait("headset")
    assert headset.data == {"ok": False,
                            "error": "cannot open the headset microphone ('USB'): no such "
                                     "device"}
    r.engine.protect().result(5)
    r.advance(2.0)
    ended = r.wait("ended")
    pos, corr = align(call.heard(), r.final)
    assert corr > 0.95 and pos == LEAD  # protect at 0: from the step at 0.02
    assert r.runner(call).control.bye_pos == first_step_at(1.51) == 12160
    assert ended.data["reason"] == "final_notice"
    rec, _ = stored(r, ended.data["store_id"])
    assert [a.detail for a in rec.actions if a.kind == "fault"] == [
        "headset: cannot open the headset microphone ('USB'): no such device"]

    # A card that fails during the call: every step fails over to the recording going on,
    # and the call is warned and cut off at the very same times as with a working card.
    r2 = rig(device_factory=lambda call: Broken())
    call2 = r2.answered()
    call2.far_play(ABUSE, at_s=0.0)
    r2.advance(0.02)
    assert r2.wait("headset", 1).data == {"ok": False, "error": "OSError: the card went away"}
    r2.advance(BYE_POS / RATE)
    ended2 = r2.wait("ended")
    assert ended2.data["reason"] == "final_notice"
    assert len([e for e in r2.log.events if e.kind == "headset"]) == 1  # said once
    check_abusive_call(r2, call2, ended2.data["store_id"])
    rec, _ = stored(r2, ended2.data["store_id"])
    faults = [(a.t_s, a.detail) for a in rec.actions if a.kind == "fault"]
    assert faults == [(0.0, "headset: OSError: the card went away")]  # at the first step


def test_on_real_time_the_final_notice_plays_whole_before_the_bye(rig):
    """The line's sender thread and the runner's real 20 ms loop, as on a SIP line."""
    r = rig(stepped=False)
    call = r.answered()
    r.engine.protect().result(5)
    ended = r.wait("ended", 10)
    assert ended.data["reason"] == "final_notice"
    heard = call.heard()
    pos, corr = align(heard, r.final)
    assert corr > 0.95 and pos + r.final.size <= heard.size
    control = r.runner(call).control
    # BYE about 0.3 s after the notice's nominal end (jitter of a loaded machine aside).
    due = control.decided_s
    assert due is not None and abs(control.bye_pos / RATE - due) < 0.1
    assert call.hangups == 1


def test_a_test_can_step_the_runner_itself(tmp_path, kiwi):
    """No engine thread and no pacing: the test owns the clock and calls ``step`` with the
    call time (samples) itself; the line's sender follows the same clock."""
    final = tone(700, 1.21)
    write_wav(tmp_path / "warning.wav", tone(500, 1.0))
    write_wav(tmp_path / "final.wav", final)
    (tmp_path / "rules.toml").write_text(rules_text("10m"), encoding="utf-8")
    rules = ActiveRules(tmp_path / "rules.toml", analyzer=kiwi)
    clock = StepClock()
    clock.advance(3.0)  # the line has been up a while: call time starts at the answer
    line = FakeLine("kim", clock=clock)
    line.start()
    call = line.ring()
    call.answer()
    call_clock = RealClock(call.media_start, clock)
    control = LiveCallControl(call, PromptLibrary(), call_clock)

    async def main() -> CallRunner:
        worker = RecognitionWorker(lambda: ToneTranscriber({}))
        await worker.start()
        session = CallSession(ruleset=rules.ruleset, matcher=rules.matcher,
                              recogniser=worker, control=control, clock=call_clock,
                              wall_clock=clock, source="sip")
        runner = CallRunner(call, session, control, NullDevice(), call_clock)
        await runner.start()
        pos = 0
        while runner.active:
            clock.advance_to(3.0 + pos / RATE)  # the sender sends what is due by then
            await runner.step(pos)
            if pos == 4000:
                await session.protect()  # right after the step at 0.5 s
            pos += FRAME
        await runner.finish()
        await worker.stop()
        return runner

    runner = asyncio.run(main())
    line.stop()
    # The final notice from 0.5 s + LEAD; its end plus the margin is 2.01 s: BYE at 2.02 s.
    assert control.bye_pos == first_step_at(0.5 + 1.21 + HANGUP_MARGIN_S) == 16160
    assert runner.steps == 16160 // FRAME + 1
    heard = call.heard()
    pos, corr = align(heard, final)
    assert corr > 0.95 and pos == 4000 + LEAD and heard.size == 16160
    assert runner.session.end_reason == "final_notice"


def test_an_engine_that_failed_to_start_stops_quietly(tmp_path):
    # The model cannot be loaded: start() says so, and the window's later stop() (its
    # close handler always calls it) neither raises nor hangs on the closed loop.
    def broken():
        raise OSError("model.bin: no such file")

    r = FakeRig(tmp_path)
    r.engine.transcriber_factory = broken
    with pytest.raises(RuntimeError, match="failed to start"):
        r.engine.start(timeout=60)
    r.engine._thread.join(10)  # the engine thread has ended and closed its loop
    assert not r.engine._thread.is_alive() and r.engine.loop.is_closed()
    r.engine.stop(timeout=10)
