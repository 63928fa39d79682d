"""The recognition worker: one thread owns the recogniser and matches the rules.

Async callers ``submit()`` an utterance and get an ``asyncio.Future``; the worker thread
resamples it to 16 kHz, runs the recogniser (consuming faster-whisper's lazy segments
there, never on the event loop), applies the hallucination guard and matches the rules, then
resolves the future on the caller's loop with ``call_soon_threadsafe``.

The queue is bounded and ordered by priority (the caller's leg before the counselor's).
When it is full, the lowest-priority job waiting is *deferred*: its future resolves with
status ``deferred`` (its audio is still in the recording, for transcription after the call),
so caller speech is never refused because of a backlog of counselor speech.

**In this process or in a child.** The worker runs whatever its factory builds. For the real
model the factory is :func:`callguard.asr.process.child_factory` (what
``callguard.engine.wiring.transcriber_factory`` returns unless asked for ``in_process``):
the model lives in a child process, so a native crash of it fails one utterance
(``failed``) instead of ending the agent, and the child is restarted. Fakes for tests
(``callguard.asr.fake``) are built in this process. Either way this thread is the single
owner of the transcriber, and the guard and the rules matcher run here.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from callguard.asr import memory
from callguard.asr.guard import GuardConfig, GuardResult, judge
from callguard.asr.process import ChildTranscriber, RecogniserCrashed, RecogniserUnavailable
from callguard.asr.transcript import Transcriber, Transcript
from callguard.audio.resample import to_16k
from callguard.audio.vad import Utterance
from callguard.rules.matcher import Matcher, MatchResult
from callguard.vocabulary import Leg

log = logging.getLogger(__name__)

IDLE_CHECK_S = 0.5  # between utterances, how often the transcriber's health is looked at

PRIORITY = {Leg.CALLER: 0, Leg.COUNSELOR: 1}


@dataclass(frozen=True)
class Recognition:
    """The worker's answer for one utterance.

    ``status``: ``ok`` (text accepted, possibly empty of hits), ``rejected`` (the guard
    dropped everything; ``reason`` says why), ``deferred`` (queue full, not recognised),
    ``cancelled`` or ``failed`` (``error`` holds the exception text). ``queued_s`` and
    ``asr_s`` are wall-clock seconds spent waiting and working; ``done_at`` is the
    ``time.monotonic()`` at which the result was ready.
    """

    leg: Leg
    utterance: Utterance
    status: str
    text: str = ""
    match: MatchResult | None = None
    transcript: Transcript | None = None
    guard: GuardResult | None = None
    reason: str | None = None
    error: str | None = None
    queued_s: float = 0.0
    asr_s: float = 0.0
    done_at: float = 0.0

    @property
    def hits(self):
        return self.match.hits if self.match is not None else ()


@dataclass
class _Job:
    priority: int
    seq: int
    leg: Leg
    utterance: Utterance
    matcher: Matcher | None
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future = field(repr=False)
    submitted: float = 0.0
    cancelled: bool = False

    def __lt__(self, other: _Job) -> bool:
        return (self.priority, self.seq) < (other.priority, other.seq)


@dataclass(frozen=True)
class WorkerStats:
    """Published for the UI and the bench: ``depth`` jobs waiting, ``oldest_wait_s`` the age
    of the oldest, ``busy_s`` how long the current job has run (0 when idle), counters."""

    depth: int
    oldest_wait_s: float
    busy_s: float
    done: int
    deferred: int
    failed: int
    last_asr_s: float
    available: bool = True


class RecognitionWorker:
    """Owner thread for a :class:`Transcriber` (built on the thread by ``factory``).

    ``factory`` decides where the model runs: a :func:`callguard.asr.process.child_factory`
    puts it in a child process (the real model's default), any other callable builds the
    transcriber in this process, on this worker's thread (fakes, tools).

    Use ``await worker.start()`` (raises if the model cannot be loaded), then ``submit``;
    ``await worker.stop()`` finishes the jobs already queued, ends the thread and closes
    the transcriber (stops its child process, if it has one).
    """

    def __init__(self, factory: Callable[[], Transcriber], *, max_queue: int = 8,
                 guard: GuardConfig | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._factory = factory
        self._max_queue = max_queue
        self._guard = guard or GuardConfig()
        self._clock = clock
        self._heap: list[_Job] = []
        self._cv = threading.Condition()
        self._seq = itertools.count()
        self._closing = False
        self._thread: threading.Thread | None = None
        self._busy_since: float | None = None
        self._done = self._deferred = self._failed = 0
        self._last_asr = 0.0
        self.transcriber: Transcriber | None = None
        self.load_s = 0.0
        #: Called with ``(ok, problem)`` when the recogniser goes down (a child process
        #: crashed and is restarting, or cannot be started) and when it is back; on the
        #: worker's thread. Set it before :meth:`start`.
        self.on_health: Callable[[bool, str | None], None] | None = None
        self.idle_check_s = IDLE_CHECK_S

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()
        self._thread = threading.Thread(target=self._run, args=(loop, ready),
                                        name="callguard-asr", daemon=True)
        self._thread.start()
        await ready

    async def stop(self) -> None:
        with self._cv:
            self._closing = True
            self._cv.notify_all()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)

    # --- submitting -----------------------------------------------------------------------

    def submit(self, utterance: Utterance, leg: Leg, matcher: Matcher | None = None, *,
               priority: int | None = None) -> asyncio.Future[Recognition]:
        """Queue ``utterance`` (int16 PCM at its own rate) for recognition on ``leg``.

        Must be called from the event loop that awaits the result. ``matcher`` matches the
        accepted text (None: no matching, e.g. for review-only transcription).
        """
        loop = asyncio.get_running_loop()
        job = _Job(PRIORITY.get(leg, 1) if priority is None else priority, next(self._seq),
                   leg, utterance, matcher, loop, loop.create_future(), self._clock())
        with self._cv:
            if self._closing:
                raise RuntimeError("recognition worker is stopped")
            if len(self._heap) >= self._max_queue:
                victim = max(self._heap)  # lowest priority, newest
                if job < victim:
                    self._heap.remove(victim)
                    heapq.heapify(self._heap)
                    self._resolve(victim, Recognition(victim.leg, victim.utterance, "deferred",
                                                      reason="queue_full"))
                    self._deferred += 1
                else:
                    self._deferred += 1
                    job.future.set_result(Recognition(leg, utterance, "deferred",
                                                      reason="queue_full"))
                    return job.future
            heapq.heappush(self._heap, job)
            self._cv.notify()
        return job.future

    def pending(self, max_priority: int = 0) -> int:
        """Jobs waiting with priority ≤ ``max_priority`` (0 = caller)."""
        with self._cv:
            return sum(1 for j in self._heap if j.priority <= max_priority and not j.cancelled)

    def cancel(self, future: asyncio.Future) -> bool:
        """Drop a queued job (e.g. a provisional look superseded by the final utterance);
        its future resolves with status ``cancelled``. A job already running (or done)
        finishes: False then."""
        with self._cv:
            for job in self._heap:
                if job.future is future:
                    self._heap.remove(job)
                    heapq.heapify(self._heap)
                    self._resolve(job, Recognition(job.leg, job.utterance, "cancelled"))
                    return True
        return False

    def stats(self) -> WorkerStats:
        now = self._clock()
        with self._cv:
            waits = [now - j.submitted for j in self._heap if not j.cancelled]
            busy = now - self._busy_since if self._busy_since is not None else 0.0
            return WorkerStats(len(waits), max(waits, default=0.0), busy, self._done,
                               self._deferred, self._failed, self._last_asr, self.available)

    @property
    def available(self) -> bool:
        """False while the transcriber says it cannot recognise (a recogniser process that
        failed too often in a row): results are then ``failed`` at once, until it recovers."""
        return bool(getattr(self.transcriber, "available", True))

    @property
    def health(self) -> tuple[bool, str | None]:
        """``(True, None)`` while the recogniser can recognise; ``(False, why)`` while its
        process is down (crashed and restarting, failed to start, unavailable)."""
        return getattr(self.transcriber, "health", (True, None))

    @property
    def out_of_process(self) -> bool:
        """True when the transcriber's model runs in a child process."""
        return isinstance(self.transcriber, ChildTranscriber)

    # --- the owner thread -----------------------------------------------------------------

    @staticmethod
    def _resolve(job: _Job, result: Recognition) -> None:
        def _set() -> None:
            if not job.future.done():
                job.future.set_result(result)
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
            job.loop.call_soon_threadsafe(_set)

    def _run(self, loop: asyncio.AbstractEventLoop, ready: asyncio.Future) -> None:
        memory.limit_arenas()  # before the model allocates: see callguard.asr.memory
        try:
            started = time.perf_counter()
            self.transcriber = self._factory()
            self.load_s = time.perf_counter() - started
        except Exception as exc:  # handed to the awaiting coroutine
            with self._cv:
                self._closing = True  # submit() now refuses instead of queueing forever
            loop.call_soon_threadsafe(ready.set_exception, exc)
            return
        if hasattr(self.transcriber, "on_health"):
            self.transcriber.on_health = self._health_changed  # type: ignore[attr-defined]
        loop.call_soon_threadsafe(ready.set_result, None)
        try:
            self._serve()
        finally:
            close = getattr(self.transcriber, "close", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    close()

    def _health_changed(self, ok: bool, problem: str | None) -> None:
        if self.on_health is not None:
            try:
                self.on_health(ok, problem)
            except Exception:
                log.exception("recognition health listener failed")

    def _idle(self) -> None:
        """Between utterances: let the transcriber look after itself (a child process that
        died while idle is noticed and restarted now, not at the next utterance)."""
        poll = getattr(self.transcriber, "poll_idle", None)
        if poll is not None:
            try:
                poll()
            except Exception:
                log.exception("recogniser housekeeping failed")

    def _serve(self) -> None:
        while True:
            with self._cv:
                if not self._heap and not self._closing:
                    self._cv.wait(self.idle_check_s)
                job = heapq.heappop(self._heap) if self._heap else None
                if job is None and self._closing:
                    return
                if job is not None and job.cancelled:
                    self._resolve(job, Recognition(job.leg, job.utterance, "cancelled"))
                    continue
                if job is not None:
                    self._busy_since = self._clock()
            if job is None:  # woken by the idle timeout
                self._idle()
                continue
            result = self._work(job)
            with self._cv:
                self._busy_since = None
            self._resolve(job, result)
            if not self.out_of_process:  # a child trims its own heap
                memory.trim()

    def _work(self, job: _Job) -> Recognition:
        began = self._clock()
        queued = began - job.submitted
        assert self.transcriber is not None
        try:
            audio = to_16k(job.utterance.pcm, job.utterance.sample_rate)
            transcript = self.transcriber.transcribe(audio)
            verdict = judge(transcript, self._guard)
            match = job.matcher.match(verdict.text) if (verdict.text and job.matcher) else None
        except (RecogniserCrashed, RecogniserUnavailable) as exc:  # the child's fate, logged there
            log.warning("recognition failed on the %s leg: %s", job.leg, exc)
            self._failed += 1
            return Recognition(job.leg, job.utterance, "failed", error=repr(exc),
                               queued_s=queued, asr_s=self._clock() - began,
                               done_at=self._clock())
        except Exception as exc:  # one bad utterance must not stop the call
            log.exception("recognition failed on the %s leg", job.leg)
            self._failed += 1
            return Recognition(job.leg, job.utterance, "failed", error=repr(exc),
                               queued_s=queued, asr_s=self._clock() - began,
                               done_at=self._clock())
        self._done += 1
        self._last_asr = self._clock() - began
        status = "ok" if verdict.text else "rejected"
        return Recognition(job.leg, job.utterance, status, text=verdict.text, match=match,
                           transcript=transcript, guard=verdict, reason=verdict.reason,
                           queued_s=queued, asr_s=self._last_asr, done_at=self._clock())
