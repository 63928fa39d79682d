"""CallSession: the pipeline one call runs, the same for a live call and a simulation.

Data flow (times are call time, seconds since answer)::

    feed(leg, pcm) ─► recording (store, ~1 s chunks)
                   └► Segmenter ─► utterances ─► RecognitionWorker ─► results
    advance(now) ─► results due by ``now`` ─► policy ─► verdicts ─► prompts, hangup, store

The driver (a live line or ``simulate``) owns time: it feeds audio as it arrives and calls
``advance(now)``. A result becomes visible at the call time it would have arrived: on a real
clock that is when it did; on a virtual clock it is the submit time plus the recognition's
wall time, so a simulation run as fast as possible shows honest latencies.

Caller speech is looked at early: when the caller pauses for ``early_ms`` the open
utterance is recognised provisionally, and its hits count at once; if the caller goes on,
the whole utterance is recognised again at its end and only rules not yet counted for it
add strikes. If the pause simply becomes the end, the early result *is* the final one.
Once an utterance is long, an early look recognises only what is new since the previous
look (a *tail look*): detection time then stays that of a short phrase however long the
caller talks, and the whole utterance is still recognised at its end for the transcript.

Nothing here raises into the driver for a recognition, store or prompt failure: the call
must go on (and be recorded) whatever breaks; failures are logged and recorded as actions.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from callguard.asr.worker import Recognition
from callguard.audio.vad import Segmenter, Utterance
from callguard.clock import SYSTEM, CallClock, TimeSource
from callguard.policy.enforcement import Enforcement
from callguard.policy.escalation import ClockTick, Event, HitsObserved, ProtectRequested
from callguard.rules.matcher import Hit, Matcher
from callguard.rules.model import RuleSet
from callguard.session.control import CallControl
from callguard.vocabulary import (
    ActionKind,
    AlertRaised,
    CallEnded,
    CallEvent,
    CallStarted,
    CallStatus,
    Direction,
    EndReason,
    FaultNoted,
    HangupSent,
    HitSpan,
    Leg,
    PromptFailed,
    PromptFinished,
    PromptStarted,
    Source,
    Transcribed,
    UtteranceStatus,
    VerdictIssued,
    VerdictKind,
)

log = logging.getLogger(__name__)

LEGS = tuple(Leg)
STORE_LOG_EVERY_S = 60.0  # one log line per kind of store failure per minute
_DIGITS = re.compile(r"\d+")


class Recogniser(Protocol):
    """What the session needs from :class:`~callguard.asr.worker.RecognitionWorker`."""

    def submit(self, utterance: Utterance, leg: Leg, matcher: Matcher | None = None, *,
               priority: int | None = None): ...

    def pending(self, max_priority: int = 0) -> int: ...

    def cancel(self, future) -> bool: ...


class CallStore(Protocol):
    """What the session writes (implemented by :class:`callguard.store.store.Store`)."""

    async def ensure_ruleset(self, version: str, path: str | None, text: str) -> None: ...
    async def create_call(self, direction: Direction, remote: str | None, source: Source,
                          started_at: float, rules_version: str, sample_rate: int,
                          counselor: str = "") -> int: ...
    async def append_audio(self, call_id: int, leg: Leg, start_sample: int,
                           pcm: bytes) -> None: ...
    async def add_utterance(self, call_id: int, leg: Leg, start_s: float, end_s: float,
                            text: str, status: UtteranceStatus, reason: str | None = None,
                            asr_s: float | None = None, lag_s: float | None = None,
                            hits=(), at_s: float | None = None) -> int: ...
    async def add_verdict(self, call_id: int, t_s: float, kind: VerdictKind,
                          prompt: str | None, hangup: bool, reason: str,
                          cause: str | None = None) -> None: ...
    async def add_action(self, call_id: int, t_s: float, kind: ActionKind, detail: str,
                         ok: bool = True, error: str | None = None,
                         prompt: str | None = None, seconds: float | None = None) -> None: ...
    async def update_call(self, call_id: int, flagged: bool | None = None,
                          stage: str | None = None) -> None: ...
    async def end_call(self, call_id: int, ended_at: float, duration_s: float,
                       end_reason: EndReason, hung_up_by: str | None = None) -> Any: ...


@dataclass(frozen=True)
class SessionConfig:
    """Audio is int16 mono at ``sample_rate`` Hz per leg. VAD settings are the
    :class:`~callguard.audio.vad.Segmenter`'s (milliseconds / seconds as named)."""

    sample_rate: int = 8000
    vad_mode: int = 2
    frame_ms: int = 20
    pre_roll_ms: int = 300
    # 800 ms: on a continuous stream of the speech-ko utterances this split 7 sentences at
    # inner pauses where 600 ms split 11 (stream CER .403 vs .418, whole-utterance .386);
    # the early look keeps detection fast regardless.
    hangover_ms: int = 800
    tail_ms: int = 300
    # Detection latency is this pause plus recognition time; on 40 speech-ko utterances
    # p50/p95 were 0.65/1.13 s at 240 ms, 0.57/1.07 s at 200 ms, 0.55-0.60/0.96-1.03 s at
    # 160 ms (the same recognition work: early looks run only when the worker is idle).
    # With tail looks and the short encoder window, `callguard bench` (20 utterances, real
    # time) gave p50/p95 0.44/0.52 s at 160 ms and 0.40/0.50 s at 100 ms: the look itself
    # (0.2-0.5 s of Whisper) is the rest, so the pause is the part worth cutting.
    early_ms: int | None = 100
    # Early looks at an utterance longer than this recognise only the speech after the
    # previous look (which ended at a pause the detector heard). Whole-utterance decoding of
    # 10-15 s took 0.8-1.1 s here; tails of a few seconds take 0.2-0.4 s. ``None``: always
    # look at the whole utterance.
    tail_look_after_s: float | None = 4.0
    # A tail look shorter than this (a breath, a filler after a pause) looks at the
    # previous look's span as well: alone, 0.3-0.5 s of audio cost 0.15-0.3 s of Whisper
    # (the encoder window is 10 s whatever the length) and came back rejected as noise.
    tail_look_min_s: float = 1.0
    # A caller who talks on without a pause of ``early_ms`` (one 7 s stretch of speech-ko
    # had none) is looked at at a 60 ms pause once 2.5 s went unlooked, so the look at the
    # end recognises a few seconds, not the whole stretch (0.47 s of Whisper for 7 s).
    early_long_ms: int | None = 60
    early_long_after_s: float = 2.5
    max_utterance_s: float = 15.0
    record_chunk_s: float = 1.0
    transcribe_counselor: bool = True
    play_pre_call: bool = True


