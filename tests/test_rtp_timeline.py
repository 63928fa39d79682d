"""Receive timeline (placement by RTP timestamp) and send schedule (absolute 20 ms clock)."""

from __future__ import annotations

import random

import numpy as np
import pytest

from callguard.telephony.pacer import SendSchedule
from callguard.telephony.rtp import RtpPacket
from callguard.telephony.timeline import ReceiveTimeline

N = 160  # samples per 20 ms packet at 8 kHz
DELAY = 800  # playout delay of the reader in these tests: 100 ms


def _pkt(k: int, ts0: int = 0, ssrc: int = 1, marker: bool = False) -> RtpPacket:
    """Packet ``k`` of a stream: timestamp ts0 + k * 160 (mod 2**32); the payload is unused."""
    return RtpPacket(0, k & 0xFFFF, (ts0 + k * N) % 2**32, ssrc, b"", marker)


def _audio(k: int) -> np.ndarray:
    """Packet ``k``'s samples: the sender's sample index + 1 (never 0, so gaps show)."""
    return (np.arange(k * N, (k + 1) * N) % 30000 + 1).astype(np.int16)


def _stream(count: int) -> np.ndarray:
    return np.concatenate([_audio(k) for k in range(count)])


def _read_all(tl: ReceiveTimeline, upto: int) -> np.ndarray:
    out = tl.read(upto)
    assert out.dtype == np.int16
    return out


# --- basic placement ------------------------------------------------------------------------


def test_in_order_stream_is_reproduced_bit_exact():
    tl = ReceiveTimeline()
    chunks = []
    for k in range(100):
        tl.push(_pkt(k, ts0=123_456), _audio(k), arrival=k * N)
        chunks.append(tl.read(k * N - DELAY))  # an engine tick after each packet
    chunks.append(tl.read(100 * N))
    out = np.concatenate(chunks)
    assert len(out) == 100 * N
    np.testing.assert_array_equal(out, _stream(100))
    assert tl.stats.gap_samples == 0
    assert tl.stats.packets == 100
    assert tl.position == 100 * N


def test_first_packet_anchors_at_its_arrival():
    tl = ReceiveTimeline()
    tl.push(_pkt(0, ts0=99), _audio(0), arrival=1000)
    tl.push(_pkt(1, ts0=99), _audio(1), arrival=1000 + N)
    out = tl.read(1000 + 2 * N)
    np.testing.assert_array_equal(out[:1000], 0)
    np.testing.assert_array_equal(out[1000:], _stream(2))
    assert tl.stats.gap_samples == 1000


def test_read_returns_exactly_what_was_asked():
    tl = ReceiveTimeline(max_buffer_s=0.1)
    assert len(tl.read(0)) == 0
    assert len(tl.read(-5)) == 0
    assert len(tl.read(37)) == 37
    assert len(tl.read(30)) == 0  # never backwards
    assert tl.position == 37
    assert len(tl.read(37 + 5000)) == 5000  # longer than the buffer: zeros, still exact
    assert tl.stats.gap_samples == 5037


def test_reordering_within_the_jitter_window_is_undone():
    rng = random.Random(3)
    tl = ReceiveTimeline()
    order = list(range(200))
    for i in range(1, 200, 4):  # shuffle within groups of 4 packets (80 ms) after the first
        group = order[i:i + 4]
        rng.shuffle(group)
        order[i:i + 4] = group
    chunks = []
    for slot, k in enumerate(order):
        arrival = slot * N + 300  # they all arrive 300 samples late, in shuffled order
        tl.push(_pkt(k), _audio(k), arrival)
        chunks.append(tl.read(slot * N - DELAY))
    chunks.append(tl.read(300 + 200 * N))
    out = np.concatenate(chunks)
    np.testing.assert_array_equal(out[300:], _stream(200))
    assert tl.stats.late_dropped == 0
    assert tl.stats.reanchors == 0


def test_loss_leaves_zeros_of_the_right_length_in_the_right_place():
    tl = ReceiveTimeline()
    for k in range(50):
        if k not in (10, 20, 21):
            tl.push(_pkt(k), _audio(k), arrival=k * N)
    out = tl.read(50 * N)
    expected = _stream(50)
    expected[10 * N:11 * N] = 0
    expected[20 * N:22 * N] = 0
    np.testing.assert_array_equal(out, expected)
    assert tl.stats.gap_samples == 3 * N


