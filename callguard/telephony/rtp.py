"""RTP packets (RFC 3550) and telephone-events (RFC 4733, formerly RFC 2833), pure.

Byte layouts (network byte order, big-endian):

* **RTP fixed header**, 12 bytes::

      byte 0   V(2 bits, =2) P(1) X(1) CC(4)     P: padding, X: extension, CC: CSRC count
      byte 1   M(1) PT(7)                        M: marker, PT: payload type
      2-3      sequence number (16 bits)
      4-7      timestamp (32 bits, in samples of the payload's clock: 8 kHz for G.711)
      8-11     SSRC (32 bits)

  then CC × 4-byte CSRC identifiers; then, if X, a header extension: 2 bytes profile-defined,
  2 bytes length in 32-bit words (not counting these 4 bytes), the words; then the payload;
  then, if P, padding whose last byte is the number of padding bytes including itself.

* **Telephone-event payload**, 4 bytes::

      byte 0   event code (0-9 digits, 10 '*', 11 '#', 12-15 'A'-'D', 16 flash, ...)
      byte 1   E(1) R(1) volume(6)               E: end of event, volume in -dBm0 (0-63)
      2-3      duration (16 bits, in timestamp units: samples at 8 kHz) since the event began

  Every packet of one event carries the same RTP timestamp (the event's start); the duration
  grows packet by packet and the final (E=1) packet is sent three times.

Sequence numbers wrap at 2**16 and timestamps at 2**32: compare them with :func:`seq_diff`,
:func:`ts_diff` or an :class:`Unwrapper`, never with ``<``.

Nothing here reads a clock or touches a socket.
"""

from __future__ import annotations

import math
import struct
from collections import deque
from dataclasses import dataclass

from callguard.errors import CallguardError

__all__ = [
    "DTMF_DIGITS",
    "RTP_HEADER_SIZE",
    "DtmfReceiver",
    "RtpError",
    "RtpPacket",
    "RtpSender",
    "SequenceTracker",
    "TelephoneEvent",
    "Unwrapper",
    "build_rtp",
    "build_telephone_event",
    "digit_to_event",
    "looks_like_rtcp",
    "parse_rtp",
    "parse_telephone_event",
    "seq_diff",
    "ts_diff",
]

RTP_HEADER_SIZE = 12
RTP_VERSION = 2

#: Telephone-event codes 0-15 in order (RFC 4733 §3.2); code 16 is flash, not a digit.
DTMF_DIGITS = "0123456789*#ABCD"

_HEADER = struct.Struct("!BBHII")
_EVENT = struct.Struct("!BBH")
_SEQ_MOD = 1 << 16
_TS_MOD = 1 << 32


class RtpError(CallguardError, ValueError):
    """A packet (or packet field) that is not valid RTP / telephone-event."""


# --- modular arithmetic ----------------------------------------------------------------------


def _signed_diff(a: int, b: int, bits: int) -> int:
    mod = 1 << bits
    half = mod >> 1
    return ((a - b + half) % mod) - half


def ts_diff(a: int, b: int) -> int:
    """``a - b`` for 32-bit RTP timestamps, as a signed int in ``[-2**31, 2**31)`` (samples).

    ``ts_diff(5, 0xFFFFFFFB) == 10``: ``a`` is 10 samples after ``b`` across the wrap.
    """
    return _signed_diff(a, b, 32)


def seq_diff(a: int, b: int) -> int:
    """``a - b`` for 16-bit RTP sequence numbers, signed in ``[-2**15, 2**15)`` (packets)."""
    return _signed_diff(a, b, 16)


class Unwrapper:
    """Extends wrapping ``bits``-bit counters (sequence numbers, timestamps) to plain ints.

    Each value is mapped to the integer congruent to it modulo ``2**bits`` that is nearest
    to the highest extended value seen so far, so reordered and duplicated values land
    where they belong. The first value is taken as is (``0 <= ext < 2**bits``); values
    older than it extend to negative numbers. The reference is the highest value, not the
    last one, so a burst of reordering cannot walk the reference backwards.
    """

    def __init__(self, bits: int) -> None:
        if bits < 2:
            raise ValueError(f"bits must be >= 2, not {bits}")
        self.bits = bits
        self._mod = 1 << bits
        self.highest: int | None = None

    def unwrap(self, value: int) -> int:
        """The extended value of ``value`` (taken modulo ``2**bits``)."""
        value %= self._mod
        if self.highest is None:
            self.highest = value
            return value
        ext = self.highest + _signed_diff(value, self.highest % self._mod, self.bits)
        self.highest = max(ext, self.highest)
        return ext


