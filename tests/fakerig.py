"""The call engine on the in-memory line, for the engine, GUI and screenshot tests: the real
engine thread, runner, VAD, session, policy, prompts and SQLite store; the far end scripted
(callguard.telephony.fake) and the recogniser a fake that hears a marker tone as an abusive
sentence. Also :class:`EventLog`, the engine-event collector every engine test waits on.

``FakeRig(..., stepped=True)`` runs the line and the engine on a
:class:`~callguard.clock.StepClock`: call time moves only when the test calls
:meth:`FakeRig.advance`, every 20 ms step of the call runner and of the line's sender
happens at an exact call time, and recognition takes no call time. Such a test never
sleeps; it asserts exact call times (``control.bye_pos``, positions in ``call.heard()``)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import random
import threading
import time
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np
from rulestext import SAEKKI, prompts, rules_toml
from synth import call_audio

from callguard.asr.fake import ToneTranscriber
from callguard.clock import SYSTEM, StepClock
from callguard.engine.engine import Engine, EngineEvent
from callguard.engine.runner import CallRunner
from callguard.telephony.base import FRAME
from callguard.telephony.fake import FakeCall, FakeLine

RATE = 8000
ABUSE_HZ = 1000.0  # a burst with this marker tone is "heard" as ABUSE_TEXT
ABUSE_TEXT = "이 새끼야"


def rules_text(limit: str = "10m") -> str:
    """Rules: one strike warns, the next ends the call; ``limit`` is the duration limit of
    both directions (a TOML duration such as ``"30s"``)."""
    return rules_toml("fake line test", inbound={"final_at": limit},
                      outbound={"final_at": limit},
                      prompts=prompts("warning", "final", "duration_final"), rules=[SAEKKI])


GUI_RULES = rules_text()


def fresh_word() -> str:
    """A made-up noun no earlier test (and no cached Kiwi) has seen: three random syllables,
    so a [dictionary] holding it makes Kiwi be built anew."""
    return "".join(chr(0xAC00 + random.randrange(11172)) for _ in range(3))


def kiwi_build_in_this_process() -> threading.Thread:
    """Start building a Kiwi for a fresh dictionary in a thread of this process, as the
    engine and the rules editor did before Kiwi had its own process: the control for the
    no-stall tests. Kiwi holds the GIL for much of its build, so the other threads of this
    process (the GUI's, the engine's) stop meanwhile, for a time that depends on the CPU."""
    from callguard.text.analyzer import Dictionary, KiwiAnalyzer

    words = Dictionary(words=((fresh_word(), "NNG"),))
    # Not the shared (cached) analyser: this one is freed when the thread ends.
    thread = threading.Thread(target=lambda: KiwiAnalyzer(words).analyze("가"), daemon=True)
    thread.start()
    return thread


def tone(hz: float, seconds: float, amp: int = 6000) -> np.ndarray:
    """int16 at 8 kHz: a sine of ``hz`` for ``seconds``."""
    t = np.arange(int(seconds * RATE)) / RATE
    return np.rint(amp * np.sin(2 * np.pi * hz * t)).astype(np.int16)


def write_wav(path: Path, pcm: np.ndarray) -> Path:
    """A 16-bit mono 8 kHz WAV of ``pcm``."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm.astype("<i2").tobytes())
    return path


def write_tone_wav(path: Path, hz: float, seconds: float) -> Path:
    return write_wav(path, tone(hz, seconds))


def abusive_call_audio(seconds: float = 12.0, bursts=((0.3, 1.2), (4.5, 1.2))) -> np.ndarray:
    """Caller audio (int16, 8 kHz): speech-like bursts carrying the abuse marker tone."""
    return call_audio([(s, d, ABUSE_HZ) for s, d in bursts], seconds)


class EventLog:
    """Engine events as they arrive (the engine's ``on_event``, any thread); tests block
    on :meth:`wait`."""

    def __init__(self) -> None:
        self.events: list[EngineEvent] = []
        self._cv = threading.Condition()

    def __call__(self, ev: EngineEvent) -> None:
        with self._cv:
            self.events.append(ev)
            self._cv.notify_all()

    def wait(self, kind: str, timeout: float = 15,
             pred: Callable[[EngineEvent], bool] = lambda ev: True,
             after: int = 0) -> EngineEvent:
        """The first event of ``kind`` (from index ``after``) that satisfies ``pred``. Blocks
        the calling thread: inside a Qt flow use ``qtbot.waitUntil`` instead."""
        deadline = time.monotonic() + timeout
        with self._cv:
            while True:
                for ev in self.events[after:]:
                    if ev.kind == kind and pred(ev):
                        return ev
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no {kind!r} event in {timeout} s: "
                                       f"{[e.kind for e in self.events]}")
                self._cv.wait(left)