def test_duplicates_are_ignored():
    tl = ReceiveTimeline()
    for k in range(10):
        tl.push(_pkt(k), _audio(k), arrival=k * N)
        if k % 3 == 0:
            tl.push(_pkt(k), np.full(N, -7, np.int16), arrival=k * N + 5)  # repeat: ignored
    out = tl.read(10 * N)
    np.testing.assert_array_equal(out, _stream(10))
    assert tl.stats.duplicates == 4
    assert tl.stats.packets == 14


def test_late_packets_are_dropped_and_counted():
    tl = ReceiveTimeline()
    for k in (0, 1, 3, 4):
        tl.push(_pkt(k), _audio(k), arrival=k * N)
    first = tl.read(4 * N)  # packet 2 has not arrived by the time its slot is read
    tl.push(_pkt(2), _audio(2), arrival=4 * N + 10)
    tl.push(_pkt(5), _audio(5), arrival=5 * N)
    rest = tl.read(6 * N)
    expected = _stream(6)
    expected[2 * N:3 * N] = 0
    np.testing.assert_array_equal(np.concatenate([first, rest]), expected)
    assert tl.stats.late_dropped == 1
    assert tl.stats.reanchors == 0


def test_timestamp_wrap_in_the_middle():
    tl = ReceiveTimeline()
    ts0 = 2**32 - 25 * N - 37  # wraps during packet 25
    chunks = []
    for k in range(50):
        arrival = k * N + (40 if k % 2 else 0)  # some jitter, and 26 before 25
        order = (26, 25) if k == 25 else (25,) if k == 26 else (k,)
        for j in order:
            tl.push(_pkt(j, ts0=ts0), _audio(j), arrival)
        chunks.append(tl.read(k * N - DELAY))
    chunks.append(tl.read(50 * N))
    np.testing.assert_array_equal(np.concatenate(chunks), _stream(50))
    assert tl.stats.reanchors == 0


def test_ssrc_change_reanchors_at_arrival_and_drops_stragglers():
    tl = ReceiveTimeline()
    for k in range(25):
        tl.push(_pkt(k, ts0=1000, ssrc=0xA), _audio(k), arrival=k * N)
    a_out = tl.read(20 * N)
    # after 1000 samples without packets, stream B starts with unrelated timestamps
    start_b = 25 * N + 1000
    for k in range(25):
        tl.push(_pkt(k, ts0=7_777_777, ssrc=0xB), _audio(100 + k), arrival=start_b + k * N)
        if k == 1:  # a straggler of A arriving after the switch: not a switch back
            tl.push(_pkt(24, ts0=1000, ssrc=0xA), _audio(24), arrival=start_b + N + 3)
    out = np.concatenate([a_out, tl.read(start_b + 25 * N)])
    np.testing.assert_array_equal(out[:25 * N], _stream(25))
    np.testing.assert_array_equal(out[25 * N:start_b], 0)
    np.testing.assert_array_equal(out[start_b:], np.concatenate([_audio(100 + k)
                                                                 for k in range(25)]))
    assert tl.ssrc == 0xB
    assert tl.stats.reanchors == 1
    assert tl.stats.late_dropped == 1


def test_ssrc_change_never_maps_before_the_read_position():
    tl = ReceiveTimeline()
    tl.push(_pkt(0, ssrc=1), _audio(0), arrival=0)
    tl.read(2000)  # reader ahead of the arrivals (clock mismatch in the caller)
    tl.push(_pkt(0, ssrc=2), _audio(5), arrival=500)
    out = tl.read(2000 + N)
    np.testing.assert_array_equal(out, _audio(5))


def test_returning_stream_after_a_while_is_a_switch_back():
    tl = ReceiveTimeline()
    tl.push(_pkt(0, ssrc=1), _audio(0), arrival=0)
    tl.push(_pkt(0, ssrc=2), _audio(1), arrival=N)
    tl.push(_pkt(50, ssrc=1), _audio(2), arrival=8000)  # newer, and well after the switch
    out = tl.read(8000 + N)
    np.testing.assert_array_equal(out[8000:], _audio(2))
    assert tl.stats.reanchors == 2
    assert tl.ssrc == 1


