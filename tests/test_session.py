"""Session tests: synthetic speech through the real VAD, resampler, worker thread, policy and
SQLite store; only the recogniser is a fake (tones → scripted sentences)."""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path

import numpy as np
import pytest
from rulestext import PROMPTS, SAEKKI, rules_toml
from synth import call_audio

from callguard.asr.fake import ToneTranscriber
from callguard.asr.worker import Recognition, RecognitionWorker
from callguard.clock import VirtualClock
from callguard.policy.enforcement import HANGUP_MARGIN_S
from callguard.rules.active import ActiveRules
from callguard.session.call import CallSession, SessionConfig
from callguard.session.control import FakeCallControl
from callguard.sim.callaudio import CallAudio
from callguard.sim.driver import SimulationResult, run_call
from callguard.store import Store
from callguard.vocabulary import AlertRaised, Leg, PromptFailed, Transcribed

CLEAN, ABUSE, CRISIS = 1000.0, 1500.0, 2000.0
SCRIPT = {CLEAN: "안녕하세요 요금 문의드릴게요", ABUSE: "야 이 개새끼야",
          CRISIS: "죽고 싶다"}
WARN_S, FINAL_S = 2.0, 1.5

CRISIS_RULE = {"id": "t.crisis", "category": "crisis", "mode": "phrase",
               "terms": ["죽/VV 싶/VX"]}


def _prompt(path: Path, seconds: float) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(np.zeros(int(seconds * 8000), "<i2").tobytes())


@pytest.fixture
def rules(tmp_path: Path):
    def make(**inbound: str) -> ActiveRules:
        """The rules in force; ``inbound``: the inbound duration limits (``notice_at``,
        ``final_at``: TOML durations such as ``"3s"``), none by default."""
        _prompt(tmp_path / "warning.wav", WARN_S)
        _prompt(tmp_path / "final.wav", FINAL_S)
        p = tmp_path / "rules.toml"
        p.write_text(rules_toml("session test", inbound=inbound, prompts=PROMPTS,
                                rules=[SAEKKI, CRISIS_RULE]), encoding="utf-8")
        return ActiveRules(p)
    return make


def simulate(engine: ActiveRules, caller, counselor=None, *, db: Path | None = None,
             control: FakeCallControl | None = None, config: SessionConfig | None = None,
             transcriber=None, wrap_store=None) -> SimulationResult:
    counselor = np.zeros_like(caller) if counselor is None else counselor
    audio = CallAudio(caller, counselor, 8000, 8000, 2)

    async def main() -> SimulationResult:
        worker = RecognitionWorker(lambda: transcriber or ToneTranscriber(SCRIPT, delay_s=0.02))
        await worker.start()
        store = await Store.open(db) if db is not None else None
        session_store = wrap_store(store) if wrap_store and store else store
        try:
            return await run_call(audio, ruleset=engine.ruleset, matcher=engine.matcher,
                                  recogniser=worker, store=session_store, control=control,
                                  config=config or SessionConfig())
        finally:
            await worker.stop()
            if store is not None:
                await store.close()
    return asyncio.run(main())


def _speech(res) -> list[Transcribed]:
    """The final transcripts of accepted speech, in order."""
    return [e for e in res.timeline if isinstance(e, Transcribed) and e.status == "ok"
            and not e.early]


def _kinds(res: SimulationResult) -> list[str]:
    return [k for _, k in res.verdicts()]


