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
    return host, int(port) if port.isdigit() else default_port


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
                   user_agent: str, extra: str = "") -> str:
    """A response to a received request, given the request's header text (as received,
    normalised): Vias, From, Call-ID and CSeq copied, To with ``to_tag`` added if given."""
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
    return (f"SIP/2.0 {code} {reason}\r\n" + "".join(f"Via: {v}\r\n" for v in vias)
            + f"From: {hdr.get('From', '')}\r\nTo: {to}\r\nCall-ID: {hdr.get('Call-ID', '')}\r\n"
            + f"CSeq: {hdr.get('CSeq', '')}\r\n{extra}User-Agent: {user_agent}\r\n"
            + "Content-Length: 0\r\n\r\n")


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
