"""An in-memory telephone line: the :class:`~callguard.telephony.base.Line` interface with a
scripted far end, for fast tests, the GUI tests and demos. Never used on a real line.

The far end is driven from the test (any thread)::

    line = FakeLine("kim")
    line.start()                        # status REGISTERED at once
    call = line.ring("010-1234-5678")   # an inbound call rings (on_incoming fires)
    call.answer()                       # what the engine does; the timeline starts
    call.far_play(pcm, at_s=None)       # the caller speaks (placed on the call timeline)
    call.heard()                        # everything the caller heard (what we sent)
    call.far_hangup()                   # the caller hangs up (on_ended fires)

Audio is int16 mono at 8000 Hz (:data:`RATE`), like a real line. The line's sender moves
written audio to the far end in 20 ms packets on an absolute schedule, filling with silence
when nothing is queued, as the RTP sender does; ``sent_samples`` and ``queued_samples``
follow it, so "play the prompt to its last sample" is tested for real.

Time comes from the line's ``clock`` (a :class:`~callguard.clock.TimeSource`):

- :data:`~callguard.clock.SYSTEM` (default): real time; a sender thread
  owned by the line sends every 20 ms. For the demo, ``callguard gui --fake-line`` and the
  few tests that need real time.
- a :class:`~callguard.clock.StepClock`: no thread. The line listens to the clock
  and sends what is due each time the test advances it, so ``sent_samples`` and
  :meth:`FakeCall.heard` follow the test's steps exactly (and the engine's runner, paced by
  the same clock, steps in between)::

      clock = StepClock()
      line = FakeLine("kim", clock=clock)
      ...                                 # ring, wait until the engine answered
      clock.advance(1.0)                  # one second of call: 50 sender and runner steps
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable

import numpy as np

from callguard.audio.samplequeue import SampleQueue
from callguard.clock import SYSTEM, StepClock, TimeSource
from callguard.telephony.base import (
    FRAME,
    RATE,
    Call,
    CallEnd,
    CallState,
    LineState,
    LineStatus,
)
from callguard.vocabulary import Direction

_ids = itertools.count(1)


class FakeCall:
    """One call on a :class:`FakeLine`. Engine side: the :class:`Call` protocol. Far-end
    side: ``far_*`` methods and :meth:`heard`."""

    def __init__(self, line: FakeLine, direction: Direction, remote: str) -> None:
        self.line = line
        self.call_id = f"fake-{next(_ids)}@callguard.test"
        self.direction = direction
        self.remote = remote
        self._state = (CallState.RINGING if direction == Direction.INBOUND
                       else CallState.DIALING)
        self._end: CallEnd | None = None
        self._detail = ""
        self.media_start: float | None = None  # the line clock's monotonic() at answer
        self._far = np.zeros(0, np.int16)  # caller audio on the call timeline
        self._rpos = 0
        self._out = SampleQueue()
        self._heard: list[np.ndarray] = []
        self._sent = 0  # samples of written audio sent (silence fill excluded)
        self._clock = 0  # samples of timeline the sender has covered
        self._digits = ""
        self._lock = threading.Lock()
        self.hangups = 0  # how often hangup() was called (idempotence is tested)

    # --- Call protocol (engine side) ------------------------------------------------------
    @property
    def state(self) -> CallState:
        return self._state

    @property
    def end_reason(self) -> CallEnd | None:
        return self._end

    @property
    def end_detail(self) -> str:
        return self._detail

    def answer(self) -> None:
        if self._state is CallState.RINGING:
            self._activate()

    def decline(self, busy: bool = True) -> None:
        if self._state is CallState.RINGING:
            self._finish(CallEnd.DECLINED, "486 Busy Here" if busy else "603 Decline")

    def hangup(self) -> None:
        self.hangups += 1
        if self._state is CallState.ACTIVE:
            self._finish(CallEnd.LOCAL_HANGUP, "BYE")
        elif self._state is CallState.DIALING:
            self._finish(CallEnd.CANCELLED, "CANCEL")
        elif self._state is CallState.RINGING:
            self._finish(CallEnd.DECLINED, "486 Busy Here")

    def read(self, upto: int) -> np.ndarray:
        with self._lock:
            start, self._rpos = self._rpos, max(self._rpos, upto)
            out = np.zeros(max(0, upto - start), np.int16)
            have = self._far[start:upto]
            out[: have.size] = have
        return out

    def write(self, pcm: np.ndarray) -> None:
        with self._lock:
            self._out.add(np.asarray(pcm, np.int16))

    @property
    def sent_samples(self) -> int:
        return self._sent

    @property
    def queued_samples(self) -> int:
        return self._out.queued

    @property
    def underrun_samples(self) -> int:
        return self._out.padded

    @property
    def dropped_rtp(self) -> int:
        return 0  # an in-memory line has no strangers

    def dtmf(self) -> str:
        with self._lock:
            d, self._digits = self._digits, ""
        return d

    # --- far end (test side) --------------------------------------------------------------
    def now_s(self) -> float:
        """Call time in seconds (0 before the answer)."""
        return self.position() / RATE

    def position(self) -> int:
        """Call time in samples at 8 kHz (0 before the answer); exact on a stepped clock."""
        if self.media_start is None:
            return 0
        clock = self.line.clock
        x = (clock.monotonic() - self.media_start) * RATE
        return round(x) if clock.stepped else int(x)

    def far_play(self, pcm: np.ndarray, at_s: float | None = None) -> float:
        """The far end sends ``pcm`` (int16, 8 kHz) starting at call time ``at_s`` seconds
        (default: now). Returns the call time at which it ends."""
        start = self.position() if at_s is None else round(at_s * RATE)
        pcm = np.asarray(pcm, np.int16)
        with self._lock:
            if self._far.size < start + pcm.size:
                self._far = np.concatenate(
                    [self._far, np.zeros(start + pcm.size - self._far.size, np.int16)])
            self._far[start : start + pcm.size] = pcm
        return (start + pcm.size) / RATE

    def far_dtmf(self, digits: str) -> None:
        with self._lock:
            self._digits += digits

    def far_answer(self) -> None:
        """The called party picks up (outbound calls)."""
        if self._state is CallState.DIALING:
            self._activate()

    def far_reject(self, detail: str = "486 Busy Here") -> None:
        if self._state is CallState.DIALING:
            self._finish(CallEnd.REJECTED, detail)

    def far_hangup(self) -> None:
        """The far end hangs up (BYE when active, CANCEL while ringing)."""
        if self._state is CallState.ACTIVE:
            self._finish(CallEnd.REMOTE_HANGUP, "BYE")
        elif self._state in (CallState.RINGING, CallState.DIALING):
            self._finish(CallEnd.CANCELLED, "CANCEL")

    def heard(self) -> np.ndarray:
        """Everything the far end received since the answer, silence fill included:
        int16 at 8 kHz, position *i* = call time *i* / 8000 s (to within one packet)."""
        with self._lock:
            return np.concatenate(self._heard) if self._heard else np.zeros(0, np.int16)

    # --- internals ------------------------------------------------------------------------
    def _activate(self) -> None:
        self.media_start = self.line.clock.monotonic()
        self._state = CallState.ACTIVE
        self.line._answered(self)

    def _finish(self, end: CallEnd, detail: str) -> None:
        with self._lock:
            if self._state is CallState.ENDED:
                return
            self._state = CallState.ENDED
            self._end, self._detail = end, detail
        self.line._ended(self)

    def _send_due(self) -> None:
        """The sender: send every whole packet due by now on the absolute schedule."""
        if self._state is not CallState.ACTIVE or self.media_start is None:
            return
        due = self.position() // FRAME * FRAME
        with self._lock:
            while self._clock < due:
                packet = self._out.take(FRAME)  # zero-padded (and counted) on underrun
                self._sent = self._out.taken
                self._heard.append(packet)
                self._clock += FRAME


class FakeLine:
    """An in-memory :class:`~callguard.telephony.base.Line` registered as ``user``."""

    def __init__(self, user: str = "counselor", *, answer_after_s: float | None = None,
                 clock: TimeSource = SYSTEM) -> None:
        """``answer_after_s``: outbound calls are answered by the far end after this many
        seconds (``None``: only when the test calls :meth:`FakeCall.far_answer`); real time
        only (on a stepped clock the test answers, then waits for the engine's ``answered``
        event before advancing). ``clock``: see the module's docstring."""
        if clock.stepped and answer_after_s is not None:
            raise ValueError("answer_after_s needs real time: on a stepped clock the test "
                             "calls far_answer()")
        self.user = user
        self.answer_after_s = answer_after_s
        self.clock = clock
        self.calls: list[FakeCall] = []
        self.dialled: list[str] = []
        self._status = LineStatus(LineState.OFFLINE)
        self._on_incoming: Callable[[Call], None] | None = None
        self._on_ended: Callable[[Call], None] | None = None
        self._on_answered: Callable[[Call], None] | None = None
        self._on_status: Callable[[LineStatus], None] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def status(self) -> LineStatus:
        return self._status

    def set_handlers(self, *, on_incoming: Callable[[Call], None] | None = None,
                     on_ended: Callable[[Call], None] | None = None,
                     on_answered: Callable[[Call], None] | None = None,
                     on_status: Callable[[LineStatus], None] | None = None) -> None:
        self._on_incoming, self._on_ended = on_incoming, on_ended
        self._on_answered, self._on_status = on_answered, on_status

    def start(self) -> None:
        self._stop.clear()
        if isinstance(self.clock, StepClock):
            self.clock.add_listener(self._tick)
        else:
            self._thread = threading.Thread(target=self._sender, name="fake-line",
                                            daemon=True)
            self._thread.start()
        self.set_status(LineStatus(LineState.REGISTERED, f"as {self.user} (fake line)"))

    def stop(self) -> None:
        for call in list(self.calls):
            call.hangup()
        self._stop.set()
        if isinstance(self.clock, StepClock):
            self.clock.remove_listener(self._tick)
        if self._thread is not None:
            self._thread.join(2)
            self._thread = None
        self.set_status(LineStatus(LineState.OFFLINE))

    def dial(self, number: str) -> FakeCall:
        if self._status.state is not LineState.REGISTERED:
            raise RuntimeError(f"the line is not registered ({self._status})")
        call = FakeCall(self, Direction.OUTBOUND, number)
        self.calls.append(call)
        self.dialled.append(number)
        if self.answer_after_s is not None:
            timer = threading.Timer(self.answer_after_s, call.far_answer)
            timer.daemon = True
            timer.start()
        return call

    # --- test side ------------------------------------------------------------------------
    def ring(self, remote: str = "010-0000-0000") -> FakeCall:
        """An inbound call arrives and rings; the engine's ``on_incoming`` gets it."""
        call = FakeCall(self, Direction.INBOUND, remote)
        self.calls.append(call)
        if self._on_incoming is not None:
            self._on_incoming(call)
        return call

    def set_status(self, status: LineStatus) -> None:
        """Change the registration status (e.g. to show a lost registrar)."""
        self._status = status
        if self._on_status is not None:
            self._on_status(status)

    def active(self) -> FakeCall | None:
        return next((c for c in self.calls if c.state is CallState.ACTIVE), None)

    # --- internals ------------------------------------------------------------------------
    def _answered(self, call: FakeCall) -> None:
        if self._on_answered is not None:
            self._on_answered(call)

    def _ended(self, call: FakeCall) -> None:
        if self._on_ended is not None:
            self._on_ended(call)

    def _tick(self, pos: int) -> None:
        """On a stepped clock, each time it moves (to ``pos`` samples): send what is due on
        every call."""
        for call in list(self.calls):
            call._send_due()

    def _sender(self) -> None:
        """Real time: the line's one sender thread; every 20 ms, send what is due on every
        call."""
        t0 = self.clock.monotonic()
        tick = 0
        while not self._stop.is_set():
            for call in list(self.calls):
                call._send_due()
            tick += 1
            self._stop.wait(max(0.0, t0 + tick * FRAME / RATE - self.clock.monotonic()))