def test_abusive_call_is_warned_then_ended_after_the_final_prompt(rules, tmp_path):
    engine = rules()
    # Clean at 1 s; abuse at 4 s (→ warning); abuse again while the warning still plays
    # (must not count); abuse at 11 s, after the warning ended (→ final notice, hangup).
    caller = call_audio([(1, 1.5, CLEAN), (4, 1.2, ABUSE), (6.4, 0.8, ABUSE),
                         (11, 1.2, ABUSE), (14, 3, CLEAN)], 20)
    db = tmp_path / "calls.db"
    res = simulate(engine, caller, db=db)
    assert _kinds(res) == ["notice", "warn", "final"]
    (t_warn, _), (t_final, _) = res.verdicts()[1:]
    assert 5.2 < t_warn < 6.2  # end of the first abuse + early look + recognition
    assert 12.2 < t_final < 13.2  # the abuse at 6.4 s was spoken over the warning
    assert res.control.played == [("warning", WARN_S), ("final", FINAL_S)]
    assert res.control.hangups == 1
    assert res.hangups() == [pytest.approx(t_final + FINAL_S + HANGUP_MARGIN_S)]
    assert res.end_reason == "final_notice"

    async def read():
        async with Store.open(db) as store:
            call = await store.get_call(res.call_id)
            return call, await store.read_audio(res.call_id, "caller")
    call, audio = asyncio.run(read())
    assert call.end_reason == "final_notice" and call.stage == "final" and call.flagged
    assert call.rules_version == engine.version
    assert [v.kind for v in call.verdicts] == ["notice", "warn", "final"]
    assert [(a.kind, a.ok) for a in call.actions] == [
        ("play_prompt", True), ("play_prompt", True), ("hangup", True)]
    texts = [u.text for u in call.utterances if u.leg == "caller"]
    assert texts[0] == SCRIPT[CLEAN] and texts.count(SCRIPT[ABUSE]) == 3
    abusive = [u for u in call.utterances if u.text == SCRIPT[ABUSE]]
    assert all(h.rule_id == "t.saekki" and h.matched == "새끼" for u in abusive for h in u.hits)
    # Everything fed before the hangup was recorded, to the sample.
    fed = len(audio) // 2
    assert fed == pytest.approx(call.duration_s * 8000, abs=8000 * 0.02 + 1)
    assert np.array_equal(np.frombuffer(audio, "<i2"), caller[:fed])


def test_clean_call_triggers_nothing(rules, tmp_path):
    caller = call_audio([(1, 1.5, CLEAN), (4, 2, CLEAN), (8, 1, CLEAN)], 11)
    res = simulate(rules(), caller, db=tmp_path / "c.db")
    assert res.verdicts() == [] and res.control.played == [] and res.control.hangups == 0
    assert res.end_reason == "end_of_audio"
    speech = _speech(res)
    assert [e.text for e in speech] == [SCRIPT[CLEAN]] * 3

    async def read():
        async with Store.open(tmp_path / "c.db") as store:
            return await store.get_call(res.call_id)
    call = asyncio.run(read())
    assert not call.flagged and call.stage == "none" and call.end_reason == "end_of_audio"
    assert call.duration_s == pytest.approx(11, abs=0.05)


def test_counselor_speech_is_transcribed_but_never_counts(rules):
    caller = call_audio([(1, 1.5, CLEAN)], 8)
    counselor = call_audio([(3, 1.5, ABUSE)], 8, seed=2)
    res = simulate(rules(), caller, counselor)
    assert res.verdicts() == []
    legs = {(e.leg, e.text) for e in _speech(res)}
    assert legs == {("caller", SCRIPT[CLEAN]), ("counselor", SCRIPT[ABUSE])}


def test_crisis_alerts_without_ending_the_call(rules):
    res = simulate(rules(), call_audio([(1, 1.5, CRISIS), (5, 1.5, CRISIS)], 9))
    assert set(_kinds(res)) == {"alert"} and res.control.hangups == 0
    assert any(isinstance(e, AlertRaised) for e in res.timeline)


def test_early_look_cuts_detection_latency(rules):
    caller = call_audio([(1, 1.2, ABUSE)], 5)
    early = simulate(rules(), caller)
    late = simulate(rules(), caller, config=SessionConfig(early_ms=None))
    t_early, t_late = early.verdicts()[0][0], late.verdicts()[0][0]
    # Without the early look the verdict waits for the whole 600 ms hangover.
    assert t_late - t_early > 0.25
    assert early.session.latencies[0] < late.session.latencies[0] - 0.25
    # Against the same call without the early look (not fixed seconds): the early look
    # waits for a 100 ms pause, the whole utterance for the 800 ms hangover.
    assert early.session.latencies[0] < 0.5 * late.session.latencies[0]