class SequenceTracker(Unwrapper):
    """Extended 16-bit RTP sequence numbers plus RFC 3550 §A.3 loss accounting.

    ``update(seq)`` returns the extended sequence number. ``expected`` is highest - lowest
    + 1, ``lost`` is expected - received (negative when duplicates outnumber losses, as in
    RFC 3550).
    """

    def __init__(self) -> None:
        super().__init__(16)
        self.lowest: int | None = None
        self.received = 0

    def update(self, seq: int) -> int:
        ext = self.unwrap(seq)
        self.received += 1
        self.lowest = ext if self.lowest is None else min(self.lowest, ext)
        return ext

    @property
    def expected(self) -> int:
        if self.highest is None or self.lowest is None:
            return 0
        return self.highest - self.lowest + 1

    @property
    def lost(self) -> int:
        return self.expected - self.received


# --- RTP packets ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RtpPacket:
    """One RTP packet, header fields as plain ints.

    ``timestamp`` counts samples of the payload clock (8 kHz for G.711; wraps at 2**32),
    ``sequence`` counts packets (wraps at 2**16). ``payload`` excludes any header extension
    and padding. ``csrc``: contributing sources (at most 15).
    """

    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes
    marker: bool = False
    csrc: tuple[int, ...] = ()


def looks_like_rtcp(data: bytes) -> bool:
    """True for RTCP packets sharing the RTP port (rtcp-mux, RFC 5761 §4): packet types
    192-223 in byte 1. Check before :func:`parse_rtp`, which would read an RTCP sender report
    as RTP payload type 72 with the marker bit set."""
    return len(data) >= 2 and data[0] >> 6 == RTP_VERSION and 192 <= data[1] <= 223


def parse_rtp(data: bytes) -> RtpPacket:
    """Parse one RTP packet (bytes, bytearray or memoryview).

    Honours the CSRC count, skips a header extension, strips padding. Raises
    :class:`RtpError` naming the problem for anything short or malformed.
    """
    size = len(data)
    if size < RTP_HEADER_SIZE:
        raise RtpError(f"RTP packet too short: {size} bytes, the fixed header is "
                       f"{RTP_HEADER_SIZE}")
    b0, b1, sequence, timestamp, ssrc = _HEADER.unpack_from(data, 0)
    version = b0 >> 6
    if version != RTP_VERSION:
        raise RtpError(f"RTP version {version}, expected {RTP_VERSION}")
    has_padding = bool(b0 & 0x20)
    has_extension = bool(b0 & 0x10)
    cc = b0 & 0x0F

    offset = RTP_HEADER_SIZE + 4 * cc
    if size < offset:
        raise RtpError(f"RTP packet of {size} bytes too short for its {cc} CSRC(s)")
    csrc = struct.unpack_from(f"!{cc}I", data, RTP_HEADER_SIZE) if cc else ()

    if has_extension:
        if size < offset + 4:
            raise RtpError(f"RTP packet of {size} bytes too short for its extension header")
        (words,) = struct.unpack_from("!H", data, offset + 2)
        offset += 4 + 4 * words
        if size < offset:
            raise RtpError(f"RTP header extension of {words} words runs past the end of a "
                           f"{size}-byte packet")

    end = size
    if has_padding:
        if size == offset:
            raise RtpError("RTP padding flag set but the packet ends after the header")
        pad = data[-1]
        if pad == 0:
            raise RtpError("RTP padding count is 0 (it includes its own byte, so >= 1)")
        if pad > size - offset:
            raise RtpError(f"RTP padding of {pad} bytes is longer than the {size - offset} "
                           f"bytes after the header")
        end -= pad

    return RtpPacket(payload_type=b1 & 0x7F, sequence=sequence, timestamp=timestamp,
                     ssrc=ssrc, payload=bytes(data[offset:end]), marker=bool(b1 & 0x80),
                     csrc=tuple(csrc))


def build_rtp(pkt: RtpPacket) -> bytes:
    """Serialize ``pkt`` (version 2, no padding, no extension).

    Raises :class:`RtpError` for fields out of range rather than silently masking them.
    """
    _check_range("payload type", pkt.payload_type, 0x7F)
    _check_range("sequence", pkt.sequence, _SEQ_MOD - 1)
    _check_range("timestamp", pkt.timestamp, _TS_MOD - 1)
    _check_range("SSRC", pkt.ssrc, _TS_MOD - 1)
    if len(pkt.csrc) > 15:
        raise RtpError(f"at most 15 CSRCs fit the header, not {len(pkt.csrc)}")
    for c in pkt.csrc:
        _check_range("CSRC", c, _TS_MOD - 1)
    b0 = (RTP_VERSION << 6) | len(pkt.csrc)
    b1 = (0x80 if pkt.marker else 0) | pkt.payload_type
    header = _HEADER.pack(b0, b1, pkt.sequence, pkt.timestamp, pkt.ssrc)
    csrc = struct.pack(f"!{len(pkt.csrc)}I", *pkt.csrc) if pkt.csrc else b""
    return header + csrc + bytes(pkt.payload)


