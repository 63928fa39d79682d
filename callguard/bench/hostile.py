"""Generators of malformed and hostile SIP messages, SDP offers and RTP packets (issue 13).

Shared by the fuzz tests (tests/test_fuzz_sip.py, tests/test_fuzz_rtp.py, which drive them
from Hypothesis through ``st.randoms()``, so failures shrink and replay) and the soak program
(:mod:`callguard.bench.soak`, which drives them from a seeded :class:`random.Random`). Each
generator takes a ``random.Random`` and returns wire bytes; nothing here opens a socket or
reads a clock.

They are structure-aware: a message starts as a valid request or response (a
:class:`Message`, a start line, header lines and a body) and is then damaged the way a broken
or hostile peer would damage it — a header dropped, duplicated, emptied, made huge, given a
bad value or bytes that are not UTF-8; a bad CSeq or Content-Length; compact, lower-case or
folded header names; LF-only line ends; an SDP body with bad m-lines, ports, codecs or
connection addresses; truncation; or plain random bytes.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = [
    "METHODS",
    "Message",
    "Target",
    "hostile_rtp",
    "hostile_sdp",
    "hostile_sip",
    "mutate",
    "rtp_packet",
    "valid_request",
    "valid_sdp",
]

#: Request methods a hostile peer sends: the ones the agent serves, ones it refuses, junk.
METHODS = ("INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "INFO", "UPDATE", "MESSAGE",
           "PRACK", "SUBSCRIBE", "NOTIFY", "REFER", "PUBLISH", "REGISTER", "FOO", "invite")
_HEADER_NAMES = ("Via", "From", "To", "Call-ID", "CSeq", "Contact", "Max-Forwards",
                 "Content-Type", "Content-Length", "Supported", "Allow", "Record-Route",
                 "Route", "Expires", "User-Agent", "Require", "Authorization")
_COMPACT = {"Via": "v", "From": "f", "To": "t", "Call-ID": "i", "Contact": "m",
            "Content-Type": "c", "Content-Length": "l", "Supported": "k"}
#: Digits that str.isdigit() accepts and int() refuses, and other look-alikes.
_ODD_NUMBERS = ("²", "¹²³", "٣", "１２", "-1", "+5", "0x10", "1e3", " ", "", "99999999999999999999",
                "4294967296", "2147483648", "00000000001", "1.5", "NaN", "\x00", "1 2")
_ODD_TEXT = ("", " ", ";", ":", "<", ">", "<sip:>", "sip:", '"', "\t", "\x00", "%00", "\\",
             "𝕊𝕀ℙ", "한국어", "\u202e", "\ufeff", "sip:a@b;tag=", ";tag=;tag=x", "<<<<>>>>")


@dataclass
class Target:
    """Where a generated message claims to go and come from (addresses in its headers)."""

    agent_user: str = "agent"
    agent_host: str = "127.0.0.1"
    agent_port: int = 5060
    source_host: str = "127.0.0.1"
    source_port: int = 5070
    rtp_port: int = 40000
    call_ids: list[str] = field(default_factory=list)  # Call-IDs worth reusing, if any


@dataclass
class Message:
    """A SIP message as a list of header lines: easy to damage, then :meth:`encode`."""

    start: str
    headers: list[tuple[str, str]]
    body: bytes = b""
    #: Content-Length: None = the body's true length; else this text as is.
    content_length: str | None = None
    eol: str = "\r\n"
    raw_headers: list[bytes] = field(default_factory=list)  # extra lines, any bytes

    def first(self, name: str) -> str:
        return next((v for n, v in self.headers if n.lower() == name.lower()), "")

    def encode(self) -> bytes:
        eol = self.eol.encode()
        lines = [self.start.encode("utf-8", "surrogateescape")]
        lines += [f"{n}: {v}".encode("utf-8", "surrogateescape") for n, v in self.headers]
        lines += self.raw_headers
        length = str(len(self.body)) if self.content_length is None else self.content_length
        lines.append(f"Content-Length: {length}".encode("utf-8", "surrogateescape"))
        return eol.join(lines) + eol + eol + self.body


def _token(r: random.Random, n: int = 8) -> str:
    return "".join(r.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(n))


def valid_sdp(r: random.Random, host: str = "127.0.0.1", port: int | None = None,
              codecs: tuple[str, ...] | None = None, direction: str = "sendrecv") -> str:
    """A well-formed offer: one audio stream with PCMU and/or PCMA (and telephone-event)."""
    port = r.randrange(1024, 65535, 2) if port is None else port
    codecs = codecs or r.choice((("0",), ("8",), ("0", "8"), ("8", "0", "101"), ("0", "101")))
    names = {"0": "PCMU/8000", "8": "PCMA/8000", "101": "telephone-event/8000"}
    lines = ["v=0", f"o=peer {r.randrange(1, 10**6)} 1 IN IP4 {host}", "s=-",
             f"c=IN IP4 {host}", "t=0 0", f"m=audio {port} RTP/AVP {' '.join(codecs)}"]
    lines += [f"a=rtpmap:{c} {names[c]}" for c in codecs]
    lines.append(f"a={direction}")
    return "\r\n".join(lines) + "\r\n"


def hostile_sdp(r: random.Random, host: str = "127.0.0.1") -> str:
    """An SDP body damaged in one or more ways: bad m-line ports, counts or protocols,
    no usable codec, many m-lines, bad or missing c= addresses, junk lines."""
    lines = valid_sdp(r, host).rstrip("\r\n").split("\r\n")
    for _ in range(r.randint(1, 3)):
        kind = r.randrange(12)
        m = next(i for i, ln in enumerate(lines) if ln.startswith("m=")) if any(
            ln.startswith("m=") for ln in lines) else None
        if kind == 0 and m is not None:  # bad port
            port = r.choice((*_ODD_NUMBERS, "70000", "65536", "0", "-5", "1/2", "5/0"))
            lines[m] = f"m=audio {port} RTP/AVP 0"
        elif kind == 1 and m is not None:  # no usable codec
            lines[m] = f"m=audio {r.randrange(1024, 65535)} RTP/AVP " + r.choice(
                ("18", "9 3", "96", "101", "", "0 8 " * 50))
        elif kind == 2:  # many m-lines
            lines += [f"m={r.choice(('audio', 'video', 'text'))} {r.randrange(0, 65536)} "
                      f"RTP/AVP 0" for _ in range(r.choice((2, 10, 200)))]
        elif kind == 3:  # bad or foreign connection address
            c = r.choice(("c=IN IP6 ::1", "c=IN IP4 999.1.1.1", "c=IN IP4 host.invalid",
                          "c=IN IP4", "c=", "c=IN IP4 0.0.0.0", "c=IN IP4 ².1.1.1",
                          "c=IN IP4 127.0.0.1/127", "c=XX IP4 127.0.0.1"))
            lines = [c if ln.startswith("c=") else ln for ln in lines]
        elif kind == 4:  # no connection address at all
            lines = [ln for ln in lines if not ln.startswith("c=")]
        elif kind == 5 and m is not None:  # another protocol
            lines[m] = lines[m].replace("RTP/AVP", r.choice(("RTP/SAVP", "UDP/TLS/RTP/SAVPF",
                                                             "rtp/avp", "")))
        elif kind == 6:  # junk lines
            lines.insert(r.randrange(len(lines) + 1), r.choice(
                ("garbage", "=", "x=", "m=", "a=rtpmap:", "a=rtpmap:0", "a=" + "x" * 3000,
                 "m=audio", "m=audio 5", "a=sendonly", "a=inactive", "\x00=\x00")))
        elif kind == 7:  # rtpmap claims
            lines.append(r.choice(("a=rtpmap:0 OPUS/48000", "a=rtpmap:96 PCMU/8000",
                                   "a=rtpmap:8", "a=rtpmap: PCMA/8000")))
        elif kind == 8:  # direction
            lines.append("a=" + r.choice(("sendonly", "recvonly", "inactive", "sendrecv",
                                          "bogus")))
        elif kind == 9 and m is not None:  # m-line without format
            lines[m] = r.choice(("m=audio 4000 RTP/AVP", "m=audio", "m= 4000 RTP/AVP 0",
                                 "m=audio  RTP/AVP 0"))
        elif kind == 10:  # line ends
            return r.choice(("\n", "\r", "\r\n\r\n")).join(lines) + "\n"
        else:  # random bytes as text
            lines.append(bytes(r.getrandbits(8) for _ in range(r.randrange(1, 64))).decode(
                "latin-1"))
    return "\r\n".join(lines) + "\r\n"


def valid_request(r: random.Random, target: Target | None = None,
                  method: str | None = None, sdp: bool | None = None) -> Message:
    """A well-formed out-of-dialog request (an INVITE carries a valid SDP offer)."""
    t = target or Target()
    method = method or r.choice(("INVITE", "OPTIONS", "BYE", "ACK", "CANCEL", "INFO"))
    ruri = f"sip:{t.agent_user}@{t.agent_host}:{t.agent_port}"
    call_id = r.choice(t.call_ids) if t.call_ids and r.random() < 0.2 else \
        f"{_token(r, 16)}@{t.source_host}"
    headers = [
        ("Via", f"SIP/2.0/UDP {t.source_host}:{t.source_port};branch=z9hG4bK{_token(r)};rport"),
        ("Max-Forwards", "70"),
        ("From", f'"fuzz" <sip:fuzz@{t.source_host}>;tag={_token(r, 6)}'),
        ("To", f"<{ruri}>" + (f";tag={_token(r, 6)}" if method in ("BYE", "ACK") and
                              r.random() < 0.7 else "")),
        ("Call-ID", call_id),
        ("CSeq", f"{r.randint(1, 2**31 - 1)} {method}"),
        ("Contact", f"<sip:fuzz@{t.source_host}:{t.source_port}>"),
        ("User-Agent", "callguard-fuzz"),
    ]
    body = b""
    if method == "INVITE" and (sdp if sdp is not None else r.random() < 0.9):
        headers.append(("Content-Type", "application/sdp"))
        body = valid_sdp(r, t.source_host, t.rtp_port).encode()
    return Message(f"{method} {ruri} SIP/2.0", headers, body)


def _odd_value(r: random.Random, name: str) -> str:
    kind = r.randrange(6)
    if kind == 0:
        return r.choice(_ODD_TEXT)
    if kind == 1:
        return r.choice(_ODD_NUMBERS)
    if kind == 2:
        return "".join(chr(r.randrange(0x20, 0x2FFF)) for _ in range(r.randrange(1, 40)))
    if kind == 3 and name in ("From", "To", "Contact"):
        return r.choice(("<sip:x@y>;tag=", "sip:", "<tel:123>", '"a" <sip:a@b', "<>",
                         "<sip:a@b>;tag=a;tag=b", "<sip:a@[::1]:5060>", "<sip:a@b:99999>"))
    if kind == 4 and name == "Via":
        return r.choice(("SIP/2.0/UDP", "SIP/2.0/UDP 127.0.0.1:²;rport", "SIP/2.0/TCP x:1",
                         "SIP/2.0/UDP 127.0.0.1:0;branch=", "SIP/2.0/UDP :;rport=;received=",
                         "SIP/2.0/UDP 127.0.0.1:70000", "SIP/2.0/UDP a:b:c:d"))
    return _token(r, r.randrange(1, 20))


def mutate(r: random.Random, msg: Message) -> Message:
    """Damage ``msg`` in place (one way, chosen at random) and return it."""
    h = msg.headers
    kind = r.randrange(20)
    i = r.randrange(len(h)) if h else 0
    name = h[i][0] if h else "Via"
    if kind == 0 and h:  # drop a header
        del h[i]
    elif kind == 1 and h:  # duplicate one (same or another value)
        h.insert(r.randrange(len(h) + 1),
                 (name, h[i][1] if r.random() < 0.5 else _odd_value(r, name)))
    elif kind == 2 and h:  # empty value
        h[i] = (name, "")
    elif kind == 3 and h:  # oversized value
        h[i] = (name, h[i][1] + "x" * r.choice((300, 4000, 20000)))
    elif kind == 4 and h:  # odd value
        h[i] = (name, _odd_value(r, name))
    elif kind == 5:  # bad CSeq
        method = msg.start.split(" ")[0]
        value = r.choice((f"{r.choice(_ODD_NUMBERS)} {method}", "1", method, "1 FOO",
                          f"1 {method} extra", f"{2**32} {method}", f"-1 {method}", ""))
        h[:] = [(n, value if n == "CSeq" else v) for n, v in h]
    elif kind == 6:  # bad Content-Length
        msg.content_length = r.choice((*_ODD_NUMBERS, "0", "100000", str(len(msg.body) + 1)))
    elif kind == 7 and h:  # compact or odd-case names
        h[:] = [(_COMPACT.get(n, n).lower() if r.random() < 0.5 else n.upper(), v)
                for n, v in h]
    elif kind == 8 and h:  # folded line (continuation)
        msg.raw_headers.append(b" folded continuation")
        h[i] = (name, h[i][1] + "\r\n\t" + _token(r))
    elif kind == 9:  # LF or CR line ends
        msg.eol = r.choice(("\n", "\r", "\r\r\n"))
    elif kind == 10:  # not UTF-8
        msg.raw_headers.append(r.choice((b"X-Bin: \xff\xfe\xc0\xaf", b"\xc3(: \x80",
                                         b"Subject: \xed\xa0\x80", bytes(range(256))[:64])))
    elif kind == 11:  # header without colon, or only a colon
        msg.raw_headers.append(r.choice((b"NoColonHere", b":", b": value", b"Via:",
                                         b"Via:SIP/2.0/UDP 127.0.0.1")))
    elif kind == 12:  # bad start line
        method = msg.start.split(" ")[0]
        msg.start = r.choice((f"{method} sip:a SIP/3.0", f"{method}  SIP/2.0", method,
                              f"{method} sip:a@b SIP/2.0 extra", "SIP/2.0 ²00 OK",
                              f"{r.choice(_ODD_TEXT)} sip:a@b SIP/2.0", "", " ",
                              "SIP/2.0 99999999999999999999 Big", f"{method}\x00 sip:a SIP/2.0"))
    elif kind == 13:  # an SDP body that is not usable
        msg.body = hostile_sdp(r).encode("utf-8", "surrogateescape")
        if not msg.first("Content-Type"):
            h.append(("Content-Type", "application/sdp"))
    elif kind == 14:  # another method with the same headers
        method = r.choice(METHODS)
        msg.start = f"{method} " + " ".join(msg.start.split(" ")[1:])
    elif kind == 15:  # a response instead of a request
        code = r.choice(("200", "180", "401", "407", "486", "999", "0", "²"))
        msg.start = f"SIP/2.0 {code} Whatever"
        if r.random() < 0.5:
            h[:] = [(n, f"1 {r.choice(('REGISTER', 'INVITE', 'BYE'))}" if n == "CSeq" else v)
                    for n, v in h]
    elif kind == 16:  # many headers
        h += [(r.choice(_HEADER_NAMES), _odd_value(r, "X")) for _ in range(r.choice((20, 200)))]
    elif kind == 17:  # tags: two, empty, huge
        h[:] = [(n, v + r.choice((";tag=", ";tag=a;tag=b", ";tag=" + "t" * 500))
                 if n in ("From", "To") else v) for n, v in h]
    elif kind == 18:  # a body where none belongs, or binary
        msg.body = bytes(r.getrandbits(8) for _ in range(r.randrange(0, 300)))
    elif h:  # a header value with NULs and control characters
        value = h[i][1]
        h[i] = (name, value[: len(value) // 2] + "\x00\x01\x7f" + value[len(value) // 2:])
    return msg


def hostile_sip(r: random.Random, target: Target | None = None) -> bytes:
    """One generated hostile datagram: mostly a valid message with 1-3 mutations; sometimes
    the valid message (well-formed requests belong in the mix), a truncation, random bytes
    or an oversized message."""
    t = target or Target()
    kind = r.random()
    if kind < 0.05:
        return bytes(r.getrandbits(8) for _ in range(r.randrange(0, 1500)))
    msg = valid_request(r, t, method=r.choice(METHODS) if r.random() < 0.3 else None)
    if kind < 0.12:
        return msg.encode()
    for _ in range(r.choice((1, 1, 1, 2, 3))):
        mutate(r, msg)
    data = msg.encode()
    if r.random() < 0.1:  # truncated anywhere
        data = data[: r.randrange(0, len(data) + 1)]
    return data[:65000]  # one UDP datagram


# --- RTP --------------------------------------------------------------------------------------


def rtp_packet(pt: int, seq: int, ts: int, ssrc: int, payload: bytes, *, marker: bool = False,
               version: int = 2, padding: bool = False, extension: bool = False,
               cc: int = 0) -> bytes:
    """Raw RTP header fields as given, no checks (the header may lie about what follows)."""
    b0 = ((version & 3) << 6) | (0x20 if padding else 0) | (0x10 if extension else 0) | (cc & 15)
    b1 = (0x80 if marker else 0) | (pt & 0x7F)
    return struct.pack("!BBHII", b0, b1, seq & 0xFFFF, ts & 0xFFFFFFFF,
                       ssrc & 0xFFFFFFFF) + payload


def _rtp_kinds() -> list[Callable[[random.Random, int | None], bytes]]:
    def plain(r: random.Random, ssrc: int | None) -> bytes:
        return rtp_packet(r.choice((0, 8, 101, 13, 18, 96, 127)), r.getrandbits(16),
                          r.getrandbits(32), r.getrandbits(32) if ssrc is None else ssrc,
                          r.randbytes(r.choice((0, 1, 80, 160, 161, 320, 1400))),
                          marker=r.random() < 0.2)

    def bad_version(r: random.Random, ssrc: int | None) -> bytes:
        return rtp_packet(0, 1, 160, ssrc or 1, r.randbytes(160), version=r.choice((0, 1, 3)))

    def short(r: random.Random, ssrc: int | None) -> bytes:
        return r.randbytes(r.randrange(0, 12))

    def csrc_lie(r: random.Random, ssrc: int | None) -> bytes:
        cc = r.randint(1, 15)
        return rtp_packet(0, 1, 160, ssrc or 2, r.randbytes(r.randrange(0, 4 * cc + 4)), cc=cc)

    def ext_lie(r: random.Random, ssrc: int | None) -> bytes:
        words = r.choice((0, 1, 100, 0xFFFF))
        return rtp_packet(0, 1, 160, ssrc or 3,
                          struct.pack("!HH", 0xBEDE, words) + r.randbytes(r.randrange(0, 40)),
                          extension=True)

    def pad_lie(r: random.Random, ssrc: int | None) -> bytes:
        body = r.randbytes(r.randrange(0, 20))
        return rtp_packet(0, 1, 160, ssrc or 4, body + bytes([r.choice((0, 1, 255))]),
                          padding=True)

    def rtcp(r: random.Random, ssrc: int | None) -> bytes:
        return bytes([0x80, r.randint(192, 223)]) + r.randbytes(r.randrange(0, 60))

    def dtmf(r: random.Random, ssrc: int | None) -> bytes:
        return rtp_packet(101, r.getrandbits(16), r.getrandbits(32), ssrc or 5,
                          r.randbytes(r.choice((0, 1, 3, 4, 8))), marker=r.random() < 0.5)

    def noise(r: random.Random, ssrc: int | None) -> bytes:
        return r.randbytes(r.randrange(0, 2000))

    return [plain, plain, plain, bad_version, short, csrc_lie, ext_lie, pad_lie, rtcp, dtmf,
            noise]


_RTP_KINDS = _rtp_kinds()


def hostile_rtp(r: random.Random, ssrc: int | None = None) -> bytes:
    """One generated hostile RTP datagram: a plausible packet with a random (or the given)
    SSRC, a header that lies about its CSRCs, extension or padding, a wrong version, RTCP,
    a malformed telephone-event, a short packet, or random bytes."""
    return r.choice(_RTP_KINDS)(r, ssrc)
