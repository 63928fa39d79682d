"""Hostile and broken SIP against a real agent line (issue 13, the signalling part).

The agent is a :class:`SipLine` registered to a real kamailio on 127.0.0.1. Attacks and
odd peers are raw UDP from Python sockets on 127.0.0.1 (:class:`RawUA`), either straight to
the agent's SIP port — a stranger, or an address of the ``[sip] allow`` list standing in
for a second proxy — or through kamailio as a caller would; the honest caller in the dialog
tests is baresip, calling through kamailio. Each test failed on the code before issue 13
(see the issue's notes for which were run there).
"""

from __future__ import annotations

import dataclasses
import re
import secrets
import socket
import struct
import threading
import time

import pytest
from officepbx import BareLine, agent_sip, pbx_fixture
from peers import require_peers
from peers.baresip import Baresip
from peers.kamailio import Kamailio

from callguard.config import ConfigError, load_settings
from callguard.telephony.base import CallEnd, CallState, LineState
from callguard.telephony.sipline import SipCall, SipConfig, SipLine

pytestmark = pytest.mark.slow
HOST = "127.0.0.1"


pbx = pbx_fixture("kamailio")


def _config(pbx: Kamailio, **kw) -> SipConfig:
    names = {f.name for f in dataclasses.fields(SipConfig)}
    kw = {k: v for k, v in kw.items() if k in names}  # the old code lacks the new settings
    return agent_sip(pbx, kw.pop("rtp_low", 34000), kw.pop("rtp_high", 34998), **kw)


class Agent(BareLine):
    """The agent's SipLine alone with its events; ``answer`` makes it answer every call at
    once. Entering the ``with`` block waits for the registration."""

    def __init__(self, pbx: Kamailio, answer: bool = False, **kw) -> None:
        super().__init__(SipLine(_config(pbx, **kw)), answer=answer)

    @property
    def port(self) -> int:
        return self.line.sip_port

    @property
    def table(self) -> dict:
        return self.line.phone.calls

    @property
    def ports_taken(self) -> list[int]:
        return list(self.line.phone.assignedPorts)

    def __enter__(self) -> Agent:
        self.line.start()
        deadline = time.monotonic() + 10
        while self.line.status.state is not LineState.REGISTERED:
            assert time.monotonic() < deadline, f"line is {self.line.status}"
            time.sleep(0.05)
        return self


@dataclasses.dataclass
class Msg:
    start: str
    headers: dict[str, list[str]]
    body: str
    source: tuple[str, int]

    @property
    def code(self) -> int:
        parts = self.start.split(" ")
        return int(parts[1]) if parts[0] == "SIP/2.0" else 0

    @property
    def method(self) -> str:
        return "" if self.code else self.start.split(" ")[0]

    def h(self, name: str) -> str:
        return (self.headers.get(name.lower()) or [""])[0]


def parse(data: bytes, source) -> Msg:
    text = data.decode("utf-8", "replace")
    head, _, body = text.partition("\r\n\r\n")
    lines = head.split("\r\n")
    headers: dict[str, list[str]] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    return Msg(lines[0], headers, body, source)


def sdp(rtp_port: int, *, direction: str = "sendrecv", extra: list[str] = (),
        c: str = HOST, port_text: str | None = None) -> str:
    lines = ["v=0", f"o=raw 1 1 IN IP4 {HOST}", "s=raw", f"c=IN IP4 {c}", "t=0 0",
             f"m=audio {port_text or rtp_port} RTP/AVP 0 101", "a=rtpmap:0 PCMU/8000",
             "a=rtpmap:101 telephone-event/8000", f"a={direction}", *extra]
    return "\r\n".join(lines) + "\r\n"