def test_speech_resuming_after_the_early_look_is_recognised_whole(rules):
    # 450 ms pause: longer than the early look (240 ms), shorter than the hangover (600).
    caller = call_audio([(1, 1.0, CLEAN), (2.45, 1.0, CLEAN)], 6)
    tones = ToneTranscriber(SCRIPT)
    res = simulate(rules(), caller, transcriber=tones)
    speech = _speech(res)
    assert len(speech) == 1 and speech[0].start_s < 1.0 < 3.4 < speech[0].end_s
    assert tones.calls == 2  # one early look, then the whole utterance once more


class _LoggingTones(ToneTranscriber):
    """Remembers the length in seconds (16 kHz) of every audio it was given."""

    def __init__(self, script):
        super().__init__(script)
        self.seconds: list[float] = []

    def transcribe(self, audio):
        self.seconds.append(audio.size / 16000)
        return super().transcribe(audio)


# A 6.6 s utterance: 2.5 s clean, 450 ms pause, 2 s clean, 450 ms pause, 1.2 s abuse. The
# pauses are longer than the early look (100 ms) and shorter than the hangover (800 ms).
LONG = [(1, 2.5, CLEAN), (3.95, 2.0, CLEAN), (6.4, 1.2, ABUSE)]


def test_a_long_utterance_is_looked_at_by_its_tail(rules):
    tones = _LoggingTones(SCRIPT)
    res = simulate(rules(), call_audio(LONG, 12), transcriber=tones)
    assert _kinds(res) == ["notice", "warn"]
    t_warn = res.verdicts()[1][0]
    # Heard from the tail look right after the abuse, not after the hangover and a whole
    # re-recognition.
    assert 7.6 < t_warn < 7.6 + 0.1 + 0.5
    assert res.session.latencies[0] < 0.5
    # Early looks (the first whole, later ones from the previous pause on), then the whole
    # utterance once more for the transcript.
    looks = tones.seconds
    assert looks[-1] > 6.5  # the transcript is recognised from the whole utterance
    assert any(x < 2.0 for x in looks[:-1])  # the abuse was looked at on its own
    speech = _speech(res)
    assert len(speech) == 1 and speech[0].start_s < 1.0 and speech[0].end_s > 7.6


def test_without_tail_looks_the_long_utterance_hides_the_abuse_until_its_end(rules):
    # The same call with whole-utterance looks only: the tone fake hears the dominant (clean)
    # sentence, so the abuse is never seen. This is the control for the test above: it shows
    # the tail look, not something else, found the abuse.
    tones = _LoggingTones(SCRIPT)
    res = simulate(rules(), call_audio(LONG, 12), transcriber=tones,
                   config=SessionConfig(tail_look_after_s=None))
    assert res.verdicts() == []
    assert all(x > 2.0 for x in tones.seconds)


def test_a_tiny_tail_is_looked_at_with_the_span_before_it(rules):
    # 4.5 s of speech, a 300 ms pause (an early look), then 0.4 s more: the look at the end
    # would hold 0.4 s of new speech, too little to recognise alone, so it covers the
    # previous look's span too (here the whole utterance) and is the final result itself.
    caller = call_audio([(1, 4.5, CLEAN), (5.8, 0.4, CLEAN)], 9)
    plain = SessionConfig(early_long_ms=None)
    tones = _LoggingTones(SCRIPT)
    simulate(rules(), caller, transcriber=tones, config=plain)
    assert len(tones.seconds) == 2 and min(tones.seconds) > 4.5
    # The control: without the rule the end's look is the tiny tail alone, and the whole
    # utterance is recognised once more for the transcript.
    tones = _LoggingTones(SCRIPT)
    simulate(rules(), caller, transcriber=tones,
             config=SessionConfig(early_long_ms=None, tail_look_min_s=0.0))
    assert len(tones.seconds) == 3 and min(tones.seconds) < 1.0


