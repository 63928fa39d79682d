"""SIP text helpers, pure: header normalisation for pyVoIP's parser, dialog state, and the
in-dialog requests pyVoIP 1.6.8 gets wrong (ACK for 2xx, BYE, CANCEL) or lacks (487).

Messages are ``str`` with CRLF line ends, as pyVoIP builds them; received datagrams are
``bytes``. Nothing here touches a socket or a clock.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass, field

from callguard.errors import CallguardError

#: RFC 3261 §7.3.3 and later RFCs' compact header forms.
COMPACT = {
    "a": "Accept-Contact", "b": "Referred-By", "c": "Content-Type", "d": "Request-Disposition",
    "e": "Content-Encoding", "f": "From", "i": "Call-ID", "j": "Reject-Contact",
    "k": "Supported", "l": "Content-Length", "m": "Contact", "n": "Identity-Info",
    "o": "Event", "r": "Refer-To", "s": "Subject", "t": "To", "u": "Allow-Events",
    "v": "Via", "x": "Session-Expires", "y": "Identity",
}
#: Canonical spelling of the headers pyVoIP looks up by exact name.
_CANONICAL = {h.lower(): h for h in (
    "Via", "From", "To", "Call-ID", "CSeq", "Contact", "Content-Length", "Content-Type",
    "Supported", "Allow", "Max-Forwards", "WWW-Authenticate", "Authorization",
    "Proxy-Authenticate", "Proxy-Authorization", "Record-Route", "Route", "Expires",
    "User-Agent", "Server", "Require", "Allow-Events", "Session-Expires", "Min-SE",
    "Accept", "Date", "Warning", "Reason", "P-Asserted-Identity", "Remote-Party-ID",
)}
#: List headers that may come as several lines; pyVoIP keeps only the first line of a name.
_JOIN = ("Record-Route", "Route")


def is_number(text: str) -> bool:
    """``text`` is a plain decimal number (ASCII digits only). ``str.isdigit`` is not
    enough: it accepts superscripts and other digits ``int`` refuses (``"²"``), so a check
    with it let a hostile header raise ValueError (found by tests/test_fuzz_sip.py)."""
    return text.isascii() and text.isdigit()


def split_list(value: str) -> list[str]:
    """Split a header list at commas outside quotes and angle brackets."""
    parts, depth, quoted, cur = [], 0, False, []
    for ch in value:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch == "<":
            depth += 1
        elif not quoted and ch == ">":
            depth = max(0, depth - 1)
        if ch == "," and not quoted and depth == 0:
            parts.append("".join(cur).strip())
            cur = []
            continue
        cur.append(ch)
    parts.append("".join(cur).strip())
    return [p for p in parts if p]


def normalize(raw: bytes) -> bytes:
    """Rewrite a received SIP datagram into the narrow form pyVoIP 1.6.8 can parse.

    pyVoIP splits each header line at ``": "`` and takes the second piece, so an empty header
    (``Supported:``), a header without a space after the colon, a compact name (``i:`` for
    Call-ID), a lower-case name or a folded line raises inside its parser and the whole
    message (an INVITE!) is dropped. Here: lines are unfolded, names expanded and
    canonicalised, empty headers dropped, several Vias in one line split into one line each,
    repeated Record-Route/Route lines joined, SDP lines without ``=`` dropped, and the body
    separated by exactly one blank line.
    """
    text = raw.decode("utf-8", errors="replace").replace("\r\n", "\n")
    head, _, body = text.partition("\n\n")
    lines = head.split("\n")
    start, headers = lines[0].strip(), []
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and headers:
            headers[-1] += " " + line.strip()  # folded continuation
        elif line.strip():
            headers.append(line)
    out: list[str] = [start]
    joined: dict[str, list[str]] = {}
    for line in headers:
        name, sep, value = line.partition(":")
        name, value = name.strip(), value.strip()
        if not sep or not name or not value:
            continue
        low = name.lower()
        name = COMPACT.get(low, _CANONICAL.get(low, name)) if len(low) == 1 else _CANONICAL.get(
            low, name)
        if name == "Via":
            out.extend(f"Via: {v}" for v in split_list(value))
        elif name in _JOIN:
            joined.setdefault(name, []).extend(split_list(value))
        else:
            out.append(f"{name}: {value}")
    out.extend(f"{n}: {', '.join(v)}" for n, v in joined.items())
    body_lines = [ln.strip() for ln in body.split("\n") if "=" in ln]
    body_text = "\r\n".join(body_lines) + ("\r\n" if body_lines else "")
    return ("\r\n".join(out) + "\r\n\r\n" + body_text).encode("utf-8")


def uri_of(name_addr: str) -> str:
    """``"Bob" <sip:bob@host;transport=udp>;tag=x`` → ``sip:bob@host;transport=udp``."""
    m = re.search(r"<([^>]*)>", name_addr)
    if m:
        return m.group(1).strip()
    return name_addr.split(";")[0].strip()


def host_port(uri: str, default_port: int = 5060) -> tuple[str, int]:
    """Host and port of a SIP URI (``sip:user@host:port;params``)."""
    rest = uri.split(":", 1)[1] if uri.lower().startswith(("sip:", "sips:")) else uri
    rest = rest.split(";")[0].split("?")[0]
    hostport = rest.rsplit("@", 1)[-1]
    host, _, port = hostport.partition(":")
    return host, int(port) if is_number(port) else default_port


def new_branch() -> str:
    return "z9hG4bK" + secrets.token_hex(10)


def new_tag() -> str:
    return secrets.token_hex(6)


def new_call_id(host: str) -> str:
    """Random Call-ID (pyVoIP hashed a counter starting at 1, so every restart repeated
    the same Call-IDs, which a PBX treats as retransmissions of old calls)."""
    return f"{secrets.token_hex(16)}@{host}"


@dataclass
class Dialog:
    """One SIP dialog as a UA sees it (RFC 3261 §12). URIs in name-addr form as received."""

    call_id: str
    local_uri: str  # our From (outbound) or the INVITE's To (inbound), without tag
    local_tag: str
    remote_uri: str
    remote_tag: str
    remote_target: str  # Contact URI of the far end: the Request-URI of in-dialog requests
    route_set: list[str] = field(default_factory=list)
    local_cseq: int = 1
    invite_cseq: int = 1
    remote_cseq: int = 0  # highest CSeq number of the far end's requests so far (0: none)
    invite_branch: str = ""  # top Via branch of the far end's INVITE (matches its CANCEL)

    def next_cseq(self) -> int:
        self.local_cseq += 1
        return self.local_cseq


def _via(my_ip: str, my_port: int, branch: str) -> str:
    return f"Via: SIP/2.0/UDP {my_ip}:{my_port};branch={branch};rport\r\n"


def _routes(d: Dialog) -> str:
    return "".join(f"Route: {r}\r\n" for r in d.route_set)


def build_ack_2xx(d: Dialog, my_ip: str, my_port: int, user_agent: str) -> str:
    """ACK for a 2xx to our INVITE: a new transaction, To with the far end's tag (pyVoIP
    put a fresh random tag there, so the far end never matched the ACK, kept retransmitting
    its 200 and dropped the call after ~32 s)."""
    return (f"ACK {d.remote_target} SIP/2.0\r\n" + _via(my_ip, my_port, new_branch())
            + "Max-Forwards: 70\r\n" + _routes(d)
            + f"From: {d.local_uri};tag={d.local_tag}\r\n"
            + f"To: {d.remote_uri};tag={d.remote_tag}\r\n"
            + f"Call-ID: {d.call_id}\r\nCSeq: {d.invite_cseq} ACK\r\n"
            + f"User-Agent: {user_agent}\r\nContent-Length: 0\r\n\r\n")


def build_bye(d: Dialog, my_ip: str, my_port: int, user_agent: str, cseq: int,
              branch: str) -> str:
    """BYE within the dialog, with *our* Via (pyVoIP copied the Vias of the original
    request, so the 200 OK went to whoever sent the INVITE and never came back)."""
    return (f"BYE {d.remote_target} SIP/2.0\r\n" + _via(my_ip, my_port, branch)
            + "Max-Forwards: 70\r\n" + _routes(d)
            + f"From: {d.local_uri};tag={d.local_tag}\r\n"
            + f"To: {d.remote_uri};tag={d.remote_tag}\r\n"
            + f"Call-ID: {d.call_id}\r\nCSeq: {cseq} BYE\r\n"
            + f"User-Agent: {user_agent}\r\nContent-Length: 0\r\n\r\n")


def _invite_transaction(invite: str, method: str, to: str | None) -> str:
    """A request in the transaction of our own INVITE text (CANCEL, or the ACK for a
    non-2xx answer): same Request-URI, top Via (so the same branch), From, Call-ID and CSeq
    number; To as in the INVITE unless ``to`` (with the answer's tag) is given."""
    head = invite.split("\r\n\r\n", 1)[0].split("\r\n")
    ruri = head[0].split(" ")[1]
    keep: dict[str, str] = {}
    for line in head[1:]:
        name, _, value = line.partition(":")
        if name in ("Via", "From", "To", "Call-ID", "CSeq"):
            keep.setdefault(name, value.strip())
    number = keep["CSeq"].split()[0]
    return (f"{method} {ruri} SIP/2.0\r\nVia: {keep['Via']}\r\nMax-Forwards: 70\r\n"
            + f"From: {keep['From']}\r\nTo: {to or keep['To']}\r\nCall-ID: {keep['Call-ID']}\r\n"
            + f"CSeq: {number} {method}\r\nContent-Length: 0\r\n\r\n")


def build_cancel(invite: str) -> str:
    """CANCEL for our own INVITE text (RFC 3261 §9.1)."""
    return _invite_transaction(invite, "CANCEL", None)


def build_ack_non2xx(invite: str, to: str) -> str:
    """ACK for a non-2xx final answer to our INVITE: the INVITE's branch and Request-URI,
    ``to`` = the answer's To with its tag (RFC 3261 §17.1.1.3)."""
    return _invite_transaction(invite, "ACK", to)


def build_response(request_head: str, code: int, reason: str, to_tag: str | None,
                   user_agent: str, extra: str = "", body: str = "") -> str:
    """A response to a received request, given the request's header text (as received,
    normalised): Vias, From, Call-ID and CSeq copied, To with ``to_tag`` added if given.
    A header the request lacked is left out (a 400 for a request without CSeq must not
    carry an empty CSeq line). ``extra``: more header lines; ``body`` with its length."""
    lines = request_head.split("\r\n\r\n", 1)[0].split("\r\n")[1:]
    vias, hdr = [], {}
    for line in lines:
        name, _, value = line.partition(":")
        value = value.strip()
        if name == "Via":
            vias.append(value)
        elif name in ("From", "To", "Call-ID", "CSeq") and name not in hdr:
            hdr[name] = value
    to = hdr.get("To", "")
    if to_tag and ";tag=" not in to:
        to += f";tag={to_tag}"
    hdr["To"] = to
    copied = "".join(f"{n}: {hdr[n]}\r\n" for n in ("From", "To", "Call-ID", "CSeq")
                     if hdr.get(n))
    return (f"SIP/2.0 {code} {reason}\r\n" + "".join(f"Via: {v}\r\n" for v in vias)
            + copied + f"{extra}User-Agent: {user_agent}\r\n"
            + f"Content-Length: {len(body.encode('utf-8'))}\r\n\r\n{body}")


_AUTH_PARAM = re.compile(r'(\w+)=("[^"]*"|[^\s,]+)')


def parse_challenge(value: str) -> dict[str, str]:
    """``Digest realm="x", nonce="y", qop="auth"`` → ``{"realm": "x", ...}``."""
    value = value.strip()
    if value.lower().startswith("digest"):
        value = value[6:]
    return {k.lower(): v.strip('"') for k, v in _AUTH_PARAM.findall(value)}


def digest_authorization(challenge: dict[str, str], method: str, uri: str, user: str,
                         password: str, cnonce: str | None = None, nc: int = 1) -> str:
    """The value of an Authorization / Proxy-Authorization header answering ``challenge``
    (RFC 2617 / 3261 §22.4, MD5, with ``qop=auth`` when the server offers it)."""
    def md5(s: str) -> str:
        return hashlib.md5(s.encode("utf-8")).hexdigest()  # the SIP digest is MD5

    realm, nonce = challenge.get("realm", ""), challenge.get("nonce", "")
    ha1 = md5(f"{user}:{realm}:{password}")
    ha2 = md5(f"{method}:{uri}")
    parts = [f'username="{user}"', f'realm="{realm}"', f'nonce="{nonce}"', f'uri="{uri}"']
    qops = [q.strip() for q in challenge.get("qop", "").split(",") if q.strip()]
    if "auth" in qops:
        cnonce = cnonce or secrets.token_hex(8)
        ncs = f"{nc:08x}"
        response = md5(f"{ha1}:{nonce}:{ncs}:{cnonce}:auth:{ha2}")
        parts += [f'response="{response}"', "qop=auth", f"nc={ncs}", f'cnonce="{cnonce}"']
    else:
        parts.append(f'response="{md5(f"{ha1}:{nonce}:{ha2}")}"')
    parts.append("algorithm=MD5")
    if "opaque" in challenge:
        parts.append(f'opaque="{challenge["opaque"]}"')
    return "Digest " + ", ".join(parts)


def header_values(text: str, name: str) -> list[str]:
    """Values of every ``name`` header line in a (normalised) message."""
    head = text.split("\r\n\r\n", 1)[0].split("\r\n")[1:]
    out = []
    for line in head:
        n, _, v = line.partition(":")
        if n.strip().lower() == name.lower():
            out.append(v.strip())
    return out


# --- received requests: the checks pyVoIP never makes (issue 13) ---------------------------

#: Headers every request must carry (RFC 3261 §8.1.1); Max-Forwards is optional here.
MANDATORY = ("Via", "From", "To", "Call-ID", "CSeq")
#: Methods the agent serves; OPTIONS is answered at the transport layer.
SUPPORTED = ("INVITE", "ACK", "BYE", "CANCEL", "OPTIONS")
ALLOW = "Allow: " + ", ".join(SUPPORTED) + "\r\n"
#: Standard methods we know and do not serve: 405 (with Allow); anything else is 501.
KNOWN_UNSUPPORTED = ("INFO", "UPDATE", "MESSAGE", "PRACK", "SUBSCRIBE", "NOTIFY", "REFER",
                     "PUBLISH", "REGISTER")
_METHOD = re.compile(r"^[A-Za-z!%*_+`'~.-]+$")
_TAG = re.compile(r";\s*tag=([^;,\s>]+)", re.IGNORECASE)
_BRANCH = re.compile(r";\s*branch=([^;,\s]+)", re.IGNORECASE)


@dataclass
class Head:
    """The start line and headers of a received message (normalised text), read without
    pyVoIP so that a message pyVoIP would choke on can still be answered."""

    method: str  # "" for a response
    status: int  # 0 for a request
    headers: dict[str, list[str]]

    @property
    def is_request(self) -> bool:
        return bool(self.method)

    def first(self, name: str) -> str:
        values = self.headers.get(name.lower())
        return values[0] if values else ""

    @property
    def call_id(self) -> str:
        return self.first("Call-ID")

    @property
    def from_tag(self) -> str:
        return tag_of(self.first("From"))

    @property
    def to_tag(self) -> str:
        return tag_of(self.first("To"))

    @property
    def branch(self) -> str:
        m = _BRANCH.search(self.first("Via"))
        return m.group(1) if m else ""

    @property
    def cseq(self) -> tuple[int, str] | None:
        """(number, method), or None when the CSeq header is missing or malformed."""
        parts = self.first("CSeq").split()
        if len(parts) != 2 or not is_number(parts[0]) or len(parts[0]) > 10:
            return None
        return int(parts[0]), parts[1]


def parse_head(text: str) -> Head | None:
    """Start line and headers of a (normalised) message; None if it is not SIP/2.0."""
    lines = text.split("\r\n\r\n", 1)[0].split("\r\n")
    start = lines[0].split(" ")
    headers: dict[str, list[str]] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers.setdefault(name.strip().lower(), []).append(value.strip())
    if len(start) >= 2 and start[0] == "SIP/2.0" and is_number(start[1]) \
            and len(start[1]) == 3:
        return Head("", int(start[1]), headers)
    if len(start) == 3 and start[2] == "SIP/2.0" and _METHOD.match(start[0]):
        return Head(start[0], 0, headers)
    return None


def tag_of(name_addr: str) -> str:
    """The ``tag`` parameter of a From/To value (outside the URI's angle brackets)."""
    m = _TAG.search(name_addr.rsplit(">", 1)[-1] if ">" in name_addr else name_addr)
    return m.group(1) if m else ""


def missing_headers(head: Head) -> list[str]:
    """What makes a request unusable: mandatory headers absent, a CSeq that is not
    ``<number> <the request's method>``, a From/To without a SIP URI."""
    missing = [h for h in MANDATORY if not head.first(h)]
    cseq = head.cseq
    if "CSeq" not in missing and (cseq is None or cseq[1] != head.method):
        missing.append("CSeq (malformed)")
    for h in ("From", "To"):
        if h not in missing and "sip:" not in head.first(h).lower():
            missing.append(f"{h} (no SIP URI)")
    return missing


def response_address(via: str, source: tuple[str, int]) -> tuple[str, int]:
    """Where a response to a request over UDP goes (RFC 3261 §18.2.2 with RFC 3581): the
    source address the request came from (its "received"), and the source port when the top
    Via asks for ``rport``, else the port of its sent-by (5060 when none)."""
    params = via.split(";")[1:]
    if any(p.strip().lower().split("=")[0] == "rport" for p in params):
        return source
    sent_by = via.split(";")[0].split()
    host_port = sent_by[-1] if sent_by else ""
    port = host_port.rsplit(":", 1)[1] if host_port.count(":") == 1 else ""
    return source[0], int(port) if is_number(port) and 0 < int(port) < 65536 else 5060


# --- SDP offers (RFC 4566 / 3264) ------------------------------------------------------------

_CODECS = {"PCMU": 0, "PCMA": 8}
_DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
_ANSWER_DIRECTION = {"sendrecv": "sendrecv", "sendonly": "recvonly", "recvonly": "sendonly",
                     "inactive": "inactive"}


class SdpRefused(CallguardError, ValueError):
    """The offer cannot be accepted (488 Not Acceptable Here)."""


@dataclass
class MediaLine:
    kind: str
    port: int
    proto: str
    fmts: list[str]
    lines: list[str]  # the m= line and its attribute lines, as received
    address: str = ""  # its own c= address, if any


@dataclass
class Offer:
    session: list[str]  # session-level lines (v=, o=, s=, c=, t=, a=, ...)
    address: str  # session-level c= address ("" if none)
    media: list[MediaLine]
    direction: str = "sendrecv"
    audio: int = -1  # index of the one audio stream we use

    def target(self) -> tuple[str, int]:
        """Where our RTP goes: the audio stream's address and port."""
        m = self.media[self.audio]
        return m.address or self.address, m.port

    @property
    def answer_direction(self) -> str:
        return _ANSWER_DIRECTION[self.direction]


def _ipv4(addr: str) -> bool:
    parts = addr.split(".")
    return len(parts) == 4 and all(is_number(p) and len(p) <= 3 and int(p) < 256 for p in parts)


def _conn_address(value: str) -> str:
    parts = value.split()
    if len(parts) != 3 or parts[0] != "IN" or parts[1] != "IP4" or not _ipv4(parts[2]):
        raise SdpRefused(f"unsupported connection address {value!r} (IPv4 only)")
    return parts[2]


def parse_offer(body: str) -> Offer:
    """Read an SDP offer and pick the one audio stream we use: the first ``m=audio`` line
    over RTP/AVP with a port and PCMU or PCMA. Any m-line whose port is not a number in
    0-65535 makes the offer malformed; no usable audio line (all on port 0, no common codec)
    refuses it. Raises :class:`SdpRefused` (→ 488) — at offer time, before any RTP port is
    taken (issue 13: a port of 70000 or -1 used to be answered and kill the send thread)."""
    session: list[str] = []
    media: list[MediaLine] = []
    address, direction = "", "sendrecv"
    for raw in body.replace("\r\n", "\n").split("\n"):
        line = raw.strip()
        if len(line) < 2 or line[1] != "=":
            continue
        key, value = line[0], line[2:].strip()
        if key == "m":
            parts = value.split()
            if len(parts) < 4:
                raise SdpRefused(f"malformed media line {line!r}")
            port_text = parts[1].split("/")[0]
            if not is_number(port_text) or int(port_text) > 65535:
                raise SdpRefused(f"invalid media port {parts[1]!r}")
            media.append(MediaLine(parts[0], int(port_text), parts[2], parts[3:], [line]))
            continue
        if media:
            media[-1].lines.append(line)
            if key == "c":
                media[-1].address = _conn_address(value)
        else:
            session.append(line)
            if key == "c":
                address = _conn_address(value)
        if key == "a" and value in _DIRECTIONS and not media:
            direction = value  # session level; a media-level one overrides it below
    offer = Offer(session, address, media, direction)
    for i, m in enumerate(media):
        if m.kind == "audio" and m.proto == "RTP/AVP" and m.port > 0 and _codecs(m):
            if not (m.address or address):
                raise SdpRefused("no connection address for the audio stream")
            offer.audio = i
            offer.direction = next((ln[2:] for ln in m.lines if ln[2:] in _DIRECTIONS),
                                   direction)
            return offer
    raise SdpRefused("no audio stream with PCMU or PCMA on a usable port")


def _rtpmap(m: MediaLine) -> dict[str, str]:
    out = {}
    for line in m.lines:
        if line.startswith("a=rtpmap:"):
            pt, _, name = line[9:].partition(" ")
            out[pt] = name.split("/")[0]
    return out


def _codecs(m: MediaLine) -> list[str]:
    """The offered payload types we can use, in the offer's order."""
    names = _rtpmap(m)
    return [pt for pt in m.fmts
            if names.get(pt, "").upper() in _CODECS or (pt in ("0", "8") and pt not in names)]


def pyvoip_body(offer: Offer) -> str:
    """The offer cut down to its one audio stream, for pyVoIP's parser: exactly one m-line
    (port count removed) and one c= line, so pyVoIP takes one RTP port and builds one RTP
    client (it took a port per m-line and a client per c= line: 200 m-lines were ~400
    threads, and more m-lines than ports leaked every port it took)."""
    m = offer.media[offer.audio]
    ip, port = offer.target()
    lines = [ln for ln in offer.session if not ln.startswith(("c=", "m="))]
    lines.append(f"c=IN IP4 {ip}")
    lines.append(f"m={m.kind} {port} {m.proto} {' '.join(m.fmts)}")
    lines += [ln for ln in m.lines[1:] if not ln.startswith("c=")]
    return "\r\n".join(lines) + "\r\n"


def build_answer_sdp(offer: Offer, my_ip: str, port: int, payloads: dict[int, str],
                     session_id: str, version: int, user_agent: str) -> str:
    """Our SDP answer: one line per offered m-line (RFC 3264 §6), the audio stream on
    ``port`` with ``payloads`` (payload type → ``name/rate``), every other stream refused
    with port 0."""
    lines = ["v=0", f"o=callguard {session_id} {version} IN IP4 {my_ip}",
             f"s={user_agent}", f"c=IN IP4 {my_ip}", "t=0 0"]
    for i, m in enumerate(offer.media):
        if i != offer.audio:
            lines.append(f"m={m.kind} 0 {m.proto} {' '.join(m.fmts)}")
            continue
        lines.append(f"m=audio {port} RTP/AVP {' '.join(str(pt) for pt in payloads)}")
        for pt, name in payloads.items():
            lines.append(f"a=rtpmap:{pt} {name}")
            if name.startswith("telephone-event"):
                lines.append(f"a=fmtp:{pt} 0-15")
        lines += ["a=ptime:20", f"a={offer.answer_direction}"]
    return "\r\n".join(lines) + "\r\n"
