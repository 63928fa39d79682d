"""RTP and telephone-event wire format against hand-written bytes (RFC 3550 / RFC 4733)."""

from __future__ import annotations

import contextlib
import random

import pytest

from callguard.telephony.rtp import (
    DtmfReceiver,
    RtpError,
    RtpPacket,
    RtpSender,
    SequenceTracker,
    TelephoneEvent,
    Unwrapper,
    build_rtp,
    build_telephone_event,
    digit_to_event,
    looks_like_rtcp,
    parse_rtp,
    parse_telephone_event,
    seq_diff,
    ts_diff,
)


def _hex(s: str) -> bytes:
    return bytes.fromhex(s.replace(" ", "").replace("|", ""))


# --- fixtures: V=2 header fields written out byte by byte ------------------------------------

# V=2 P=0 X=0 CC=0 | M=0 PT=0 (PCMU) | seq 0x1234 | ts 160 | SSRC 0xDEADBEEF | 4 µ-law bytes
PCMU = _hex("80 00 1234 000000a0 deadbeef | ff ff 7f 00")
# CC=2, M=1 PT=8 (PCMA), seq 65535, ts 2**32-1, SSRC 1, CSRCs 10 and 11, payload 01 02
PCMA_CSRC = _hex("82 88 ffff ffffffff 00000001 | 0000000a 0000000b | 01 02")
# X=1: extension profile 0xBEDE (RFC 8285 one-byte), length 1 word, then payload aa bb
WITH_EXT = _hex("90 00 0001 00000000 00000001 | bede 0001 10ff0000 | aa bb")
# P=1: payload aa bb, then 3 padding bytes whose last holds the count 3
WITH_PAD = _hex("a0 00 0001 00000000 00000001 | aa bb | 00 00 03")
# All at once: P, X, CC=1, M=1 PT=101
EVERYTHING = _hex("b1 e5 0102 03040506 0708090a | 0b0c0d0e | 0000 0002 11111111 22222222 "
                  "| 05 8a 03 20 | 00 02")


def test_parse_minimal_pcmu():
    assert parse_rtp(PCMU) == RtpPacket(payload_type=0, sequence=0x1234, timestamp=160,
                                        ssrc=0xDEADBEEF, payload=_hex("ff ff 7f 00"))


def test_parse_marker_and_csrc_and_round_trip():
    pkt = parse_rtp(PCMA_CSRC)
    assert pkt == RtpPacket(payload_type=8, sequence=65535, timestamp=2**32 - 1, ssrc=1,
                            payload=b"\x01\x02", marker=True, csrc=(10, 11))
    assert build_rtp(pkt) == PCMA_CSRC


def test_build_matches_fixture():
    pkt = RtpPacket(payload_type=0, sequence=0x1234, timestamp=160, ssrc=0xDEADBEEF,
                    payload=_hex("ff ff 7f 00"))
    assert build_rtp(pkt) == PCMU
    assert parse_rtp(bytearray(PCMU)) == pkt
    assert parse_rtp(memoryview(PCMU)) == pkt


def test_extension_is_skipped():
    pkt = parse_rtp(WITH_EXT)
    assert pkt.payload == b"\xaa\xbb"
    # built back without the extension: X bit clear, same fields
    assert build_rtp(pkt) == _hex("80 00 0001 00000000 00000001 aa bb")


def test_padding_is_stripped():
    pkt = parse_rtp(WITH_PAD)
    assert pkt.payload == b"\xaa\xbb"
    assert build_rtp(pkt) == _hex("80 00 0001 00000000 00000001 aa bb")


def test_padding_extension_csrc_together():
    pkt = parse_rtp(EVERYTHING)
    assert pkt == RtpPacket(payload_type=101, sequence=0x0102, timestamp=0x03040506,
                            ssrc=0x0708090A, payload=_hex("05 8a 03 20"), marker=True,
                            csrc=(0x0B0C0D0E,))


@pytest.mark.parametrize(("data", "message"), [
    (b"", "too short"),
    (PCMU[:11], "too short"),
    (_hex("40 00 0001 00000000 00000001"), "version 1"),
    (_hex("00 00 0001 00000000 00000001"), "version 0"),
    (_hex("83 00 0001 00000000 00000001 0000000a"), "CSRC"),
    (_hex("90 00 0001 00000000 00000001 bede"), "extension header"),
    (_hex("90 00 0001 00000000 00000001 bede 0002 10ff0000"), "runs past"),
    (_hex("a0 00 0001 00000000 00000001"), "ends after the header"),
    (_hex("a0 00 0001 00000000 00000001 aa 00"), "count is 0"),
    (_hex("a0 00 0001 00000000 00000001 aa 05"), "longer than"),
])
def test_malformed_packets_raise_rtp_error(data, message):
    with pytest.raises(RtpError, match=message):
        parse_rtp(data)


def test_random_bytes_never_raise_anything_but_rtp_error():
    rng = random.Random(7)
    for _ in range(5000):
        data = bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 40)))
        if data and rng.random() < 0.7:
            data = bytes([0x80 | (data[0] & 0x3F)]) + data[1:]  # mostly version 2
        with contextlib.suppress(RtpError):
            parse_rtp(data)


