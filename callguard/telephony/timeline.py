"""Received audio placed on the call timeline by RTP timestamp (a jitter buffer), pure.

The **call timeline** counts samples at ``rate`` (8 kHz) since the call was answered. Each
pushed packet carries its decoded PCM (int16 mono, one sample per RTP timestamp unit, as for
G.711) and its *arrival*: the call-timeline sample index at which it arrived. The reader
asks for everything up to a sample index and gets exactly that many samples back, zeros
where nothing arrived, so silence suppression and lost packets keep their length and the
output stays in step with the call clock.

Mapping. The first packet of a stream (SSRC) *anchors* it: its timestamp maps to its
arrival. Every other packet of the stream goes to ``anchor + ts_diff(ts, anchor_ts)``
(signed modulo 2**32, so timestamp wrap is invisible), whatever order it arrives in. The
reference moves to each newest packet (same offset), so differences stay small however long
the call. The deviation ``position - arrival`` of a packet is network jitter plus whatever
the anchor packet's own delay was; it is tolerated within ``max_jitter_samples`` either way.

Re-anchoring moves the mapping of the current stream; anything already buffered at or after
the new position of the packet that caused it is discarded, so positions never overlap and
never go backwards, and nothing is ever placed before the read position. Re-anchors:

* **New stream** (SSRC change): the packet maps to its arrival. A packet from a former
  stream that is not newer than what it sent before, or that arrives within
  ``max_jitter_samples`` of the switch, is a straggler and dropped as late, so one
  reordered packet does not flip the streams back and forth.
* **Jump**: a packet that deviates by more than ``jump_s`` (the far end restarted its
  clock, its timestamps jumped, it resumed after a hold without advancing them) maps to its
  arrival at once; so does the newest packet of a talkspurt (marker bit, where RFC 3550
  lets receivers adjust) that deviates by more than ``max_jitter_samples``.
* **Drift** between the sender's sample clock and ours (a fast sender would grow the buffer
  without bound, a slow one would go late for good): deviations of the newest packets are
  summarised per block of ``hold_s`` of arrival time (lowest and highest). When two
  consecutive blocks both have packets beyond ``max_jitter_samples`` on the same side, the
  mapping shifts just enough to bring that side back to half the tolerance (a gap of
  silence for a slow sender, a few tens of ms of audio dropped for a fast one: at 0.5 %
  drift and 80 ms tolerance, about 40 ms every 8 s). Requiring two blocks keeps one delayed
  packet, or the burst that follows a network stall, from moving the mapping; watching the
  extremes rather than every packet lets jitter as wide as the whole tolerance window
  (2 × ``max_jitter_samples``) be accommodated without loss.

Memory is bounded: nothing before the read position is kept, and samples more than
``max_buffer_s`` ahead of it are dropped (counted).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from callguard.telephony.rtp import RtpPacket, ts_diff

__all__ = ["ReceiveStats", "ReceiveTimeline"]

Int16Array = npt.NDArray[np.int16]

_FORMER_STREAMS = 8  # SSRCs remembered after a switch, to recognise their stragglers


@dataclass
class ReceiveStats:
    """Counters since the timeline was created (packets, or samples at the timeline rate)."""

    packets: int = 0  # pushed
    late_dropped: int = 0  # wholly before the read position, or a former stream's straggler
    duplicates: int = 0  # every sample already present (first arrival wins)
    reanchors: int = 0  # SSRC changes, jumps, talkspurt and drift shifts (not the first anchor)
    gap_samples: int = 0  # samples read as silence because nothing arrived for them
    overflow_dropped: int = 0  # packets (partly) beyond max_buffer_s ahead, not fully stored
    discarded_samples: int = 0  # buffered samples thrown away by re-anchors


@dataclass
class _Stream:
    ssrc: int
    ref_ts: int  # newest timestamp seen (mod 2**32)
    ref_pos: int  # its call-timeline position
    # drift block: extremes of position - arrival over the stream's packets since block_start
    block_start: int = 0  # arrival of the block's first packet
    lo: int = 0
    hi: int = 0
    prev_side: int = 0  # the previous block's violation: -1 low, 1 high, 2 both, 0 none


class ReceiveTimeline:
    """Jitter buffer keyed by RTP timestamp; see the module docstring.

    Parameters (samples are at ``rate``; the RTP clock must equal it, as for G.711):

    * ``max_jitter_samples``: tolerated deviation of a packet from its arrival either way.
    * ``max_buffer_s``: how far ahead of the read position audio is kept.
    * ``jump_s``: a deviation larger than this re-anchors at once.
    * ``hold_s``: block length for drift detection (two blocks in a row must agree).
    """

    def __init__(self, rate: int = 8000, max_jitter_samples: int = 640,
                 max_buffer_s: float = 4.0, jump_s: float = 2.0, hold_s: float = 0.25) -> None:
        if rate <= 0 or max_jitter_samples < 0:
            raise ValueError("rate must be positive and max_jitter_samples non-negative")
        self.rate = rate
        self.max_jitter_samples = max_jitter_samples
        self.jump_samples = max(round(jump_s * rate), max_jitter_samples + 1)
        self.hold_samples = max(1, round(hold_s * rate))
        # Drift shifts smaller than this are not worth a discontinuity (jitter wider than the
        # whole window would otherwise nudge the mapping every block).
        self._min_shift = max(1, max_jitter_samples // 16)
        capacity = round(max_buffer_s * rate)
        if capacity <= 0:
            raise ValueError(f"max_buffer_s must be positive, not {max_buffer_s}")
        # Index 0 of both arrays is the read position; unfilled samples are kept at 0.
        self._buf = np.zeros(capacity, np.int16)
        self._have = np.zeros(capacity, bool)
        self._pos = 0  # read position (call-timeline sample index)
        self._end = 0  # nothing at or after this position is filled (>= _pos)
        self._stream: _Stream | None = None
        self._former: dict[int, tuple[int, int]] = {}  # ssrc -> (newest ts, switch arrival)
        self.stats = ReceiveStats()

    @property
    def position(self) -> int:
        """The read position: the next sample :meth:`read` returns."""
        return self._pos

    @property
    def buffered(self) -> int:
        """Samples from the read position to the end of the furthest audio received."""
        return self._end - self._pos

    @property
    def min_playout_delay(self) -> int:
        """Smallest playout delay (samples) at which in-tolerance packets are never late:
        the tolerance plus one 20 ms packet (the drift that accrues while it is confirmed)."""
        return self.max_jitter_samples + self.rate // 50

    @property
    def ssrc(self) -> int | None:
        """SSRC of the current stream, None before the first packet."""
        return self._stream.ssrc if self._stream is not None else None

    def push(self, pkt: RtpPacket, pcm: Int16Array, arrival: int) -> None:
        """Place ``pcm`` (int16, the decoded payload of ``pkt``) on the timeline.

        ``arrival``: call-timeline sample index at which the packet arrived.
        """
        pcm = np.asarray(pcm)
        if pcm.dtype != np.int16 or pcm.ndim != 1:
            raise ValueError(f"pcm must be 1-D int16, not {pcm.ndim}-D {pcm.dtype}")
        self.stats.packets += 1
        if pcm.size == 0:
            return
        s = self._stream
        if s is None or pkt.ssrc != s.ssrc:
            former = self._former.get(pkt.ssrc)
            if former is not None and (ts_diff(pkt.timestamp, former[0]) <= 0
                                       or arrival - former[1] < self.max_jitter_samples):
                self.stats.late_dropped += 1
                return
            self._former.pop(pkt.ssrc, None)
            if s is not None:
                self._former[s.ssrc] = (s.ref_ts, arrival)
                if len(self._former) > _FORMER_STREAMS:
                    del self._former[next(iter(self._former))]
            switched = s is not None
            s = self._stream = _Stream(pkt.ssrc, pkt.timestamp, 0)
            pos = self._reanchor(s, pkt, arrival, arrival, count=switched)
        else:
            pos = self._map(s, pkt, arrival)
        self._write(pos, pcm)

    def read(self, upto: int) -> Int16Array:
        """Samples from the read position up to (excluding) ``upto``; the read position
        becomes ``upto``. Zeros where nothing arrived; empty if ``upto`` is not ahead."""
        n = upto - self._pos
        if n <= 0:
            return np.zeros(0, np.int16)
        k = min(n, len(self._buf))
        out = np.zeros(n, np.int16)
        out[:k] = self._buf[:k]
        self.stats.gap_samples += n - int(np.count_nonzero(self._have[:k]))
        used = self._end - self._pos  # only this prefix can hold audio: shift just that
        if used > k:
            self._buf[:used - k] = self._buf[k:used]
            self._have[:used - k] = self._have[k:used]
            self._clear(used - k, used)
        else:
            self._clear(0, used)
        self._pos = upto
        self._end = max(self._end, upto)
        return out

    # -- internals

    def _map(self, s: _Stream, pkt: RtpPacket, arrival: int) -> int:
        d = ts_diff(pkt.timestamp, s.ref_ts)
        pos = s.ref_pos + d
        dev = pos - arrival
        if abs(dev) > self.jump_samples:
            return self._reanchor(s, pkt, arrival, arrival)
        if d <= 0:
            # Reordered or repeated: placed by the mapping, never moves it. Its deviation
            # still counts: the packets overtaken on the way are the slow tail of the jitter.
            s.lo, s.hi = min(s.lo, dev), max(s.hi, dev)
            return pos
        if pkt.marker and abs(dev) > self.max_jitter_samples:
            return self._reanchor(s, pkt, arrival, arrival)
        # Only the newest packet may close a block and shift: nothing newer of this stream is
        # buffered beyond it, so the shift discards nothing that would still be needed.
        if arrival - s.block_start >= self.hold_samples:
            shift = self._close_block(s)
            if shift:
                return self._reanchor(s, pkt, pos + shift, arrival)
            s.block_start, s.lo, s.hi = arrival, dev, dev
        else:
            s.lo, s.hi = min(s.lo, dev), max(s.hi, dev)
        s.ref_ts, s.ref_pos = pkt.timestamp, pos
        return pos

    def _close_block(self, s: _Stream) -> int:
        """End the current drift block; the shift (samples, + = later) to apply, or 0."""
        tol = self.max_jitter_samples
        low, high = s.lo < -tol, s.hi > tol
        side = 2 if low and high else -1 if low else 1 if high else 0
        persistent = side != 0 and side == s.prev_side
        s.prev_side = side
        if not persistent:
            return 0
        if side == 2:  # wider than the window: centre it, the best that can be done
            shift = -(s.lo + s.hi) // 2
        elif side == -1:  # slow sender: move later, but not so far the fast edge leaves
            shift = min(-tol // 2 - s.lo, tol - s.hi)
        else:  # fast sender: move earlier, but not so far the slow edge goes late
            shift = max(tol // 2 - s.hi, -tol - s.lo)
        return shift if abs(shift) >= self._min_shift else 0

    def _reanchor(self, s: _Stream, pkt: RtpPacket, target: int, arrival: int,
                  count: bool = True) -> int:
        """Map ``pkt`` to ``target`` (not before the read position), discarding anything
        buffered from there on; start a fresh drift block. Returns the position."""
        anchor = max(target, self._pos)
        if self._end > anchor:
            i, j = anchor - self._pos, self._end - self._pos
            self.stats.discarded_samples += int(np.count_nonzero(self._have[i:j]))
            self._clear(i, j)
            self._end = anchor
        s.ref_ts, s.ref_pos = pkt.timestamp, anchor
        s.block_start, s.lo, s.hi, s.prev_side = arrival, anchor - arrival, anchor - arrival, 0
        if count:
            self.stats.reanchors += 1
        return anchor

    def _write(self, pos: int, pcm: Int16Array) -> None:
        start = pos - self._pos
        if start + pcm.size <= 0:
            self.stats.late_dropped += 1
            return
        if start < 0:  # partly late: the part still ahead is worth keeping
            pcm, start = pcm[-start:], 0
        capacity = len(self._buf)
        if start >= capacity:
            self.stats.overflow_dropped += 1
            return
        if start + pcm.size > capacity:
            self.stats.overflow_dropped += 1
            pcm = pcm[:capacity - start]
        end = start + pcm.size
        have = self._have[start:end]
        if have.all():
            self.stats.duplicates += 1
            return
        if have.any():  # overlaps earlier audio: fill only the holes, first arrival wins
            free = ~have
            self._buf[start:end][free] = pcm[free]
        else:
            self._buf[start:end] = pcm
        self._have[start:end] = True
        self._end = max(self._end, self._pos + end)

    def _clear(self, i: int, j: int) -> None:
        self._buf[i:j] = 0
        self._have[i:j] = False