@dataclass
class _Pending:
    leg: Leg
    utterance: Utterance
    future: Any
    t_submit: float
    wall_submit: float
    key: tuple[Leg, int]  # (leg, start of the whole utterance): hits are counted per key
    final: Utterance | None = None  # set when the final utterance reuses this early look
    superseded: bool = False
    result: tuple[float, Recognition] | None = None  # (call time, result) once dispatched
    stored: bool = False  # its utterance row has been written
    # A final recognised again for its transcript after a tail look already covered its
    # last speech: detection latency is that look's.
    detected_by: _Pending | None = None


@dataclass(order=True)
class _Due:
    t: float
    seq: int
    what: str = field(compare=False)
    payload: Any = field(compare=False, default=None)


def _from(utt: Utterance, start: int) -> Utterance:
    """Provisional ``utt`` from sample ``start`` (on its timeline, within it) to its end."""
    return Utterance(start=start, end=utt.end, pcm=utt.pcm[start - utt.start:],
                     sample_rate=utt.sample_rate, speech_end=utt.speech_end, provisional=True)


def _accepted(p: _Pending) -> bool:
    """False when ``p``'s recognition is known to have given no accepted text (refused by
    the guard, failed, cancelled); True when it did, or is not done yet."""
    if not p.future.done():
        return True
    try:
        return p.future.result().status == "ok"
    except BaseException:  # failed or cancelled future
        return False


