"""Fuzzing the RTP path (issue 13, item 9), bounded and deterministic.

Property tests (Hypothesis) on the RTP packet parser and builder, the telephone-event
receiver and the receive timeline (:mod:`callguard.telephony.rtp`,
:mod:`callguard.telephony.timeline`), and on the real receive path of a call's RTP client
(``FixedRTPClient`` in :mod:`callguard.telephony.pyvoip_fixes`: its socket, receive thread,
media trust check, decoder and timeline), fed over UDP on 127.0.0.1 with a legitimate stream
and the hostile datagrams of :mod:`callguard.bench.hostile` (the soak program's generators)
from the declared source and from strangers. Bounded (``max_examples``), derandomised, no
example database.
"""

from __future__ import annotations

import random
import socket
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyVoIP import RTP
from pyVoIP.VoIP import VoIP  # noqa: F401 - pyVoIP's import order (see pyvoip_fixes)

from callguard.audio.g711 import ulaw_decode
from callguard.bench import hostile
from callguard.telephony.pyvoip_fixes import FixedRTPClient
from callguard.telephony.rtp import (
    DtmfReceiver,
    RtpError,
    RtpPacket,
    build_rtp,
    looks_like_rtcp,
    parse_rtp,
)
from callguard.telephony.timeline import ReceiveTimeline

HOST = "127.0.0.1"
FUZZ = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
randoms = st.randoms(use_true_random=False)
datagrams = st.one_of(st.binary(max_size=1500), randoms.map(hostile.hostile_rtp))


# --- the pure parts --------------------------------------------------------------------------


@FUZZ
@given(datagrams)
def test_any_bytes_are_a_packet_or_an_rtp_error(data: bytes):
    try:
        pkt = parse_rtp(data)
    except RtpError:
        return
    assert 0 <= pkt.payload_type < 128 and 0 <= pkt.sequence < 2**16
    assert 0 <= pkt.timestamp < 2**32 and 0 <= pkt.ssrc < 2**32
    assert len(pkt.payload) <= len(data) - 12 - 4 * len(pkt.csrc)


@FUZZ
@given(st.builds(RtpPacket, payload_type=st.integers(0, 127), sequence=st.integers(0, 2**16 - 1),
                 timestamp=st.integers(0, 2**32 - 1), ssrc=st.integers(0, 2**32 - 1),
                 payload=st.binary(max_size=400), marker=st.booleans(),
                 csrc=st.lists(st.integers(0, 2**32 - 1), max_size=15).map(tuple)))
def test_a_packet_round_trips(pkt: RtpPacket):
    assert parse_rtp(build_rtp(pkt)) == pkt


@FUZZ
@given(st.lists(st.tuples(st.one_of(st.binary(min_size=12, max_size=40),
                                    randoms.map(hostile.hostile_rtp)),
                          st.integers(0, 3)), max_size=60))
def test_the_dtmf_receiver_takes_any_packets_within_its_memory(items):
    rx = DtmfReceiver(memory=8)
    for data, ssrc in items:
        try:
            pkt = parse_rtp(data)
        except RtpError:
            continue
        digit = rx.feed(RtpPacket(101, pkt.sequence, pkt.timestamp, ssrc, pkt.payload,
                                  pkt.marker))
        assert digit is None or digit in "0123456789*#ABCD"
        assert len(rx._current) <= 8 and len(rx._seen) <= 8


@FUZZ
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 2**32 - 1), st.booleans(),
                          st.integers(0, 400), st.integers(0, 4000)), max_size=80))
def test_the_timeline_places_any_packets_and_reads_exact_lengths(items):
    """Any SSRCs, timestamps (jumps, wraps, reordering), sizes and arrivals: pushing never
    raises, reading returns exactly what was asked, the buffer stays bounded."""
    tl = ReceiveTimeline()
    arrival = 0
    for ssrc, ts, marker, size, step in items:
        arrival += step
        pcm = np.full(size, 1000, np.int16)
        tl.push(RtpPacket(0, 0, ts, ssrc, b"", marker), pcm, arrival)
        assert tl.buffered <= 4 * 8000 + 400
        if step % 3 == 0:
            assert tl.read(tl.position + step).size == step
    out = tl.read(arrival + 10)
    assert out.dtype == np.int16
    assert set(np.unique(out)) <= {0, 1000}


# --- the RTP client's receive path -----------------------------------------------------------

LEGIT_SSRC = 0x5EC04D17
LEGIT_CODE = 0x20  # one µ-law code: every legitimate sample has its value
LEGIT_VALUE = int(ulaw_decode(bytes([LEGIT_CODE]))[0])


