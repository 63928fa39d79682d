"""Drive a :class:`~callguard.session.call.CallSession` from recorded call audio.

As fast as possible (default) the call clock is virtual: it follows the audio, and every
recognition result becomes visible at submit time + the wall time it took, so timings are
those of an idle machine. ``realtime=True`` paces the audio with the wall clock instead, as
a live line does, so queueing under load shows too.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from callguard.clock import RealClock, VirtualClock
from callguard.rules.matcher import Matcher
from callguard.rules.model import RuleSet
from callguard.session.call import CallSession, CallStore, Recogniser, SessionConfig
from callguard.session.control import FakeCallControl
from callguard.sim.callaudio import CallAudio
from callguard.vocabulary import (
    CallEvent,
    Direction,
    EndReason,
    HangupSent,
    Leg,
    Source,
    VerdictIssued,
    VerdictKind,
)


@dataclass
class SimulationResult:
    session: CallSession
    control: FakeCallControl
    audio_s: float
    wall_s: float

    @property
    def timeline(self) -> list[CallEvent]:
        return self.session.timeline

    @property
    def call_id(self) -> int | None:
        return self.session.call_id

    @property
    def end_reason(self) -> EndReason | None:
        return self.session.end_reason

    def verdicts(self) -> list[tuple[float, VerdictKind]]:
        """``(call time, kind)`` of every verdict, in order."""
        return [(e.at_s, e.kind) for e in self.timeline if isinstance(e, VerdictIssued)]

    def hangups(self) -> list[float]:
        """Call times the agent hung up."""
        return [e.at_s for e in self.timeline if isinstance(e, HangupSent)]


async def run_call(audio: CallAudio, *, ruleset: RuleSet, matcher: Matcher,
                   recogniser: Recogniser, store: CallStore | None = None,
                   realtime: bool = False, chunk_ms: int = 20,
                   direction: Direction = Direction.INBOUND,
                   remote: str | None = None, source: Source = Source.SIMULATE,
                   config: SessionConfig | None = None,
                   on_event: Callable[[CallEvent], None] | None = None,
                   control: FakeCallControl | None = None) -> SimulationResult:
    """Play ``audio`` through a session as a call of ``direction``; return what happened."""
    cfg = config or SessionConfig(sample_rate=audio.rate)
    if cfg.sample_rate != audio.rate:
        raise ValueError(f"session rate {cfg.sample_rate} != audio rate {audio.rate}")
    clock = RealClock() if realtime else VirtualClock()
    control = control or FakeCallControl()
    session = CallSession(ruleset=ruleset, matcher=matcher, recogniser=recogniser,
                          control=control, clock=clock, store=store, direction=direction,
                          remote=remote, source=source, config=cfg, on_event=on_event)
    wall0 = time.perf_counter()
    await session.start()
    n = audio.rate * chunk_ms // 1000
    total = audio.caller.size
    for i in range(0, total, n):
        if session.ended:
            break
        t_end = min(i + n, total) / audio.rate
        if realtime:
            delay = t_end - clock.now()
            if delay > 0:
                await asyncio.sleep(delay)
        else:
            clock.set(t_end)
        await session.feed(Leg.CALLER, audio.caller[i:i + n])
        await session.feed(Leg.COUNSELOR, audio.counselor[i:i + n])
        if not realtime:
            await session.wait_inflight()
        await session.advance(None if realtime else t_end)
    # The audio is over but the line is still up: let what is running finish (a prompt
    # playing to its end, then the hangup), as silence on a live line would.
    await session.wait_inflight()
    while not session.ended and (due := session.next_due()) is not None:
        if realtime:
            await asyncio.sleep(max(0.0, due - clock.now()))
        else:
            clock.set(max(clock.now(), due))
        await session.advance(None if realtime else max(clock.now(), due))
        await session.wait_inflight()
    await session.finish(EndReason.END_OF_AUDIO)
    return SimulationResult(session, control, audio.seconds, time.perf_counter() - wall0)