def _hit_row(h: Hit) -> tuple:
    return (h.rule_id, str(h.category), h.severity, h.term, h.start, h.end, h.matched)


class CallSession:
    """Runs one call. ``await start()``, then ``feed``/``advance`` until ``ended``, then
    ``await finish(reason)`` (idempotent; also after a hangup)."""

    def __init__(self, *, ruleset: RuleSet, matcher: Matcher, recogniser: Recogniser,
                 control: CallControl, clock: CallClock, store: CallStore | None = None,
                 direction: Direction = Direction.INBOUND, remote: str | None = None,
                 source: Source = Source.SIMULATE, config: SessionConfig | None = None,
                 counselor: str = "",
                 on_event: Callable[[CallEvent], None] | None = None,
                 wall_clock: TimeSource = SYSTEM, repeat_flagged: int = 0) -> None:
        self.ruleset = ruleset
        self.matcher = matcher
        self.recogniser = recogniser
        self.control = control
        self.clock = clock
        self.store = store
        self.direction = Direction(direction)
        self.remote = remote
        self.source = Source(source)
        self.counselor = counselor
        #: The caller's recent flagged calls known before the answer (central server).
        self.repeat_flagged = repeat_flagged
        self.config = cfg = config or SessionConfig()
        self._emit_cb = on_event
        self._wall = wall_clock.monotonic  # recognition wall time (virtual clocks)
        self._epoch = wall_clock.time  # stored start and end times
        self.enforcement = Enforcement(ruleset, self.direction)
        self.segmenters = {
            leg: Segmenter(sample_rate=cfg.sample_rate, frame_ms=cfg.frame_ms, mode=cfg.vad_mode,
                           pre_roll_ms=cfg.pre_roll_ms, hangover_ms=cfg.hangover_ms,
                           tail_ms=cfg.tail_ms, max_utterance_s=cfg.max_utterance_s,
                           early_ms=cfg.early_ms if leg is Leg.CALLER else None,
                           early_long_ms=cfg.early_long_ms,
                           early_long_after_s=cfg.early_long_after_s)
            for leg in LEGS
        }
        self.call_id: int | None = None
        self.ended = False  # hung up (by us) or finished
        self.end_reason: EndReason | None = None
        self.timeline: list[CallEvent] = []
        self.latencies: list[float] = []  # end of caller speech → result, seconds
        self._rec_buf = {leg: bytearray() for leg in LEGS}
        self._rec_start = dict.fromkeys(LEGS, 0)
        self._early: dict[tuple[Leg, int], _Pending] = {}
        self._counted: dict[tuple[Leg, int], set[str]] = {}
        self._inflight: list[_Pending] = []
        self._due: list[_Due] = []
        self._seq = itertools.count()
        self._prompt_ends: list[tuple[float, int, str]] = []  # (call time, seq, key)
        self._hangup_scheduled = False
        self._last_tick = 0
        self._finished = False
        self._hung_up_at: float | None = None
        self.protected = False  # the counselor pressed protect during the call
        self._started_at = self._epoch()  # unix epoch seconds; set again by start()
        self._store_logged: dict[str, float] = {}  # kind of store failure -> last logged

    # --- driver API -----------------------------------------------------------------------

    async def start(self, started_at: float | None = None) -> None:
        """Open the call record and play the pre-call announcement if configured."""
        rs = self.ruleset
        if self.store is not None:
            self._started_at = self._epoch() if started_at is None else started_at
            await self._ensure_call()
        await self._publish(CallStarted(0.0, self.direction, rs.version))
        for ev in self.enforcement.start(self._start_prompt, pre_call=self.config.play_pre_call,
                                         repeat_flagged=self.repeat_flagged):
            await self._publish(ev)

    async def feed(self, leg: Leg, pcm: np.ndarray) -> None:
        """Audio of ``leg`` as it arrives: int16 mono at ``config.sample_rate``."""
        if leg not in LEGS:
            raise ValueError(f"unknown leg {leg!r}")
        leg = Leg(leg)
        if self.ended:
            return
        await self._record(leg, pcm)
        for utt in self.segmenters[leg].push(pcm):
            self._on_utterance(leg, utt)

    async def advance(self, now: float | None = None) -> None:
        """Deliver everything due by call time ``now`` (default: the clock's now)."""
        now = self.clock.now() if now is None else now
        self._collect()
        # In call-time order, results before a clock tick at the same time: the order the
        # dry-run replays a stored call in, so both see the policy events alike.
        while not self.ended:
            tick = self._last_tick + 1
            if self._due and self._due[0].t <= min(now, tick):
                await self._dispatch(heapq.heappop(self._due))
            elif tick <= now:
                self._last_tick = tick
                await self._apply(ClockTick(), float(tick))
            elif self._due and self._due[0].t <= now:
                await self._dispatch(heapq.heappop(self._due))
            else:
                break
        while self._prompt_ends and self._prompt_ends[0][0] <= now:
            t, _, key = heapq.heappop(self._prompt_ends)
            self._emit(PromptFinished(key, t))

    async def protect(self) -> None:
        """The counselor asked for protection: final notice, then hangup."""
        self.protected = True
        await self._apply(ProtectRequested(), self.clock.now())

    @property
    def stage(self):
        """The highest escalation stage reached (:class:`~callguard.vocabulary.Stage`)."""
        return self.enforcement.stage

    @property
    def flagged(self) -> bool:
        """True when the call is marked for a supervisor's review."""
        return self.enforcement.flagged

    def status(self, now: float | None = None) -> CallStatus:
        """Where the call stands at call time ``now`` (seconds; default the clock's)."""
        now = self.clock.now() if now is None else now
        enf = self.enforcement
        progress = enf.progress(now)
        dur = enf.policy.duration
        return CallStatus(at_s=round(now, 2), next=progress.next, strikes=progress.strikes,
                          needed=progress.needed, notice_s=dur.notice_at,
                          limit_s=dur.final_at, stage=enf.stage, ended=self.ended,
                          warnings_given=enf.warnings, warnings=enf.policy.escalation.warnings,
                          store_id=self.call_id)

    async def note_fault(self, detail: str) -> None:
        """Record a fault of the call's machinery (the call goes on) with the call."""
        await self._publish(FaultNoted(self.clock.now(), detail))

    async def wait_inflight(self) -> None:
        """Wait (wall time) until every submitted recognition has finished. A virtual-clock
        driver calls this before advancing, so that due times are known."""
        for p in list(self._inflight):
            if not p.future.done():
                with contextlib.suppress(Exception):  # surfaced by _collect
                    await p.future
        self._collect()

    def next_due(self) -> float | None:
        self._collect()
        return self._due[0].t if self._due else None

    async def finish(self, reason: EndReason = EndReason.END_OF_AUDIO) -> None:
        """The line is gone (hung up by either side, or the audio ended): flush the VAD and
        the recordings, wait for recognitions still running (their transcripts are kept,
        but can no longer trigger prompts), and store the end. Idempotent."""
        if self._finished:
            return
        self._finished = True
        for leg in LEGS:
            for utt in self.segmenters[leg].flush():
                self._on_utterance(leg, utt)
        await self.wait_inflight()
        self.ended = True
        self.end_reason = self.end_reason or EndReason(reason)
        while self._due:
            item = heapq.heappop(self._due)
            await self._dispatch(item, after_end=True)
        for leg in LEGS:
            await self._flush_recording(leg)
        duration = max(self.clock.now(), self._audio_seconds())
        if self._hung_up_at is not None:
            duration = self._hung_up_at
        await self._publish(CallEnded(duration, self.end_reason))

    # --- audio → recognition --------------------------------------------------------------

    def _on_utterance(self, leg: Leg, utt: Utterance) -> None:
        key = (leg, utt.start)
        if utt.provisional:
            prev = self._early.get(key)
            if self.recogniser.pending(0) == 0:
                look = self._tail_look(utt, prev)
            elif (prev is not None and not prev.superseded
                  and self.recogniser.cancel(prev.future)):
                # This utterance's previous look was still waiting (behind a look that
                # runs): this one takes its place and covers its span too. Dropping this
                # one instead could drop the look at the end of the speech.
                prev.superseded = True
                look = _from(utt, prev.utterance.start)
            else:
                return  # another utterance's result waits: an early look never delays it
            self._early[key] = self._submit(leg, look, key)
            return
        early = self._early.pop(key, None)
        detected_by = None
        if early is not None and not early.superseded:
            if early.utterance.speech_end == utt.speech_end:
                if early.utterance.start == utt.start:
                    # Nothing new was said since the early look: its result is the final one.
                    early.final = utt
                    if early.result is not None:
                        t, rec = early.result
                        heapq.heappush(self._due, _Due(max(t, self.clock.now()),
                                                       next(self._seq), "result", (early, rec)))
                    return
                # A tail look heard the end; the transcript needs the whole utterance.
                detected_by = early
            else:
                early.superseded = True
                self.recogniser.cancel(early.future)
        if leg is Leg.COUNSELOR and not self.config.transcribe_counselor:
            return
        self._submit(leg, utt, key).detected_by = detected_by

    def _tail_look(self, utt: Utterance, prev: _Pending | None) -> Utterance:
        """The part of provisional ``utt`` to recognise: all of it, or, for a long utterance
        whose previous early look is still valid, only what follows that look's speech end
        (it ended at a pause, so no word is cut; the previous look covers what came before)."""
        limit = self.config.tail_look_after_s
        if (limit is None or prev is None or prev.superseded or utt.duration_s < limit
                or not utt.start <= prev.utterance.speech_end < utt.speech_end):
            return utt
        start = prev.utterance.speech_end
        if ((utt.speech_end - start) / utt.sample_rate < self.config.tail_look_min_s
                or not _accepted(prev)):
            # Too little new speech to recognise on its own, or the previous look's text
            # was refused (or failed): take that look's span too (it began where the look
            # before it ended, or at the utterance's start), or its words go unheard until
            # the utterance ends.
            start = prev.utterance.start
        return _from(utt, start)

    def _submit(self, leg: Leg, utt: Utterance, key: tuple[Leg, int]) -> _Pending:
        matcher = self.matcher if leg is Leg.CALLER else None
        fut = self.recogniser.submit(utt, leg, matcher)
        # Submitted when the segmenter emitted it: the end of the audio it was cut from.
        t_submit = max(self.clock.now(), self.segmenters[leg].position / self.config.sample_rate)
        p = _Pending(leg, utt, fut, t_submit, self._wall(), key)
        self._inflight.append(p)
        return p

    def _collect(self) -> None:
        """Move finished recognitions onto the due heap at the call time they arrive."""
        still = []
        for p in self._inflight:
            if not p.future.done():
                still.append(p)
                continue
            try:
                rec: Recognition = p.future.result()
            except BaseException as exc:  # recorded, call goes on
                rec = Recognition(p.leg, p.utterance, "failed", error=repr(exc))
            if self.clock.virtual:
                took = max(0.0, (rec.done_at or self._wall()) - p.wall_submit)
                t = p.t_submit + took
            else:
                t = max(self.clock.now(), p.t_submit)
            heapq.heappush(self._due, _Due(t, next(self._seq), "result", (p, rec)))
        self._inflight = still

    # --- results → policy → actions -------------------------------------------------------

    async def _dispatch(self, item: _Due, after_end: bool = False) -> None:
        if item.what == "result":
            p, rec = item.payload
            # A result dispatched after the end arrived then, never earlier: the dry-run
            # (and any reader of ``at_s``) sees it was never acted on.
            t = max(item.t, self.clock.now()) if after_end else item.t
            await self._on_result(t, p, rec, after_end)
        elif item.what == "hangup" and not after_end:
            await self._hangup(item.t)

    async def _on_result(self, t: float, p: _Pending, rec: Recognition, after_end: bool) -> None:
        utt = p.final or p.utterance
        is_final = not p.utterance.provisional or p.final is not None
        key = p.key
        hits = rec.hits
        status = UtteranceStatus(rec.status)
        new_hits: tuple[Hit, ...] = ()
        if p.leg is Leg.CALLER and hits:
            seen = self._counted.setdefault(key, set())
            new_hits = tuple(h for h in hits if h.rule_id not in seen)
            seen.update(h.rule_id for h in new_hits)
        if p.utterance.provisional and not is_final:
            p.result = (t, rec)  # the final utterance may reuse it
            if not new_hits:
                return  # nothing to act on yet; the final result tells the story
        # Latency of the first result that covered all of this speech: for a final that
        # reuses its early look, the early result's time.
        t_known = p.result[0] if (p.final is not None and p.result is not None) else t
        d = p.detected_by
        if d is not None and d.result is not None and UtteranceStatus(d.result[1].status).heard:
            t_known = min(t_known, d.result[0])
        lag = t_known - utt.speech_end / utt.sample_rate if utt.speech_end >= 0 else None
        if p.leg is Leg.CALLER and lag is not None and is_final and status.heard:
            self.latencies.append(lag)
        event = Transcribed(
            at_s=t, leg=p.leg, text=rec.text, start_s=round(utt.start_s, 2),
            end_s=round(utt.end_s, 2), status=status, reason=rec.reason,
            hits=tuple(HitSpan(h.start, h.end, h.rule_id, str(h.category)) for h in hits),
            lag_s=None if lag is None else round(lag, 3), asr_s=round(rec.asr_s, 3),
            early=p.utterance.provisional and not is_final, after_end=after_end)
        self._emit(event)
        # One row per utterance: an early look that found hits is stored at once (it is
        # evidence even if the caller goes on and the whole utterance reads differently);
        # a final that reuses that early result is not stored again.
        store_it = (is_final and not p.stored) or (not is_final and bool(new_hits))
        if store_it and self.store is not None and self.call_id is not None:
            p.stored = True
            await self._safe(self.store.add_utterance(
                self.call_id, p.leg, utt.start_s, utt.end_s, rec.text, status,
                reason=rec.reason if not p.utterance.provisional else "early_look",
                asr_s=rec.asr_s, lag_s=lag, hits=[_hit_row(h) for h in hits], at_s=t))
        if new_hits and not after_end:
            await self._apply(HitsObserved(new_hits, p.leg), t)
        elif new_hits:
            self.enforcement.late_hits()  # heard only after the call ended: no action
            await self._store_progress()

    async def _apply(self, event: Event, t: float) -> None:
        if self.ended:
            return
        for ev in self.enforcement.observe(event, t, self._start_prompt):
            await self._publish(ev)
        enf = self.enforcement
        if enf.hangup_at is not None and not self._hangup_scheduled:
            self._hangup_scheduled = True
            heapq.heappush(self._due, _Due(enf.hangup_at, next(self._seq), "hangup"))

    def _start_prompt(self, key: str) -> float:
        """The enforcement core's prompt player: start ``key`` on the line."""
        return self.control.start_prompt(key, self.ruleset.prompts[key])

    async def _hangup(self, t: float) -> None:
        verdict = self.enforcement.hangup_verdict
        assert verdict is not None
        try:
            await self.control.hangup()
            sent = HangupSent(t, verdict)
        except Exception as exc:
            log.error("hangup failed: %s", exc)
            sent = HangupSent(t, verdict, ok=False, error=str(exc))
        self.ended = True
        self._hung_up_at = t
        self.end_reason = self.enforcement.hangup_done()
        await self._publish(sent)

    async def _publish(self, ev: CallEvent) -> None:
        """Show ``ev`` to listeners and keep it in the store (the one place a call event
        becomes rows)."""
        self._emit(ev)
        if isinstance(ev, PromptStarted):
            # Not on the due heap: a prompt's end is news, never a reason to keep the
            # simulated clock running.
            heapq.heappush(self._prompt_ends, (ev.ends_at, next(self._seq), ev.key))
        store, cid = self.store, self.call_id
        if store is None or cid is None:
            return
        match ev:
            case VerdictIssued():
                await self._safe(store.add_verdict(cid, ev.at_s, ev.kind, ev.prompt,
                                                   ev.hangup, ev.reason, cause=ev.cause))
                await self._store_progress()
            case PromptStarted():
                await self._safe(store.add_action(
                    cid, ev.at_s, ActionKind.PLAY_PROMPT, f"{ev.key} ({ev.seconds:.1f} s)",
                    prompt=ev.key, seconds=ev.seconds))
            case PromptFailed():
                log.warning("prompt %s failed: %s", ev.key, ev.error)
                await self._safe(store.add_action(cid, ev.at_s, ActionKind.PLAY_PROMPT, ev.key,
                                                  ok=False, error=ev.error, prompt=ev.key,
                                                  seconds=0.0))
            case AlertRaised():
                await self._safe(store.add_action(
                    cid, ev.at_s, ActionKind.ALERT,
                    "supervisor alert: " + ",".join(ev.rule_ids)))
            case HangupSent():
                await self._safe(store.add_action(cid, ev.at_s, ActionKind.HANGUP,
                                                  str(ev.verdict), ev.ok, ev.error))
            case FaultNoted():
                await self._safe(store.add_action(cid, ev.at_s, ActionKind.FAULT, ev.detail,
                                                  ok=False, error=ev.detail))
            case CallEnded():
                await self._store_progress()
                await self._safe(store.end_call(cid, self._epoch(), ev.at_s, ev.reason,
                                                ev.hung_up_by))

    async def _store_progress(self) -> None:
        if self.store is not None and self.call_id is not None:
            await self._safe(self.store.update_call(self.call_id, flagged=self.flagged,
                                                    stage=self.stage))

    # --- recording ------------------------------------------------------------------------

    async def _record(self, leg: Leg, pcm: np.ndarray) -> None:
        buf = self._rec_buf[leg]
        buf += np.asarray(pcm, dtype="<i2").tobytes()
        if len(buf) >= 2 * self.config.record_chunk_s * self.config.sample_rate:
            await self._flush_recording(leg)

    async def _ensure_call(self) -> int | None:
        """The call's row id, creating the row if that has not worked yet: a store that
        failed at the start (disk full, locked) is retried at every recording flush, and
        the audio is kept in memory until then."""
        if self.call_id is None and self.store is not None:
            rs = self.ruleset
            await self._safe(self.store.ensure_ruleset(rs.version, str(rs.path or ""),
                                                       rs.source))
            self.call_id = await self._safe(self.store.create_call(
                self.direction, self.remote or "", self.source, self._started_at, rs.version,
                self.config.sample_rate, counselor=self.counselor))
        return self.call_id

    async def _flush_recording(self, leg: Leg) -> None:
        buf = self._rec_buf[leg]
        if not buf:
            return
        data = bytes(buf)
        start = self._rec_start[leg]
        if self.store is not None and await self._ensure_call() is None:
            return  # no call row yet: keep the audio, retry at the next flush
        if self.store is not None and self.call_id is not None:
            ok = await self._safe(self.store.append_audio(self.call_id, leg, start, data),
                                  default=False)
            if ok is False:
                return  # keep the bytes; the next flush retries with more
        buf.clear()
        self._rec_start[leg] = start + len(data) // 2

    def _audio_seconds(self) -> float:
        return max(self.segmenters[leg].position for leg in LEGS) / self.config.sample_rate

    # --- helpers --------------------------------------------------------------------------

    async def _safe(self, aw, default: Any = None) -> Any:
        """Await a store write; a failing store must not end the call. Logged once a minute
        per kind of failure (a full disk fails every write: never a flood of lines)."""
        try:
            result = await aw
        except Exception as exc:
            kind = f"{type(exc).__name__}: {_DIGITS.sub('#', str(exc))}"
            now = self._wall()
            if now - self._store_logged.get(kind, -1e18) >= STORE_LOG_EVERY_S:
                self._store_logged[kind] = now
                log.error("store write failed: %s", exc)
            return default
        return True if result is None else result

    def _emit(self, ev: CallEvent) -> None:
        self.timeline.append(ev)
        if self._emit_cb is not None:
            try:
                self._emit_cb(ev)
            except Exception:  # a display bug must not break the call
                log.exception("timeline listener failed")
