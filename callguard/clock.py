"""Clocks: where the call path reads time, and call time itself.

Two kinds:

- A **time source** (:class:`TimeSource`) is what the live path reads: ``monotonic()``
  seconds (any origin, never goes back) for schedules and latencies, ``time()`` Unix epoch
  seconds for what the store keeps (a call's start and end), and :meth:`~TimeSource.pacer`
  for a loop that runs on an absolute schedule (the call runner's 20 ms steps).
  :data:`SYSTEM` is the machine's clock. :class:`StepClock` is a test's: it stands still
  until the test advances it, and then runs every paced loop (and every tick listener, such
  as the fake line's sender) at exactly the times they asked for, so a test sees exact call
  times and never sleeps.
- A **call clock** (:class:`CallClock`) gives call time in seconds (0.0 = answered):
  :class:`RealClock` on a time source, or :class:`VirtualClock`, set by a simulation driver.
"""

from __future__ import annotations

import asyncio
import enum
import threading
import time
from collections.abc import Callable
from typing import Protocol


class Pacer(Protocol):
    """One loop's absolute schedule on a :class:`TimeSource`."""

    async def until(self, t: float) -> None:
        """Return once the source's ``monotonic()`` has reached ``t`` (seconds); at once
        (after yielding to the event loop) when it already has."""
        ...

    def close(self) -> None:
        """The loop is done; idempotent."""
        ...


