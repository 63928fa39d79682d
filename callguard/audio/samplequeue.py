"""A thread-safe FIFO of int16 samples, taken in fixed-size frames (zeros past the end).

Used for what a call sends (the RTP sender takes 160 samples every 20 ms) and for the
prompts mixed into it (the engine takes what each tick needs). ``taken`` counts real
samples only, so a caller can tell when the last queued sample has gone out.
"""

from __future__ import annotations

import threading
from collections import deque

import numpy as np


class SampleQueue:
    def __init__(self) -> None:
        self._q: deque[np.ndarray] = deque()
        self._lock = threading.Lock()
        self.queued = 0  # samples added and not yet taken
        self.taken = 0  # samples taken so far (padding excluded)
        self.padded = 0  # zeros handed out because too little was queued (underruns)

    @property
    def busy(self) -> bool:
        return self.queued > 0

    def add(self, pcm: np.ndarray) -> None:
        """Append int16 samples (copied)."""
        pcm = np.array(pcm, dtype=np.int16)
        if pcm.size == 0:
            return
        with self._lock:
            self._q.append(pcm)
            self.queued += pcm.size

    def take(self, n: int) -> np.ndarray:
        """The next ``n`` samples, zero-padded when fewer are queued."""
        out = np.zeros(n, np.int16)
        got = 0
        with self._lock:
            while got < n and self._q:
                head = self._q[0]
                k = min(n - got, head.size)
                out[got:got + k] = head[:k]
                got += k
                if k == head.size:
                    self._q.popleft()
                else:
                    self._q[0] = head[k:]
            self.queued -= got
            self.taken += got
            self.padded += n - got
        return out
