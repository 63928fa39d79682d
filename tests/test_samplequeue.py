"""SampleQueue: frames taken across chunk boundaries, zero padding, counters."""

import numpy as np

from callguard.audio.samplequeue import SampleQueue


def test_frames_span_chunks_and_pad_with_zeros():
    q = SampleQueue()
    q.add(np.arange(1, 101, dtype=np.int16))
    q.add(np.arange(101, 151, dtype=np.int16))
    assert q.busy and q.queued == 150
    first = q.take(120)
    assert np.array_equal(first, np.arange(1, 121, dtype=np.int16))
    second = q.take(40)
    assert np.array_equal(second[:30], np.arange(121, 151, dtype=np.int16))
    assert not second[30:].any()
    assert q.taken == 150 and q.queued == 0 and not q.busy
    assert not q.take(10).any() and q.taken == 150


def test_added_audio_is_copied():
    q = SampleQueue()
    x = np.ones(5, np.int16)
    q.add(x)
    x[:] = 7
    assert np.array_equal(q.take(5), np.ones(5, np.int16))