@pytest.mark.parametrize("jump", [10**6, -(10**6), 2**31 - 5, 3 * 8000])
def test_large_timestamp_jump_reanchors_at_once(jump):
    tl = ReceiveTimeline()
    chunks = []
    for k in range(60):
        ts0 = 5000 if k < 30 else 5000 + jump  # the far end restarted its clock at packet 30
        tl.push(_pkt(k, ts0=ts0), _audio(k), arrival=k * N)
        chunks.append(tl.read(k * N - DELAY))
    chunks.append(tl.read(60 * N))
    np.testing.assert_array_equal(np.concatenate(chunks), _stream(60))
    assert tl.stats.reanchors == 1
    assert tl.stats.late_dropped == 0


def test_pause_without_timestamp_advance_resumes_with_marker():
    tl = ReceiveTimeline()
    for k in range(10):
        tl.push(_pkt(k), _audio(k), arrival=k * N)
    # 300 ms on hold; the sender resumes where its timestamps stopped, marker set
    resume = 10 * N + 2400
    for k in range(10, 20):
        tl.push(_pkt(k, marker=k == 10), _audio(k), arrival=resume + (k - 10) * N)
    out = tl.read(resume + 10 * N)
    np.testing.assert_array_equal(out[:10 * N], _stream(10))
    np.testing.assert_array_equal(out[10 * N:resume], 0)
    np.testing.assert_array_equal(out[resume:], _stream(20)[10 * N:])
    assert tl.stats.reanchors == 1


def test_persistent_offset_without_marker_reanchors_after_two_blocks():
    tl = ReceiveTimeline(hold_s=0.25)
    for k in range(10):
        tl.push(_pkt(k), _audio(k), arrival=k * N)
    resume = 10 * N + 2400  # 300 ms pause without timestamp advance, no marker
    reads = [tl.read(t - DELAY) for t in range(10 * N, resume, N)]  # ticks during the pause
    for k in range(10, 60):
        arrival = resume + (k - 10) * N
        tl.push(_pkt(k), _audio(k), arrival)
        reads.append(tl.read(arrival - DELAY))
    reads.append(tl.read(resume + 50 * N))
    assert tl.stats.reanchors == 1
    # packets 10-35 went late until two 0.25 s blocks agreed on the offset; then in step
    # again, at half the tolerance (40 ms) from their arrival
    assert tl.stats.late_dropped == 26
    got = np.concatenate(reads)
    assert len(got) == resume + 50 * N
    np.testing.assert_array_equal(got[:10 * N], _stream(10))
    first = 8000 + 160 - 320  # packet 36 arrived at 8160 and went 320 samples earlier
    np.testing.assert_array_equal(got[10 * N:first], 0)
    np.testing.assert_array_equal(got[first:first + 24 * N], _stream(60)[36 * N:])


def test_a_single_very_late_packet_does_not_move_the_mapping():
    tl = ReceiveTimeline()
    for k in range(40):
        if k != 10:
            tl.push(_pkt(k), _audio(k), arrival=k * N)
        if k == 25:  # packet 10 finally turns up 15 packets late (300 ms)
            tl.push(_pkt(10), _audio(10), arrival=k * N + 1)
        tl.read(k * N - DELAY)
    assert tl.stats.reanchors == 0
    assert tl.stats.late_dropped == 1


def test_a_burst_after_a_network_stall_does_not_move_the_mapping():
    tl = ReceiveTimeline()
    reads = []
    for k in range(30):
        tl.push(_pkt(k), _audio(k), arrival=k * N)
        reads.append(tl.read(k * N - DELAY))
    # 400 ms stall: packets 30-49 all arrive at once when it clears; the reader ticks on
    for k in range(30, 50):
        reads.append(tl.read(k * N - DELAY))
    clear = 50 * N
    for k in range(30, 50):
        tl.push(_pkt(k), _audio(k), arrival=clear)
    reads.append(tl.read(clear - DELAY))
    for k in range(50, 100):
        tl.push(_pkt(k), _audio(k), arrival=k * N)
        reads.append(tl.read(k * N - DELAY))
    reads.append(tl.read(100 * N))
    out = np.concatenate(reads)
    assert tl.stats.reanchors == 0
    expected = _stream(100)
    # packets wholly before the read position (49 * N - DELAY = slot 44) were too late
    assert tl.stats.late_dropped == 14
    expected[30 * N:44 * N] = 0
    np.testing.assert_array_equal(out, expected)


