"""Pure SIP text helpers: header normalisation for pyVoIP's parser, digest, builders."""

from __future__ import annotations

import pytest
from pyVoIP.VoIP import VoIP  # noqa: F401 - pyVoIP's import order (see pyvoip_fixes)

from callguard.telephony import sipmsg

INVITE = (
    "INVITE sip:agent@127.0.0.1:5060 SIP/2.0\r\n"
    "v: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKa, SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKb\r\n"
    "f: \"Bob\" <sip:bob@127.0.0.1>;tag=111\r\n"
    "t: <sip:agent@127.0.0.1>\r\n"
    "i: abc@host\r\n"
    "cseq: 1 INVITE\r\n"
    "m: <sip:bob@127.0.0.1:5070>\r\n"
    "Supported:\r\n"
    "Record-Route: <sip:p1;lr>\r\n"
    "Record-Route: <sip:p2;lr>\r\n"
    "Subject: a\r\n continued\r\n"
    "c: application/sdp\r\n"
    "l: 0\r\n\r\n"
    "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 4000 RTP/AVP 0\r\nbogus line\r\n"
)


def test_normalize_expands_compact_and_drops_empty_headers():
    out = sipmsg.normalize(INVITE.encode()).decode()
    head, body = out.split("\r\n\r\n")
    lines = head.split("\r\n")
    assert lines[0] == "INVITE sip:agent@127.0.0.1:5060 SIP/2.0"
    assert lines.count("Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKa") == 1
    assert "Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKb" in lines
    assert 'From: "Bob" <sip:bob@127.0.0.1>;tag=111' in lines
    assert "Call-ID: abc@host" in lines and "CSeq: 1 INVITE" in lines
    assert "Contact: <sip:bob@127.0.0.1:5070>" in lines
    assert not any(line.startswith("Supported") for line in lines)
    assert "Record-Route: <sip:p1;lr>, <sip:p2;lr>" in lines
    assert "Subject: a continued" in lines
    assert "bogus" not in body and "m=audio 4000 RTP/AVP 0" in body


def test_pyvoip_parses_the_normalised_invite_but_not_the_original():
    from pyVoIP import SIP

    with pytest.raises(Exception):  # noqa: B017 - pyVoIP raises whatever its parser hits
        SIP.SIPMessage(INVITE.encode())
    msg = SIP.SIPMessage(sipmsg.normalize(INVITE.encode()))
    assert msg.method == "INVITE" and msg.headers["Call-ID"] == "abc@host"
    assert msg.headers["From"]["tag"] == "111" and len(msg.headers["Via"]) == 2


def test_digest_matches_rfc2617_example():
    # RFC 2617 §3.5 (HTTP, but the same arithmetic).
    ch = sipmsg.parse_challenge('Digest realm="testrealm@host.com", qop="auth,auth-int", '
                                'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", '
                                'opaque="5ccc069c403ebaf9f0171e9517f40e41"')
    value = sipmsg.digest_authorization(ch, "GET", "/dir/index.html", "Mufasa",
                                        "Circle Of Life", cnonce="0a4f113b", nc=1)
    assert 'response="6629fae49393a05397450978507c4ef1"' in value
    assert "qop=auth" in value and 'opaque="5ccc069c403ebaf9f0171e9517f40e41"' in value


def test_ack_and_bye_carry_the_dialog():
    d = sipmsg.Dialog(call_id="c1", local_uri="<sip:agent@h>", local_tag="L",
                      remote_uri="<sip:bob@h>", remote_tag="R",
                      remote_target="sip:bob@127.0.0.1:5070", route_set=["<sip:p1;lr>"],
                      local_cseq=5, invite_cseq=5)
    ack = sipmsg.build_ack_2xx(d, "127.0.0.1", 5060, "ua")
    assert ack.startswith("ACK sip:bob@127.0.0.1:5070 SIP/2.0\r\n")
    assert "To: <sip:bob@h>;tag=R\r\n" in ack and "CSeq: 5 ACK\r\n" in ack
    assert "Route: <sip:p1;lr>\r\n" in ack
    bye = sipmsg.build_bye(d, "127.0.0.1", 5060, "ua", d.next_cseq(), "z9hG4bKx")
    assert "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKx;rport\r\n" in bye
    assert "CSeq: 6 BYE\r\n" in bye and "From: <sip:agent@h>;tag=L\r\n" in bye


def test_cancel_copies_the_invite_transaction():
    inv = ("INVITE sip:bob@h SIP/2.0\r\nVia: SIP/2.0/UDP 1.2.3.4:5060;branch=z9hG4bKq\r\n"
           "From: <sip:a@h>;tag=x\r\nTo: <sip:bob@h>\r\nCall-ID: c\r\nCSeq: 7 INVITE\r\n"
           "Content-Length: 0\r\n\r\n")
    c = sipmsg.build_cancel(inv)
    assert c.startswith("CANCEL sip:bob@h SIP/2.0\r\n")
    assert "branch=z9hG4bKq" in c and "CSeq: 7 CANCEL" in c and "To: <sip:bob@h>\r\n" in c


def test_the_line_refuses_0000_as_its_sdp_address():
    from callguard.telephony.pyvoip_fixes import FixedPhone

    with pytest.raises(ValueError, match="explicit local IP"):
        FixedPhone("127.0.0.1", 5060, "a", "b", myIP="0.0.0.0")
