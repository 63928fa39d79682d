"""One live call: line audio ⇄ session ⇄ headset, on the engine loop, every 20 ms.

Call timeline (8 kHz samples, 0 = media start): the caller leg at position *i* is what
arrived at *i*/8000 s (placed by RTP timestamp), read ``PLAYOUT`` behind real time so late
packets still land; the counselor leg at position *j* is what we sent at about *j*/8000 s
(microphone plus prompts), written ``LEAD`` ahead of the sender. Prompts are mixed into the
outgoing audio, so the counselor hears them too and the recording holds them.

Time comes in from outside. :meth:`CallRunner.step` does one 20 ms step at a call time it is
given (in samples); :meth:`CallRunner.run` is the loop that calls it on an absolute 20 ms
schedule of the call clock's time source: real time on a line, or a test's
:class:`~callguard.clock.StepClock`, which runs the steps at exact call times with
no sleeping. On a stepped clock a step also waits for the recognitions it submitted, so
they take no call time and their results act in the step that heard the speech.

Hangup after a final prompt: the session asks for it (:meth:`LiveCallControl.hangup`), and
the runner sends the BYE at the first step at which the line has sent the prompt's last
sample, so the BYE waits on the line's progress, never on wall time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from callguard.audio.devices import AudioDevice
from callguard.audio.samplequeue import SampleQueue
from callguard.clock import Pacer, RealClock
from callguard.engine.prompts import PromptLibrary
from callguard.rules.model import Prompt
from callguard.session.call import CallSession
from callguard.telephony.base import FRAME, RATE, Call, CallEnd, CallState
from callguard.vocabulary import Direction, EndReason, Leg

log = logging.getLogger(__name__)

# How far behind real time the caller leg is read: the receive timeline's minimum play-out
# delay (100 ms: 80 ms of jitter tolerance plus a packet) and one tick of margin.
PLAYOUT = 6 * FRAME
LEAD = 2 * FRAME  # 40 ms: how far ahead of the sender the outgoing audio is kept
TICK_S = FRAME / RATE
DRAIN_TIMEOUT_S = 5.0  # longest wait (call time) for a prompt to finish sending before BYE
# Media from strangers: the first drop is kept with the call at once, then while drops go on
# at most one note per RTP_NOTE_EVERY_S of call time (the final count at the end).
RTP_NOTE_EVERY_S = 60.0
RTP_NOTES_MAX = 5


def _mix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.clip(a.astype(np.int32) + b.astype(np.int32), -32768, 32767).astype(np.int16)


class LiveCallControl:
    """:class:`~callguard.session.control.CallControl` on a live call. ``clock`` is the
    call's clock (its time source gives the monotonic marks below)."""

    def __init__(self, call: Call, prompts: PromptLibrary,
                 clock: RealClock | None = None) -> None:
        self.call = call
        self.library = prompts
        self.clock = clock if clock is not None else RealClock(getattr(call, "media_start",
                                                                       None))
        self.player = SampleQueue()  # prompt audio not yet mixed into the call
        # Samples written to the line up to and including the last prompt sample so far.
        self.prompt_mark = 0
        self.hangups = 0
        self.hangup_pending = False  # asked for; the runner sends the BYE once drained
        # Time source monotonic() of the last hangup: asked for, prompt drained, BYE sent.
        self.decided_at: float | None = None
        self.drained_at: float | None = None
        self.bye_sent_at: float | None = None
        # Call time (samples at 8 kHz) of the step that sent the BYE: exact on a stepped
        # clock. ``decided_s``: call time (seconds) the hangup was asked for.
        self.bye_pos: int | None = None
        self.decided_s: float | None = None

    def start_prompt(self, key: str, prompt: Prompt) -> float:
        pcm = self.library.audio(prompt)
        self.player.add(pcm)
        return pcm.size / RATE

    @property
    def drained(self) -> bool:
        """True once the last prompt sample handed to the line (``prompt_mark``, in samples
        written) has been sent. Microphone audio queued after it is not waited for: the BYE
        follows the prompt, not the lead."""
        return not self.player.busy and self.call.sent_samples >= self.prompt_mark

    async def hangup(self) -> None:
        """Ask for the BYE; returns at once. The runner sends it (:meth:`bye_if_due`) at its
        first step at which the prompt has drained, or ``DRAIN_TIMEOUT_S`` of call time
        after the ask, whichever comes first."""
        if self.hangup_pending:
            return
        self.decided_at = self.clock.source.monotonic()
        self.decided_s = self.clock.now()
        self.hangups += 1
        self.hangup_pending = True

    def bye_if_due(self, pos: int, *, force: bool = False) -> bool:
        """At the runner's step at call time ``pos`` (samples): send the BYE asked for if
        the prompt has drained, the drain timed out, the call has ended or ``force`` (the
        runner is stopping). True if sent."""
        if not self.hangup_pending:
            return False
        drained = self.drained
        waited = pos / RATE - (self.decided_s or 0.0)
        if not (drained or force or waited > DRAIN_TIMEOUT_S
                or self.call.state is CallState.ENDED):
            return False
        if not drained:
            log.warning("prompt did not finish sending before hangup")
        self.hangup_pending = False
        self.drained_at = self.clock.source.monotonic()
        self.bye_pos = pos
        self.call.hangup()
        # The line knows when the BYE left; the fake line and others: now.
        self.bye_sent_at = getattr(self.call, "bye_sent_at", None) or self.drained_at
        return True