def test_memory_is_bounded_when_the_reader_stalls():
    tl = ReceiveTimeline(max_buffer_s=1.0)
    for k in range(200):  # 4 s of packets, nobody reads
        tl.push(_pkt(k), _audio(k), arrival=k * N)
    assert tl.buffered == 8000
    assert tl.stats.overflow_dropped == 150
    out = tl.read(200 * N)
    np.testing.assert_array_equal(out[:8000], _stream(50))
    np.testing.assert_array_equal(out[8000:], 0)


def test_pcm_must_be_int16():
    tl = ReceiveTimeline()
    with pytest.raises(ValueError):
        tl.push(_pkt(0), np.zeros(N, np.float32), 0)


# --- clock drift ----------------------------------------------------------------------------


def _simulate_drift(drift: float, seconds: int = 600, jitter: int = 160, seed: int = 1):
    """The sender's clock runs ``1 + drift`` times ours; network delay 40 + U(0, jitter)
    samples. An engine tick every 20 ms reads up to now - DELAY."""
    rng = np.random.default_rng(seed)
    tl = ReceiveTimeline()
    count = int(seconds * 8000 * (1 + drift) / N)
    arrivals = np.round(np.arange(count) * N / (1 + drift) + 40
                        + rng.uniform(0, jitter, count)).astype(np.int64)
    order = np.argsort(arrivals, kind="stable")
    reads, max_buffered, i = [], 0, 0
    for now in range(0, seconds * 8000 + 1, N):
        while i < count and arrivals[order[i]] <= now:
            k = int(order[i])
            tl.push(_pkt(k, ts0=2**32 - 10**6), _audio(k), int(arrivals[k]))
            i += 1
        max_buffered = max(max_buffered, tl.buffered)
        reads.append(tl.read(now - DELAY))
    return tl, np.concatenate(reads), max_buffered


@pytest.mark.parametrize("drift", [0.005, -0.005])
def test_clock_drift_over_ten_minutes_stays_bounded(drift):
    tl, out, max_buffered = _simulate_drift(drift)
    span = 600 * 8000 - DELAY
    assert len(out) == span  # exactly what was asked, no more, no less
    # every sample read came from the sender in order: no overlap, never backwards
    got = out[out != 0].astype(np.int64)
    steps = np.diff(got) % 30000
    assert steps.min() >= 1
    assert steps.max() <= 1000  # at most a re-anchor's worth skipped at once
    # the buffer neither grows without bound nor empties for good
    assert max_buffered <= DELAY + 2 * tl.max_jitter_samples
    assert 40 <= tl.stats.reanchors <= 100  # ~one per 40 ms (half the tolerance) of drift
    assert tl.stats.late_dropped == 0
    assert tl.stats.duplicates == 0
    if drift > 0:  # a fast sender's surplus is dropped, a slow one's shortfall is silence
        assert 0.8 * drift * span <= tl.stats.discarded_samples <= 1.5 * drift * span
    else:
        assert tl.stats.discarded_samples == 0
    assert tl.stats.gap_samples <= 0.01 * span
    assert got.size >= 0.98 * span


@pytest.mark.parametrize("drift", [0.005, -0.005])
def test_jitter_wider_than_the_tolerance_is_absorbed(drift):
    # 125 ms of jitter spread (more than the 80 ms tolerance, less than the 160 ms window)
    tl, out, _ = _simulate_drift(drift, seconds=120, jitter=1000, seed=2)
    assert tl.stats.late_dropped == 0
    got = out[out != 0].astype(np.int64)
    assert (np.diff(got) % 30000).min() >= 1


def test_first_packet_delayed_more_than_the_tolerance_is_corrected():
    tl = ReceiveTimeline()
    # packet 0 took 150 ms longer than the rest: everything after it maps 150 ms ahead
    tl.push(_pkt(0), _audio(0), arrival=1200)
    for k in range(1, 60):
        tl.push(_pkt(k), _audio(k), arrival=k * N)
        tl.read(k * N - DELAY)
    assert tl.stats.reanchors == 1
    assert tl.stats.late_dropped == 0
    # back within tolerance: half of it (40 ms) ahead of arrival, so the buffer shrank
    assert tl.buffered == 320 + N + DELAY
    assert tl.stats.discarded_samples == 1200 - 320


