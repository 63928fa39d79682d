"""One live call: line audio ⇄ session ⇄ headset, on the engine loop, every 20 ms.

Call timeline (8 kHz samples, 0 = media start): the caller leg at position *i* is what
arrived at *i*/8000 s (placed by RTP timestamp), read ``PLAYOUT`` behind real time so late
packets still land; the counselor leg at position *j* is what we sent at about *j*/8000 s
(microphone plus prompts), written ``LEAD`` ahead of the sender. Prompts are mixed into the
outgoing audio, so the counselor hears them too and the recording holds them.

Hangup after a final prompt waits until the line has sent the prompt's last sample.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from callguard.audio.devices import AudioDevice
from callguard.audio.samplequeue import SampleQueue
from callguard.engine.prompts import PromptLibrary
from callguard.rules.model import Prompt
from callguard.session.call import CallSession
from callguard.session.clock import RealClock
from callguard.telephony.base import FRAME, RATE, Call, CallEnd, CallState
from callguard.vocabulary import Direction, EndReason, Leg

log = logging.getLogger(__name__)

# How far behind real time the caller leg is read: the receive timeline's minimum play-out
# delay (100 ms: 80 ms of jitter tolerance plus a packet) and one tick of margin.
PLAYOUT = 6 * FRAME
LEAD = 2 * FRAME  # 40 ms: how far ahead of the sender the outgoing audio is kept
TICK_S = FRAME / RATE
DRAIN_TIMEOUT_S = 5.0  # longest wait for a prompt to finish sending before BYE anyway


def _mix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.clip(a.astype(np.int32) + b.astype(np.int32), -32768, 32767).astype(np.int16)


class LiveCallControl:
    """:class:`~callguard.session.control.CallControl` on a live call."""

    def __init__(self, call: Call, prompts: PromptLibrary) -> None:
        self.call = call
        self.library = prompts
        self.player = SampleQueue()  # prompt audio not yet mixed into the call
        # Samples written to the line up to and including the last prompt sample so far.
        self.prompt_mark = 0
        self.hangups = 0
        # Monotonic times of the last hangup: asked for, prompt drained, BYE sent.
        self.decided_at: float | None = None
        self.drained_at: float | None = None
        self.bye_sent_at: float | None = None

    def start_prompt(self, key: str, prompt: Prompt) -> float:
        pcm = self.library.audio(prompt)
        self.player.add(pcm)
        return pcm.size / RATE

    async def drained(self) -> bool:
        """Wait (at most ``DRAIN_TIMEOUT_S``) until the last prompt sample handed to the line
        (``prompt_mark``, in samples written) has been sent. Microphone audio queued after
        it is not waited for: the BYE follows the prompt, not the lead."""
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while self.player.busy or self.call.sent_samples < self.prompt_mark:
            if time.monotonic() > deadline or self.call.state is CallState.ENDED:
                return False
            await asyncio.sleep(0.002)
        return True

    async def hangup(self) -> None:
        self.decided_at = time.monotonic()
        self.hangups += 1
        if not await self.drained():
            log.warning("prompt did not finish sending before hangup")
        self.drained_at = time.monotonic()
        self.call.hangup()
        # The line knows when the BYE left; the fake line and others: now.
        self.bye_sent_at = getattr(self.call, "bye_sent_at", None) or time.monotonic()


class CallRunner:
    """Pumps one call until it ends; then finishes the session (stores the end)."""

    def __init__(self, call: Call, session: CallSession, control: LiveCallControl,
                 device: AudioDevice, clock: RealClock,
                 on_status: Callable[[dict], None] | None = None,
                 on_headset: Callable[[str], None] | None = None) -> None:
        self.call = call
        self.session = session
        self.control = control
        self.device = device
        self.clock = clock
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

    async def run(self) -> None:
        s = self.session
        try:
            await s.start()
            self.connected = not self.control.player.busy
            tick = 0
            headset_noted = False
            t0 = time.monotonic()
            while not s.ended and self.call.state is not CallState.ENDED:
                began = time.perf_counter()
                try:
                    await self._step()
                except Exception as exc:  # fail open: the call and its recording go on
                    self.faults += 1
                    log.exception("call step failed; the call goes on")
                    if self.faults <= 3:  # stored with the call, but never a flood of rows
                        await s.note_fault(f"call step: {type(exc).__name__}")
                if self.headset_error is not None and not headset_noted:
                    headset_noted = True  # kept with the call: what the counselor missed
                    await s.note_fault(f"headset: {self.headset_error}")
                self.step_s.append(time.perf_counter() - began)
                tick += 1
                if tick % 50 == 0 and self.on_status is not None:
                    try:
                        self.on_status(replace(s.status(), muted=self.muted))
                    except Exception:
                        log.exception("status listener failed")
                # Absolute schedule: never accumulate sleep error.
                await asyncio.sleep(max(0.0, t0 + tick * TICK_S - time.monotonic()))
            await self._drain_remaining()
        finally:
            reason = _end_reason(self.call, s)
            await s.finish(reason)

    async def _step(self) -> None:
        now = self.clock.now()
        upto = int(now * RATE) - PLAYOUT
        if upto > self.rpos:
            caller = self.call.read(upto)
            n = upto - self.rpos
            if caller.size < n:  # a line without a timeline (fix off) returns less
                caller = np.concatenate([caller, np.zeros(n - caller.size, np.int16)])
            self.rpos = upto
            await self.session.feed(Leg.CALLER, caller[:n])
            if self.connected:
                self._to_headset(caller[:n])
        want = int(now * RATE) + LEAD
        if want > self.wpos:
            n = want - self.wpos
            mic = self._from_headset(n) if self.connected else np.zeros(n, np.int16)
            if self.muted:
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
        upto = int(self.clock.now() * RATE)
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
    # A call that was answered ends by a hangup or a failure; anything else the line
    # reports (cancelled, declined, rejected) cannot happen after the answer.
    return EndReason.LINE_FAILED if r is CallEnd.FAILED else EndReason.ENDED