class CallRunner:
    """Pumps one call until it ends; then finishes the session (stores the end).

    ``clock`` is the call's clock (call time, 0 = answer, on a time source). ``pacer``: the
    schedule :meth:`run` waits on; default a new one from the clock's source when ``run``
    starts. The engine makes it when the call is answered, so that a stepped clock never
    moves past a call whose loop has not started yet."""

    def __init__(self, call: Call, session: CallSession, control: LiveCallControl,
                 device: AudioDevice, clock: RealClock,
                 on_status: Callable[[dict], None] | None = None,
                 on_headset: Callable[[str], None] | None = None,
                 pacer: Pacer | None = None) -> None:
        self.call = call
        self.session = session
        self.control = control
        self.device = device
        self.clock = clock
        self.pacer = pacer
        self.steps = 0  # steps done
        self._headset_noted = False
        self.rpos = 0  # caller leg: next sample to read
        self.wpos = 0  # counselor leg: next sample to write (call timeline)
        self.written = 0  # samples handed to the line (wpos minus the dropped ones)
        self.dropped = 0  # microphone samples dropped to make up for sender underruns
        self.connected = False  # the counselor is on (after the pre-call notice)
        self.muted = False  # the counselor's microphone is not sent (prompts still are)
        self.faults = 0
        self.on_status = on_status  # once a second: session.status() plus "muted"
        self.step_s: list[float] = []  # wall time of each 20 ms step (for the benchmark)
        self.headset_error: str | None = None  # set when the headset failed: not used after
        self.on_headset = on_headset  # called once with that error (engine loop)
        self._notes: list[str] = []  # faults to keep with the call at the next step
        self._rtp_noted = 0  # dropped-RTP count at the last note (0: none noted yet)
        self._rtp_notes = 0
        self._rtp_noted_at = 0.0  # call time (s) of the last dropped-RTP note

    @property
    def active(self) -> bool:
        """The call goes on: not ended, and not hung up by the session (or hung up with the
        BYE still waiting for the prompt to drain)."""
        return ((not self.session.ended or self.control.hangup_pending)
                and self.call.state is not CallState.ENDED)

    def position(self) -> int:
        """The call clock's time now, in samples at 8 kHz."""
        return round(self.clock.now() * RATE)

    async def run(self) -> None:
        """:meth:`start`, then :meth:`step` on an absolute 20 ms schedule of the clock's
        source until the call ends, then :meth:`finish`. Real time: each step is at the
        call time it actually runs (a late step catches up, never piling up sleep error);
        on a stepped clock at exactly 0, 160, 320, ... samples after the loop began."""
        pacer = self.pacer if self.pacer is not None else self.clock.source.pacer()
        try:
            try:
                await self.start()
                tick = 0
                t0 = self.clock.source.monotonic()
                while self.active:
                    await self.step(self.position())
                    tick += 1
                    if self.active:
                        await pacer.until(t0 + tick * TICK_S)
            finally:
                await self.finish()
        finally:
            pacer.close()

    async def start(self) -> None:
        """Start the session (the call record, the pre-call notice if any); the counselor
        is put on at once when no notice plays."""
        await self.session.start()
        self.connected = not self.control.player.busy

    async def finish(self) -> None:
        """The call is over: send a BYE still owed, keep the caller audio that arrived
        before the end, and finish the session with the call's end reason."""
        try:
            if self.control.hangup_pending:  # the call ended first, or the loop stopped
                self.control.bye_if_due(self.position(), force=True)
            await self._drain_remaining()
            while self._notes:  # noted after the last step
                await self.session.note_fault(self._notes.pop(0))
            dropped = getattr(self.call, "dropped_rtp", 0)
            if dropped:  # media from strangers was refused: kept with the call
                await self.session.note_fault(
                    f"rtp: {dropped} packets dropped (not from the caller's SDP address "
                    f"and SSRC)")
        finally:
            await self.session.finish(_end_reason(self.call, self.session))

    async def step(self, pos: int) -> None:
        """One 20 ms step at call time ``pos``, in samples at 8 kHz since the answer
        (``pos / 8000`` seconds): read the caller leg up to ``pos - PLAYOUT``, write the
        counselor leg (microphone plus prompts) up to ``pos + LEAD``, let the session act on
        everything due by then, send the BYE if one is asked for and due, and every 50th
        step report the status. Never raises: a failing step is counted and kept with the
        call as a fault, and the call goes on."""
        s = self.session
        began = time.perf_counter()
        try:
            await self._step(pos)
        except Exception as exc:  # fail open: the call and its recording go on
            self.faults += 1
            log.exception("call step failed; the call goes on")
            if self.faults <= 3:  # stored with the call, but never a flood of rows
                await s.note_fault(f"call step: {type(exc).__name__}")
        try:
            self.control.bye_if_due(pos)  # even when the step failed
        except Exception:
            log.exception("sending the BYE failed")
        if self.headset_error is not None and not self._headset_noted:
            self._headset_noted = True  # kept with the call: what the counselor missed
            await s.note_fault(f"headset: {self.headset_error}")
        try:
            await self._note_dropped_rtp(pos / RATE)
            while self._notes:
                await s.note_fault(self._notes.pop(0))
        except Exception:
            log.exception("keeping a fault with the call failed; the call goes on")
        self.step_s.append(time.perf_counter() - began)
        self.steps += 1
        if self.steps % 50 == 0 and self.on_status is not None:
            try:
                self.on_status(replace(s.status(), muted=self.muted))
            except Exception:
                log.exception("status listener failed")

    async def _step(self, pos: int) -> None:
        now = pos / RATE
        upto = pos - PLAYOUT
        if upto > self.rpos:
            caller = self.call.read(upto)
            n = upto - self.rpos
            if caller.size < n:  # a line without a timeline (fix off) returns less
                caller = np.concatenate([caller, np.zeros(n - caller.size, np.int16)])
            self.rpos = upto
            await self.session.feed(Leg.CALLER, caller[:n])
            if self.connected:
                self._to_headset(caller[:n])
        want = pos + LEAD
        if want > self.wpos:
            n = want - self.wpos
            mic = self._from_headset(n) if self.connected else np.zeros(n, np.int16)
            if self.muted or self.control.hangup_pending:  # after the hangup: prompts only
                mic = np.zeros(n, np.int16)
            k = min(n, self.control.player.queued)  # prompt samples in this chunk (its head)
            prompt = self.control.player.take(n)
            out = _mix(mic, prompt)
            # When this loop ran late, the sender filled silence, and everything written
            # since goes out that much later. Catch up by dropping microphone audio (never
            # a prompt sample): the counselor's voice stays on time.
            owed = self.call.underrun_samples - self.dropped
            d = min(owed, n) if k == 0 and owed > 0 else 0
            self.dropped += d
            self.call.write(out[d:])
            if k:  # the line counts written samples as it sends them
                self.control.prompt_mark = self.written + k
            self.written += n - d
            self.wpos = want
            await self.session.feed(Leg.COUNSELOR, out)
            if not self.connected and not self.control.player.busy:
                self.connected = True  # the pre-call notice is over: put the counselor on
        if self.clock.source.stepped:  # recognition takes no call time on a test's clock
            await self.session.wait_inflight()
        await self.session.advance(now)

    # The headset is the counselor's, not the caller's: if it cannot be opened or fails
    # mid-call (unplugged, driver error), the call, its recording, warnings and cut-off go
    # on without it.
    def _to_headset(self, pcm: np.ndarray) -> None:
        if self.headset_error is None:
            try:
                self.device.write(pcm)
            except Exception as exc:
                self.headset_failed(f"{type(exc).__name__}: {exc}")

    def _from_headset(self, n: int) -> np.ndarray:
        if self.headset_error is None:
            try:
                return self.device.read(n)
            except Exception as exc:
                self.headset_failed(f"{type(exc).__name__}: {exc}")
        return np.zeros(n, np.int16)

    def note(self, detail: str) -> None:
        """Keep ``detail`` with the call as a fault at the next step (engine loop)."""
        self._notes.append(detail)

    async def _note_dropped_rtp(self, now_s: float) -> None:
        """Media from a stranger is noted with the call when it starts, not only in the
        count at the end; while it goes on, at most one note a minute (a few in all)."""
        try:
            dropped = int(getattr(self.call, "dropped_rtp", 0) or 0)
        except Exception:
            return
        if dropped <= self._rtp_noted:
            return
        # "media: ...", not "rtp: N packets dropped", which is the final count (finish).
        if self._rtp_noted == 0:
            detail = (f"media: RTP not from the caller's SDP address and SSRC is being "
                      f"dropped ({dropped} packet(s) so far)")
        elif (self._rtp_notes < RTP_NOTES_MAX
              and now_s - self._rtp_noted_at >= RTP_NOTE_EVERY_S):
            detail = f"media: still dropping RTP from strangers ({dropped} packets so far)"
        else:
            return
        self._rtp_noted, self._rtp_notes, self._rtp_noted_at = dropped, self._rtp_notes + 1, now_s
        log.warning("%s", detail)
        await self.session.note_fault(detail)

    def headset_failed(self, error: str) -> None:
        """Stop using the headset for this call: log ``error``, report it once through
        ``on_headset``, and (at the next step) keep it with the call as a fault."""
        self.headset_error = error
        log.warning("headset: %s; the call goes on without it", error)
        if self.on_headset is not None:
            self.on_headset(error)

    async def _drain_remaining(self) -> None:
        """Audio that arrived before the end still belongs to the recording: read the
        caller leg up to now (the play-out delay no longer matters)."""
        upto = self.position()
        if upto > self.rpos and not self.session.ended:
            caller = self.call.read(upto)[:upto - self.rpos]
            self.rpos = upto
            if caller.size:
                await self.session.feed(Leg.CALLER, caller)


def _end_reason(call: Call, session: CallSession) -> EndReason:
    if session.end_reason:
        return session.end_reason
    r = call.end_reason
    if r is CallEnd.REMOTE_HANGUP:
        return (EndReason.CALLER_HANGUP if call.direction == Direction.INBOUND
                else EndReason.REMOTE_HANGUP)
    if r is CallEnd.LOCAL_HANGUP:
        return EndReason.COUNSELOR_HANGUP
    if r is CallEnd.NO_ACK:  # the line sent the BYE: the caller never confirmed the answer
        return EndReason.NO_ACK
    if r is CallEnd.MEDIA_TIMEOUT:  # the line sent the BYE: no audio came for too long
        return EndReason.MEDIA_TIMEOUT
    # A call that was answered ends by a hangup or a failure; anything else the line
    # reports (cancelled, declined, rejected) cannot happen after the answer.
    return EndReason.LINE_FAILED if r is CallEnd.FAILED else EndReason.ENDED
