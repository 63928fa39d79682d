"""Call clocks: seconds since the call was answered, real or simulated."""

from __future__ import annotations

import time
from typing import Protocol


class CallClock(Protocol):
    """``now()`` is call time in seconds (0.0 = answered). ``virtual`` clocks are advanced by
    their driver; real ones follow ``time.monotonic``."""

    virtual: bool

    def now(self) -> float: ...


class RealClock:
    virtual = False

    def __init__(self, start: float | None = None) -> None:
        self._t0 = time.monotonic() if start is None else start

    def now(self) -> float:
        return time.monotonic() - self._t0


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