def test_duration_limits_notice_then_end(rules):
    engine = rules(notice_at="3s", final_at="6s")
    res = simulate(engine, call_audio([(1, 1, CLEAN)], 12))
    assert res.verdicts() == [(3.0, "duration_notice"), (6.0, "duration_final")]
    assert res.hangups() == [pytest.approx(6.0 + FINAL_S + HANGUP_MARGIN_S)]
    assert res.end_reason == "duration_limit"


def test_a_prompt_that_cannot_play_still_ends_the_call(rules):
    control = FakeCallControl(fail_prompts=True)
    caller = call_audio([(1, 1.2, ABUSE), (5, 1.2, ABUSE)], 10)
    res = simulate(rules(), caller, control=control)
    assert _kinds(res) == ["notice", "warn", "final"]
    assert control.hangups == 1 and res.end_reason == "final_notice"
    failed = [e.key for e in res.timeline if isinstance(e, PromptFailed)]
    assert failed == ["warning", "final"]
    # With nothing played, the hangup follows the final verdict at once.
    assert res.hangups() == [pytest.approx(res.verdicts()[-1][0])]


class _FlakyStore:
    """A store whose transcript writes fail: the call must go on regardless."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def __getattr__(self, name):
        return getattr(self._store, name)

    async def add_utterance(self, *a, **kw):
        raise OSError("disk full")


def test_a_failing_store_does_not_stop_the_call(rules, tmp_path, caplog):
    caller = call_audio([(1, 1.2, ABUSE), (5, 1.2, ABUSE)], 10)
    res = simulate(rules(), caller, db=tmp_path / "f.db", wrap_store=_FlakyStore)
    assert _kinds(res) == ["notice", "warn", "final"] and res.control.hangups == 1
    assert "store write failed" in caplog.text
    assert SCRIPT[ABUSE] not in caplog.text  # the transcript never reaches the log


class _LateStore(_FlakyStore):
    """A store that cannot create the call's row for the first three tries (locked, disk
    full at the start of the call), then works."""

    def __init__(self, store: Store) -> None:
        super().__init__(store)
        self.tries = 0

    async def add_utterance(self, *a, **kw):
        return await self._store.add_utterance(*a, **kw)

    async def create_call(self, *a, **kw):
        self.tries += 1
        if self.tries <= 3:
            raise OSError("database is locked")
        return await self._store.create_call(*a, **kw)


def test_a_call_row_that_fails_at_the_start_is_created_later_and_no_audio_is_lost(
        rules, tmp_path):
    caller = call_audio([(6, 1.2, ABUSE)], 10)
    db = tmp_path / "late.db"
    stores: list[_LateStore] = []

    def wrap(store):
        stores.append(_LateStore(store))
        return stores[-1]

    res = simulate(rules(), caller, db=db, wrap_store=wrap)
    assert stores[0].tries == 4 and res.session.call_id is not None

    async def read():
        async with Store.open(db) as store:
            return (await store.get_call(res.session.call_id),
                    await store.read_audio(res.session.call_id, "caller"))
    rec, pcm = asyncio.run(read())
    assert len(pcm) // 2 >= caller.size - 160  # every second of audio, from sample 0
    assert np.array_equal(np.frombuffer(pcm, "<i2")[:8000], caller[:8000])
    assert rec.end_reason is not None and rec.recording_sha256


class _Broken:
    name = "broken"

    def transcribe(self, audio):
        raise RuntimeError("model exploded")


def test_a_failing_recogniser_keeps_the_call_and_the_recording(rules, tmp_path):
    caller = call_audio([(1, 1.2, ABUSE)], 5)
    res = simulate(rules(), caller, db=tmp_path / "b.db", transcriber=_Broken())
    assert res.verdicts() == [] and res.end_reason == "end_of_audio"
    assert [e.status for e in res.timeline
            if isinstance(e, Transcribed) and e.status != "ok"] == ["failed"]

    async def read():
        async with Store.open(tmp_path / "b.db") as store:
            return await store.read_audio(res.call_id, "caller")
    assert np.array_equal(np.frombuffer(asyncio.run(read()), "<i2"), caller)


class _BusyRecogniser:
    """A recogniser whose first job runs until the test ends and whose later ones wait in
    its queue: what a slow look does to the looks after it, held still."""

    def __init__(self) -> None:
        self.running = None
        self.queued: list = []
        self.submitted: list = []  # (start, speech_end in samples, provisional), in order
        self.cancelled: list = []

    def submit(self, utterance, leg, matcher=None, *, priority=None):
        fut = asyncio.get_running_loop().create_future()
        self.submitted.append((utterance.start, utterance.speech_end, utterance.provisional))
        if self.running is None:
            self.running = fut
        else:
            self.queued.append((utterance, fut))
        return fut

    def pending(self, max_priority: int = 0) -> int:
        return len(self.queued)

    def cancel(self, future) -> bool:
        for utt, fut in self.queued:
            if fut is future:
                self.queued.remove((utt, fut))
                self.cancelled.append((utt.start, utt.speech_end, utt.provisional))
                fut.set_result(Recognition(Leg.CALLER, utt, "cancelled"))
                return True
        return False


def test_a_newer_look_takes_the_place_of_one_still_waiting(rules):
    # Three phrases with 400 ms pauses (an early look at each, no end of the utterance):
    # the first look runs on, the second waits; the third, which also covers the end of
    # the speech, takes the second's place instead of being dropped.
    engine = rules()
    caller = call_audio([(1, 1.0, CLEAN), (2.4, 0.6, CLEAN), (3.4, 0.6, CLEAN)], 6)
    busy = _BusyRecogniser()

    async def main() -> None:
        session = CallSession(ruleset=engine.ruleset, matcher=engine.matcher, recogniser=busy,
                              control=FakeCallControl(), clock=VirtualClock(),
                              config=SessionConfig(play_pre_call=False))
        await session.start()
        for i in range(0, caller.size, 160):
            await session.feed(Leg.CALLER, caller[i:i + 160])
            await session.feed(Leg.COUNSELOR, np.zeros(160, np.int16))

    asyncio.run(main())
    # Three looks, all early ones: the final utterance (submitted when the hangover ends)
    # reuses the third, which heard the same speech.
    assert [p for _, _, p in busy.submitted] == [True, True, True]
    # The third starts where the second did and reaches the last phrase's end (4 s, and
    # what webrtcvad hears after it); the second was cancelled, not recognised.
    assert busy.cancelled == [busy.submitted[1]]
    assert busy.submitted[2][0] == busy.submitted[1][0]
    assert 4.0 * 8000 <= busy.submitted[2][1] <= 4.2 * 8000


class _FailsFirst(ToneTranscriber):
    """Raises on its first utterance (a recogniser hiccup), then hears tones as usual."""

    def transcribe(self, audio):
        if self.calls == 0:
            self.calls += 1
            raise RuntimeError("recogniser hiccup")
        return super().transcribe(audio)


def test_a_failed_look_is_covered_by_the_next_one(rules):
    # 2 s of abuse, a 300 ms pause (an early look, which fails), 1.5 s of clean speech and
    # a pause: the next look takes in the failed look's span too, so the abuse is heard
    # there (about 4.9 s), not only when the utterance ends and is recognised whole.
    caller = call_audio([(1, 2.0, ABUSE), (3.3, 1.5, CLEAN)], 8)
    res = simulate(rules(), caller, transcriber=_FailsFirst(SCRIPT))
    assert _kinds(res)[:2] == ["notice", "warn"]
    assert res.verdicts()[1][0] < 5.3
