"""A bounded FIFO of int16 samples between a sound card's real-time thread and the call loop.

The sound card and the call run on different clocks: PortAudio calls back on its own
thread in blocks of its choosing, the call loop moves 20 ms every 20 ms of *its* clock, and
the two drift apart by up to a few hundred parts per million (a third of a second an hour).
Blocking reads and writes would stall the call loop; an unbounded queue would let the
counselor's delay grow all shift. So:

* :meth:`PcmFifo.push` never blocks. When more than ``limit`` samples would be queued
  (the producer's clock runs fast, or the consumer stalled), the oldest are dropped down
  to ``prime`` samples: the delay snaps back to its target instead of staying high.
* :meth:`PcmFifo.pull` always returns exactly ``n`` samples. After the queue ran dry (and at
  the start) it plays silence until ``prime`` samples are queued again, so a consumer that
  runs slightly fast makes one short gap now and then rather than a click every block.

Counts (samples, not blocks) say what was dropped and padded, for the call's log.
Samples are int16 mono at whatever one rate both sides use (8000 Hz for the headset).
"""

from __future__ import annotations

import threading
from collections import deque

import numpy as np


class PcmFifo:
    """Thread-safe bounded FIFO of int16 mono samples; see the module docstring.

    ``prime``: samples to gather before playing after running dry (the target delay).
    ``limit``: most samples kept; on overflow the oldest are dropped down to ``prime``.
    """

    def __init__(self, prime: int, limit: int) -> None:
        if not 0 <= prime < limit:
            raise ValueError(f"need 0 <= prime < limit, got prime={prime}, limit={limit}")
        self.prime = prime
        self.limit = limit
        self._blocks: deque[np.ndarray] = deque()
        self._head = 0  # samples of _blocks[0] already pulled
        self._queued = 0
        self._priming = True
        self._lock = threading.Lock()
        self.dropped = 0  # samples discarded on overflow
        self.padded = 0  # silent samples pulled while empty or priming
        self.underruns = 0  # times the queue ran dry while playing

    @property
    def queued(self) -> int:
        """Samples waiting now."""
        with self._lock:
            return self._queued

    def push(self, pcm: np.ndarray) -> None:
        """Append int16 samples (copied); never blocks."""
        block = np.array(pcm, dtype=np.int16, copy=True).reshape(-1)
        if block.size == 0:
            return
        with self._lock:
            self._blocks.append(block)
            self._queued += block.size
            if self._queued > self.limit:
                self._discard(self._queued - self.prime)

    def _discard(self, n: int) -> None:
        self.dropped += n
        self._queued -= n
        while n > 0:
            first = self._blocks[0]
            left = first.size - self._head
            if left <= n:
                self._blocks.popleft()
                self._head = 0
                n -= left
            else:
                self._head += n
                n = 0

    def pull(self, n: int) -> np.ndarray:
        """Exactly ``n`` int16 samples: queued ones, then silence if there are too few."""
        out = np.zeros(n, np.int16)
        with self._lock:
            if self._priming:
                if self._queued < self.prime or self._queued == 0:
                    self.padded += n
                    return out
                self._priming = False
            got = 0
            while got < n and self._blocks:
                first = self._blocks[0]
                take = min(n - got, first.size - self._head)
                out[got:got + take] = first[self._head:self._head + take]
                got += take
                self._head += take
                if self._head == first.size:
                    self._blocks.popleft()
                    self._head = 0
            self._queued -= got
            if got < n:  # ran dry: silence until primed again
                self.padded += n - got
                self.underruns += 1
                self._priming = True
        return out