def test_rtp_error_is_a_value_error():
    assert issubclass(RtpError, ValueError)


@pytest.mark.parametrize("fields", [
    {"payload_type": 128}, {"sequence": 65536}, {"timestamp": -1}, {"ssrc": 2**32},
    {"csrc": tuple(range(16))}, {"csrc": (2**32,)},
])
def test_build_rejects_out_of_range_fields(fields):
    base = {"payload_type": 0, "sequence": 0, "timestamp": 0, "ssrc": 0, "payload": b""}
    with pytest.raises(RtpError):
        build_rtp(RtpPacket(**(base | fields)))


def test_rtcp_is_recognised():
    sender_report = _hex("80 c8 0006 deadbeef") + bytes(20)
    assert looks_like_rtcp(sender_report)
    assert not looks_like_rtcp(PCMU)
    assert not looks_like_rtcp(PCMA_CSRC)  # M=1 PT=8 is byte 0x88, not an RTCP type


# --- wrap-around arithmetic -----------------------------------------------------------------


def test_ts_diff_and_seq_diff_are_signed_modular():
    assert ts_diff(5, 0xFFFFFFFB) == 10
    assert ts_diff(0xFFFFFFFB, 5) == -10
    assert ts_diff(160, 0) == 160
    assert ts_diff(0, 2**31) == -(2**31)
    assert seq_diff(1, 65535) == 2
    assert seq_diff(65535, 1) == -2


def test_unwrapper_extends_through_wrap_and_reordering():
    u = Unwrapper(32)
    values = [2**32 - 320, 2**32 - 160, 0, 320, 160, 480]  # 160 arrives after 320
    assert [u.unwrap(v) for v in values] == [2**32 - 320, 2**32 - 160, 2**32, 2**32 + 320,
                                             2**32 + 160, 2**32 + 480]
    assert u.highest == 2**32 + 480


def test_sequence_tracker_counts_loss_across_wrap():
    t = SequenceTracker()
    exts = [t.update(s) for s in (65533, 65534, 0, 1, 65535, 3)]  # 65535 late, 2 lost
    assert exts == [65533, 65534, 65536, 65537, 65535, 65539]
    assert (t.expected, t.received, t.lost) == (7, 6, 1)
    for _ in range(3 * 65536):  # many wraps later it still counts up
        t.update((t.highest + 1) & 0xFFFF)
    assert t.highest == 65539 + 3 * 65536


# --- telephone-events -----------------------------------------------------------------------


def test_telephone_event_fixture():
    # RFC 4733 layout: event 5, E=1, R=0, volume 10, duration 800 (100 ms at 8 kHz)
    ev = parse_telephone_event(_hex("05 8a 03 20"))
    assert ev == TelephoneEvent(event=5, end=True, volume=10, duration=800)
    assert ev.digit == "5"
    assert build_telephone_event(ev) == _hex("05 8a 03 20")
    # the reserved bit is ignored on receipt
    assert parse_telephone_event(_hex("0b 4a 00 a0")) == TelephoneEvent(11, False, 10, 160)


def test_event_digits():
    digits = [TelephoneEvent(code, False, 10, 0).digit for code in range(17)]
    assert "".join(digits[:16]) == "0123456789*#ABCD"
    assert digits[16] is None  # flash
    assert [digit_to_event(d) for d in "09*#Ad"] == [0, 9, 10, 11, 12, 15]
    with pytest.raises(ValueError):
        digit_to_event("E")


def test_telephone_event_errors():
    with pytest.raises(RtpError):
        parse_telephone_event(b"\x05\x8a\x03")
    with pytest.raises(RtpError):
        build_telephone_event(TelephoneEvent(5, True, 64, 0))
    with pytest.raises(RtpError):
        build_telephone_event(TelephoneEvent(5, True, 10, 0x10000))


def _event_pkt(code: int, ts: int, duration: int, end: bool = False, marker: bool = False,
               ssrc: int = 7, seq: int = 0) -> RtpPacket:
    payload = build_telephone_event(TelephoneEvent(code, end, 10, duration))
    return RtpPacket(101, seq, ts, ssrc, payload, marker)


def test_dtmf_one_digit_per_event_despite_repeats():
    sender = RtpSender(0, ssrc=99, seq0=100, ts0=5000)
    rx = DtmfReceiver()
    packets = [parse_rtp(p) for p in sender.event_packets("1", 100)]
    packets += [parse_rtp(p) for p in sender.event_packets("1", 60)]  # same key again
    packets += [parse_rtp(p) for p in sender.event_packets("#", 200)]
    assert [d for d in map(rx.feed, packets) if d is not None] == ["1", "1", "#"]


def test_dtmf_without_marker_or_first_packet():
    rx = DtmfReceiver()
    # first packets lost: the end packets alone still make the digit, once
    got = [rx.feed(_event_pkt(3, 1000, 800, end=True)) for _ in range(3)]
    assert got == ["3", None, None]
    # no marker bit anywhere, new timestamp: a new event
    assert rx.feed(_event_pkt(3, 3000, 160)) == "3"
    assert rx.feed(_event_pkt(3, 3000, 320)) is None