def _check_range(name: str, value: int, top: int) -> None:
    if not 0 <= value <= top:
        raise RtpError(f"RTP {name} {value} out of range 0..{top}")


# --- telephone-events -----------------------------------------------------------------------


def digit_to_event(digit: str) -> int:
    """Event code of a DTMF key: '0'-'9' → 0-9, '*' → 10, '#' → 11, 'A'-'D' → 12-15
    (letters in either case)."""
    code = DTMF_DIGITS.find(digit.upper()) if len(digit) == 1 else -1
    if code < 0:
        raise ValueError(f"not a DTMF digit: {digit!r}")
    return code


@dataclass(frozen=True)
class TelephoneEvent:
    """One telephone-event payload. ``volume`` is the power level in -dBm0 (0-63, so 10
    means -10 dBm0); ``duration`` is in timestamp units (samples at 8 kHz) since the event
    began; ``end`` is the E bit."""

    event: int
    end: bool
    volume: int
    duration: int

    @property
    def digit(self) -> str | None:
        """'0'-'9', '*', '#', 'A'-'D' for codes 0-15; None for other events (16 is flash)."""
        return DTMF_DIGITS[self.event] if 0 <= self.event < len(DTMF_DIGITS) else None


def parse_telephone_event(payload: bytes) -> TelephoneEvent:
    """Parse the first 4-byte event block of a telephone-event payload.

    Further blocks (RFC 2198 redundancy, which a peer only sends if it was negotiated) are
    ignored. The reserved R bit is ignored as the RFC asks.
    """
    if len(payload) < _EVENT.size:
        raise RtpError(f"telephone-event payload of {len(payload)} bytes, expected 4")
    event, flags, duration = _EVENT.unpack_from(payload, 0)
    return TelephoneEvent(event=event, end=bool(flags & 0x80), volume=flags & 0x3F,
                          duration=duration)


def build_telephone_event(ev: TelephoneEvent) -> bytes:
    """The 4-byte payload of ``ev`` (R bit 0)."""
    _check_range("event code", ev.event, 0xFF)
    _check_range("event volume", ev.volume, 0x3F)
    _check_range("event duration", ev.duration, 0xFFFF)
    return _EVENT.pack(ev.event, (0x80 if ev.end else 0) | ev.volume, ev.duration)


@dataclass
class _EventState:
    timestamp: int
    event: int
    end: bool
    duration: int


class DtmfReceiver:
    """Turns received telephone-event packets into key presses, one per event.

    Senders repeat themselves: every packet of an event carries the event's start timestamp,
    and the end packet is sent three times. An event is identified by (SSRC, RTP timestamp)
    and reported on the *first* packet seen of it, whichever that is (the marker bit on the
    first packet is often missing or the packet lost, so it is not relied on). Repeats are
    recognised among the last ``memory`` events.

    Long events (RFC 4733 §2.5.1.3) are split by the sender into segments with new
    timestamps; a packet that continues the previous, unfinished event of the same SSRC
    with the same code, without a marker bit and with a timestamp inside the duration
    already announced, is treated as part of it, not as a new key press. A real second press
    of the same key starts after the first ended, so it is still reported.

    ``payload_type``: when given, packets of other payload types are ignored; by default the
    caller feeds only telephone-event packets. Malformed payloads are counted in
    :attr:`malformed` and ignored (this is a network input).
    """

    def __init__(self, payload_type: int | None = None, memory: int = 32) -> None:
        self.payload_type = payload_type
        self.malformed = 0
        self._seen: set[tuple[int, int]] = set()
        self._order: deque[tuple[int, int]] = deque()
        self._memory = max(1, memory)
        self._current: dict[int, _EventState] = {}

    def feed(self, pkt: RtpPacket) -> str | None:
        """The digit when ``pkt`` starts a new DTMF event, else None (repeats, flash, ...)."""
        ev = self.feed_event(pkt)
        return ev.digit if ev is not None else None

    def feed_event(self, pkt: RtpPacket) -> TelephoneEvent | None:
        """Like :meth:`feed` but returns the new event itself (flash and other codes too)."""
        if self.payload_type is not None and pkt.payload_type != self.payload_type:
            return None
        try:
            ev = parse_telephone_event(pkt.payload)
        except RtpError:
            self.malformed += 1
            return None
        key = (pkt.ssrc, pkt.timestamp)
        cur = self._current.get(pkt.ssrc)
        if key in self._seen:
            if cur is not None and cur.timestamp == pkt.timestamp:
                cur.end = cur.end or ev.end
                cur.duration = max(cur.duration, ev.duration)
            return None
        continuation = (cur is not None and not pkt.marker and not cur.end
                        and cur.event == ev.event
                        and 0 < ts_diff(pkt.timestamp, cur.timestamp) <= cur.duration)
        self._remember(key)
        self._current[pkt.ssrc] = _EventState(pkt.timestamp, ev.event, ev.end, ev.duration)
        if len(self._current) > self._memory:  # bounded: a flood of SSRCs must not grow it
            del self._current[next(iter(self._current))]
        return None if continuation else ev

    def _remember(self, key: tuple[int, int]) -> None:
        self._seen.add(key)
        self._order.append(key)
        if len(self._order) > self._memory:
            self._seen.discard(self._order.popleft())


