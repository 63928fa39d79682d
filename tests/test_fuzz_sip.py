"""Fuzzing the SIP and SDP parsers (issue 13, item 9), bounded and deterministic.

Property tests (Hypothesis) on the pure parsers in :mod:`callguard.telephony.sipmsg` and on
the path every received datagram takes in the agent: ``FixedSIPClient._handle`` (normalise,
read the head, the trust and header checks, the SDP offer, pyVoIP's parser, the call table),
fed straight from this thread with real UDP sockets on 127.0.0.1 catching the answers. The
messages come from :mod:`callguard.bench.hostile`, the generators the soak program sends to a
live agent: valid messages damaged one or a few ways, bad SDP, truncation, random bytes.

Every test is bounded (``max_examples``), derandomised (the same examples every run) and
keeps no example database, so the suite stays short and repeatable; a failure prints the
shrunk example.
"""

from __future__ import annotations

import random
import socket
import time

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pyVoIP.VoIP import VoIP  # before anything imports pyVoIP.SIP (see pyvoip_fixes)

from callguard.bench import hostile
from callguard.telephony import sipmsg
from callguard.telephony.base import CallEnd
from callguard.telephony.pyvoip_fixes import FixedPhone

HOST = "127.0.0.1"
FUZZ = settings(max_examples=200, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
randoms = st.randoms(use_true_random=False)


def _read(data: bytes) -> sipmsg.Head | None:
    return sipmsg.parse_head(sipmsg.normalize(data).decode("utf-8"))


# --- the pure parsers ------------------------------------------------------------------------


@FUZZ
@given(st.one_of(st.binary(max_size=2000), randoms.map(hostile.hostile_sip)))
def test_any_datagram_normalises_and_reads_without_an_exception(data: bytes):
    """normalize, parse_head, the Head's fields, the header check, the response address
    and a response built from it: never an exception, whatever arrives."""
    out = sipmsg.normalize(data)
    text = out.decode("utf-8")  # always UTF-8 after normalize
    head = sipmsg.parse_head(text)
    if head is None:
        return
    assert head.is_request == bool(head.method)
    if not head.is_request:
        assert 100 <= head.status <= 999
    cseq = head.cseq
    assert cseq is None or (cseq[0] >= 0 and cseq[1])
    head.branch, head.from_tag, head.to_tag, head.call_id  # noqa: B018 - must not raise
    if head.is_request:
        missing = sipmsg.missing_headers(head)
        assert all(isinstance(m, str) for m in missing)
    host, port = sipmsg.response_address(head.first("Via"), (HOST, 5099))
    assert host == HOST and 0 < port < 65536  # answers only ever go to the packet's source IP
    response = sipmsg.build_response(text, 400, "Bad Request", None, "fuzz")
    back = _read(response.encode())
    assert back is not None and back.status == 400


@FUZZ
@given(st.one_of(st.text(max_size=1500), randoms.map(hostile.hostile_sdp),
                 st.binary(max_size=600).map(lambda b: b.decode("utf-8", "replace"))))
def test_any_sdp_is_an_offer_or_a_refusal(body: str):
    """parse_offer: an Offer whose audio target is usable, or SdpRefused (→ 488); nothing
    else. The answer has one m-line per offered m-line."""
    try:
        offer = sipmsg.parse_offer(body)
    except sipmsg.SdpRefused:
        return
    ip, port = offer.target()
    assert 0 < port < 65536 and sipmsg._ipv4(ip)
    assert offer.media[offer.audio].kind == "audio"
    again = sipmsg.parse_offer(sipmsg.pyvoip_body(offer))  # what pyVoIP is given
    assert again.target() == (ip, port) and len(again.media) == 1
    answer = sipmsg.build_answer_sdp(offer, HOST, 40000, {0: "PCMU/8000"}, "1", 1, "fuzz")
    assert sum(ln.startswith("m=") for ln in answer.split("\r\n")) == len(offer.media)


@FUZZ
@given(randoms, st.sampled_from(("INVITE", "BYE", "OPTIONS", "CANCEL", "ACK", "INFO")),
       st.booleans(), st.booleans())
def test_a_valid_request_round_trips_its_key_fields(r: random.Random, method: str,
                                                    compact: bool, lf_only: bool):
    """A well-formed request (also with compact or lower-case header names, LF line ends)
    reads back its method, Call-ID, tags, branch and CSeq exactly, passes the header check,
    and a response built for it carries them back."""
    msg = hostile.valid_request(r, method=method)
    if compact:
        msg.headers = [(hostile._COMPACT.get(n, n.lower()), v) for n, v in msg.headers]
    if lf_only:
        msg.eol = "\n"
    head = _read(msg.encode())
    assert head is not None and head.method == method
    call_id = msg.first("Call-ID") or msg.first("i")
    cseq = msg.first("CSeq") or msg.first("cseq")
    via = msg.first("Via") or msg.first("v")
    frm = msg.first("From") or msg.first("f")
    to = msg.first("To") or msg.first("t")
    assert head.call_id == call_id
    assert head.cseq == (int(cseq.split()[0]), method)
    assert head.branch == via.split("branch=")[1].split(";")[0]
    assert head.from_tag == frm.split("tag=")[1]
    assert head.to_tag == (to.split("tag=")[1] if "tag=" in to else "")
    assert sipmsg.missing_headers(head) == []
    text = sipmsg.normalize(msg.encode()).decode()
    resp = _read(sipmsg.build_response(text, 200, "OK", "ourtag", "fuzz").encode())
    assert resp is not None and resp.status == 200
    assert (resp.call_id, resp.cseq, resp.branch, resp.from_tag) == (
        head.call_id, head.cseq, head.branch, head.from_tag)
    assert resp.to_tag == (head.to_tag or "ourtag")
    if method == "INVITE" and msg.body:
        offer = sipmsg.parse_offer(text.split("\r\n\r\n", 1)[1])
        assert offer.target() == (HOST, hostile.Target().rtp_port)


@FUZZ
@given(randoms, st.integers(1, 65535),
       st.lists(st.sampled_from(("0", "8", "101")), min_size=1, max_size=3,
                unique=True).filter(lambda c: "0" in c or "8" in c),
       st.sampled_from(("sendrecv", "sendonly", "recvonly", "inactive")))
def test_a_valid_offer_round_trips(r: random.Random, port: int, codecs: list[str],
                                   direction: str):
    body = hostile.valid_sdp(r, "10.1.2.3", port, tuple(codecs), direction)
    offer = sipmsg.parse_offer(body)
    assert offer.target() == ("10.1.2.3", port)
    assert offer.direction == direction
    assert sipmsg.parse_offer(sipmsg.pyvoip_body(offer)).target() == ("10.1.2.3", port)


# --- the agent's receive path ----------------------------------------------------------------


class Harness:
    """A FixedPhone whose SIP socket is bound on 127.0.0.1 but whose receive loop is not
    running: the test hands each datagram to ``_handle`` itself, as the loop would, from
    the registrar's address (trusted) or a stranger's, and collects what was answered.
    Incoming calls are declined (no handler), so every INVITE that gets as far as a call
    makes one and ends it again."""

    def __init__(self, on_incoming=None, rtp_low: int = 41000) -> None:
        self.registrar = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.registrar.bind((HOST, 0))
        self.stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.stranger.bind((HOST, 0))
        for s in (self.registrar, self.stranger):
            s.setblocking(False)
        self.phone = FixedPhone(HOST, self.registrar.getsockname()[1], "agent", "pw", HOST,
                                sipPort=0, rtpPortLow=rtp_low, rtpPortHigh=rtp_low + 998,
                                on_incoming=on_incoming)
        sip = self.phone.sip
        sip.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sip.s.bind((HOST, 0))
        sip.out = sip.s
        sip.myPort = sip.s.getsockname()[1]
        sip.NSD = True
        # What the generated messages claim: their Via sent-by is the registrar's socket, so
        # answers to a Via without rport come back here too.
        self.target = hostile.Target(source_port=self.registrar.getsockname()[1])

    def feed(self, data: bytes, trusted: bool) -> list[sipmsg.Head | None]:
        """``_handle`` one datagram; the answers it sent (read as heads)."""
        src = self.registrar if trusted else self.stranger
        self.phone.sip._handle(data, src.getsockname())
        out = []
        for s in (self.registrar, self.stranger):
            while True:
                try:
                    out.append(_read(s.recv(65535)))
                except BlockingIOError:
                    break
        return out

    def close(self) -> None:
        for call in list(self.phone.calls.values()):
            call.end(CallEnd.LOCAL_HANGUP, "test over")
        self.phone.sip.NSD = False
        for s in (self.registrar, self.stranger, self.phone.sip.s):
            s.close()


@pytest.fixture(scope="module")
def harness():
    h = Harness()
    yield h
    h.close()


def _assert_clean(h: Harness) -> None:
    """Nothing left behind: no call in the table, no RTP port taken."""
    assert h.phone.calls == {}, list(h.phone.calls)
    assert h.phone.assignedPorts == []


@FUZZ
@given(st.one_of(randoms.map(hostile.hostile_sip), st.binary(max_size=1500)), st.booleans())
def test_any_datagram_through_the_agents_receive_path(harness: Harness, data: bytes,
                                                      trusted: bool):
    """``_handle`` never raises (a raise was logged as an ERROR with a traceback per packet,
    and an INVITE went unanswered), every answer is a SIP response, and no call or RTP port
    is left behind."""
    answers = harness.feed(data, trusted)
    assert all(a is not None and not a.is_request for a in answers), answers
    _assert_clean(harness)


@FUZZ
@given(randoms)
def test_a_valid_invite_damaged_once_gets_a_clear_answer(harness: Harness, r: random.Random):
    """A valid INVITE from the registrar with one thing damaged (a header dropped,
    duplicated, emptied, oversized, odd; bad CSeq or Content-Length; bad SDP; not UTF-8;
    odd line ends; ...): the agent answers it — an error or the 180/486 of a call it took and
    declined — unless it is no longer a request it can answer (no Via, not SIP, an ACK)."""
    msg = hostile.mutate(r, hostile.valid_request(r, harness.target, "INVITE", sdp=True))
    data = msg.encode()
    answers = harness.feed(data, trusted=True)
    head = _read(data)
    _assert_clean(harness)
    assert all(a is not None and not a.is_request for a in answers)
    if head is None or not head.is_request or head.method == "ACK" or not head.first("Via"):
        return
    src = harness.registrar.getsockname()
    if sipmsg.response_address(head.first("Via"), src) != src:
        return  # answered as RFC 3261 §18.2.2 says: to the Via's port, not ours
    codes = [a.status for a in answers if a is not None]
    assert codes and all(100 <= c < 700 for c in codes), (codes, data[:300])
    assert any(c >= 300 for c in codes), codes  # a final answer, never left ringing
    if head.method == "INVITE" and sipmsg.missing_headers(head):
        assert codes == [400], codes


def test_the_undamaged_invite_is_taken_as_a_call(harness: Harness):
    """The control for the test above: without damage the INVITE becomes a call (180
    Ringing, then 486 from the declining handler), so the damaged ones are judged against a
    message the agent really accepts."""
    msg = hostile.valid_request(random.Random(3), method="INVITE", sdp=True)
    codes = [a.status for a in harness.feed(msg.encode(), trusted=True) if a is not None]
    assert codes == [180, 486], codes
    _assert_clean(harness)


@pytest.mark.parametrize("value", ["²", "¹²³", "２"])
def test_unicode_digits_in_numbers_are_refused_not_raised(harness: Harness, value: str):
    """Found by the fuzzer: ``str.isdigit`` accepts "²" and ``int`` refuses it, so a CSeq,
    status code, Via port, SDP port or c= address with it raised ValueError inside the
    agent's receive path (the INVITE went unanswered; a traceback per packet)."""
    r = random.Random(5)
    msg = hostile.valid_request(r, method="INVITE", sdp=True)
    msg.headers = [(n, f"{value} INVITE" if n == "CSeq" else v) for n, v in msg.headers]
    assert [a.status for a in harness.feed(msg.encode(), True) if a] == [400]
    msg = hostile.valid_request(r, method="INVITE", sdp=True)
    msg.body = msg.body.replace(b"m=audio 40000", f"m=audio {value}".encode())
    assert [a.status for a in harness.feed(msg.encode(), True) if a][-1] == 488
    msg = hostile.valid_request(r, method="INVITE", sdp=True)
    msg.body = msg.body.replace(b"c=IN IP4 127.0.0.1", f"c=IN IP4 {value}.0.0.1".encode())
    assert [a.status for a in harness.feed(msg.encode(), True) if a][-1] == 488
    assert sipmsg.response_address(f"SIP/2.0/UDP 127.0.0.1:{value}", (HOST, 7)) == (HOST, 5060)
    assert sipmsg.response_address(";tag=x", (HOST, 7)) == (HOST, 5060)
    assert sipmsg.parse_head(f"SIP/2.0 {value}00 OK\r\n\r\n") is None
    _assert_clean(harness)


def test_the_generators_are_deterministic_and_varied():
    """The soak replays a seed: the same seed gives the same messages; and the mix holds
    well-formed requests of every kind as well as damaged ones."""
    a = [hostile.hostile_sip(random.Random(9)) for _ in range(3)]
    b = [hostile.hostile_sip(random.Random(9)) for _ in range(3)]
    assert a == b
    r = random.Random(1)
    heads = [_read(hostile.hostile_sip(r)) for _ in range(400)]
    methods = {h.method for h in heads if h is not None and h.is_request
               and not sipmsg.missing_headers(h)}
    assert {"INVITE", "BYE", "OPTIONS", "ACK"} <= methods, methods
    assert sum(h is None for h in heads) > 10  # and unreadable ones


# --- hostile requests inside a live call -----------------------------------------------------


@pytest.fixture(scope="module")
def answered():
    """A harness whose phone answers every call, with one call answered: INVITE from the
    registrar, the handler answers it (RTP started), the 200 OK read back."""
    h = Harness(on_incoming=lambda call: call.answer(), rtp_low=42000)
    invite = hostile.valid_request(random.Random(11), h.target, "INVITE", sdp=True)
    h.feed(invite.encode(), trusted=True)
    deadline = time.monotonic() + 5
    while not any(c.state == VoIP.CallState.ANSWERED for c in h.phone.calls.values()):
        assert time.monotonic() < deadline, "the control call was not answered"
        time.sleep(0.01)
    (call,) = h.phone.calls.values()
    yield h, call
    h.close()


_DAMAGE = ("call_id", "from_tag", "to_tag", "old_cseq", "stranger", "mutate")


@FUZZ
@given(randoms, st.sampled_from(("BYE", "INVITE", "CANCEL", "ACK")), st.sampled_from(_DAMAGE))
def test_damaged_in_dialog_requests_never_end_or_redirect_the_call(answered, r, method,
                                                                   damage):
    """BYE, re-INVITE (to another media port), CANCEL and ACK for the live call, each with
    one thing wrong: another Call-ID or tag, an old CSeq, sent by a stranger, or damaged
    by the fuzzer's mutations. The call stays up and its media stays where it was — a forged
    BYE ended calls and a re-INVITE from anyone redirected our audio before issue 13."""
    h, call = answered
    d = call.dialog
    assert d is not None and call.rtp is not None
    media = (call.rtp.outIP, call.rtp.outPort)
    cseq = d.remote_cseq + (-1 if damage == "old_cseq" else r.randint(1, 1000))
    via = f"SIP/2.0/UDP {HOST}:{h.target.source_port};branch=z9hG4bK{r.getrandbits(40):x};rport"
    msg = hostile.Message(f"{method} sip:agent@{HOST}:{h.phone.sip.myPort} SIP/2.0", [
        ("Via", via), ("Max-Forwards", "70"),
        ("From", f"{d.remote_uri};tag={d.remote_tag}" + ("x" if damage == "from_tag" else "")),
        ("To", f"{d.local_uri};tag={d.local_tag}" + ("x" if damage == "to_tag" else "")),
        ("Call-ID", d.call_id + ("x" if damage == "call_id" else "")),
        ("CSeq", f"{cseq} {method}"), ("Contact", f"<sip:fuzz@{HOST}:{h.target.source_port}>"),
    ])
    if method == "INVITE":
        msg.headers.append(("Content-Type", "application/sdp"))
        msg.body = hostile.valid_sdp(r, HOST, 4242).encode()
    if damage == "mutate":
        for _ in range(r.randint(1, 3)):
            hostile.mutate(r, msg)
    data = msg.encode()
    head = _read(data)
    trusted = damage != "stranger"
    legit = (trusted and head is not None and head.is_request and head.method in (
        "BYE", "INVITE") and not sipmsg.missing_headers(head) and head.call_id == d.call_id
        and head.from_tag == d.remote_tag and head.to_tag == d.local_tag
        and head.cseq is not None and head.cseq[0] > d.remote_cseq)
    assume(not legit)  # a request that really is the far end's is not an attack
    answers = h.feed(data, trusted)
    assert all(a is not None and not a.is_request for a in answers)
    assert call.state == VoIP.CallState.ANSWERED and call.end_reason is None
    assert (call.rtp.outIP, call.rtp.outPort) == media
    assert list(h.phone.calls.values()) == [call]
    assert all(t.is_alive() for t in call.rtp._threads)


@pytest.mark.parametrize("value", ["²", "¹²", "-1", "60"])
def test_a_registrars_odd_expires_still_registers_the_line(value: str):
    """Found by fuzzing the numbers: a 200 to REGISTER whose Expires (or Contact expires=)
    was "²" raised ValueError after the pending registration had been cancelled, and the
    receive loop swallowed it: the line stayed REGISTERING, with no retry, for good. The real
    SIP client and its receive loop, against a registrar socket on 127.0.0.1."""
    from callguard.telephony.base import LineState

    registrar = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    registrar.bind((HOST, 0))
    registrar.settimeout(5)
    phone = FixedPhone(HOST, registrar.getsockname()[1], "agent", "pw", HOST, sipPort=0,
                       rtpPortLow=43000, rtpPortHigh=43998)
    try:
        phone.start()
        data, src = registrar.recvfrom(65535)
        text = sipmsg.normalize(data).decode()
        assert text.startswith("REGISTER ")
        registrar.sendto(sipmsg.build_response(
            text, 200, "OK", "reg", "fuzz",
            f"Contact: <sip:agent@{HOST}:{src[1]}>;expires={value}\r\nExpires: {value}\r\n"
        ).encode(), src)
        deadline = time.monotonic() + 3
        while phone.sip.status.state is not LineState.REGISTERED:
            assert time.monotonic() < deadline, phone.sip.status
            time.sleep(0.02)
    finally:
        phone.stop()
        registrar.close()