def first_step_at(t: float) -> int:
    """The call time (samples) of the first 20 ms runner step at or after call time ``t``
    seconds: where something the session has due at ``t`` happens on a stepped clock."""
    pos = max(0, int(t * RATE) // FRAME * FRAME - FRAME)
    while pos / RATE < t:
        pos += FRAME
    return pos


class FakeRig:
    """The engine on a FakeLine in ``tmp``: ``rules`` (path), ``db`` (store path), ``line``
    (ring calls on it), ``engine``, the prompts' audio ``warning`` (500 Hz, 1.0 s) and
    ``final`` (700 Hz, 1.21 s: the hangup after it, 0.3 s later, falls between two 20 ms
    steps, so its step is exact whatever the rounding); events in ``log``
    (``wait(kind)``). Not started.

    ``stepped``: line and engine run on ``clock``, a :class:`StepClock` the test moves with
    :meth:`advance` (see the module's docstring); otherwise on real time (``clock`` is
    :data:`SYSTEM`). Stop it with :meth:`stop`."""

    def __init__(self, tmp: Path, rules: str = GUI_RULES, *, auto_answer: bool = False,
                 stepped: bool = False, **engine_kw) -> None:
        self.warning = tone(500, 1.0)
        self.final = tone(700, 1.21)
        write_wav(tmp / "warning.wav", self.warning)
        write_wav(tmp / "final.wav", self.final)
        self.rules = tmp / "rules.toml"
        self.rules.write_text(rules, encoding="utf-8")
        self.db = tmp / "calls.db"
        self.clock = StepClock() if stepped else SYSTEM
        self.line = FakeLine("kim", clock=self.clock)
        self.log = EventLog()
        self.events = self.log.events
        self.wait = self.log.wait
        self.engine = Engine(
            line=self.line, rules_path=self.rules, store_path=self.db,
            transcriber_factory=lambda: ToneTranscriber({ABUSE_HZ: ABUSE_TEXT}),
            auto_answer=auto_answer, on_event=self.log, counselor="kim", clock=self.clock,
            **engine_kw)
        # Stepped: the engine's commands (protect, hangup, ... from the test or a window)
        # are waited for before the clock moves, so they act between two exact steps.
        self._commands: list[concurrent.futures.Future] = []
        self._submit = self.engine.submit
        if stepped:
            self.engine.submit = self._recorded  # type: ignore[method-assign]

    def _recorded(self, coro):
        fut = self._submit(coro)
        self._commands.append(fut)
        return fut

    @property
    def stepped(self) -> bool:
        return self.clock.stepped

    def advance(self, seconds: float) -> None:
        """Stepped rig: ``seconds`` of call time pass; every runner and sender step due on
        the way has run when this returns. Engine commands given before (a click on
        protect) have acted first."""
        assert isinstance(self.clock, StepClock), "advance() needs FakeRig(stepped=True)"
        self.settle()
        self.clock.advance(seconds)

    def answered(self, remote: str = "010-0000-0000", timeout: float = 15) -> FakeCall:
        """An inbound call rings and is answered (the engine answers it: auto_answer, or
        the engine's ``answer``). Returns once its runner is in place and, on a stepped
        clock, has done its step at call time 0: what the test does next happens between
        that step and the next."""
        call = self.line.ring(remote)
        if not self.engine.auto_answer:
            self.wait("ringing", timeout, pred=lambda ev: ev.call_id == call.call_id)
            self.engine.answer(call.call_id).result(timeout)
        self.wait("answered", timeout, pred=lambda ev: ev.call_id == call.call_id)
        self.settle()
        return call

    def settle(self, timeout: float = 30) -> None:
        """Stepped rig: wait until the engine commands given so far have run, the line's
        callbacks (an answer, a hangup) have reached the engine, and every call runner has
        finished its current step (a call just answered: its first). No-op on real time."""
        if not isinstance(self.clock, StepClock):
            return
        concurrent.futures.wait(self._commands, timeout)
        self._commands = [f for f in self._commands if not f.done()]
        self._submit(asyncio.sleep(0)).result(timeout)  # after the callbacks queued so far
        self.clock.settle()

    def runner(self, call: FakeCall) -> CallRunner:
        """The engine's runner of ``call`` (while it runs, or after it ended)."""
        for r in [*self.engine.runners.values(), *self.engine.finished]:
            if r.call is call:
                return r
        raise KeyError(call.call_id)

    def stop(self) -> None:
        """Stop the engine (a stepped clock is released first: calls still up end at once,
        without waiting for call time that will never pass)."""
        if isinstance(self.clock, StepClock):
            self.clock.release()
        self.engine.stop()