# --- sending --------------------------------------------------------------------------------


class RtpSender:
    """Packetizer for one outgoing stream: header bookkeeping only, no socket, no clock.

    Each packet advances the sequence number by 1 (mod 2**16). The timestamp (mod 2**32)
    either continues from the previous packet (advancing by the previous payload's length in
    samples: one byte per sample for G.711) or is set from a schedule slot with ``index``:
    ``ts0 + index * samples_per_packet``, so slots skipped by a send schedule still advance
    the clock while the sequence numbers stay contiguous (receivers see a timing jump, not
    loss).
    """

    def __init__(self, payload_type: int, ssrc: int, seq0: int, ts0: int,
                 samples_per_packet: int = 160) -> None:
        _check_range("payload type", payload_type, 0x7F)
        _check_range("SSRC", ssrc, _TS_MOD - 1)
        if samples_per_packet <= 0:
            raise ValueError(f"samples_per_packet must be positive, not {samples_per_packet}")
        self.payload_type = payload_type
        self.ssrc = ssrc
        self.ts0 = ts0 % _TS_MOD
        self.samples_per_packet = samples_per_packet
        self.next_sequence = seq0 % _SEQ_MOD
        self.next_timestamp = self.ts0
        self.packets = 0

    def slot_timestamp(self, index: int) -> int:
        """RTP timestamp of schedule slot ``index``: ``ts0 + index * samples_per_packet``."""
        return (self.ts0 + index * self.samples_per_packet) % _TS_MOD

    def packet(self, payload: bytes, marker: bool = False, *, index: int | None = None,
               samples: int | None = None) -> bytes:
        """One media packet. ``samples``: what the payload covers (default ``len(payload)``,
        right for G.711); ``index``: schedule slot that fixes the timestamp (see class)."""
        ts = self.next_timestamp if index is None else self.slot_timestamp(index)
        data = self._build(self.payload_type, ts, bytes(payload), marker)
        self.next_timestamp = (ts + (len(payload) if samples is None else samples)) % _TS_MOD
        return data

    def event_packets(self, digit: str, duration_ms: int = 100, *, payload_type: int = 101,
                      volume: int = 10, index: int | None = None) -> list[bytes]:
        """RFC 4733 packets for one key press, to be sent one per packet interval.

        All share the event's start timestamp; the first has the marker bit; durations grow
        by ``samples_per_packet`` (at 8 kHz); the final packet (E bit, full duration) is sent
        three times. Afterwards the media timestamp continues one packet interval per packet
        returned, so audio resumes in step with the wall clock.
        """
        spp = self.samples_per_packet
        total = round(duration_ms * 8)  # telephone-event clock: 8 kHz, as for G.711
        if not 0 < total <= 0xFFFF:
            raise ValueError(f"DTMF duration {duration_ms} ms outside 1..8191 ms")
        code = digit_to_event(digit)
        ts = self.next_timestamp if index is None else self.slot_timestamp(index)
        events = [TelephoneEvent(code, False, volume, k * spp)
                  for k in range(1, math.ceil(total / spp))]
        events += [TelephoneEvent(code, True, volume, total)] * 3
        out = [self._build(payload_type, ts, build_telephone_event(ev), i == 0)
               for i, ev in enumerate(events)]
        self.next_timestamp = (ts + len(out) * spp) % _TS_MOD
        return out

    def _build(self, payload_type: int, ts: int, payload: bytes, marker: bool) -> bytes:
        data = build_rtp(RtpPacket(payload_type=payload_type, sequence=self.next_sequence,
                                   timestamp=ts, ssrc=self.ssrc, payload=payload,
                                   marker=marker))
        self.next_sequence = (self.next_sequence + 1) % _SEQ_MOD
        self.packets += 1
        return data