def test_random_abuse_keeps_the_invariants():
    rng = random.Random(11)
    tl = ReceiveTimeline(max_buffer_s=1.0)
    now, total = 0, 0
    ts = {1: 0, 2: 2**32 - 5000, 3: 77}
    for _ in range(20_000):
        now += rng.choice((0, 0, 37, 160, 160, 400))
        ssrc = rng.choice((1, 1, 1, 1, 2, 3))
        ts[ssrc] = (ts[ssrc] + rng.choice((160, 160, 160, -480, 0, 320, 10**6))) % 2**32
        size = rng.choice((0, 80, 160, 160, 240))
        pcm = np.full(size, 1 + rng.randrange(1000), np.int16)
        tl.push(RtpPacket(0, 0, ts[ssrc], ssrc, b"", rng.random() < 0.05), pcm,
                now + rng.randrange(-100, 800))
        if rng.random() < 0.5:
            upto = now - rng.randrange(0, 2000)
            before = tl.position
            out = tl.read(upto)
            assert len(out) == max(0, upto - before)
            total += len(out)
        assert 0 <= tl.buffered <= 8000
    assert total == tl.position


def test_no_drift_means_no_reanchor_and_no_loss():
    tl, out, _ = _simulate_drift(0.0, seconds=60)
    assert tl.stats.reanchors == 0
    assert tl.stats.late_dropped == 0
    assert np.count_nonzero(out) == len(out) - tl.stats.gap_samples


# --- send schedule --------------------------------------------------------------------------


def _run_sender(sched: SendSchedule, end: float, rng: random.Random,
                stall_at: float | None = None, stall: float = 0.0):
    """Drive ``sched`` with fake time: sleep as told, wake up to 5 ms early or late."""
    t = sched.start
    sent: list[tuple[int, float]] = []
    while t < end:
        for _ in range(sched.due(t)):
            sent.append((sched.packet_index, t))
            sched.sent()
        wake = t + sched.sleep_for(t) + rng.uniform(-0.005, 0.005)
        if stall_at is not None and t < stall_at <= wake:
            wake += stall
        t = max(t + 1e-4, wake)
    return sent


def test_schedule_ten_minutes_of_jittery_wakeups():
    start = 1000.0
    sched = SendSchedule(start)
    sent = _run_sender(sched, start + 600.0, random.Random(5))
    assert len(sent) == 30000  # 0.4-0.6 % short with pyVoIP's relative sleeps
    assert sched.packet_index == 30000 and sched.skipped == 0
    assert [i for i, _ in sent] == list(range(30000))
    errors = [t - sched.deadline(i) for i, t in sent]
    assert min(errors) >= 0  # never early
    assert max(errors) <= 0.005 + 1e-9  # at most one wake-up's lateness, never accumulated
    # deadlines come from n, not from summing 0.02 30000 times (which is off by ~1e-10)
    assert sched.deadline(30000) == start + 600.0
    assert sched.sleep_for(start + 600.0) == 0.0


def test_schedule_skips_after_a_stall_and_resumes():
    start = 50.0
    sched = SendSchedule(start, max_late=0.2)
    sent = _run_sender(sched, start + 10.0, random.Random(9), stall_at=start + 3.0, stall=1.0)
    indices = [i for i, _ in sent]
    assert sched.skipped >= 45  # ~1 s of 20 ms slots were not burst out
    assert len(sent) + sched.skipped == sched.packet_index == 500
    assert indices == sorted(indices) and len(set(indices)) == len(indices)
    jump = next(k for k in range(1, len(indices)) if indices[k] - indices[k - 1] > 1)
    assert indices[jump] - indices[jump - 1] == sched.skipped + 1
    # after the stall it is back on schedule: every later packet within a wake-up of its slot
    assert all(t - sched.deadline(i) <= 0.005 + 1e-9 for i, t in sent[jump + 1:])


def test_schedule_small_lateness_catches_up_without_skipping():
    sched = SendSchedule(0.0, ptime=0.02, max_late=0.2)
    assert sched.due(-0.5) == 0
    assert sched.sleep_for(-0.5) == 0.5
    assert sched.due(0.0) == 1
    sched.sent()
    assert sched.due(0.1) == 5  # 100 ms late: catch up by sending the backlog
    sched.sent(5)
    assert sched.skipped == 0
    assert sched.sleep_for(0.1) == pytest.approx(0.02)
    assert sched.due(0.119) == 0


def test_schedule_slot_boundaries_agree_with_deadline():
    sched = SendSchedule(0.0, ptime=0.02)
    for n in range(1, 5000):
        d = sched.deadline(n)
        assert sched.slots_due(d) == n + 1  # due exactly at its deadline
        assert sched.slots_due(np.nextafter(d, -1.0)) == n