class TimeSource(Protocol):
    """What the live path reads time from. ``stepped`` sources move only when a test
    advances them (and a call runner then also waits for recognitions within its step, so
    they take no call time)."""

    stepped: bool

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin; never goes back."""
        ...

    def time(self) -> float:
        """Seconds since the Unix epoch (stored start and end times)."""
        ...

    def pacer(self) -> Pacer:
        """A schedule for one loop (call it on the loop's thread or before it starts)."""
        ...


class _SystemPacer:
    async def until(self, t: float) -> None:
        await asyncio.sleep(max(0.0, t - time.monotonic()))

    def close(self) -> None:
        pass


class SystemTime:
    """The machine's clock: ``time.monotonic``, ``time.time``, ``asyncio.sleep``."""

    stepped = False

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    def pacer(self) -> Pacer:
        return _SystemPacer()


#: The machine's clock: the default everywhere, and the only one on a real line.
SYSTEM = SystemTime()


class _State(enum.Enum):
    RUNNING = "running"  # doing its step (or not paced yet): advance() waits for it
    WAITING = "waiting"  # in until(), for a time still to come
    CLOSED = "closed"


class _StepPacer:
    def __init__(self, clock: StepClock) -> None:
        self._clock = clock
        self.state = _State.RUNNING
        self.target = 0  # samples; meaningful while WAITING
        self.loop: asyncio.AbstractEventLoop | None = None
        self.future: asyncio.Future[None] | None = None

    async def until(self, t: float) -> None:
        clock = self._clock
        target = round(t * clock.rate)
        loop = asyncio.get_running_loop()
        with clock._cv:
            if self.state is _State.CLOSED:
                raise RuntimeError("this pacer is closed")
            if clock._released or clock._pos >= target:
                fut = None
            else:
                fut = loop.create_future()
                self.loop, self.future, self.target = loop, fut, target
                self.state = _State.WAITING
                clock._cv.notify_all()
        if fut is None:
            await asyncio.sleep(0)
            return
        await fut

    def close(self) -> None:
        clock = self._clock
        with clock._cv:
            self.state = _State.CLOSED
            clock._pacers.discard(self)
            clock._cv.notify_all()

    def _wake(self) -> None:
        """The clock reached ``target`` (called with the clock's lock held)."""
        self.state = _State.RUNNING
        fut, loop = self.future, self.loop
        self.future = None
        assert fut is not None and loop is not None

        def resolve() -> None:
            if not fut.done():
                fut.set_result(None)

        try:
            loop.call_soon_threadsafe(resolve)
        except RuntimeError:  # its loop is closed: nothing will step any more
            self.state = _State.CLOSED
            self._clock._pacers.discard(self)


class StepClock:
    """A test's :class:`TimeSource`: stands still until :meth:`advance` moves it.

    Time is counted in whole samples at ``rate`` Hz (8 kHz: a 20 ms step is 160 samples),
    so call times on it are exact. Two kinds of users follow it:

    - **pacers** (:meth:`pacer`: a call runner's 20 ms loop, on any thread's event loop):
      :meth:`advance` stops at every time a pacer waits for, wakes it, and goes on only
      once every pacer has done its step and waits again (or is closed);
    - **tick listeners** (:meth:`add_listener`: the fake line's sender): called on the
      advancing thread with the new position (samples) at every stop, before the pacers
      due then run; stops are at least every ``step`` samples.

    ``time()`` is ``epoch`` plus the clock's seconds.
    """

    stepped = True

    def __init__(self, *, rate: int = 8000, step: int = 160, epoch: float = 1_767_225_600.0,
                 settle_timeout: float = 30.0) -> None:
        self.rate = rate
        self.step = step
        self.epoch = epoch  # 2026-01-01 00:00 UTC
        self.settle_timeout = settle_timeout
        self._pos = 0
        self._cv = threading.Condition()
        self._pacers: set[_StepPacer] = set()
        self._listeners: list[Callable[[int], None]] = []
        self._released = False

    # --- TimeSource -----------------------------------------------------------------------

    @property
    def samples(self) -> int:
        """The clock's position in samples at ``rate`` Hz."""
        return self._pos

    def monotonic(self) -> float:
        return self._pos / self.rate

    def time(self) -> float:
        return self.epoch + self._pos / self.rate

    def pacer(self) -> Pacer:
        """A new pacer, *running* (advance() waits for it) until its first ``until()``."""
        p = _StepPacer(self)
        with self._cv:
            self._pacers.add(p)
        return p

    # --- the test's side ------------------------------------------------------------------

    def add_listener(self, fn: Callable[[int], None]) -> None:
        with self._cv:
            self._listeners.append(fn)

    def remove_listener(self, fn: Callable[[int], None]) -> None:
        with self._cv:
            if fn in self._listeners:
                self._listeners.remove(fn)

    def advance(self, seconds: float) -> None:
        """Move the clock ``seconds`` forward (rounded to whole samples)."""
        self.advance_to((self._pos + round(seconds * self.rate)) / self.rate)

    def advance_to(self, t: float) -> None:
        """Move the clock to ``t`` seconds (rounded to whole samples; never back), running
        every listener and pacer on the way. Call it from the test's thread, never from a
        paced loop. Returns when every pacer has finished the steps due by ``t``."""
        target = round(t * self.rate)
        self.settle()
        while True:
            with self._cv:
                if self._pos >= target:
                    return
                stops = [target, (self._pos // self.step + 1) * self.step]
                stops += [p.target for p in self._pacers if p.state is _State.WAITING]
                self._pos = min(s for s in stops if s > self._pos)
                pos = self._pos
                listeners = list(self._listeners)
            for fn in listeners:
                fn(pos)
            with self._cv:
                for p in list(self._pacers):
                    if p.state is _State.WAITING and p.target <= pos:
                        p._wake()
            self.settle()

    def release(self) -> None:
        """Stop pacing, for shutting down: every waiting pacer returns now and every later
        ``until()`` at once (the clock itself stays where it is)."""
        with self._cv:
            self._released = True
            for p in list(self._pacers):
                if p.state is _State.WAITING:
                    p._wake()
            self._cv.notify_all()

    def settle(self) -> None:
        """Wait until no pacer is running (each waits for a later time, or is closed)."""
        deadline = time.monotonic() + self.settle_timeout
        with self._cv:
            while any(p.state is _State.RUNNING for p in self._pacers):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"a paced loop did not finish its step within {self.settle_timeout} s "
                        f"(clock at {self._pos / self.rate:.3f} s)")
                self._cv.wait(left)


class CallClock(Protocol):
    """``now()`` is call time in seconds (0.0 = answered). ``virtual`` clocks are advanced by
    their driver; real ones follow a time source's ``monotonic()``."""

    virtual: bool

    def now(self) -> float: ...


class RealClock:
    """Call time on a time source: ``source.monotonic() - start`` seconds. ``start`` is the
    source's ``monotonic()`` at the answer (default: now)."""

    virtual = False

    def __init__(self, start: float | None = None, source: TimeSource = SYSTEM) -> None:
        self.source = source
        self.start = source.monotonic() if start is None else start

    def now(self) -> float:
        return self.source.monotonic() - self.start


class VirtualClock:
    """Set by the driver; never goes backwards."""

    virtual = True

    def __init__(self, t: float = 0.0) -> None:
        self._t = t

    def now(self) -> float:
        return self._t

    def set(self, t: float) -> None:
        if t < self._t:
            raise ValueError(f"clock cannot go back from {self._t} to {t}")
        self._t = t