class RawUA:
    """A SIP endpoint written by hand: one UDP socket on 127.0.0.1, messages as text."""

    def __init__(self) -> None:
        self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.s.bind((HOST, 0))
        self.port = self.s.getsockname()[1]
        self.rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rtp.bind((HOST, 0))
        self.rtp_port = self.rtp.getsockname()[1]
        self.inbox: list[Msg] = []

    def close(self) -> None:
        self.s.close()
        self.rtp.close()

    def request(self, method: str, ruri: str, *, call_id: str, from_tag: str = "",
                to_tag: str = "", cseq: int = 1, branch: str | None = None, body: str = "",
                drop: tuple[str, ...] = (), extra: str = "") -> str:
        branch = branch or "z9hG4bK" + secrets.token_hex(6)
        hdr = {
            "Via": f"SIP/2.0/UDP {HOST}:{self.port};branch={branch};rport",
            "Max-Forwards": "70",
            "From": f"<sip:raw@{HOST}>;tag={from_tag or secrets.token_hex(4)}",
            "To": f"<{ruri}>" + (f";tag={to_tag}" if to_tag else ""),
            "Call-ID": call_id,
            "CSeq": f"{cseq} {method}",
            "Contact": f"<sip:raw@{HOST}:{self.port}>",
        }
        lines = [f"{method} {ruri} SIP/2.0"] + [f"{k}: {v}" for k, v in hdr.items()
                                                 if k not in drop]
        if body:
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(body.encode())}")
        return "\r\n".join(lines) + "\r\n" + extra + "\r\n" + body

    def send(self, text: str, port: int) -> None:
        self.s.sendto(text.encode(), (HOST, port))

    def poll(self, timeout: float) -> None:
        self.s.settimeout(timeout)
        try:
            while True:
                data, src = self.s.recvfrom(65535)
                self.inbox.append(parse(data, src))
                self.s.settimeout(0.01)
        except (TimeoutError, BlockingIOError):
            pass

    def expect(self, pred, timeout: float = 3.0, what: str = "") -> Msg:
        deadline = time.monotonic() + timeout
        while True:
            for m in self.inbox:
                if pred(m):
                    self.inbox.remove(m)
                    return m
            left = deadline - time.monotonic()
            if left <= 0:
                seen = [m.start for m in self.inbox]
                raise AssertionError(f"no {what or 'matching message'} within {timeout} s; "
                                     f"got {seen}")
            self.poll(min(left, 0.2))

    def responses(self, call_id: str, within: float = 0.0) -> list[int]:
        if within:
            self.poll(within)
        return [m.code for m in self.inbox if m.code and m.h("call-id") == call_id]

    def reply(self, to: Msg, code: int, reason: str, port: int) -> None:
        """A response to a request the agent sent us (e.g. its BYE)."""
        vias = "".join(f"Via: {v}\r\n" for v in to.headers.get("via", []))
        self.send(f"SIP/2.0 {code} {reason}\r\n{vias}From: {to.h('from')}\r\n"
                  f"To: {to.h('to')}\r\nCall-ID: {to.h('call-id')}\r\nCSeq: {to.h('cseq')}\r\n"
                  "Content-Length: 0\r\n\r\n", port)


@pytest.fixture
def raw():
    ua = RawUA()
    yield ua
    ua.close()


def _cid() -> str:
    return secrets.token_hex(8) + "@raw"


def _tag(m: Msg, header: str = "to") -> str:
    found = re.search(r";\s*tag=([^;\s]+)", m.h(header))
    return found.group(1) if found else ""


def _m_ports(body: str) -> list[int]:
    return [int(line.split()[1]) for line in body.split("\r\n") if line.startswith("m=")]


def _answered_through(pbx: Kamailio, raw: RawUA, agent_port: int, cid: str,
                      tag: str) -> tuple[Msg, str, str]:
    """``raw`` calls ``agent`` through ``pbx`` (dialog ``cid``, From tag ``tag``), waits for
    the 200 OK and ACKs it straight to the agent's Contact (SIP port ``agent_port``):
    kamailio adds no Record-Route. Returns (the 200 OK, the agent's To tag, the Contact's
    URI, where the caller's in-dialog requests go)."""
    raw.send(raw.request("INVITE", pbx.uri("agent"), call_id=cid, from_tag=tag,
                         body=sdp(raw.rtp_port)), pbx.port)
    ok = raw.expect(lambda m: m.code == 200 and "INVITE" in m.h("cseq"), 5, "200 OK")
    agent_tag = _tag(ok)
    contact = re.search(r"<sip:[^@]+@([^:>]+):(\d+)", ok.h("contact"))
    target = f"sip:agent@{contact.group(1)}:{contact.group(2)}"
    raw.send(raw.request("ACK", target, call_id=cid, from_tag=tag, to_tag=agent_tag,
                         cseq=1), agent_port)
    return ok, agent_tag, target