def test_dtmf_late_retransmission_of_an_old_event_is_ignored():
    rx = DtmfReceiver()
    assert rx.feed(_event_pkt(5, 1000, 800, end=True)) == "5"
    assert rx.feed(_event_pkt(6, 2000, 160, marker=True)) == "6"
    assert rx.feed(_event_pkt(5, 1000, 800, end=True)) is None  # straggler of "5"
    assert rx.feed(_event_pkt(6, 2000, 800, end=True)) is None


def test_dtmf_events_are_per_ssrc():
    rx = DtmfReceiver()
    assert rx.feed(_event_pkt(1, 1000, 160, ssrc=1)) == "1"
    assert rx.feed(_event_pkt(2, 1000, 160, ssrc=2)) == "2"


def test_dtmf_long_event_segments_are_one_press():
    rx = DtmfReceiver()
    assert rx.feed(_event_pkt(0, 10_000, 160, marker=True)) == "0"
    assert rx.feed(_event_pkt(0, 10_000, 0xFFFF)) is None
    # RFC 4733 §2.5.1.3: the next segment starts where the last one's duration ended
    assert rx.feed(_event_pkt(0, 10_000 + 0xFFFF, 160)) is None
    assert rx.feed(_event_pkt(0, 10_000 + 0xFFFF, 800, end=True)) is None
    # after the end, the same key is a new press
    assert rx.feed(_event_pkt(0, 10_000 + 0xFFFF + 2000, 160)) == "0"


def test_dtmf_flash_filter_and_malformed():
    rx = DtmfReceiver(payload_type=101)
    flash = _event_pkt(16, 500, 160)
    assert rx.feed(flash) is None
    assert rx.feed_event(_event_pkt(16, 900, 160)) == TelephoneEvent(16, False, 10, 160)
    assert rx.feed(RtpPacket(0, 0, 1200, 7, _hex("01 0a 00 a0"))) is None  # not PT 101
    assert rx.feed(RtpPacket(101, 0, 1300, 7, b"\x01")) is None
    assert rx.malformed == 1


def test_dtmf_memory_is_bounded():
    rx = DtmfReceiver(memory=4)
    for i in range(100):
        assert rx.feed(_event_pkt(1, i * 2000, 800, end=True, ssrc=i)) == "1"
    assert len(rx._seen) <= 4
    assert len(rx._current) <= 4


# --- sending --------------------------------------------------------------------------------


def test_sender_advances_sequence_and_timestamp_with_wrap():
    s = RtpSender(0, ssrc=0xCAFE, seq0=65535, ts0=2**32 - 160)
    a, b, c = (parse_rtp(s.packet(bytes(160), marker=i == 0)) for i in range(3))
    assert [p.sequence for p in (a, b, c)] == [65535, 0, 1]
    assert [p.timestamp for p in (a, b, c)] == [2**32 - 160, 0, 160]
    assert (a.marker, b.marker, c.marker) == (True, False, False)
    assert a.payload_type == 0 and a.ssrc == 0xCAFE
    assert build_rtp(a)[:12] == _hex("80 80 ffff ffffff60 0000cafe")


def test_sender_slot_index_skips_timestamps_not_sequence_numbers():
    s = RtpSender(8, ssrc=1, seq0=10, ts0=1000)
    p0 = parse_rtp(s.packet(bytes(160), index=0))
    p1 = parse_rtp(s.packet(bytes(160), index=51))  # slots 1-50 were skipped
    p2 = parse_rtp(s.packet(bytes(160)))
    assert [p.sequence for p in (p0, p1, p2)] == [10, 11, 12]
    assert [p.timestamp for p in (p0, p1, p2)] == [1000, 1000 + 51 * 160, 1000 + 52 * 160]
    assert s.slot_timestamp(2**30) == (1000 + 2**30 * 160) % 2**32


def test_sender_event_packets_layout():
    s = RtpSender(0, ssrc=3, seq0=7, ts0=8000)
    s.packet(bytes(160))
    pkts = [parse_rtp(p) for p in s.event_packets("9", 70, payload_type=96, volume=12)]
    evs = [parse_telephone_event(p.payload) for p in pkts]
    assert [p.sequence for p in pkts] == list(range(8, 8 + len(pkts)))
    assert {p.timestamp for p in pkts} == {8160}
    assert {p.payload_type for p in pkts} == {96}
    assert [p.marker for p in pkts] == [True] + [False] * (len(pkts) - 1)
    # 70 ms = 560 samples: updates at 160, 320, 480, then the end packet three times
    assert [(e.duration, e.end) for e in evs] == [(160, False), (320, False), (480, False),
                                                  (560, True), (560, True), (560, True)]
    assert {(e.event, e.volume) for e in evs} == {(9, 12)}
    # media resumes one packet interval per event packet later
    assert parse_rtp(s.packet(bytes(160))).timestamp == 8160 + 6 * 160
    with pytest.raises(ValueError):
        s.event_packets("x")
    with pytest.raises(ValueError):
        s.event_packets("1", 9000)
