"""RTP in classic libpcap files: write streams SIPp's ``play_pcap_audio`` plays, read them back.

File format written: libpcap 2.4, little-endian, microsecond timestamps, snaplen 65535,
link type 1 (``LINKTYPE_ETHERNET``); each record is Ethernet II / IPv4 (no options) / UDP
(checksum filled in) / RTP (version 2, no CSRC, no extension). SIPp 3.6 accepts this: it
replays the UDP payloads (the RTP packets, unchanged) from its media socket to the far end's
SDP address, paced by the record timestamps. The IP addresses and ports in the file are not
used by SIPp.

Reading accepts link types Ethernet (1), raw IPv4 (101, 228) and Linux cooked (113), both
byte orders, micro- and nanosecond files; non-UDP and non-RTP records are skipped.

Units: ``time`` in seconds (float, from the capture start), ``timestamp`` in RTP clock
ticks (8000 Hz for G.711 and telephone-event here), ``ptime_ms`` in milliseconds.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

PCMU = 0
"""RTP payload type of G.711 µ-law."""
PCMA = 8
"""RTP payload type of G.711 A-law."""
TELEPHONE_EVENT = 101
"""The dynamic payload type used here for RFC 2833/4733 DTMF (``telephone-event/8000``)."""
ALAW_SILENCE = 0xD5
"""A-law code of (near) zero amplitude."""
ULAW_SILENCE = 0xFF
"""µ-law code of zero amplitude."""

DTMF_EVENTS = {**{str(d): d for d in range(10)}, "*": 10, "#": 11,
               "A": 12, "B": 13, "C": 14, "D": 15}
"""RFC 4733 event codes of the DTMF keys."""

_ETH = 1
_RAW = (101, 228)
_SLL = 113


@dataclass(frozen=True)
class RtpPacket:
    """One RTP packet and when it is sent.

    ``payload``: the RTP payload bytes (e.g. 160 A-law codes = 20 ms at 8 kHz).
    ``seq``: 16-bit sequence number. ``timestamp``: 32-bit RTP timestamp (clock ticks).
    ``time``: send/capture time in seconds from the start of the stream.
    """

    payload: bytes
    payload_type: int = PCMA
    seq: int = 0
    timestamp: int = 0
    ssrc: int = 0x0CA11A2D
    marker: bool = False
    time: float = 0.0

    def to_bytes(self) -> bytes:
        """The packet as sent on the wire: 12-byte RTP header + payload."""
        head = struct.pack("!BBHII", 0x80, (0x80 if self.marker else 0) | self.payload_type,
                           self.seq & 0xFFFF, self.timestamp & 0xFFFFFFFF,
                           self.ssrc & 0xFFFFFFFF)
        return head + bytes(self.payload)

    @classmethod
    def parse(cls, data: bytes, time: float = 0.0) -> RtpPacket | None:
        """Parse an RTP packet (skips CSRCs, header extension and padding); None if the
        bytes are not RTP version 2."""
        if len(data) < 12 or data[0] >> 6 != 2:
            return None
        b0, b1, seq, ts, ssrc = struct.unpack("!BBHII", data[:12])
        offset = 12 + 4 * (b0 & 0x0F)
        if b0 & 0x10:  # header extension
            if len(data) < offset + 4:
                return None
            offset += 4 + 4 * struct.unpack("!H", data[offset + 2:offset + 4])[0]
        end = len(data)
        if b0 & 0x20 and end > offset:  # padding
            end -= data[-1]
        if offset > end:
            return None
        return cls(payload=bytes(data[offset:end]), payload_type=b1 & 0x7F, seq=seq,
                   timestamp=ts, ssrc=ssrc, marker=bool(b1 & 0x80), time=time)


def frames(codes: bytes, frame_bytes: int = 160, fill: int = ALAW_SILENCE) -> list[bytes]:
    """Split G.711 codes (one byte per 8 kHz sample) into payloads of ``frame_bytes``
    (160 = 20 ms); the last one is padded with ``fill``."""
    out = [bytes(codes[i:i + frame_bytes]) for i in range(0, len(codes), frame_bytes)]
    if out and len(out[-1]) < frame_bytes:
        out[-1] = out[-1] + bytes([fill]) * (frame_bytes - len(out[-1]))
    return out


def rtp_stream(payloads: Iterable[bytes], *, payload_type: int = PCMA, ptime_ms: int = 20,
               rate: int = 8000, seq: int = 1, timestamp: int = 0,
               ssrc: int = 0x0CA11A2D, start: float = 0.0,
               marker_first: bool = True) -> list[RtpPacket]:
    """Packets for consecutive payloads, one every ``ptime_ms``: seq +1 and timestamp
    +``rate*ptime_ms/1000`` per packet, marker bit on the first (talkspurt start)."""
    step = rate * ptime_ms // 1000
    return [RtpPacket(payload=p, payload_type=payload_type, seq=(seq + i) & 0xFFFF,
                      timestamp=(timestamp + i * step) & 0xFFFFFFFF, ssrc=ssrc,
                      marker=marker_first and i == 0, time=start + i * ptime_ms / 1000)
            for i, p in enumerate(payloads)]


def dtmf_stream(digits: str, *, seq: int, timestamp: int, start: float,
                ssrc: int = 0x0CA11A2D, payload_type: int = TELEPHONE_EVENT,
                tone_ms: int = 100, gap_ms: int = 100, ptime_ms: int = 20,
                rate: int = 8000, volume: int = 10) -> list[RtpPacket]:
    """RFC 4733 telephone-event packets for ``digits`` (0-9 * # A-D).

    Each digit: one packet every ``ptime_ms`` for ``tone_ms`` (same RTP timestamp = the
    event start, growing duration, marker on the first; the last one has the end bit and
    is sent three times with the same sequence number), then ``gap_ms`` of nothing.
    Continue an audio stream by passing the next ``seq``/``timestamp``/``start`` after its
    last packet.
    """
    step = rate * ptime_ms // 1000
    out: list[RtpPacket] = []
    t, ts, sq = start, timestamp, seq
    for d in digits:
        event = DTMF_EVENTS[d.upper()]
        n = max(1, tone_ms // ptime_ms)
        for i in range(n):
            end = i == n - 1
            duration = (i + 1) * step
            body = struct.pack("!BBH", event, (0x80 if end else 0) | (volume & 0x3F),
                               duration)
            # the end packet goes three times, same sequence number (RFC 4733 2.5.1.4)
            out += [RtpPacket(payload=body, payload_type=payload_type, seq=sq & 0xFFFF,
                              timestamp=ts & 0xFFFFFFFF, ssrc=ssrc, marker=i == 0, time=t)
                    ] * (3 if end else 1)
            sq += 1
            t += ptime_ms / 1000
        t += gap_ms / 1000
        ts += int((tone_ms + gap_ms) * rate / 1000)
    return out


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _ip4(addr: str) -> bytes:
    return bytes(int(x) for x in addr.split("."))


def _frame(rtp: bytes, src: tuple[str, int], dst: tuple[str, int], ident: int) -> bytes:
    s_ip, d_ip = _ip4(src[0]), _ip4(dst[0])
    udp_len = 8 + len(rtp)
    pseudo = s_ip + d_ip + struct.pack("!BBH", 0, 17, udp_len)
    udp = struct.pack("!HHHH", src[1], dst[1], udp_len, 0) + rtp
    csum = _checksum(pseudo + udp) or 0xFFFF
    udp = udp[:6] + struct.pack("!H", csum) + udp[8:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0xB8, 20 + udp_len, ident & 0xFFFF, 0x4000, 64,
                     17, 0, s_ip, d_ip)
    ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
    eth = bytes.fromhex("020000000002") + bytes.fromhex("020000000001") + b"\x08\x00"
    return eth + ip + udp


def write_pcap(path: str | os.PathLike[str], packets: Sequence[RtpPacket], *,
               src: tuple[str, int] = ("127.0.0.1", 40000),
               dst: tuple[str, int] = ("127.0.0.1", 40002)) -> Path:
    """Write ``packets`` as Ethernet/IPv4/UDP records (record time = ``packet.time``)."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, _ETH)]
    for i, p in enumerate(packets):
        frame = _frame(p.to_bytes(), src, dst, i)
        usec_total = round(p.time * 1_000_000)
        sec, usec = divmod(usec_total, 1_000_000)
        out.append(struct.pack("<IIII", sec, usec, len(frame), len(frame)))
        out.append(frame)
    path = Path(path)
    path.write_bytes(b"".join(out))
    return path


def write_audio_pcap(path: str | os.PathLike[str], codes: bytes, *,
                     payload_type: int = PCMA, dtmf: str = "", ptime_ms: int = 20,
                     dtmf_gap_ms: int = 100, **stream_kw: int) -> Path:
    """G.711 ``codes`` (8 kHz, 1 byte/sample: A-law for PCMA, µ-law for PCMU) as 20 ms
    packets, optionally followed by RFC 4733 ``dtmf`` digits (payload type 101) continuing
    the same SSRC/sequence/timestamp. Returns ``path``."""
    fill = ALAW_SILENCE if payload_type == PCMA else ULAW_SILENCE
    audio = rtp_stream(frames(codes, 8 * ptime_ms, fill), payload_type=payload_type,
                       ptime_ms=ptime_ms, **stream_kw)
    packets = list(audio)
    if dtmf:
        last = audio[-1] if audio else RtpPacket(b"", seq=0, timestamp=0, time=-ptime_ms / 1000)
        packets += dtmf_stream(dtmf, seq=last.seq + 1, ssrc=last.ssrc,
                               timestamp=last.timestamp + 8 * ptime_ms,
                               start=last.time + dtmf_gap_ms / 1000, ptime_ms=ptime_ms)
    return write_pcap(path, packets)


def _span(p: RtpPacket) -> int:
    """RTP clock ticks a packet covers (G.711: one per byte; telephone-event: its duration)."""
    if p.payload_type in (PCMU, PCMA):
        return len(p.payload)
    if p.payload_type == TELEPHONE_EVENT and len(p.payload) >= 4:
        return struct.unpack("!H", p.payload[2:4])[0]
    return 160


def concat_streams(parts: Iterable[Sequence[RtpPacket]], *, gap_ms: int = 100,
                   ssrc: int = 0x0CA11A2D, rate: int = 8000,
                   ptime_ms: int = 20) -> list[RtpPacket]:
    """Join RTP streams into one, as one phone would send them: one ``ssrc``, sequence
    numbers and timestamps continuing (relative spacing inside each part kept, repeated
    sequence numbers such as DTMF end packets stay repeated), send times shifted so each
    part starts ``gap_ms`` after the previous one ended (last packet + ``ptime_ms``)."""
    out: list[RtpPacket] = []
    next_seq, next_ts, next_time = 1, 0, 0.0
    for part in parts:
        if not part:
            continue
        seq0, ts0, t0 = part[0].seq, part[0].timestamp, part[0].time
        end_seq, end_ts, end_time = next_seq, next_ts, next_time
        for p in part:
            seq = next_seq + ((p.seq - seq0) & 0xFFFF)
            ts = next_ts + ((p.timestamp - ts0) & 0xFFFFFFFF)
            t = next_time + (p.time - t0)
            out.append(RtpPacket(p.payload, p.payload_type, seq & 0xFFFF, ts & 0xFFFFFFFF,
                                 ssrc, p.marker, t))
            end_seq, end_ts = max(end_seq, seq + 1), max(end_ts, ts + _span(p))
            end_time = max(end_time, t + ptime_ms / 1000)
        next_seq = end_seq
        next_ts = end_ts + rate * gap_ms // 1000
        next_time = end_time + gap_ms / 1000
    return out


def concat_pcaps(path: str | os.PathLike[str], inputs: Iterable[str | os.PathLike[str]],
                 **kw: int) -> Path:
    """Write the RTP of several pcaps as one continuous stream (see :func:`concat_streams`),
    e.g. ``g711a.pcap`` followed by ``dtmf_2833_1.pcap`` from /usr/share/sip-tester."""
    return write_pcap(path, concat_streams((read_pcap(p) for p in inputs), **kw))


def pcap_duration(path: str | os.PathLike[str], ptime_ms: int = 20) -> float:
    """Seconds from the first packet's send time to the end of the last one."""
    packets = read_pcap(path)
    return packets[-1].time + ptime_ms / 1000 if packets else 0.0


def read_pcap(path: str | os.PathLike[str]) -> list[RtpPacket]:
    """All RTP packets in a pcap (UDP over IPv4), ``time`` relative to the first record."""
    data = Path(path).read_bytes()
    if len(data) < 24:
        raise ValueError(f"{path}: not a pcap file")
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        order = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        order = ">"
    else:
        raise ValueError(f"{path}: not a classic pcap file (pcapng is not supported)")
    nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    linktype = struct.unpack(order + "I", data[20:24])[0] & 0x0FFFFFFF
    pos, out, t0 = 24, [], None
    while pos + 16 <= len(data):
        sec, frac, incl, _orig = struct.unpack(order + "IIII", data[pos:pos + 16])
        rec = data[pos + 16:pos + 16 + incl]
        pos += 16 + incl
        t = sec + frac / (1e9 if nano else 1e6)
        t0 = t if t0 is None else t0
        udp = _udp_payload(rec, linktype)
        if udp is None:
            continue
        pkt = RtpPacket.parse(udp, time=t - t0)
        if pkt is not None:
            out.append(pkt)
    return out


def _udp_payload(rec: bytes, linktype: int) -> bytes | None:
    if linktype == _ETH:
        off, etype = 14, rec[12:14]
        while etype == b"\x81\x00":  # VLAN tags
            etype, off = rec[off + 2:off + 4], off + 4
        if etype != b"\x08\x00":
            return None
    elif linktype == _SLL:
        if rec[14:16] != b"\x08\x00":
            return None
        off = 16
    elif linktype in _RAW:
        off = 0
    else:
        raise ValueError(f"unsupported pcap link type {linktype}")
    ip = rec[off:]
    if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != 17:
        return None
    ihl = 4 * (ip[0] & 0x0F)
    total = struct.unpack("!H", ip[2:4])[0]
    udp = ip[ihl:total]
    if len(udp) < 8:
        return None
    return bytes(udp[8:struct.unpack("!H", udp[4:6])[0]])


def read_payloads(path: str | os.PathLike[str], payload_type: int | None = None) -> list[bytes]:
    """The RTP payloads in a pcap, in file order; only ``payload_type`` when given."""
    return [p.payload for p in read_pcap(path)
            if payload_type is None or p.payload_type == payload_type]