class Peer:
    """The far end (the SDP-declared source) and a stranger, on 127.0.0.1, sending to one
    FixedRTPClient that is started as a call starts it."""

    def __init__(self) -> None:
        self.peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.peer.bind((HOST, 0))
        self.stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.stranger.bind((HOST, 0))
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        probe.bind((HOST, 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self.rtp = FixedRTPClient({0: RTP.PayloadType.PCMU, 8: RTP.PayloadType.PCMA,
                                   101: RTP.PayloadType.EVENT}, HOST, self.port, HOST,
                                  self.peer.getsockname()[1], RTP.TransmitType.SENDRECV)
        self.rtp.set_target(HOST, self.peer.getsockname()[1])
        self.rtp.sending = False  # nothing of ours needed on the wire
        self.rtp.start()
        self.legit = 0

    def send_legit(self) -> None:
        self.peer.sendto(build_rtp(RtpPacket(0, self.legit, 160 * self.legit, LEGIT_SSRC,
                                             bytes([LEGIT_CODE]) * 160)), (HOST, self.port))
        self.legit += 1

    def wait_legit(self, timeout: float = 5.0) -> None:
        """Until every legitimate packet sent has been taken (so everything sent before the
        last one has been handled: one socket, FIFO)."""
        deadline = time.monotonic() + timeout
        while self.rtp.packets_in < self.legit:
            assert time.monotonic() < deadline, (self.rtp.packets_in, self.legit)
            time.sleep(0.002)

    def close(self) -> None:
        self.rtp.stop()
        self.peer.close()
        self.stranger.close()


@settings(max_examples=40, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(st.tuples(st.booleans(), datagrams), min_size=1, max_size=40))
def test_hostile_datagrams_never_reach_the_recording(items):
    """A legitimate stream (one SSRC, from the SDP address) with hostile datagrams between
    its packets, from the same address (other SSRCs, malformed, RTCP) and from a stranger
    (anything): the receive thread survives, every stranger's datagram and every other-SSRC
    packet is counted as dropped, and the recording holds the legitimate stream and nothing
    else — every legitimate sample, no other sample."""
    p = Peer()
    try:
        p.send_legit()  # the first packet latches the SSRC
        p.wait_legit()
        foreign = other_ssrc = 0
        for from_stranger, data in items:
            if from_stranger:
                p.stranger.sendto(data, (HOST, p.port))
                foreign += 1
            else:
                try:
                    pkt = parse_rtp(data)
                except RtpError:
                    pkt = None
                if pkt is not None and pkt.ssrc == LEGIT_SSRC:
                    continue  # a forgery of the latched source itself: not a test of trust
                if pkt is not None and not looks_like_rtcp(data):
                    other_ssrc += 1
                p.peer.sendto(data, (HOST, p.port))
            p.send_legit()
        p.wait_legit()
        assert all(t.is_alive() for t in p.rtp._threads)
        assert (p.rtp.dropped_foreign, p.rtp.dropped_ssrc) == (foreign, other_ssrc)
        assert p.rtp.packets_in == p.legit
        upto = 160 * p.legit + 8000 * 3
        pcm = p.rtp.read_pcm(upto)
        heard = pcm[pcm != 0]
        assert set(np.unique(heard)) <= {LEGIT_VALUE}, np.unique(heard)[:10]
        assert heard.size == 160 * p.legit
    finally:
        p.close()


@pytest.mark.parametrize("seed", [1, 2])
def test_a_flood_of_generated_datagrams_leaves_the_stream_intact(seed: int):
    """The soak's mix at full speed: 2,000 generated hostile datagrams from the source and
    a stranger, then the stream goes on and is heard, alone."""
    p = Peer()
    r = random.Random(seed)
    try:
        p.send_legit()
        p.wait_legit()
        for i in range(2000):
            if i % 10 == 0:
                time.sleep(0.001)  # a flood, but not one the kernel's socket buffer drops
            sock = p.stranger if r.random() < 0.5 else p.peer
            data = hostile.hostile_rtp(r, ssrc=r.getrandbits(32) | 1)
            if sock is p.peer and data[8:12] == LEGIT_SSRC.to_bytes(4, "big"):
                continue
            sock.sendto(data, (HOST, p.port))
        for _ in range(5):
            p.send_legit()
        p.wait_legit()
        assert all(t.is_alive() for t in p.rtp._threads)
        assert p.rtp.dropped_foreign > 500 and p.rtp.dropped_ssrc > 100
        pcm = p.rtp.read_pcm(160 * p.legit + 8000 * 3)
        heard = pcm[pcm != 0]
        assert set(np.unique(heard)) <= {LEGIT_VALUE} and heard.size == 160 * p.legit
    finally:
        p.close()
