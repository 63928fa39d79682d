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
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from callguard.asr.worker import CALLER, COUNSELOR, Recognition
from callguard.audio.vad import Segmenter, Utterance
from callguard.policy.escalation import (
    CallState,
    ClockTick,
    HitsObserved,
    PolicyEvaluator,
    ProtectRequested,
    Verdict,
    VerdictKind,
)
from callguard.rules.matcher import Hit, Matcher
from callguard.rules.model import Prompt, RuleSet
from callguard.session.clock import CallClock
from callguard.session.control import CallControl
from callguard.session.events import TimelineEvent

log = logging.getLogger(__name__)

LEGS = (CALLER, COUNSELOR)
#: Extra time after a final prompt's nominal end before BYE, for jitter buffers downstream.
HANGUP_MARGIN_S = 0.3


class Recogniser(Protocol):
    """What the session needs from :class:`~callguard.asr.worker.RecognitionWorker`."""

    def submit(self, utterance: Utterance, leg: str, matcher: Matcher | None = None, *,
               priority: int | None = None): ...

    def pending(self, max_priority: int = 0) -> int: ...

    def cancel(self, future) -> None: ...


class CallStore(Protocol):
    """What the session writes (implemented by :class:`callguard.store.store.Store`)."""

    async def ensure_ruleset(self, version: str, path: str | None, text: str) -> None: ...
    async def create_call(self, direction: str, remote: str | None, source: str,
                          started_at: float, rules_version: str, sample_rate: int,
                          counselor: str = "") -> int: ...
    async def append_audio(self, call_id: int, leg: str, start_sample: int,
                           pcm: bytes) -> None: ...
    async def add_utterance(self, call_id: int, leg: str, start_s: float, end_s: float,
                            text: str, status: str, reason: str | None = None,
                            asr_s: float | None = None, lag_s: float | None = None,
                            hits=()) -> int: ...
    async def add_verdict(self, call_id: int, t_s: float, kind: str, prompt: str | None,
                          hangup: bool, reason: str) -> None: ...
    async def add_action(self, call_id: int, t_s: float, kind: str, detail: str,
                         ok: bool = True, error: str | None = None) -> None: ...
    async def update_call(self, call_id: int, flagged: bool | None = None,
                          stage: str | None = None) -> None: ...
    async def end_call(self, call_id: int, ended_at: float, duration_s: float,
                       end_reason: str, hung_up_by: str | None = None) -> Any: ...


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
    early_ms: int | None = 160
    # Early looks at an utterance longer than this recognise only the speech after the
    # previous look (which ended at a pause the detector heard). Whole-utterance decoding of
    # 10-15 s took 0.8-1.1 s here; tails of a few seconds take 0.2-0.4 s. ``None``: always
    # look at the whole utterance.
    tail_look_after_s: float | None = 4.0
    max_utterance_s: float = 15.0
    record_chunk_s: float = 1.0
    transcribe_counselor: bool = True
    play_pre_call: bool = True


@dataclass
class _Pending:
    leg: str
    utterance: Utterance
    future: Any
    t_submit: float
    wall_submit: float
    key: tuple[str, int]  # (leg, start of the whole utterance): hits are counted per key
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


_STAGE_OF = {VerdictKind.NOTICE: "notice", VerdictKind.WARN: "warned",
             VerdictKind.FINAL: "final", VerdictKind.DURATION_FINAL: "final"}


def _hit_row(h: Hit) -> tuple:
    return (h.rule_id, str(h.category), h.severity, h.term, h.start, h.end, h.matched)


def hung_up_by(end_reason: str) -> str | None:
    """Who ended the call, from its end reason: ``agent`` (callguard), ``remote`` (the other
    party), ``counselor``; ``None`` when nobody hung up (interrupted, end of audio)."""
    return {"final_notice": "agent", "duration_limit": "agent", "caller_hangup": "remote",
            "remote_hangup": "remote", "counselor_hangup": "counselor"}.get(end_reason)


