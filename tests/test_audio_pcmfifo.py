"""The headset FIFO: order kept, bounded delay under drift, silence while priming."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from callguard.audio.pcmfifo import PcmFifo


def ramp(start: int, n: int) -> np.ndarray:
    return (np.arange(start, start + n) % 30000).astype(np.int16)


def test_samples_come_out_in_order_across_any_block_sizes():
    fifo = PcmFifo(prime=0, limit=10_000)
    fifo.push(ramp(0, 7))
    fifo.push(ramp(7, 300))
    fifo.push(ramp(307, 1))
    got = np.concatenate([fifo.pull(n) for n in (3, 160, 100, 45)])
    assert np.array_equal(got, ramp(0, 308))
    assert fifo.queued == 0 and fifo.padded == 0 and fifo.dropped == 0


def test_silence_until_primed_then_a_gap_only_when_it_runs_dry():
    fifo = PcmFifo(prime=320, limit=1600)
    fifo.push(ramp(1, 160))
    assert not fifo.pull(160).any()  # 20 ms queued, 40 ms wanted: still priming
    fifo.push(ramp(161, 160))
    assert np.array_equal(fifo.pull(160), ramp(1, 160))  # primed: plays from the start
    assert np.array_equal(fifo.pull(160), ramp(161, 160))
    assert not fifo.pull(160).any() and fifo.underruns == 1  # dry: silence...
    fifo.push(ramp(321, 160))
    assert not fifo.pull(160).any()  # ...until 40 ms are queued again
    assert fifo.padded == 160 * 3


def test_a_partial_block_before_running_dry_is_kept_then_padded():
    fifo = PcmFifo(prime=100, limit=1000)
    fifo.push(ramp(1, 120))
    out = fifo.pull(160)
    assert np.array_equal(out[:120], ramp(1, 120)) and not out[120:].any()
    assert fifo.padded == 40 and fifo.underruns == 1


def test_a_fast_producer_never_builds_up_more_than_the_limit():
    """The sound card's clock runs 1 % fast against the call's (far worse than real cards):
    the delay stays bounded and snaps back to the prime level when it hits the limit."""
    fifo = PcmFifo(prime=320, limit=1600)
    depth = []
    for block in range(3000):  # 60 s of 20 ms blocks
        fifo.push(ramp(block, 162))
        fifo.pull(160)
        depth.append(fifo.queued)
    assert max(depth) <= 1600
    assert fifo.dropped > 0
    assert min(depth[100:]) >= 160  # never ran dry once going


def test_a_slow_producer_makes_rare_gaps_not_one_per_block():
    fifo = PcmFifo(prime=320, limit=1600)
    for block in range(3000):
        fifo.push(ramp(block, 158))  # 1 % slow
        fifo.pull(160)
    # 1 % of 60 s is 0.6 s missing: made up in a few gaps, each refilling to 40 ms.
    assert 0 < fifo.underruns <= 40, fifo.underruns


def test_threads_push_and_pull_concurrently_without_losing_order():
    fifo = PcmFifo(prime=0, limit=10**9)
    total = 200_000
    got: list[np.ndarray] = []

    def producer() -> None:
        for start in range(0, total, 97):
            fifo.push(np.arange(start, min(start + 97, total), dtype=np.int64).astype(np.int16))

    t = threading.Thread(target=producer)
    t.start()
    pulled = 0
    while pulled < total:
        n = min(160, fifo.queued)
        if n:
            got.append(fifo.pull(n))
            pulled += n
    t.join()
    assert np.array_equal(np.concatenate(got), np.arange(total).astype(np.int16))


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="prime < limit"):
        PcmFifo(prime=500, limit=400)