def _wait(pred, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


# --- the trust boundary ----------------------------------------------------------------------


def test_invite_from_a_stranger_is_refused(pbx, raw):
    """An INVITE straight to the agent from an address that is neither the registrar nor
    allow-listed: 403, no call, no port."""
    with Agent(pbx, answer=True) as agent:
        cid = _cid()
        raw.send(raw.request("INVITE", f"sip:agent@{HOST}:{agent.port}", call_id=cid,
                             body=sdp(raw.rtp_port)), agent.port)
        refusal = raw.expect(lambda m: m.code >= 200, 3, "final answer")
        codes = raw.responses(cid, within=0.5)
        assert refusal.code == 403, refusal.start
        assert codes == [] and not agent.incoming and not agent.table
        assert agent.ports_taken == []


def test_allow_listed_address_may_call_and_cancel(pbx, raw):
    with Agent(pbx, allow=(f"{HOST}:{raw.port}",)) as agent:
        cid, tag, branch = _cid(), "t1", "z9hG4bKallow1"
        ruri = f"sip:agent@{HOST}:{agent.port}"
        raw.send(raw.request("INVITE", ruri, call_id=cid, from_tag=tag, branch=branch,
                             body=sdp(raw.rtp_port)), agent.port)
        raw.expect(lambda m: m.code == 180, 3, "180")
        assert agent.got_call.wait(2)
        # A CANCEL from another branch is not this INVITE's: 481, the call rings on.
        raw.send(raw.request("CANCEL", ruri, call_id=cid, from_tag=tag,
                             branch="z9hG4bKforged"), agent.port)
        assert raw.expect(lambda m: "CANCEL" in m.h("cseq"), 3).code == 481
        assert agent.incoming[0].state is CallState.RINGING
        raw.send(raw.request("CANCEL", ruri, call_id=cid, from_tag=tag, branch=branch),
                 agent.port)
        assert raw.expect(lambda m: "CANCEL" in m.h("cseq"), 3).code == 200
        assert raw.expect(lambda m: m.code == 487, 3).code == 487
        assert agent.got_end.wait(2) and agent.ended[0].end_reason is CallEnd.CANCELLED


# --- in-dialog requests must match the dialog -----------------------------------------------


def _bob_calls(pbx, agent) -> tuple[Baresip, SipCall]:
    require_peers("baresip")
    bob = Baresip("bob", "bobpw", pbx).start()
    bob.wait_registered()
    bob.dial(pbx.uri("agent"))
    assert agent.got_call.wait(5)
    bob.wait_event("CALL_ESTABLISHED", 5)
    return bob, agent.incoming[0]


def test_forged_bye_gets_481_and_the_call_goes_on(pbx, raw):
    with Agent(pbx, answer=True) as agent:
        bob, call = _bob_calls(pbx, agent)
        try:
            d = call.fixed.dialog
            ruri = f"sip:agent@{HOST}:{agent.port}"
            # Right Call-ID, made-up tags, from a stranger's port.
            raw.send(raw.request("BYE", ruri, call_id=call.call_id, from_tag="made",
                                 to_tag="up", cseq=99), agent.port)
            # Right Call-ID and the dialog's real tags, still from a stranger's port.
            raw.send(raw.request("BYE", ruri, call_id=call.call_id, from_tag=d.remote_tag,
                                 to_tag=d.local_tag, cseq=100), agent.port)
            codes = raw.responses(call.call_id, within=1.0)
            assert codes == [481, 481], codes
            assert call.state is CallState.ACTIVE and not agent.ended
            since = len(bob.events)
            bob.hangup()  # the real caller's BYE still ends it
            assert agent.got_end.wait(5)
            assert call.end_reason is CallEnd.REMOTE_HANGUP
            bob.wait_event("CALL_CLOSED", 5, since=since)
        finally:
            bob.close()


def test_foreign_reinvite_does_not_redirect_our_audio(pbx, raw):
    with Agent(pbx, answer=True) as agent:
        bob, call = _bob_calls(pbx, agent)
        try:
            rtp = call.fixed.rtp
            before = (rtp.outIP, rtp.outPort)
            raw.send(raw.request("INVITE", f"sip:agent@{HOST}:{agent.port}",
                                 call_id=call.call_id, from_tag=call.fixed.dialog.remote_tag,
                                 to_tag="forged", cseq=500, body=sdp(raw.rtp_port)),
                     agent.port)
            time.sleep(0.3)
            assert _rtp_arrives(raw, 1.0) == 0  # none of our audio reaches the stranger
            assert (rtp.outIP, rtp.outPort) == before
            final = raw.expect(lambda m: m.code >= 200, 3, "final answer")
            assert final.code == 481, final.start
            assert call.state is CallState.ACTIVE
        finally:
            bob.close()


# --- malformed requests and other methods ---------------------------------------------------


@pytest.mark.parametrize("missing", ["CSeq", "From", "To", "Call-ID"])
def test_request_missing_a_mandatory_header_gets_400_and_changes_nothing(pbx, raw, missing):
    with Agent(pbx, answer=True, allow=(f"{HOST}:{raw.port}",)) as agent:
        ruri = f"sip:agent@{HOST}:{agent.port}"
        raw.send(raw.request("INVITE", ruri, call_id=_cid(), body=sdp(raw.rtp_port),
                             drop=(missing,)), agent.port)
        answer = raw.expect(lambda m: m.code >= 200, 3, "final answer")
        assert answer.code == 400, answer.start
        time.sleep(0.5)
        assert not agent.incoming and not agent.table and agent.ports_taken == []
        # The line is free: the next proper INVITE is answered.
        cid = _cid()
        raw.send(raw.request("INVITE", ruri, call_id=cid, body=sdp(raw.rtp_port)), agent.port)
        ok = raw.expect(lambda m: m.code == 200 and m.h("call-id") == cid, 3, "200 OK")
        raw.send(raw.request("ACK", ruri, call_id=cid, from_tag=_tag(ok, "from"),
                             to_tag=_tag(ok), cseq=1), agent.port)
        assert agent.incoming and agent.incoming[0].state is CallState.ACTIVE


def test_options_and_other_methods_are_answered_through_the_proxy(pbx, raw):
    """Sent to kamailio for the agent's AOR, as a PBX's keep-alive or a chat client would:
    OPTIONS 200 with Allow, INFO/UPDATE/MESSAGE 405, an unknown method 501."""
    with Agent(pbx) as agent:
        got = {}
        for method in ("OPTIONS", "INFO", "UPDATE", "MESSAGE", "FROBNICATE"):
            cid = _cid()
            raw.send(raw.request(method, pbx.uri("agent"), call_id=cid), pbx.port)
            final = raw.expect(lambda m, c=cid: m.code >= 200 and m.h("call-id") == c, 4,
                               f"answer to {method}")
            got[method] = final.code
            if method == "OPTIONS":
                assert "OPTIONS" in final.h("allow") and "INVITE" in final.h("allow")
        assert got == {"OPTIONS": 200, "INFO": 405, "UPDATE": 405, "MESSAGE": 405,
                       "FROBNICATE": 501}, got
        assert not agent.incoming


# --- responses go to the source; hold and resume --------------------------------------------


def _rtp_sender(raw: RawUA, port: int, stop: threading.Event) -> threading.Thread:
    payload = bytes([0x7F, 0xFF] * 80)  # µ-law, 20 ms of a faint square wave
    packets = [struct.pack("!BBHII", 0x80, 0, i & 0xFFFF, i * 160, 0x5EED) + payload
               for i in range(1500)]

    def run() -> None:
        t0 = time.monotonic()
        for i, p in enumerate(packets):
            if stop.is_set():
                return
            raw.rtp.sendto(p, (HOST, port))
            time.sleep(max(0.0, t0 + (i + 1) * 0.02 - time.monotonic()))
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def _rtp_arrives(raw: RawUA, within: float) -> int:
    raw.rtp.settimeout(0.05)
    n, deadline = 0, time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            raw.rtp.recv(2048)
            n += 1
        except TimeoutError:
            pass
    return n


def test_hold_reinvite_from_the_caller_is_answered_to_it_and_resume_works(pbx, raw):
    """The caller's INVITE goes through kamailio (no Record-Route), so its hold and resume
    re-INVITEs come straight from its own address: the 200 OK must go there, not to the
    registrar; the recording goes on through the hold, and our audio stops and resumes."""
    with Agent(pbx, answer=True) as agent:
        cid, tag = _cid(), "caller1"
        ok, agent_tag, target = _answered_through(pbx, raw, agent.port, cid, tag)
        call = agent.incoming[0]
        agent_rtp = _m_ports(ok.body)[0]
        stop = threading.Event()
        sender = _rtp_sender(raw, agent_rtp, stop)
        try:
            assert _rtp_arrives(raw, 1.0) > 20  # our audio flows
            recorded_before = call.read(10**9).size
            for cseq, (direction, answer_dir) in enumerate(
                    [("sendonly", "recvonly"), ("sendrecv", "sendrecv")], start=2):
                raw.inbox.clear()
                raw.send(raw.request("INVITE", target, call_id=cid, from_tag=tag,
                                     to_tag=agent_tag, cseq=cseq,
                                     body=sdp(raw.rtp_port, direction=direction)), agent.port)
                ok = raw.expect(lambda m, n=cseq: m.code == 200 and m.h("cseq") == f"{n} INVITE",
                                3, f"200 OK to the {direction} re-INVITE")
                assert ok.source == (HOST, agent.port)  # straight from the agent to us
                assert f"a={answer_dir}" in ok.body
                raw.send(raw.request("ACK", target, call_id=cid, from_tag=tag,
                                     to_tag=agent_tag, cseq=cseq), agent.port)
                if direction == "sendonly":
                    _rtp_arrives(raw, 0.2)  # what was in flight
                    assert _rtp_arrives(raw, 1.0) == 0  # held: we send nothing
                else:
                    assert _rtp_arrives(raw, 1.0) > 20  # resumed
            time.sleep(1.0)
            assert call.state is CallState.ACTIVE
            recorded = recorded_before + call.read(10**9).size
            assert recorded >= 8000 * 3, recorded  # the recording went on through the hold
            retrans = [m for m in raw.inbox if m.code == 200]
            assert len(retrans) == 0, "the 200 OK was retransmitted: our ACK did not match"
        finally:
            stop.set()
            sender.join(2)


# --- timeouts ------------------------------------------------------------------------------


def test_answered_call_without_ack_ends_after_the_ack_timeout(pbx, raw):
    with Agent(pbx, answer=True, allow=(f"{HOST}:{raw.port}",), ack_timeout_s=2.0) as agent:
        cid = _cid()
        raw.send(raw.request("INVITE", f"sip:agent@{HOST}:{agent.port}", call_id=cid,
                             body=sdp(raw.rtp_port)), agent.port)
        raw.expect(lambda m: m.code == 200, 3, "200 OK")
        t0 = time.monotonic()
        bye = raw.expect(lambda m: m.method == "BYE", 6, "BYE after the ACK timeout")
        took = time.monotonic() - t0
        raw.reply(bye, 200, "OK", agent.port)
        assert 1.5 < took < 4.0, took
        retransmitted = sum(1 for m in raw.inbox if m.code == 200 and m.h("call-id") == cid)
        assert retransmitted >= 2  # the 200 OK was retransmitted until then
        assert agent.got_end.wait(2) and agent.ended[0].end_reason is CallEnd.NO_ACK
        assert _wait(lambda: not agent.table and not agent.ports_taken, 2)


def test_unanswered_call_times_out(pbx, raw):
    with Agent(pbx, allow=(f"{HOST}:{raw.port}",), ring_timeout_s=1.5) as agent:
        cid = _cid()
        raw.send(raw.request("INVITE", f"sip:agent@{HOST}:{agent.port}", call_id=cid,
                             body=sdp(raw.rtp_port)), agent.port)
        raw.expect(lambda m: m.code == 180, 3, "180")
        final = raw.expect(lambda m: m.code >= 200, 4, "final answer")
        assert final.code == 480, final.start
        assert agent.got_end.wait(2) and agent.ended[0].end_reason is CallEnd.RING_TIMEOUT
        assert _wait(lambda: not agent.table and not agent.ports_taken, 2)


def test_invite_flood_never_leaves_the_line_busy(pbx, raw):
    """50 INVITEs, none answered, ACKed or cancelled: bounded ports and threads while they
    ring, and once they time out the line takes the next call."""
    with Agent(pbx, allow=(f"{HOST}:{raw.port}",), ring_timeout_s=2.0) as agent:
        threads0 = threading.active_count()
        ruri = f"sip:agent@{HOST}:{agent.port}"
        for _ in range(50):
            raw.send(raw.request("INVITE", ruri, call_id=_cid(), body=sdp(raw.rtp_port)),
                     agent.port)
        raw.poll(1.0)
        peak_threads = threading.active_count() - threads0
        peak_ports = len(agent.ports_taken)
        assert peak_ports <= 8 and peak_threads <= 20, (peak_ports, peak_threads)
        assert _wait(lambda: not agent.table and not agent.ports_taken, 5), \
            (len(agent.table), agent.ports_taken)
        agent.answer = True
        cid = _cid()
        raw.send(raw.request("INVITE", ruri, call_id=cid, body=sdp(raw.rtp_port)), agent.port)
        raw.expect(lambda m: m.code == 200 and m.h("call-id") == cid, 3, "200 OK")


# --- SDP ------------------------------------------------------------------------------------


def test_extra_media_lines_are_refused_with_port_0_and_take_no_ports(pbx, raw):
    """More m-lines than the RTP port range holds (here 6 ports, 200 m-lines): one audio
    stream is used, every other m-line is answered with port 0, one port and two RTP
    threads are taken and given back when the call ends."""
    extra = []
    for i in range(199):
        kind = "video" if i % 3 == 0 else "audio"
        extra += [f"m={kind} {40000 + 2 * i} RTP/AVP {'96' if kind == 'video' else '0'}"]
    with Agent(pbx, answer=True, allow=(f"{HOST}:{raw.port}",), rtp_low=34000,
               rtp_high=34010) as agent:
        threads0 = threading.active_count()
        cid, tag = _cid(), "many"
        ruri = f"sip:agent@{HOST}:{agent.port}"
        raw.send(raw.request("INVITE", ruri, call_id=cid, from_tag=tag,
                             body=sdp(raw.rtp_port, extra=extra)), agent.port)
        ok = raw.expect(lambda m: m.code >= 200, 3, "final answer")
        assert ok.code == 200, ok.start
        ports = _m_ports(ok.body)
        assert len(ports) == 200 and ports[0] != 0 and ports[1:] == [0] * 199
        assert len(agent.ports_taken) == 1
        assert threading.active_count() - threads0 <= 6
        raw.send(raw.request("ACK", ruri, call_id=cid, from_tag=tag, to_tag=_tag(ok)),
                 agent.port)
        raw.send(raw.request("BYE", ruri, call_id=cid, from_tag=tag, to_tag=_tag(ok),
                             cseq=2), agent.port)
        assert raw.expect(lambda m: "BYE" in m.h("cseq"), 3).code == 200
        assert agent.got_end.wait(3)
        assert _wait(lambda: not agent.ports_taken and not agent.table, 2)


@pytest.mark.parametrize("port", ["70000", "-1", "0", "x"])
def test_invalid_audio_port_is_refused_at_offer_time(pbx, raw, port):
    with Agent(pbx, answer=True, allow=(f"{HOST}:{raw.port}",)) as agent:
        threads0 = threading.active_count()
        cid = _cid()
        raw.send(raw.request("INVITE", f"sip:agent@{HOST}:{agent.port}", call_id=cid,
                             body=sdp(raw.rtp_port, port_text=port)), agent.port)
        final = raw.expect(lambda m: m.code >= 200, 3, "final answer")
        assert final.code == 488, final.start
        time.sleep(0.3)
        assert not agent.incoming and not agent.table and agent.ports_taken == []
        assert threading.active_count() <= threads0 + 1


# --- the settings ---------------------------------------------------------------------------


def test_sip_settings_for_trust_and_timeouts(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[sip]\nallow = ["127.0.0.1:5070", "pbx2.local"]\nack_timeout_s = 5\n'
                    "ring_timeout_s = 30.5\n", encoding="utf-8")
    sip = load_settings(path).sip
    assert sip.allow == ("127.0.0.1:5070", "pbx2.local")
    assert (sip.ack_timeout_s, sip.ring_timeout_s) == (5.0, 30.5)
    path.write_text("[sip]\n", encoding="utf-8")
    sip = load_settings(path).sip
    assert (sip.allow, sip.ack_timeout_s, sip.ring_timeout_s) == ((), 32.0, 120.0)


@pytest.mark.parametrize("line", ['allow = "127.0.0.1"', 'allow = ["127.0.0.1:70000"]',
                                  'allow = ["127.0.0.1:"]', 'allow = [5070]',
                                  'allow = ["a b"]', "ack_timeout_s = 0",
                                  "ring_timeout_s = -1", "ring_timeout_s = true",
                                  'ack_timeout_s = "32"', "ring_timeout_s = 86400"])
def test_bad_sip_trust_and_timeout_settings(tmp_path, line):
    path = tmp_path / "config.toml"
    path.write_text(f"[sip]\n{line}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"sip\.(allow|ack_timeout_s|ring_timeout_s)"):
        load_settings(path)