class CallSession:
    """Runs one call. ``await start()``, then ``feed``/``advance`` until ``ended``, then
    ``await finish(reason)`` (idempotent; also after a hangup)."""

    def __init__(self, *, ruleset: RuleSet, matcher: Matcher, recogniser: Recogniser,
                 control: CallControl, clock: CallClock, store: CallStore | None = None,
                 direction: str = "inbound", remote: str | None = None,
                 source: str = "simulate", config: SessionConfig | None = None,
                 counselor: str = "",
                 on_event: Callable[[TimelineEvent], None] | None = None,
                 wall_clock: Callable[[], float] = time.monotonic) -> None:
        self.ruleset = ruleset
        self.matcher = matcher
        self.recogniser = recogniser
        self.control = control
        self.clock = clock
        self.store = store
        self.direction = direction
        self.remote = remote
        self.source = source
        self.counselor = counselor
        self.config = cfg = config or SessionConfig()
        self._emit_cb = on_event
        self._wall = wall_clock
        self.policy = PolicyEvaluator.for_call(ruleset, direction)
        self.state = CallState(direction)
        self.segmenters = {
            leg: Segmenter(sample_rate=cfg.sample_rate, frame_ms=cfg.frame_ms, mode=cfg.vad_mode,
                           pre_roll_ms=cfg.pre_roll_ms, hangover_ms=cfg.hangover_ms,
                           tail_ms=cfg.tail_ms, max_utterance_s=cfg.max_utterance_s,
                           early_ms=cfg.early_ms if leg == CALLER else None)
            for leg in LEGS
        }
        self.call_id: int | None = None
        self.ended = False  # hung up (by us) or finished
        self.end_reason: str | None = None
        self.timeline: list[TimelineEvent] = []
        self.latencies: list[float] = []  # end of caller speech → result, seconds
        self._rec_buf = {leg: bytearray() for leg in LEGS}
        self._rec_start = dict.fromkeys(LEGS, 0)
        self._early: dict[tuple[str, int], _Pending] = {}
        self._counted: dict[tuple[str, int], set[str]] = {}
        self._inflight: list[_Pending] = []
        self._due: list[_Due] = []
        self._seq = itertools.count()
        self._playing_until = 0.0
        self._hangup_scheduled = False
        self._last_tick = 0
        self._stage = "none"
        self._flagged = False
        self._finished = False
        self._hung_up_at: float | None = None
        self.protected = False  # the counselor pressed protect during the call
        self._started_at = time.time()  # unix epoch seconds; set again by start()

    # --- driver API -----------------------------------------------------------------------

    async def start(self, started_at: float | None = None) -> None:
        """Open the call record and play the pre-call announcement if configured."""
        rs = self.ruleset
        if self.store is not None:
            self._started_at = time.time() if started_at is None else started_at
            await self._ensure_call()
        self._emit(TimelineEvent(0.0, "call", detail={"direction": self.direction,
                                                      "rules": rs.version[:12]}))
        if self.config.play_pre_call and "pre_call" in rs.prompts:
            await self._play(0.0, "pre_call", rs.prompts["pre_call"])

    async def feed(self, leg: str, pcm: np.ndarray) -> None:
        """Audio of ``leg`` as it arrives: int16 mono at ``config.sample_rate``."""
        if leg not in LEGS:
            raise ValueError(f"unknown leg {leg!r}")
        if self.ended:
            return
        await self._record(leg, pcm)
        for utt in self.segmenters[leg].push(pcm):
            self._on_utterance(leg, utt)

    async def advance(self, now: float | None = None) -> None:
        """Deliver everything due by call time ``now`` (default: the clock's now)."""
        now = self.clock.now() if now is None else now
        self._collect()
        while self._due and self._due[0].t <= now and not self.ended:
            item = heapq.heappop(self._due)
            await self._dispatch(item)
        while not self.ended and self._last_tick + 1 <= now:
            self._last_tick += 1
            await self._apply(ClockTick(), float(self._last_tick))

    async def protect(self) -> None:
        """The counselor asked for protection: final notice, then hangup."""
        self.protected = True
        await self._apply(ProtectRequested(), self.clock.now())

    def status(self, now: float | None = None) -> dict[str, Any]:
        """Where the call stands at call time ``now`` (seconds), for the counselor's screen:
        ``t``; ``next`` (the verdict the next strikes lead to, or None once ended),
        ``strikes`` counted toward it and ``needed``; the duration limits ``notice_s`` and
        ``limit_s`` (None if off) and the highest ``stage`` reached."""
        now = self.clock.now() if now is None else now
        st = self.policy.stage(self.state, now)
        dur = self.policy.duration
        return {"t": round(now, 2), "next": None if st.next is None else str(st.next),
                "strikes": st.strikes, "needed": st.needed, "notice_s": dur.notice_at,
                "limit_s": dur.final_at, "stage": self._stage, "ended": self.ended}

    async def note_fault(self, detail: str) -> None:
        """Record a fault of the call's machinery (the call goes on) with the call."""
        await self._action(self.clock.now(), "fault", detail, ok=False, error=detail)

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

    async def finish(self, reason: str = "end_of_audio") -> None:
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
        self.end_reason = self.end_reason or reason
        while self._due:
            item = heapq.heappop(self._due)
            await self._dispatch(item, after_end=True)
        for leg in LEGS:
            await self._flush_recording(leg)
        duration = max(self.clock.now(), self._audio_seconds())
        if self._hung_up_at is not None:
            duration = self._hung_up_at
        self._emit(TimelineEvent(duration, "call", text="end",
                                 detail={"reason": self.end_reason}))
        if self.store is not None and self.call_id is not None:
            await self._safe(self.store.update_call(self.call_id, flagged=self._flagged,
                                                    stage=self._stage))
            await self._safe(self.store.end_call(self.call_id, time.time(), duration,
                                                 self.end_reason,
                                                 hung_up_by(self.end_reason)))

    # --- audio → recognition --------------------------------------------------------------

    def _on_utterance(self, leg: str, utt: Utterance) -> None:
        key = (leg, utt.start)
        if utt.provisional:
            # Only when the worker is free: an early look must never delay a final one.
            if self.recogniser.pending(0) == 0:
                look = self._tail_look(utt, self._early.get(key))
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
        if leg == COUNSELOR and not self.config.transcribe_counselor:
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
        return Utterance(start=start, end=utt.end, pcm=utt.pcm[start - utt.start:],
                         sample_rate=utt.sample_rate, speech_end=utt.speech_end,
                         provisional=True)

    def _submit(self, leg: str, utt: Utterance, key: tuple[str, int]) -> _Pending:
        matcher = self.matcher if leg == CALLER else None
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
            await self._on_result(item.t, p, rec, after_end)
        elif item.what == "hangup" and not after_end:
            await self._hangup(item.t, item.payload)


    async def _on_result(self, t: float, p: _Pending, rec: Recognition, after_end: bool) -> None:
        utt = p.final or p.utterance
        is_final = not p.utterance.provisional or p.final is not None
        key = p.key
        hits = rec.hits
        new_hits: tuple[Hit, ...] = ()
        if p.leg == CALLER and hits:
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
        if d is not None and d.result is not None and d.result[1].status in ("ok", "rejected"):
            t_known = min(t_known, d.result[0])
        lag = t_known - utt.speech_end / utt.sample_rate if utt.speech_end >= 0 else None
        if p.leg == CALLER and lag is not None and is_final and rec.status in ("ok",
                                                                              "rejected"):
            self.latencies.append(lag)
        kind = "speech" if rec.status == "ok" else "dropped"
        detail_extra = {"after_end": True} if after_end else {}
        if p.utterance.provisional and not is_final:
            kind = "early"
        self._emit(TimelineEvent(t, kind, p.leg, rec.text, detail={
            "start": round(utt.start_s, 2), "end": round(utt.end_s, 2), "status": rec.status,
            "reason": rec.reason, "hits": [h.rule_id for h in hits],
            # Character spans into ``text`` (NFC), end exclusive: for highlighting.
            "spans": [[h.start, h.end, h.rule_id, str(h.category)] for h in hits],
            "lag_s": None if lag is None else round(lag, 3), "asr_s": round(rec.asr_s, 3),
            **detail_extra}))
        # One row per utterance: an early look that found hits is stored at once (it is
        # evidence even if the caller goes on and the whole utterance reads differently);
        # a final that reuses that early result is not stored again.
        store_it = (is_final and not p.stored) or (not is_final and bool(new_hits))
        if store_it and self.store is not None and self.call_id is not None:
            p.stored = True
            await self._safe(self.store.add_utterance(
                self.call_id, p.leg, utt.start_s, utt.end_s, rec.text, rec.status,
                reason=rec.reason if not p.utterance.provisional else "early_look",
                asr_s=rec.asr_s, lag_s=lag, hits=[_hit_row(h) for h in hits]))
        if new_hits and not after_end:
            await self._apply(HitsObserved(new_hits, p.leg), t)
        elif new_hits:
            self._flagged = True  # heard only after the call ended: evidence, no action

    async def _apply(self, event, t: float) -> None:
        if self.ended or self.state.ended:
            return
        self.state, verdicts = self.policy.step(self.state, event, t)
        for v in verdicts:
            await self._on_verdict(v)

    async def _on_verdict(self, v: Verdict) -> None:
        self._flagged = self._flagged or v.kind in (VerdictKind.WARN, VerdictKind.FINAL,
                                                    VerdictKind.ALERT, VerdictKind.NOTICE)
        if self._stage != "final":
            self._stage = _STAGE_OF.get(v.kind, self._stage)
        self._emit(TimelineEvent(v.at, "verdict", detail={
            "kind": str(v.kind), "reason": v.reason, "strikes": v.strikes,
            "rules": list(v.rule_ids), "prompt": v.prompt, "hangup": v.hangup}))
        if self.store is not None and self.call_id is not None:
            await self._safe(self.store.add_verdict(self.call_id, v.at, str(v.kind), v.prompt,
                                                    v.hangup, v.reason))
            await self._safe(self.store.update_call(self.call_id, flagged=self._flagged,
                                                    stage=self._stage))
        ends_at = v.at
        if v.prompt is not None:
            prompt = self.ruleset.prompts.get(v.prompt)
            if prompt is not None:
                ends_at = await self._play(v.at, v.prompt, prompt)
            else:
                await self._action(v.at, "play_prompt", v.prompt, ok=False,
                                   error="prompt not configured")
        if v.kind is VerdictKind.WARN:
            self.state = self.policy.warning_heard_at(self.state, ends_at)
        if v.kind is VerdictKind.ALERT:
            await self._action(v.at, "alert", "supervisor alert: " + ",".join(v.rule_ids))
        if v.hangup and not self._hangup_scheduled:
            self._hangup_scheduled = True
            when = ends_at + (HANGUP_MARGIN_S if ends_at > v.at else 0.0)
            heapq.heappush(self._due, _Due(when, next(self._seq), "hangup", str(v.kind)))

    async def _play(self, t: float, key: str, prompt: Prompt) -> float:
        """Start ``prompt`` after whatever is playing; return the call time it ends."""
        begin = max(t, self._playing_until)
        try:
            seconds = await self.control.start_prompt(key, prompt)
        except Exception as exc:  # a broken prompt must not keep the call up
            log.warning("prompt %s failed: %s", key, exc)
            await self._action(begin, "play_prompt", key, ok=False, error=str(exc))
            return begin
        self._playing_until = begin + seconds
        await self._action(begin, "play_prompt", f"{key} ({seconds:.1f} s)")
        return self._playing_until

    async def _hangup(self, t: float, why: str) -> None:
        try:
            await self.control.hangup()
            await self._action(t, "hangup", why)
        except Exception as exc:
            log.error("hangup failed: %s", exc)
            await self._action(t, "hangup", why, ok=False, error=str(exc))
        self.ended = True
        self._hung_up_at = t
        self.end_reason = "final_notice" if why == str(VerdictKind.FINAL) else "duration_limit"
        self._stage = "final"

    async def _action(self, t: float, kind: str, detail: str, ok: bool = True,
                      error: str | None = None) -> None:
        self._emit(TimelineEvent(t, "action", detail={"kind": kind, "detail": detail, "ok": ok,
                                                      "error": error}))
        if self.store is not None and self.call_id is not None:
            await self._safe(self.store.add_action(self.call_id, t, kind, detail, ok, error))

    # --- recording ------------------------------------------------------------------------

    async def _record(self, leg: str, pcm: np.ndarray) -> None:
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

    async def _flush_recording(self, leg: str) -> None:
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
        """Await a store write; a failing store must not end the call."""
        try:
            result = await aw
        except Exception as exc:
            log.error("store write failed: %s", exc)
            return default
        return True if result is None else result

    def _emit(self, ev: TimelineEvent) -> None:
        self.timeline.append(ev)
        if self._emit_cb is not None:
            try:
                self._emit_cb(ev)
            except Exception:  # a display bug must not break the call
                log.exception("timeline listener failed")
