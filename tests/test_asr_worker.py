"""The recognition worker: results on the loop, guard and matcher, failures, priority,
bounded queue with deferral, cancel, stats and shutdown. Recognisers are fakes."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from callguard.asr.fake import ScriptedTranscriber, ToneTranscriber
from callguard.asr.transcript import Float32Array, SegmentInfo, Transcript
from callguard.asr.worker import Recognition, RecognitionWorker
from callguard.audio.vad import Utterance
from callguard.rules import Matcher, parse_rules
from callguard.vocabulary import Leg

FS = 8000
RULES = """
[[rule]]
id = "nospace.babo"
category = "insult"
severity = 2
terms = ["바보"]
"""
TONES = {500.0: "안녕하세요", 1000.0: "너 바보야", 1500.0: "환불해 주세요",
         2000.0: "시청해 주셔서 감사합니다", 2500.0: "배송 문의요", 3000.0: "주소 변경이요"}


@pytest.fixture(scope="module")
def matcher() -> Matcher:
    return Matcher(parse_rules(RULES).ruleset, None)


def tone(hz: float, seconds: float = 0.25, start: int = 0) -> Utterance:
    t = np.arange(int(seconds * FS)) / FS
    pcm = np.rint(8000 * np.sin(2 * np.pi * hz * t)).astype(np.int16)
    return Utterance(start=start, end=start + pcm.size, pcm=pcm, sample_rate=FS)


def blank(n: int = 800, start: int = 0) -> Utterance:
    return Utterance(start=start, end=start + n, pcm=np.zeros(n, np.int16), sample_rate=FS)


class Gate:
    """Wraps a transcriber: the first call blocks until ``release()``, so a test can fill
    the queue while the worker is busy. Records the text of every call in order."""

    name = "gate"

    def __init__(self, inner) -> None:
        self.inner = inner
        self.entered = threading.Event()
        self._open = threading.Event()
        self.order: list[str] = []

    def release(self) -> None:
        self._open.set()

    async def busy(self) -> None:
        assert await asyncio.to_thread(self.entered.wait, 5.0), "worker never started a job"

    def transcribe(self, audio: Float32Array) -> Transcript:
        self.entered.set()
        assert self._open.wait(5.0), "test never released the gate"
        result = self.inner.transcribe(audio)
        self.order.append(result.text)
        return result


async def gathered(*futures):
    return await asyncio.wait_for(asyncio.gather(*futures), timeout=5.0)


async def occupied(leg: Leg, **worker_kw) -> tuple[Gate, RecognitionWorker, asyncio.Future]:
    """A started worker on a :class:`Gate` over the tone fake, busy with a job of ``leg``
    (500 Hz, "안녕하세요") held at the gate, so that what is submitted next waits in the
    queue. Returns (the gate, the worker, the busy job's future)."""
    gate = Gate(ToneTranscriber(TONES))
    worker = RecognitionWorker(lambda: gate, **worker_kw)
    await worker.start()
    busy = worker.submit(tone(500.0), leg)
    await gate.busy()
    return gate, worker, busy


def recognise_once(factory, utt: Utterance, matcher: Matcher | None = None,
                   **worker_kw) -> tuple[RecognitionWorker, Recognition]:
    """Start a worker on ``factory``, recognise ``utt`` as caller speech, stop the worker.
    Returns (the stopped worker, the result)."""
    async def main():
        worker = RecognitionWorker(factory, **worker_kw)
        await worker.start()
        r = await asyncio.wait_for(worker.submit(utt, Leg.CALLER, matcher), 5.0)
        await worker.stop()
        return worker, r

    return asyncio.run(main())


# --- results ------------------------------------------------------------------------------

def test_result_comes_back_on_the_loop_with_text_and_hits(matcher):
    async def main():
        worker = RecognitionWorker(lambda: ToneTranscriber(TONES))
        await worker.start()
        utt = tone(1000.0)
        fut = worker.submit(utt, Leg.CALLER, matcher)
        assert isinstance(fut, asyncio.Future)
        assert fut.get_loop() is asyncio.get_running_loop()
        result = await asyncio.wait_for(fut, 5.0)
        await worker.stop()
        return worker, utt, result

    worker, utt, r = asyncio.run(main())
    assert isinstance(r, Recognition)
    assert r.status == "ok"
    assert r.leg == Leg.CALLER
    assert r.utterance is utt
    assert r.text == "너 바보야"
    assert [h.rule_id for h in r.hits] == ["nospace.babo"]
    assert r.hits[0].matched == "바보"
    assert r.match is not None and r.match.text == "너 바보야"
    assert r.reason is None and r.error is None
    assert r.transcript is not None and r.transcript.duration_s == pytest.approx(0.25)
    assert r.guard is not None and r.guard.text == "너 바보야"
    assert r.queued_s >= 0.0 and r.asr_s >= 0.0
    assert 0 < r.done_at <= time.monotonic()
    assert worker.transcriber is not None and worker.transcriber.calls == 1
    assert worker.load_s >= 0.0


def test_clean_text_has_no_hits_and_no_matcher_means_no_match(matcher):
    async def main():
        worker = RecognitionWorker(lambda: ToneTranscriber(TONES))
        await worker.start()
        clean = worker.submit(tone(500.0), Leg.CALLER, matcher)
        unmatched = worker.submit(tone(1000.0), Leg.COUNSELOR)
        out = await gathered(clean, unmatched)
        await worker.stop()
        return out

    clean, unmatched = asyncio.run(main())
    assert (clean.status, clean.text, clean.hits) == ("ok", "안녕하세요", ())
    assert clean.match is not None
    assert (unmatched.status, unmatched.text, unmatched.leg) == ("ok", "너 바보야", Leg.COUNSELOR)
    assert unmatched.match is None and unmatched.hits == ()


def test_stock_phrase_is_rejected_without_match(matcher):
    worker, r = recognise_once(lambda: ToneTranscriber(TONES), tone(2000.0), matcher)
    assert r.status == "rejected"
    assert r.reason == "stock_phrase"
    assert r.text == ""
    assert r.match is None and r.hits == ()
    assert r.guard is not None
    assert r.guard.dropped == (("stock_phrase", "시청해 주셔서 감사합니다"),)
    assert worker.stats().done == 1


def test_silence_is_rejected_as_empty(matcher):
    _, r = recognise_once(lambda: ToneTranscriber(TONES), blank(), matcher)
    assert (r.status, r.reason, r.text, r.match) == ("rejected", "empty", "", None)


def test_hallucinated_no_speech_segment_is_rejected(matcher):
    fake = Transcript((SegmentInfo(" 바보", avg_logprob=-1.4, no_speech_prob=0.92),), 0.1)
    _, r = recognise_once(lambda: ScriptedTranscriber([fake]), blank(), matcher)
    assert (r.status, r.reason, r.hits) == ("rejected", "no_speech", ())
    assert r.transcript is fake


# --- failures -----------------------------------------------------------------------------

class Flaky:
    name = "flaky"

    def __init__(self) -> None:
        self.calls = 0

    def transcribe(self, audio: Float32Array) -> Transcript:
        self.calls += 1
        if self.calls == 1:
            raise ValueError("decoder exploded")
        return Transcript((SegmentInfo("바보 같은 소리"),), audio.size / 16000)


def test_transcriber_error_fails_one_job_and_the_next_one_works(matcher):
    async def main():
        worker = RecognitionWorker(Flaky)
        await worker.start()
        first = await asyncio.wait_for(worker.submit(blank(), Leg.CALLER, matcher), 5.0)
        second = await asyncio.wait_for(worker.submit(blank(), Leg.CALLER, matcher), 5.0)
        stats = worker.stats()
        await worker.stop()
        return first, second, stats

    first, second, stats = asyncio.run(main())
    assert first.status == "failed"
    assert first.error == "ValueError('decoder exploded')"
    assert first.text == "" and first.match is None
    assert second.status == "ok"
    assert second.text == "바보 같은 소리"
    assert [h.rule_id for h in second.hits] == ["nospace.babo"]
    assert (stats.failed, stats.done) == (1, 1)


def test_factory_error_is_raised_by_start():
    def factory():
        raise OSError("model.bin is missing")

    async def main():
        worker = RecognitionWorker(factory)
        with pytest.raises(OSError, match=r"model\.bin is missing"):
            await asyncio.wait_for(worker.start(), 5.0)
        await asyncio.wait_for(worker.stop(), 5.0)
        return worker

    worker = asyncio.run(main())
    assert worker.transcriber is None
    assert worker._thread is not None and not worker._thread.is_alive()


# --- priority -----------------------------------------------------------------------------

def test_caller_jobs_run_before_earlier_counselor_jobs():
    async def main():
        gate, worker, busy = await occupied(Leg.COUNSELOR)
        futs = [worker.submit(tone(1500.0), Leg.COUNSELOR),   # 환불해 주세요
                worker.submit(tone(2500.0), Leg.COUNSELOR),   # 배송 문의요
                worker.submit(tone(1000.0), Leg.CALLER),      # 너 바보야
                worker.submit(tone(3000.0), Leg.CALLER)]      # 주소 변경이요
        assert worker.pending(0) == 2 and worker.pending(1) == 4
        gate.release()
        results = await gathered(busy, *futs)
        await worker.stop()
        return gate.order, results

    order, results = asyncio.run(main())
    assert order == ["안녕하세요", "너 바보야", "주소 변경이요", "환불해 주세요", "배송 문의요"]
    by_text = {r.text: r for r in results}
    assert by_text["너 바보야"].done_at <= by_text["환불해 주세요"].done_at
    assert all(r.status == "ok" for r in results)


def test_priority_with_a_slow_transcriber():
    async def main():
        worker = RecognitionWorker(lambda: ToneTranscriber(TONES, delay_s=0.05))
        await worker.start()
        futs = [worker.submit(tone(1500.0), Leg.COUNSELOR),
                worker.submit(tone(2500.0), Leg.COUNSELOR),
                worker.submit(tone(3000.0), Leg.COUNSELOR), worker.submit(tone(1000.0), Leg.CALLER)]
        results = await gathered(*futs)
        await worker.stop()
        return results

    _c1, c2, c3, caller = asyncio.run(main())
    # The first counselor job may already be running; the caller job overtakes the rest.
    assert caller.done_at < c2.done_at < c3.done_at
    assert caller.queued_s < c3.queued_s


def test_explicit_priority_overrides_the_leg():
    async def main():
        gate, worker, busy = await occupied(Leg.CALLER)
        a = worker.submit(tone(1000.0), Leg.CALLER)
        b = worker.submit(tone(1500.0), Leg.COUNSELOR, priority=-1)
        gate.release()
        await gathered(busy, a, b)
        await worker.stop()
        return gate.order

    assert asyncio.run(main()) == ["안녕하세요", "환불해 주세요", "너 바보야"]


# --- bounded queue ------------------------------------------------------------------------

def test_full_queue_defers_newest_counselor_for_a_caller_job():
    async def main():
        gate, worker, busy = await occupied(Leg.COUNSELOR, max_queue=2)
        old = worker.submit(tone(1500.0), Leg.COUNSELOR)
        new = worker.submit(tone(2500.0), Leg.COUNSELOR)
        caller = worker.submit(tone(1000.0), Leg.CALLER)
        deferred = await asyncio.wait_for(new, 5.0)  # resolved before the gate opens
        stats = worker.stats()
        gate.release()
        rest = await gathered(busy, old, caller)
        await worker.stop()
        return deferred, stats, rest, gate.order, worker.stats()

    deferred, stats, (_busy, old, caller), order, final = asyncio.run(main())
    assert deferred.status == "deferred"
    assert deferred.reason == "queue_full"
    assert deferred.leg == Leg.COUNSELOR and deferred.text == ""
    assert stats.depth == 2 and stats.deferred == 1
    assert (caller.status, caller.text) == ("ok", "너 바보야")
    assert (old.status, old.text) == ("ok", "환불해 주세요")
    assert order == ["안녕하세요", "너 바보야", "환불해 주세요"]
    assert (final.done, final.deferred, final.depth) == (3, 1, 0)


def test_counselor_job_into_queue_full_of_callers_is_deferred_at_once():
    async def main():
        gate, worker, busy = await occupied(Leg.CALLER, max_queue=2)
        callers = [worker.submit(tone(1000.0), Leg.CALLER), worker.submit(tone(1500.0), Leg.CALLER)]
        late = worker.submit(tone(2500.0), Leg.COUNSELOR)
        assert late.done()  # set synchronously in submit()
        first = late.result()
        another = worker.submit(tone(3000.0), Leg.CALLER)  # same priority: newest is refused
        assert another.done()
        gate.release()
        rest = await gathered(busy, *callers)
        await worker.stop()
        return first, another.result(), rest, worker.stats()

    late, another, rest, stats = asyncio.run(main())
    assert (late.status, late.reason, late.leg) == ("deferred", "queue_full", Leg.COUNSELOR)
    assert (another.status, another.reason) == ("deferred", "queue_full")
    assert [r.status for r in rest] == ["ok", "ok", "ok"]
    assert (stats.deferred, stats.done) == (2, 3)


# --- cancel -------------------------------------------------------------------------------

def test_cancel_a_queued_job():
    async def main():
        gate, worker, busy = await occupied(Leg.CALLER)
        doomed = worker.submit(tone(1000.0), Leg.CALLER)
        kept = worker.submit(tone(1500.0), Leg.CALLER)
        worker.cancel(doomed)
        depth = worker.stats().depth
        pending = worker.pending(0)
        gate.release()
        out = await gathered(busy, doomed, kept)
        await worker.stop()
        return depth, pending, out, gate.order, worker.stats()

    depth, pending, (_busy, doomed, kept), order, stats = asyncio.run(main())
    assert (depth, pending) == (1, 1)
    assert doomed.status == "cancelled"
    assert doomed.text == "" and doomed.transcript is None
    assert kept.status == "ok"
    assert order == ["안녕하세요", "환불해 주세요"]  # the cancelled job never reached ASR
    assert stats.done == 2


def test_cancel_of_unknown_or_finished_future_is_harmless():
    async def main():
        worker = RecognitionWorker(lambda: ToneTranscriber(TONES))
        await worker.start()
        fut = worker.submit(tone(500.0), Leg.CALLER)
        r = await asyncio.wait_for(fut, 5.0)
        worker.cancel(fut)
        worker.cancel(asyncio.get_running_loop().create_future())
        await worker.stop()
        return r

    assert asyncio.run(main()).status == "ok"


def test_cancelled_jobs_do_not_take_queue_slots():
    async def main():
        gate, worker, busy = await occupied(Leg.CALLER, max_queue=1)
        doomed = worker.submit(tone(1000.0), Leg.CALLER)
        worker.cancel(doomed)
        assert worker.stats().depth == 0
        fresh = worker.submit(tone(1500.0), Leg.COUNSELOR)
        gate.release()
        out = await gathered(busy, doomed, fresh)
        await worker.stop()
        return out

    _, _, fresh = asyncio.run(main())
    assert fresh.status == "ok"


# --- stats --------------------------------------------------------------------------------

class FakeClock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_stats_depth_waits_and_counters():
    clock = FakeClock(100.0)

    async def main():
        gate = Gate(ToneTranscriber(TONES))
        worker = RecognitionWorker(lambda: gate, max_queue=3, clock=clock)
        await worker.start()
        idle = worker.stats()
        busy = worker.submit(tone(500.0), Leg.COUNSELOR)
        await gate.busy()
        clock.now = 101.0
        a = worker.submit(tone(1000.0), Leg.CALLER)
        clock.now = 102.5
        b = worker.submit(tone(1500.0), Leg.COUNSELOR)
        clock.now = 104.0
        during = worker.stats()
        gate.release()
        await gathered(busy, a, b)
        await worker.stop()
        return idle, during, worker.stats()

    idle, during, after = asyncio.run(main())
    assert idle == type(idle)(depth=0, oldest_wait_s=0.0, busy_s=0.0, done=0, deferred=0,
                              failed=0, last_asr_s=0.0)
    assert during.depth == 2
    assert during.oldest_wait_s == pytest.approx(3.0)
    assert during.busy_s == pytest.approx(4.0)  # busy since 100.0
    assert (during.done, during.deferred, during.failed) == (0, 0, 0)
    assert (after.depth, after.oldest_wait_s, after.busy_s) == (0, 0.0, 0.0)
    assert (after.done, after.deferred, after.failed) == (3, 0, 0)


def test_queued_and_asr_seconds_come_from_the_clock():
    clock = FakeClock(10.0)

    class Slow:
        name = "slow"

        def transcribe(self, audio):
            clock.now += 2.0
            return Transcript((SegmentInfo("안녕하세요"),), audio.size / 16000)

    worker, r = recognise_once(Slow, blank(), clock=clock)
    stats = worker.stats()
    assert r.queued_s == 0.0
    assert r.asr_s == pytest.approx(2.0)
    assert r.done_at == pytest.approx(12.0)
    assert stats.last_asr_s == pytest.approx(2.0)


# --- stop ---------------------------------------------------------------------------------

def test_stop_drains_queued_jobs_then_the_thread_ends():
    async def main():
        gate, worker, busy = await occupied(Leg.COUNSELOR)
        futs = [busy, worker.submit(tone(1000.0), Leg.CALLER),
                worker.submit(tone(1500.0), Leg.COUNSELOR)]
        stopping = asyncio.create_task(worker.stop())
        await asyncio.sleep(0.05)
        assert not stopping.done()  # waits for the jobs already queued
        with pytest.raises(RuntimeError, match="stopped"):
            worker.submit(tone(2500.0), Leg.CALLER)
        gate.release()
        await asyncio.wait_for(stopping, 5.0)
        # results are resolved via call_soon_threadsafe: let the loop run them
        results = await gathered(*futs)
        return worker, results, gate.order

    worker, results, order = asyncio.run(main())
    assert [r.status for r in results] == ["ok", "ok", "ok"]
    assert order == ["안녕하세요", "너 바보야", "환불해 주세요"]
    assert worker._thread is not None and not worker._thread.is_alive()


def test_stop_resolves_cancelled_jobs_too():
    async def main():
        gate, worker, busy = await occupied(Leg.CALLER)
        doomed = worker.submit(tone(1000.0), Leg.CALLER)
        worker.cancel(doomed)
        gate.release()
        await asyncio.wait_for(worker.stop(), 5.0)
        return await gathered(busy, doomed)

    busy, doomed = asyncio.run(main())
    assert (busy.status, doomed.status) == ("ok", "cancelled")


def test_stop_before_start_is_harmless():
    async def main():
        worker = RecognitionWorker(lambda: ToneTranscriber(TONES))
        await worker.stop()
        with pytest.raises(RuntimeError):
            worker.submit(tone(500.0), Leg.CALLER)

    asyncio.run(main())
