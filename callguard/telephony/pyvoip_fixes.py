"""Every fix callguard needs in pyVoIP, in one place, for exactly pyVoIP 1.6.8.

pyVoIP 1.6.8 out of the box fails against RFC-compliant peers (measured against baresip and
kamailio on loopback; see ../shared/DESIGN.md). Each defect has a named fix below; tests turn
one off with :func:`disabled` and show the failure against a real peer, then turn it on and
show it gone. With a fix disabled the code takes pyVoIP's own path (or, inside the RTP client,
reproduces pyVoIP's behaviour exactly where that path cannot be reused, e.g. 8-bit audio).

The fixes are subclasses, not monkey-patches: :class:`FixedPhone` is a ``VoIPPhone`` whose SIP
client, calls and RTP clients are the fixed ones here. Only :mod:`callguard.telephony.sipline`
uses them.

Hardening against hostile or broken peers (issue 13; always on, not switchable — the tests in
tests/test_sip_hostile.py were run against the code before them instead):

- trust: requests only from the registrar/proxy, the ``[sip] allow`` list, or (in-dialog
  only) the dialog's far end; others get 403 (in-dialog: 481), responses from strangers are
  dropped (pyVoIP took SIP from anyone: an INVITE straight to the agent was answered);
- dialog: BYE, re-INVITE, ACK must match Call-ID and both tags, in CSeq order; CANCEL the
  INVITE's branch and From tag (pyVoIP matched the Call-ID only: a forged BYE ended calls);
- mandatory headers: a request without Via, From, To, Call-ID or a valid CSeq gets 400 and
  changes nothing (one INVITE without CSeq kept the line busy until restart); a failing
  incoming-call handler ends the ringing call;
- responses go to the request's source (RFC 3261 §18.2.2 / RFC 3581), also the 200 OK to a
  re-INVITE (pyVoIP's went to the registrar: a caller's hold broke the call);
- OPTIONS 200 with Allow, other methods 405/501, at the transport (pyVoIP's parser raised
  on any method but INVITE/ACK/BYE/CANCEL and the message was dropped unanswered);
- timers: our 2xx is retransmitted until the ACK, none within ``ack_timeout_s`` (Timer H,
  32 s) ends the call with a BYE (``CallEnd.NO_ACK``); an unanswered call gets 480 after
  ``ring_timeout_s`` (120 s, ``CallEnd.RING_TIMEOUT``), and our own call is cancelled after
  as long unanswered; an answered call that receives no
  RTP from its far end for ``media_timeout_s`` (60 s) while media is expected (not on hold:
  the far end's last offer was sendrecv) ends with a BYE (``CallEnd.MEDIA_TIMEOUT``); at
  most ``MAX_CALLS`` calls at once, more INVITEs get 486 with no port taken;
- SDP: one audio stream used, other m-lines answered with port 0; invalid ports, no usable
  audio, non-IPv4 addresses → 488 at offer time, before any port or thread is taken
  (pyVoIP took a port per m-line and a client per c= line, and leaked them on failure);
  hold (sendonly/inactive/0.0.0.0) stops our sending while receiving and recording go on.

Threads: one SIP thread per phone (receive loop plus timers: registration, BYE
retransmission); two per RTP client (receive, send). Call-backs run on fresh threads, never on
the SIP thread.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import random
import select
import socket
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pyVoIP
import pyVoIP.VoIP  # before pyVoIP.SIP: importing SIP first hits pyVoIP's circular import
from pyVoIP import RTP, SIP
from pyVoIP.VoIP import VoIP

from callguard.audio.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from callguard.audio.samplequeue import SampleQueue
from callguard.telephony import sipmsg
from callguard.telephony.base import FRAME, RATE, CallEnd, LineState, LineStatus
from callguard.telephony.pacer import SendSchedule
from callguard.telephony.rtp import (
    DtmfReceiver,
    RtpError,
    RtpPacket,
    build_rtp,
    looks_like_rtcp,
    parse_rtp,
)
from callguard.telephony.timeline import ReceiveTimeline

log = logging.getLogger(__name__)

PYVOIP_VERSION = "1.6.8"
if pyVoIP.__version__ != PYVOIP_VERSION:  # the fixes are written against this exact code
    raise ImportError(f"callguard's pyVoIP fixes are for pyVoIP {PYVOIP_VERSION}, "
                      f"found {pyVoIP.__version__}; install pyVoIP=={PYVOIP_VERSION}")

FIXES: dict[str, str] = {
    "headers": "empty, compact or lower-case header lines no longer make pyVoIP drop the "
               "message (an INVITE with 'Supported:' was ignored)",
    "ack_2xx": "the ACK for a 2xx carries the far end's To-tag and Contact (with a fresh "
               "tag the far end dropped outbound calls after ~31 s)",
    "bye": "BYE carries our own Via, goes to the dialog's remote target and is retransmitted "
           "until answered (pyVoIP copied the INVITE's Vias: no 200 OK ever came back)",
    "cancel": "CANCEL on a ringing call ends it: 200 for the CANCEL, 487 for the INVITE "
              "(pyVoIP ignored it and the call rang on)",
    "no_delay": "inbound calls are handed over at once (pyVoIP waited a fixed 1 s)",
    "call_table": "calls stay in the call table until they end and release their RTP port "
                  "then (pyVoIP dropped a call once its call-back returned and leaked ports)",
    "call_id": "random Call-IDs (pyVoIP hashed a counter: the same IDs after every restart)",
    "rtp_pcma": "PCMA is sent A-law encoded (pyVoIP used the µ-law encoder)",
    "rtp_pcm16": "audio is 16-bit PCM end to end (pyVoIP converted to 8-bit unsigned)",
    "rtp_timeline": "received audio is placed by RTP timestamp on the call timeline "
                    "(pyVoIP's blocking read dropped silence and gaps)",
    "rtp_clock": "packets are sent on an absolute 20 ms schedule (pyVoIP slept 20 ms minus "
                 "work each time and drifted +0.4-0.6 %)",
    "rtp_latch": "RTP is accepted only from the SDP-declared address and its first SSRC "
                 "(pyVoIP took any packet from anyone into the caller's audio); dropped "
                 "packets are counted",
    "register": "registration failures give a clear status and are retried for ever "
                "(pyVoIP stopped the phone after 3 failures, silently)",
}
_disabled: set[str] = set()


def enabled(name: str) -> bool:
    if name not in FIXES:
        raise KeyError(f"unknown pyVoIP fix {name!r}")
    return name not in _disabled


@contextlib.contextmanager
def disabled(*names: str) -> Iterator[None]:
    """Tests only: run with the named fixes off (pyVoIP's own behaviour)."""
    for n in names:
        enabled(n)
    before = set(_disabled)
    _disabled.update(names)
    try:
        yield
    finally:
        _disabled.clear()
        _disabled.update(before)


USER_AGENT = f"callguard (pyVoIP {PYVOIP_VERSION})"
T1 = 0.5  # RFC 3261 round-trip estimate, seconds
REGISTER_TIMEOUT_S = 4.0  # no final answer to REGISTER within this: registrar unreachable
RETRY_BACKOFF_S = (1.0, 2.0, 4.0, 8.0, 15.0, 30.0)
ACK_TIMEOUT_S = 64 * T1  # Timer H: no ACK for our 2xx within this ends the call
RING_TIMEOUT_S = 120.0  # an inbound call nobody answers or cancels ends after this
MEDIA_TIMEOUT_S = 60.0  # an answered call with no RTP from the far end for this ends
MAX_CALLS = 8  # calls in the table at once; INVITEs beyond get 486 with no port taken
AUTH_FAILED_RETRY_S = 60.0


def _record_route(msg: SIP.SIPMessage) -> list[str]:
    text: str = msg.text  # type: ignore[attr-defined]
    return [r for v in sipmsg.header_values(text, "Record-Route") for r in sipmsg.split_list(v)]


def _spawn(fn: Callable[..., Any], *args: Any, name: str) -> None:
    threading.Thread(target=fn, args=args, name=name, daemon=True).start()


# --- SIP ------------------------------------------------------------------------------------


class FixedSIPClient(SIP.SIPClient):
    """pyVoIP's SIP client with one non-blocking receive loop that owns every transaction:
    registration (with status and retry), INVITE responses (auth, ACK), BYE retransmission,
    CANCEL. Messages are parsed by pyVoIP's parser after :func:`sipmsg.normalize`."""

    def __init__(self, *args: Any, on_status: Callable[[LineStatus], None] | None = None,
                 allow: tuple[str, ...] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.on_status = on_status
        self.allow = tuple(allow)  # "host" or "host:port" besides the registrar
        self.refused: Counter[str] = Counter()  # messages refused at the transport, by kind
        self._trust_setup()
        self.status = LineStatus(LineState.OFFLINE)
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._tlock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._reg_call_id = sipmsg.new_call_id(self.myIP)
        self._reg_cseq = random.randint(1, 1000)
        self._reg_pending: dict[str, Any] | None = None
        self._reg_failures = 0
        self._reg_timer_gen = 0
        self._byes: dict[tuple[str, int], dict[str, Any]] = {}
        self._invites: dict[str, dict[str, Any]] = {}  # our outbound INVITEs by Call-ID
        self.responses: Counter[tuple[str, int]] = Counter()  # (method, code) received

    # -- plumbing

    def start(self) -> None:
        if self.NSD:
            raise RuntimeError("SIP client already started")
        self.NSD = True
        self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.s.bind((self.myIP, self.myPort))
        self.myPort = self.s.getsockname()[1]  # port 0: the OS picked one
        self.out = self.s
        self._thread = threading.Thread(target=self._loop, name="sip", daemon=True)
        if enabled("no_delay"):
            self._thread.start()
        else:  # pyVoIP: Timer(1, recv_loop)
            threading.Timer(1.0, self._thread.start).start()
        self._register()

    def stop(self) -> None:
        if not self.NSD:
            return
        if self.status.state is LineState.REGISTERED:
            with contextlib.suppress(OSError):
                self._send(self._register_text(expires=0))
        self.NSD = False
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2)
        self._close_sockets()
        self._set_status(LineStatus(LineState.OFFLINE))

    def _send(self, text: str, addr: tuple[str, int] | None = None) -> None:
        self.s.sendto(text.encode("utf-8"), addr or (self.server, self.port))

    def send_to_source(self, text: str, request: SIP.SIPMessage) -> None:
        """Responses go back where the request came from (RFC 3261 §18.2.2, RFC 3581
        rport); pyVoIP sent them all to the registrar."""
        source = getattr(request, "source", None)
        head = getattr(request, "head", None)
        if source is not None and head is not None:
            source = sipmsg.response_address(head.first("Via"), source)
        self._send(text, source)

    def later(self, delay: float, fn: Callable[[], None]) -> None:
        with self._tlock:
            heapq.heappush(self._timers, (time.monotonic() + delay, next(self._seq), fn))

    def _loop(self) -> None:
        while self.NSD:
            with self._tlock:
                wait = self._timers[0][0] - time.monotonic() if self._timers else 0.2
            try:
                ready, _, _ = select.select([self.s], [], [], min(max(wait, 0.0), 0.2))
                if ready:
                    raw, addr = self.s.recvfrom(65535)
                    self._handle(raw, addr)
            except (OSError, ValueError):
                if not self.NSD:
                    return
                time.sleep(0.05)  # e.g. ICMP port unreachable reported on the socket
            except Exception:  # one bad message must not stop the phone line
                log.exception("SIP message handling failed")
            self._run_timers()

    def _run_timers(self) -> None:
        while True:
            with self._tlock:
                if not self._timers or self._timers[0][0] > time.monotonic():
                    return
                _, _, fn = heapq.heappop(self._timers)
            try:
                fn()
            except Exception:
                log.exception("SIP timer failed")

    # -- trust (issue 13): who may send us what

    def _trust_setup(self) -> None:
        try:
            registrar = socket.gethostbyname(self.server)
        except OSError:
            registrar = self.server
        self._trusted: set[tuple[str, int]] = {(registrar, int(self.port))}
        self._trusted_hosts: set[str] = set()
        for entry in self.allow:
            host, _, port = entry.rpartition(":") if ":" in entry else (entry, "", "")
            with contextlib.suppress(OSError):
                host = socket.gethostbyname(host)
            if port:
                self._trusted.add((host, int(port)))
            else:
                self._trusted_hosts.add(host)

    def trusted(self, addr: tuple[str, int]) -> bool:
        """The registrar/proxy, or an address of the ``[sip] allow`` list."""
        return addr in self._trusted or addr[0] in self._trusted_hosts

    def _refuse(self, kind: str, addr: tuple[str, int], detail: str) -> None:
        """Count a refused message; log the first of each kind, then every 100th (a flood
        must not flood the log)."""
        self.refused[kind] += 1
        n = self.refused[kind]
        if n == 1 or n % 100 == 0:
            log.warning("SIP %s from %s:%s refused (%s; %d so far)", kind, *addr, detail, n)

    def _reply(self, text: str, code: int, reason: str, addr: tuple[str, int],
               extra: str = "") -> None:
        self._send(sipmsg.build_response(text, code, reason, None, USER_AGENT, extra), addr)

    def _screen(self, head: sipmsg.Head, text: str, addr: tuple[str, int]) -> bool:
        """The transport-layer checks on a received request, before pyVoIP sees it. False:
        answered (or dropped) here. Requests go on only from the registrar/proxy, the
        allow-list, or — in-dialog only — the dialog's peer; they must carry every
        mandatory header; OPTIONS is answered here, methods we do not serve get 405/501
        (pyVoIP's parser raised on anything but INVITE/ACK/BYE/CANCEL: never answered)."""
        method = head.method
        if not head.first("Via"):
            self._refuse("without Via", addr, method)  # nowhere to send an answer
            return False
        is_ack = method == "ACK"
        if not self.trusted(addr):
            if head.to_tag and self.phone.is_dialog_peer(head.call_id, addr):  # type: ignore[attr-defined]
                pass  # the dialog's far end, straight (no Record-Route): matched in full later
            else:
                # Out of the dialog from a stranger: 403 rather than silence, so a
                # misconfigured (unlisted) proxy gets a plain answer at once instead of
                # retransmitting for 32 s; the answer goes only to the packet's source and
                # is no bigger than the request (no reflection gain). In-dialog: 481 —
                # for us no dialog exists with that sender.
                self._refuse(f"{method} from a stranger", addr, head.call_id[:40])
                if not is_ack:
                    if head.to_tag or method == "CANCEL":
                        self._reply(text, 481, "Call/Transaction Does Not Exist", addr)
                    else:
                        self._reply(text, 403, "Forbidden", addr)
                return False
        to = sipmsg.response_address(head.first("Via"), addr)
        missing = sipmsg.missing_headers(head)
        if missing:
            # 400 and no state: one INVITE without CSeq kept the line busy until restart.
            self._refuse(f"{method} without {missing[0]}", addr, ", ".join(missing))
            if not is_ack:
                self._reply(text, 400, f"Bad Request (missing {', '.join(missing)})", to)
            return False
        if method == "OPTIONS":
            self._reply(text, 200, "OK", to, sipmsg.ALLOW + "Accept: application/sdp\r\n")
            return False
        if method not in sipmsg.SUPPORTED:
            if method in sipmsg.KNOWN_UNSUPPORTED:
                self._reply(text, 405, "Method Not Allowed", to, sipmsg.ALLOW)
            else:
                self._reply(text, 501, "Not Implemented", to, sipmsg.ALLOW)
            return False
        return True

    def _handle(self, raw: bytes, addr: tuple[str, int]) -> None:
        if raw.strip(b"\r\n\x00") == b"":
            return  # keep-alive
        data = sipmsg.normalize(raw) if enabled("headers") else raw
        text = data.decode("utf-8", errors="replace")
        head = sipmsg.parse_head(text)
        if head is None:
            return self._refuse("unparsable message", addr, repr(data[:40]))
        if not head.is_request and not self.trusted(addr):
            return self._refuse("response from a stranger", addr, str(head.status))
        if head.is_request and not self._screen(head, text, addr):
            return
        offer: sipmsg.Offer | None = None
        refusal = ""
        if head.method == "INVITE" and "\r\n\r\n" in text and text.split("\r\n\r\n", 1)[1]:
            # The SDP is read here and pyVoIP gets only the one audio stream we use.
            head_text, body = text.split("\r\n\r\n", 1)
            try:
                offer = sipmsg.parse_offer(body)
                data = (head_text + "\r\n\r\n" + sipmsg.pyvoip_body(offer)).encode("utf-8")
            except sipmsg.SdpRefused as exc:
                refusal = str(exc) or "unusable SDP offer"
                data = (head_text + "\r\n\r\n").encode("utf-8")
        try:
            msg = SIP.SIPMessage(data)
        except Exception as exc:  # pyVoIP's parser raises anything; it dropped such messages
            log.warning("unparsable SIP message from %s:%s (%s)", *addr, exc)
            if head.is_request and head.method != "ACK":
                self._reply(text, 400, "Bad Request", sipmsg.response_address(
                    head.first("Via"), addr))
            return
        msg.source = addr  # type: ignore[attr-defined]
        msg.text = text  # type: ignore[attr-defined]
        msg.head = head  # type: ignore[attr-defined]
        msg.offer = offer  # type: ignore[attr-defined]
        msg.refusal = refusal  # type: ignore[attr-defined]
        if msg.type == SIP.SIPMessageType.RESPONSE:
            method = msg.headers.get("CSeq", {}).get("method", "")
            self.responses[(method, int(msg.status))] += 1
            if method == "REGISTER":
                self._on_register_response(msg)
            elif method == "BYE":
                self._on_bye_response(msg)
            elif method == "INVITE":
                self.phone._on_invite_response(msg)  # type: ignore[attr-defined]
            return
        self.phone._on_request(msg)  # type: ignore[attr-defined]

    # -- Call-IDs

    def gen_call_id(self) -> str:
        if enabled("call_id"):
            return sipmsg.new_call_id(self.myIP)
        return super().gen_call_id()

    # -- registration

    def _set_status(self, status: LineStatus) -> None:
        if status != self.status:
            self.status = status
            # The status string may name the server, never a caller: safe at INFO.
            log.info("line %s", status)
            if self.on_status is not None:
                _spawn(self.on_status, status, name="sip-status")

    def _register_text(self, expires: int, auth: str = "") -> str:
        self._reg_cseq += 1
        contact = f"<sip:{self.username}@{self.myIP}:{self.myPort};transport=udp>"
        return (f"REGISTER sip:{self.server}:{self.port} SIP/2.0\r\n"
                + f"Via: SIP/2.0/UDP {self.myIP}:{self.myPort};branch={sipmsg.new_branch()};"
                + "rport\r\nMax-Forwards: 70\r\n"
                + f"From: <sip:{self.username}@{self.server}>;tag={self.tagLibrary['register']}"
                + f"\r\nTo: <sip:{self.username}@{self.server}>\r\n"
                + f"Call-ID: {self._reg_call_id}\r\nCSeq: {self._reg_cseq} REGISTER\r\n"
                + f"Contact: {contact}\r\nExpires: {expires}\r\n{auth}"
                + f"User-Agent: {USER_AGENT}\r\nContent-Length: 0\r\n\r\n")

    def _register(self) -> None:
        if not self.NSD:
            return
        if not enabled("register"):
            return self._register_pyvoip()
        if self.status.state is not LineState.REGISTERED:
            self._set_status(LineStatus(LineState.REGISTERING))
        self._reg_timer_gen += 1
        self._reg_pending = {"authed": False, "gen": self._reg_timer_gen}
        try:
            self._send(self._register_text(self.default_expires))
        except OSError as exc:
            return self._reg_retry(LineState.RETRYING, f"cannot send to registrar: {exc}")
        gen = self._reg_timer_gen
        self.later(REGISTER_TIMEOUT_S, lambda: self._register_timeout(gen))

    def _register_pyvoip(self) -> None:
        """pyVoIP's behaviour: three failures stop the phone, with no reason given."""
        self._reg_pending = {"authed": False, "gen": -1, "pyvoip": True}
        self._send(self._register_text(self.default_expires))

        def check() -> None:
            if self.status.state is not LineState.REGISTERED:
                self._reg_failures += 1
                if self._reg_failures >= pyVoIP.REGISTER_FAILURE_THRESHOLD:
                    self.NSD = False
                    self.status = LineStatus(LineState.FAILED)
                    return
                self._register_pyvoip()
        self.later(REGISTER_TIMEOUT_S, check)

    def _register_timeout(self, gen: int) -> None:
        if self._reg_pending is not None and self._reg_pending.get("gen") == gen:
            self._reg_pending = None
            self._reg_retry(LineState.RETRYING,
                            f"no answer from registrar {self.server}:{self.port}")

    def _reg_retry(self, state: LineState, detail: str, delay: float | None = None) -> None:
        if delay is None:
            delay = RETRY_BACKOFF_S[min(self._reg_failures, len(RETRY_BACKOFF_S) - 1)]
        self._reg_failures += 1
        self._set_status(LineStatus(state, detail, delay))
        self._reg_timer_gen += 1
        gen = self._reg_timer_gen
        self.later(delay, lambda: gen == self._reg_timer_gen and self._register())

    def _on_register_response(self, msg: SIP.SIPMessage) -> None:
        pending = self._reg_pending
        if pending is None or msg.headers.get("Call-ID") != self._reg_call_id:
            return
        code = int(msg.status)
        if code < 200:
            return
        text: str = msg.text  # type: ignore[attr-defined]
        if code in (401, 407):
            if pending["authed"]:
                self._reg_pending = None
                if pending.get("pyvoip"):
                    return
                return self._reg_retry(
                    LineState.FAILED, f"wrong user name or password ({code} after "
                    "credentials)", AUTH_FAILED_RETRY_S)
            name = "WWW-Authenticate" if code == 401 else "Proxy-Authenticate"
            values = sipmsg.header_values(text, name)
            if not values:
                self._reg_pending = None
                return self._reg_retry(LineState.FAILED, f"{code} without a challenge")
            challenge = sipmsg.parse_challenge(values[0])
            uri = f"sip:{self.server}:{self.port}"
            value = sipmsg.digest_authorization(challenge, "REGISTER", uri, self.username,
                                                self.password)
            header = "Authorization" if code == 401 else "Proxy-Authorization"
            pending["authed"] = True
            self._send(self._register_text(self.default_expires, f"{header}: {value}\r\n"))
            return
        self._reg_pending = None
        self._reg_timer_gen += 1  # cancels the pending timeout
        if code == 200:
            self._reg_failures = 0
            expires = self.default_expires
            for v in sipmsg.header_values(text, "Expires"):
                if sipmsg.is_number(v):  # not isdigit: "²" passed it and int() raised
                    expires = int(v)
            for v in sipmsg.header_values(text, "Contact"):
                for part in v.split(";"):
                    if part.strip().startswith("expires=") and sipmsg.is_number(
                            part.split("=")[1]):
                        expires = int(part.split("=")[1])
            self._set_status(LineStatus(LineState.REGISTERED, f"{self.server}:{self.port}"))
            gen = self._reg_timer_gen
            self.later(max(5.0, expires * 0.8), lambda: gen == self._reg_timer_gen
                       and self._register())
        elif code == 403:
            self._reg_retry(LineState.FAILED, "registrar refused the account (403 Forbidden)",
                            AUTH_FAILED_RETRY_S)
        else:
            reason = msg.heading.decode("utf-8", "replace").split(" ", 2)[-1]
            self._reg_retry(LineState.RETRYING, f"registrar answered {code} {reason}")

    # -- BYE

    def send_bye(self, dialog: sipmsg.Dialog) -> None:
        """BYE with our Via, retransmitted (Timer E: T1, 2T1, … capped at 4 s) until a final
        response or 64*T1 (32 s)."""
        cseq = dialog.next_cseq()
        text = sipmsg.build_bye(dialog, self.myIP, self.myPort, USER_AGENT, cseq,
                                sipmsg.new_branch())
        key = (dialog.call_id, cseq)
        tx = {"text": text, "interval": T1, "deadline": time.monotonic() + 64 * T1}
        self._byes[key] = tx
        self._send(text)
        self.later(T1, lambda: self._retransmit_bye(key))

    def _retransmit_bye(self, key: tuple[str, int]) -> None:
        tx = self._byes.get(key)  # gone once answered
        if tx is None or not self.NSD:
            return
        if time.monotonic() > tx["deadline"]:
            log.warning("BYE got no answer within 32 s")
            self._byes.pop(key, None)
            return
        self._send(tx["text"])
        tx["interval"] = min(tx["interval"] * 2, 4.0)
        self.later(tx["interval"], lambda: self._retransmit_bye(key))

    def _on_bye_response(self, msg: SIP.SIPMessage) -> None:
        if int(msg.status) < 200:
            return
        key = (msg.headers.get("Call-ID"), int(msg.headers["CSeq"]["check"]))
        self._byes.pop(key, None)  # type: ignore[arg-type]

    def bye_answered(self, call_id: str) -> bool:
        """True when no BYE of ours for ``call_id`` is still waiting for its answer."""
        return not any(k[0] == call_id for k in self._byes)


# --- RTP ------------------------------------------------------------------------------------

_DECODE = {RTP.PayloadType.PCMU: ulaw_decode, RTP.PayloadType.PCMA: alaw_decode}


def _ip_of(host: str) -> str:
    """``host`` as a dotted IPv4 address (SDP c= lines may name a host); itself if that
    fails, so nothing matches a name that does not resolve."""
    try:
        return socket.gethostbyname(host)
    except (OSError, UnicodeError):
        return host


def _to_8bit(pcm: np.ndarray) -> np.ndarray:
    """pyVoIP's audio path: 16-bit → 8-bit unsigned → 16-bit (audioop.lin2lin width 1)."""
    return (np.asarray(pcm, dtype=np.int16).astype(np.int32) >> 8 << 8).astype(np.int16)


class FixedRTPClient(RTP.RTPClient):
    """One RTP stream of a call, int16 8 kHz in and out (same constructor as pyVoIP's).

    Receive: packets decoded and placed on the call timeline by timestamp
    (:class:`ReceiveTimeline`); telephone-events become DTMF digits. Send: 20 ms packets on
    an absolute schedule (:class:`SendSchedule`) from a write queue, silence when it is empty.
    Timeline origin: :attr:`t0`, the monotonic time of :meth:`start`.
    """

    def __init__(self, assoc: dict[int, RTP.PayloadType], inIP: str, inPort: int, outIP: str,
                 outPort: int, sendrecv: RTP.TransmitType,
                 dtmf: Callable[[str], None] | None = None) -> None:
        super().__init__(assoc, inIP, inPort, outIP, outPort, sendrecv, dtmf)
        self.pt_out = next((pt for pt, p in assoc.items()
                            if p in (RTP.PayloadType.PCMU, RTP.PayloadType.PCMA)), 0)
        self.codec_out = assoc.get(self.pt_out, RTP.PayloadType.PCMU)
        self.ssrc = random.getrandbits(32)
        self.seq0 = random.getrandbits(16)
        self.ts0 = random.getrandbits(32)
        self.t0: float | None = None
        self.timeline = ReceiveTimeline(rate=RATE)
        self._fifo: deque[np.ndarray] = deque()  # pyVoIP-style receive (fix rtp_timeline off)
        self._rlock = threading.Lock()
        self._out = SampleQueue()  # what write_pcm queued and the sender has not sent
        self.packets_in = 0
        self.packets_out = 0
        self.last_rx: float | None = None
        self._dtmf_rx = DtmfReceiver()
        self._threads: list[threading.Thread] = []
        self._stopped = False
        self.sending = True  # False while the far end holds the call (answer recvonly/inactive)
        # Media trust (issue 13): only the SDP-declared address, only its first SSRC.
        self.source: tuple[str, int] = (_ip_of(outIP), outPort)
        self.learned: tuple[str, int] | None = None  # same IP, another port (see _trusted)
        self.latched_ssrc: int | None = None
        self.dropped_foreign = 0  # packets from another address than the SDP declared
        self.dropped_ssrc = 0  # packets from it with another SSRC than the latched one

    @property
    def dropped_rtp(self) -> int:
        """Packets dropped by the media trust check (foreign address or SSRC)."""
        return self.dropped_foreign + self.dropped_ssrc

    def set_target(self, ip: str, port: int, sending: bool = True) -> None:
        """Where our RTP goes, as the SDP (offer or re-INVITE) declared it; ``sending``
        False while held. The one place the SDP-declared media address enters the RTP
        client, so it is also the only address media is accepted from (symmetric RTP), and
        each call (a re-INVITE) lets the next SSRC from it be latched anew (RFC 3550 lets a
        source change SSRC; we allow it only at a renegotiation). ``0.0.0.0`` (old-style
        hold) keeps the address media is accepted from."""
        self.outIP, self.outPort, self.sending = ip, port, sending and ip != "0.0.0.0"
        if ip != "0.0.0.0" and 0 < port < 65536:
            self.source = (_ip_of(ip), port)
        self.learned = None
        self.latched_ssrc = None

    def _trusted(self, addr: tuple[str, int]) -> bool:
        """Media is accepted from the SDP address (symmetric RTP). A far end that sends
        from another port of the same IP (SIPp, some gateways) is accepted only if that is
        where the first packet since the offer came from: the port is then learned and every
        other port refused. Any other IP is always refused."""
        if addr == self.source or addr == self.learned:
            return True
        if self.learned is None and self.latched_ssrc is None and addr[0] == self.source[0]:
            self.learned = addr
            return True
        return False

    @property
    def queued_samples(self) -> int:
        return self._out.queued

    @property
    def sent_samples(self) -> int:
        return self._out.taken

    @property
    def underrun_samples(self) -> int:
        """Silence the sender filled in because nothing was queued (samples)."""
        return self._out.padded

    def start(self) -> None:
        if self.t0 is not None:
            return  # pyVoIP calls start() from gen_ms on every renegotiation
        self.sin = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sout = self.sin
        self.sin.bind((self.inIP, self.inPort))
        self.sin.settimeout(0.1)
        self.t0 = time.monotonic()
        for fn, name in ((self._recv_loop, "rtp-rx"), (self._send_loop, "rtp-tx")):
            t = threading.Thread(target=fn, name=name, daemon=True)
            self._threads.append(t)
            t.start()

    def stop(self) -> None:
        """Idempotent; joins the threads (unless called from one of them)."""
        if self._stopped:
            return
        self._stopped = True
        self.NSD = False
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(timeout=1)
        if self.t0 is not None:
            with contextlib.suppress(OSError):
                self.sin.close()

    # -- receive

    def _recv_loop(self) -> None:
        while self.NSD:
            try:
                data, addr = self.sin.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            if enabled("rtp_latch") and not self._trusted((addr[0], addr[1])):
                self._dropped("foreign address")
                self.dropped_foreign += 1
                continue
            if looks_like_rtcp(data):
                continue  # RTCP multiplexed on the RTP port (RFC 5761): not audio
            try:
                pkt = parse_rtp(data)
            except RtpError as exc:
                log.debug("bad RTP packet: %s", exc)
                continue
            self._on_packet(pkt, time.monotonic())

    def _dropped(self, why: str) -> None:
        if self.dropped_rtp == 0:
            log.warning("RTP dropped (%s): media is accepted only from the SDP address "
                        "and its first SSRC", why)

    def _on_packet(self, pkt: RtpPacket, now: float) -> None:
        if enabled("rtp_latch"):
            if self.latched_ssrc is None:
                self.latched_ssrc = pkt.ssrc
            elif pkt.ssrc != self.latched_ssrc:
                self._dropped("foreign SSRC")
                self.dropped_ssrc += 1
                return
        self.packets_in += 1
        self.last_rx = now
        kind = self.assoc.get(pkt.payload_type)
        if kind is RTP.PayloadType.EVENT:
            digit = self._dtmf_rx.feed(pkt)
            if digit is not None and self.dtmf is not None:
                self.dtmf(digit)
            return
        decode = _DECODE.get(kind) if kind is not None else None
        if decode is None:
            return  # comfort noise or a codec we did not offer
        pcm = decode(pkt.payload)
        if not enabled("rtp_pcm16"):
            pcm = _to_8bit(pcm)
        arrival = round((now - (self.t0 or now)) * RATE)
        with self._rlock:
            if enabled("rtp_timeline"):
                self.timeline.push(pkt, pcm, arrival)
            else:
                self._fifo.append(pcm)

    def read_pcm(self, upto: int) -> np.ndarray:
        """Received audio up to call-timeline sample ``upto`` (see base.Call.read)."""
        with self._rlock:
            if enabled("rtp_timeline"):
                return self.timeline.read(upto)
            # pyVoIP: whatever has arrived, in arrival order; gaps simply vanish.
            chunks = list(self._fifo)
            self._fifo.clear()
        return np.concatenate(chunks) if chunks else np.zeros(0, np.int16)

    # -- send

    def write_pcm(self, pcm: np.ndarray) -> None:
        self._out.add(pcm)

    def _encode(self, frame: np.ndarray) -> bytes:
        if not enabled("rtp_pcm16"):
            frame = _to_8bit(frame)
        if self.codec_out is RTP.PayloadType.PCMA and enabled("rtp_pcma"):
            return alaw_encode(frame)
        return ulaw_encode(frame)  # PCMU, or pyVoIP's PCMA bug

    def _packet(self, index: int, frame: np.ndarray) -> bytes:
        return build_rtp(RtpPacket(
            payload_type=self.pt_out, sequence=(self.seq0 + index) & 0xFFFF,
            timestamp=(self.ts0 + index * FRAME) & 0xFFFFFFFF, ssrc=self.ssrc,
            payload=self._encode(frame), marker=index == 0))

    def _send_loop(self) -> None:
        if not enabled("rtp_clock"):
            return self._send_loop_pyvoip()
        sched = SendSchedule(self.t0 or time.monotonic(), ptime=FRAME / RATE)
        while self.NSD:
            time.sleep(sched.sleep_for(time.monotonic()))
            for _ in range(sched.due(time.monotonic())):
                if not self.NSD:
                    return
                self._sendto(self._packet(sched.packet_index, self._out.take(FRAME)))
                sched.sent()

    def _send_loop_pyvoip(self) -> None:
        index = 0
        while self.NSD:
            last = time.monotonic()
            self._sendto(self._packet(index, self._out.take(FRAME)))
            index += 1
            time.sleep(max(0.0, FRAME / RATE - (time.monotonic() - last)))

    def _sendto(self, data: bytes) -> None:
        if not self.sending:
            return  # held: the schedule (timestamps) runs on, nothing is sent
        try:
            self.sout.sendto(data, (self.outIP, self.outPort))
            self.packets_out += 1
        except OSError as exc:
            log.debug("RTP send failed: %s", exc)


# --- calls and the phone ----------------------------------------------------------------------


class FixedCall(VoIP.VoIPCall):
    """A pyVoIP call with a dialog record, fixed RTP clients, and one way to end."""

    def __init__(self, phone: FixedPhone, callstate: VoIP.CallState, request: SIP.SIPMessage,
                 session_id: int, myIP: str, ms: dict[int, Any] | None = None,
                 sendmode: Any = "sendonly") -> None:
        self.ports: list[int] = []
        self.dialog: sipmsg.Dialog | None = None
        self.end_reason: CallEnd | None = None
        self.end_detail = ""
        self.ended_event = threading.Event()
        self.bye_sent_at: float | None = None  # time.monotonic() when our BYE left
        self.answered_at: float | None = None
        self.ringing_tag: str | None = None
        self._end_lock = threading.Lock()
        self.offer: sipmsg.Offer | None = getattr(request, "offer", None)
        self.sdp_version = 0
        self.acked = True  # False from a 2xx we sent until its ACK
        # Media timeout: silence is counted from here (the answer, or the moment media was
        # expected again after a hold) or the last RTP packet, whichever is later.
        self.media_quiet_since: float | None = None
        self.last_answer: str | None = None  # our last 2xx to an INVITE (retransmissions)
        try:
            super().__init__(phone, callstate, request, session_id, myIP, ms, sendmode)
        except Exception:
            phone.release_ports(self)  # the port pyVoIP took must not leak (issue 13)
            raise
        if callstate == VoIP.CallState.DIALING and ms:
            self.ports.extend(ms)

    # RTP clients: ours, and remember their ports so they are released when the call ends.
    def create_rtp_clients(self, codecs: dict[int, RTP.PayloadType], ip: str, port: int,
                           request: SIP.SIPMessage, baseport: int) -> None:
        if port not in self.ports:
            self.ports.append(port)
        if not any(p in (RTP.PayloadType.PCMU, RTP.PayloadType.PCMA) for p in codecs.values()):
            return  # no codec in common: the INVITE is refused with 488
        if self.RTPClients:
            return  # one audio stream, one RTP client (pyVoIP made one per m- and c= line)
        self.RTPClients.append(FixedRTPClient(
            codecs, ip, port, request.body["c"][0]["address"], baseport,
            self.sendmode, dtmf=self.dtmf_callback))

    @property
    def rtp(self) -> FixedRTPClient | None:
        return self.RTPClients[0] if self.RTPClients else None  # type: ignore[return-value]

    # -- dialog (issue 13)

    def in_dialog(self, head: sipmsg.Head) -> bool:
        """The request belongs to this call's dialog: Call-ID and both tags (RFC 3261
        §12.2.2). pyVoIP matched the Call-ID only: a BYE with made-up tags ended calls."""
        d = self.dialog
        return (d is not None and head.call_id == d.call_id and head.from_tag == d.remote_tag
                and head.to_tag == d.local_tag)

    def apply_offer(self, offer: sipmsg.Offer) -> None:
        """Point our RTP where the offer's audio stream is; hold (sendonly, inactive,
        0.0.0.0) stops our sending, receiving and recording go on."""
        self.offer = offer
        ip, port = offer.target()
        if self.rtp is not None:
            self.rtp.set_target(ip, port, offer.answer_direction in ("sendrecv", "sendonly"))
        # A new offer (hold, resume, new address): the media timeout counts from now.
        self.media_quiet_since = time.monotonic()

    @property
    def media_expected(self) -> bool:
        """True when the far end should be sending us RTP: its last offer was sendrecv on a
        real address. A hold (sendonly, inactive, recvonly, or c=0.0.0.0) is a known state
        in which silence on the wire is normal: the media timeout does not run then."""
        offer = self.offer
        if offer is None:
            return True  # our own call answered without a re-INVITE since: sendrecv
        return offer.direction == "sendrecv" and offer.target()[0] != "0.0.0.0"

    def watch_media(self) -> None:
        """Start the media timeout (from the answer): checked on the SIP thread's timers
        every quarter of the timeout (at most every second)."""
        timeout = self.phone.media_timeout_s
        if not timeout:
            return
        self.media_quiet_since = time.monotonic()
        step = min(1.0, timeout / 4)
        sip = self.phone.sip

        def check() -> None:
            if self.state != VoIP.CallState.ANSWERED or self.end_reason is not None:
                return
            now = time.monotonic()
            if not self.media_expected:
                self.media_quiet_since = now  # on hold: nothing is owed to us
            else:
                rtp = self.rtp
                last_rx = rtp.last_rx if rtp is not None else None
                last = max(last_rx or 0.0, self.media_quiet_since or now)
                if now - last >= timeout:
                    log.warning("no RTP from the far end for %.0f s: ending the call",
                                now - last)
                    _spawn(self._media_timeout, now - last, name="call-media-timeout")
                    return
            sip.later(step, check)
        sip.later(step, check)

    def _media_timeout(self, quiet_s: float) -> None:
        if self.dialog is not None and self.state == VoIP.CallState.ANSWERED:
            self.phone.sip.send_bye(self.dialog)
            self.bye_sent_at = time.monotonic()
        self.end(CallEnd.MEDIA_TIMEOUT, f"no RTP for {quiet_s:.0f} s (media timeout "
                 f"{self.phone.media_timeout_s:g} s)")

    def _answer_text(self, request: SIP.SIPMessage) -> str:
        """Our 200 OK with the SDP answer: the one audio stream, other m-lines port 0."""
        rtp = self.rtp
        assert rtp is not None and self.offer is not None
        payloads = {pt: f"{p}/{p.rate}" for pt, p in rtp.assoc.items()}
        self.sdp_version += 1
        body = sipmsg.build_answer_sdp(self.offer, self.myIP, rtp.inPort, payloads,
                                       self.session_id, self.sdp_version, USER_AGENT)
        sip = self.phone.sip
        extra = (f"Contact: <sip:{sip.username}@{self.myIP}:{sip.myPort}>\r\n" + sipmsg.ALLOW
                 + "Content-Type: application/sdp\r\n")
        return sipmsg.build_response(request.text, 200, "OK",  # type: ignore[attr-defined]
                                     self.ringing_tag, USER_AGENT, extra, body)

    def _send_2xx(self, text: str, request: SIP.SIPMessage) -> None:
        """Send our 2xx to an INVITE and retransmit it (T1, 2T1, … 4 s) until the ACK; with
        no ACK within the ACK timeout (Timer H, 64*T1 = 32 s) the call ends with a BYE
        (RFC 3261 §13.3.1.4). pyVoIP sent it once and never noticed a missing ACK: an
        answered INVITE that was never ACKed held the line for ever."""
        sip = self.phone.sip
        self.acked, self.last_answer = False, text
        sip.send_to_source(text, request)
        deadline = time.monotonic() + self.phone.ack_timeout_s
        step = [T1]

        def again() -> None:
            if self.acked or self.state != VoIP.CallState.ANSWERED or self.last_answer != text:
                return
            left = deadline - time.monotonic()
            if left <= 0:
                log.warning("no ACK within %.0f s: ending the call", self.phone.ack_timeout_s)
                _spawn(self._no_ack, name="call-no-ack")
                return
            sip.send_to_source(text, request)
            step[0] = min(step[0] * 2, 4.0)
            sip.later(min(step[0], left), again)
        sip.later(min(T1, self.phone.ack_timeout_s), again)

    def _no_ack(self) -> None:
        if self.dialog is not None and self.state == VoIP.CallState.ANSWERED:
            self.phone.sip.send_bye(self.dialog)
            self.bye_sent_at = time.monotonic()
        self.end(CallEnd.NO_ACK, f"no ACK within {self.phone.ack_timeout_s:g} s")

    def renegotiate(self, request: SIP.SIPMessage) -> None:
        """A re-INVITE in this dialog (hold, resume, new media address): answered to its
        source (pyVoIP answered the registrar: the far end retransmitted and the call broke)
        with the new SDP answer; the RTP client, the recording and recognition go on."""
        refusal = getattr(request, "refusal", "")
        if refusal:
            self.phone.sip.send_to_source(sipmsg.build_response(
                request.text, 488, "Not Acceptable Here", None,  # type: ignore[attr-defined]
                USER_AGENT), request)
            return  # the call goes on as it was
        offer = getattr(request, "offer", None)
        if offer is not None:
            self.apply_offer(offer)
        elif self.offer is None and self.rtp is not None:  # no SDP, our own call: our offer
            rtp = self.rtp
            self.offer = sipmsg.Offer([], rtp.outIP, [sipmsg.MediaLine(
                "audio", rtp.outPort, "RTP/AVP", [str(pt) for pt in rtp.assoc], [])], audio=0)
        if self.offer is None or self.rtp is None:
            self.phone.sip.send_to_source(sipmsg.build_response(
                request.text, 488, "Not Acceptable Here", None,  # type: ignore[attr-defined]
                USER_AGENT), request)
            return
        self._send_2xx(self._answer_text(request), request)

    def answer(self) -> None:
        if self.state != VoIP.CallState.RINGING:
            raise VoIP.InvalidStateError("Call is not ringing")
        self.gen_ms()  # starts RTP
        text = self._answer_text(self.request)
        self.state = VoIP.CallState.ANSWERED
        self.answered_at = time.monotonic()
        self._send_2xx(text, self.request)
        self.watch_media()
        self.phone._answered(self)

    def deny(self) -> None:
        if self.state != VoIP.CallState.RINGING:
            raise VoIP.InvalidStateError("Call is not ringing")
        text = sipmsg.build_response(self.request.text, 486, "Busy Here",  # type: ignore[attr-defined]
                                     self.ringing_tag, USER_AGENT)
        self.phone.sip.send_to_source(text, self.request)
        self.end(CallEnd.DECLINED, "486 Busy Here")

    def hangup(self) -> None:
        """Idempotent. Active: BYE (fixed) then end; dialing: CANCEL; ringing: 486."""
        if self.state == VoIP.CallState.ENDED:
            return
        if self.state == VoIP.CallState.RINGING:
            return self.deny()
        if self.state == VoIP.CallState.DIALING:
            inv = self.phone.sip._invites.get(self.call_id)
            if inv is not None:
                self.phone.sip._send(sipmsg.build_cancel(inv["text"]))
            return self.end(CallEnd.CANCELLED, "cancelled by us")
        # BYE first: stopping RTP joins its threads (~100 ms), and the caller must not hear
        # silence in between. end() stops media right after.
        if enabled("bye") and self.dialog is not None:
            self.phone.sip.send_bye(self.dialog)
        else:
            self.sip.bye(self.request)  # pyVoIP: wrong Via, sent once
        self.bye_sent_at = time.monotonic()
        self.end(CallEnd.LOCAL_HANGUP, "BYE sent")

    def bye(self) -> None:
        self.end(CallEnd.REMOTE_HANGUP, "BYE received")

    def end(self, reason: CallEnd, detail: str = "") -> None:
        """The one way a call ends: media stopped, ports released, table updated, once."""
        with self._end_lock:
            if self.end_reason is not None:
                return
            self.end_reason, self.end_detail = reason, detail
            self.state = VoIP.CallState.ENDED
        for x in self.RTPClients:
            x.stop()
        self.phone._ended(self)
        self.ended_event.set()

    def __del__(self) -> None:
        # pyVoIP released ports here, i.e. whenever the garbage collector got to it.
        if not enabled("call_table"):
            super().__del__()


class FixedPhone(VoIP.VoIPPhone):
    """VoIPPhone with the fixed SIP client, calls and RTP. Events go to the ``on_*``
    call-backs (each on its own thread)."""

    def __init__(self, server: str, port: int, username: str, password: str, myIP: str,
                 sipPort: int = 5060, rtpPortLow: int = 10000, rtpPortHigh: int = 20000,
                 on_incoming: Callable[[FixedCall], None] | None = None,
                 on_answered: Callable[[FixedCall], None] | None = None,
                 on_ended: Callable[[FixedCall], None] | None = None,
                 on_status: Callable[[LineStatus], None] | None = None,
                 allow: tuple[str, ...] = (), ack_timeout_s: float = ACK_TIMEOUT_S,
                 ring_timeout_s: float = RING_TIMEOUT_S,
                 media_timeout_s: float = MEDIA_TIMEOUT_S) -> None:
        if myIP in ("", "0.0.0.0"):
            # pyVoIP's default put 0.0.0.0 in the SDP: the far end sends media nowhere.
            raise ValueError("the SIP line needs an explicit local IP address (myIP), "
                             "not 0.0.0.0: it is written into the SDP for the far end")
        super().__init__(server, port, username, password, myIP=myIP, callCallback=None,
                         sipPort=sipPort, rtpPortLow=rtpPortLow, rtpPortHigh=rtpPortHigh)
        self.on_incoming, self.on_answered, self.on_ended = on_incoming, on_answered, on_ended
        self.sip = FixedSIPClient(server, port, username, password, phone=self, myIP=myIP,
                                  myPort=sipPort, on_status=on_status, allow=allow)
        self._table_lock = threading.RLock()
        self.ack_timeout_s = ack_timeout_s
        self.ring_timeout_s = ring_timeout_s
        self.media_timeout_s = media_timeout_s  # 0: off

    # -- status

    def get_status(self) -> Any:
        return self.sip.status

    def start(self) -> None:
        self.sip.start()
        self.NSD = True

    def stop(self, failed: bool = False) -> None:
        for call in list(self.calls.values()):
            with contextlib.suppress(Exception):
                call.hangup()
        self.sip.stop()
        self.NSD = False

    # -- ports

    def request_port(self, blocking: bool = True) -> int:
        with self.portsLock:
            free = [p for p in range(self.rtpPortLow, self.rtpPortHigh + 1, 2)
                    if p not in self.assignedPorts]
            if not free:
                raise VoIP.NoPortsAvailableError("no RTP ports left")
            port = random.choice(free)
            self.assignedPorts.append(port)
            return port

    def release_ports(self, call: VoIP.VoIPCall | None = None) -> None:
        if not enabled("call_table"):
            return super().release_ports(call)
        if isinstance(call, FixedCall):
            with self.portsLock:
                for p in call.ports:
                    if p in self.assignedPorts:
                        self.assignedPorts.remove(p)

    # -- events

    def _answered(self, call: FixedCall) -> None:
        if self.on_answered is not None:
            _spawn(self.on_answered, call, name="call-answered")

    def _ended(self, call: FixedCall) -> None:
        with self._table_lock:
            self.calls.pop(call.call_id, None)
        self.release_ports(call)
        if self.on_ended is not None:
            _spawn(self.on_ended, call, name="call-ended")

    def is_dialog_peer(self, call_id: str, addr: tuple[str, int]) -> bool:
        """``addr`` is the far end of the dialog ``call_id`` (its Contact), which may send
        in-dialog requests straight to us when the proxy does not record-route."""
        call: FixedCall | None = self.calls.get(call_id)  # type: ignore[assignment]
        if call is None or call.dialog is None or not call.dialog.remote_target:
            return False
        with contextlib.suppress(ValueError, IndexError):
            return sipmsg.host_port(call.dialog.remote_target) == addr
        return False

    def _respond(self, msg: SIP.SIPMessage, code: int, reason: str, tag: str | None = None,
                 extra: str = "") -> None:
        self.sip.send_to_source(sipmsg.build_response(
            msg.text, code, reason, tag, USER_AGENT, extra), msg)  # type: ignore[attr-defined]

    def _on_request(self, msg: SIP.SIPMessage) -> None:
        """INVITE, ACK, BYE, CANCEL that passed the transport checks. In-dialog requests
        must match the whole dialog — Call-ID, both tags, CSeq order (RFC 3261 §12.2.2);
        pyVoIP matched the Call-ID alone."""
        head: sipmsg.Head = msg.head  # type: ignore[attr-defined]
        call: FixedCall | None = self.calls.get(head.call_id)  # type: ignore[assignment]
        cseq = head.cseq[0] if head.cseq else 0
        if msg.method == "INVITE":
            if head.to_tag:  # re-INVITE
                return self._on_reinvite(msg, call, cseq)
            return self._on_invite(msg, call)
        if msg.method == "ACK":
            if call is not None and call.in_dialog(head) and call.dialog is not None \
                    and cseq == call.dialog.remote_cseq:
                call.acked = True
            else:
                self.sip.refused["ACK outside a dialog"] += 1
            return
        if msg.method == "BYE":
            if call is None or not call.in_dialog(head):
                self.sip._refuse("BYE outside a dialog", msg.source, head.call_id[:40])  # type: ignore[attr-defined]
                return self._respond(msg, 481, "Call/Transaction Does Not Exist")
            assert call.dialog is not None
            if cseq < call.dialog.remote_cseq:
                return self._respond(msg, 500, "Server Internal Error (CSeq out of order)")
            call.dialog.remote_cseq = cseq
            self._respond(msg, 200, "OK")
            call.bye()
            return
        if msg.method == "CANCEL":
            if not enabled("cancel"):  # pyVoIP: 200 to the registrar, the call rings on
                self.sip._send(self.sip.gen_ok(msg))
                return
            d = call.dialog if call is not None else None
            # A CANCEL matches the INVITE's transaction: its branch and From tag.
            if call is None or d is None or head.from_tag != d.remote_tag \
                    or head.branch != d.invite_branch or not call.ringing_tag:
                self.sip._refuse("CANCEL without its INVITE", msg.source, head.call_id[:40])  # type: ignore[attr-defined]
                return self._respond(msg, 481, "Call/Transaction Does Not Exist")
            self._respond(msg, 200, "OK")
            if call.state == VoIP.CallState.RINGING:
                self.sip.send_to_source(sipmsg.build_response(
                    call.request.text, 487, "Request Terminated",  # type: ignore[attr-defined]
                    call.ringing_tag, USER_AGENT), call.request)
                call.end(CallEnd.CANCELLED, "caller cancelled while ringing")

    def _on_reinvite(self, msg: SIP.SIPMessage, call: FixedCall | None, cseq: int) -> None:
        head: sipmsg.Head = msg.head  # type: ignore[attr-defined]
        if call is None or not call.in_dialog(head) or call.dialog is None:
            self.sip._refuse("re-INVITE outside a dialog", msg.source, head.call_id[:40])  # type: ignore[attr-defined]
            return self._respond(msg, 481, "Call/Transaction Does Not Exist")
        d = call.dialog
        if cseq < d.remote_cseq:
            return self._respond(msg, 500, "Server Internal Error (CSeq out of order)")
        if cseq == d.remote_cseq:  # a retransmission: our last answer again
            if call.last_answer is not None and not call.acked:
                self.sip.send_to_source(call.last_answer, msg)
            return
        if call.state != VoIP.CallState.ANSWERED:
            return self._respond(msg, 491, "Request Pending")
        d.remote_cseq = cseq
        call.renegotiate(msg)

    def _on_invite(self, msg: SIP.SIPMessage, existing: FixedCall | None) -> None:
        head: sipmsg.Head = msg.head  # type: ignore[attr-defined]
        if existing is not None:
            d = existing.dialog
            if d is None or head.from_tag != d.remote_tag or head.branch != d.invite_branch:
                # The same Call-ID from another dialog: a merged request (RFC 3261 §8.2.2.2).
                return self._respond(msg, 482, "Loop Detected")
            if existing.state == VoIP.CallState.RINGING and existing.ringing_tag:
                # A retransmitted INVITE: say we are still ringing.
                self._respond(msg, 180, "Ringing", existing.ringing_tag)
            elif existing.state == VoIP.CallState.ANSWERED and existing.last_answer \
                    and not existing.acked:
                self.sip.send_to_source(existing.last_answer, msg)
            return
        refusal = getattr(msg, "refusal", "")
        if refusal:
            # Refused at offer time, before any port or thread is taken (issue 13).
            log.info("incoming call refused: %s", refusal)
            return self._respond(msg, 488, "Not Acceptable Here", sipmsg.new_tag())
        if len(self.calls) >= MAX_CALLS:
            # A flood of INVITEs: no port, no thread, no call for those beyond the bound.
            self.sip.refused["INVITE beyond the call bound"] += 1
            return self._respond(msg, 486, "Busy Here", sipmsg.new_tag())
        sess_id = random.randint(1, 100000)
        try:
            call = FixedCall(self, VoIP.CallState.RINGING, msg, sess_id, self.myIP,
                             sendmode=self.recvmode)
        except Exception as exc:
            log.warning("cannot take an incoming call: %s", exc)
            return self._respond(msg, 488, "Not Acceptable Here", sipmsg.new_tag())
        if not call.RTPClients or call.offer is None:
            self.release_ports(call)
            return self._respond(msg, 488, "Not Acceptable Here", sipmsg.new_tag())
        call.apply_offer(call.offer)
        tag = self.sip.gen_tag()
        self.sip.tagLibrary[call.call_id] = tag
        call.ringing_tag = tag
        call.dialog = sipmsg.Dialog(
            call_id=call.call_id, local_uri=msg.headers["To"]["raw"], local_tag=tag,
            remote_uri=msg.headers["From"]["raw"], remote_tag=msg.headers["From"]["tag"],
            remote_target=sipmsg.uri_of(msg.headers.get("Contact", "")),
            route_set=_record_route(msg),
            local_cseq=random.randint(1, 10000),
            remote_cseq=head.cseq[0] if head.cseq else 0, invite_branch=head.branch)
        with self._table_lock:
            self.calls[call.call_id] = call
        self._respond(msg, 180, "Ringing", tag)
        # Nobody answers and nobody cancels: the call must not ring for ever (issue 13).
        self.sip.later(self.ring_timeout_s, lambda: self._ring_timeout(call))
        if self.on_incoming is None:
            return call.deny()
        handler = self.on_incoming
        if not enabled("call_table"):
            def handler(c: FixedCall, cb: Callable[[FixedCall], None] = self.on_incoming) -> None:
                cb(c)
                # pyVoIP: once the call-back thread has finished, the next port request's
                # clean-up deletes the call from the table; a later BYE finds no call.
                with self._table_lock:
                    self.calls.pop(c.call_id, None)
        if enabled("no_delay"):
            _spawn(self._guarded, handler, call, name="call-incoming")
        else:  # pyVoIP: Timer(1, callCallback)
            threading.Timer(1.0, self._guarded, [handler, call]).start()

    def _guarded(self, handler: Callable[[FixedCall], None], call: FixedCall) -> None:
        """The incoming-call call-back; if it fails the call must not stay ringing (one
        INVITE whose auto-answer failed kept the line busy until restart)."""
        try:
            handler(call)
        except Exception:
            log.exception("the incoming-call handler failed")
            if call.state == VoIP.CallState.RINGING:
                self._respond(call.request, 500, "Server Internal Error", call.ringing_tag)
                call.end(CallEnd.FAILED, "incoming-call handler failed")

    def _ring_timeout(self, call: FixedCall) -> None:
        if call.state == VoIP.CallState.RINGING and call.end_reason is None:
            self._respond(call.request, 480, "Temporarily Unavailable", call.ringing_tag)
            log.info("incoming call not answered within %g s: 480", self.ring_timeout_s)
            _spawn(call.end, CallEnd.RING_TIMEOUT,
                   f"not answered within {self.ring_timeout_s:g} s", name="call-ring-timeout")

    # -- outbound

    def call(self, number: str) -> FixedCall:
        port = self.request_port()
        medias = {port: {0: RTP.PayloadType.PCMU, 8: RTP.PayloadType.PCMA,
                         101: RTP.PayloadType.EVENT}}
        call_id = self.sip.gen_call_id()
        branch = sipmsg.new_branch()
        sess_id = random.randint(1, 100000)
        text = self.sip.gen_invite(number, str(sess_id), medias, RTP.TransmitType.SENDRECV,
                                   branch, call_id)
        call = FixedCall(self, VoIP.CallState.DIALING, SIP.SIPMessage(text.encode()), sess_id,
                         self.myIP, ms=medias, sendmode=self.sendmode)
        call.request.text = text  # type: ignore[attr-defined]
        with self._table_lock:
            self.calls[call_id] = call
        self.sip._invites[call_id] = {"text": text, "number": number, "sess": sess_id,
                                      "medias": medias, "auth": False}
        self.sip._send(text)
        # Nobody answers and the far end never gives up: our call must not ring for ever.
        self.sip.later(self.ring_timeout_s, lambda: self._dial_timeout(call))
        return call

    def _dial_timeout(self, call: FixedCall) -> None:
        """Our call rang unanswered for the ring timeout: CANCEL it (the far end answers
        487, which is ACKed as usual) and end it as a ring timeout."""
        if call.state != VoIP.CallState.DIALING or call.end_reason is not None:
            return
        inv = self.sip._invites.get(call.call_id)
        if inv is not None:
            self.sip._send(sipmsg.build_cancel(inv["text"]))
        log.info("outgoing call not answered within %g s: cancelled", self.ring_timeout_s)
        _spawn(call.end, CallEnd.RING_TIMEOUT, f"not answered within {self.ring_timeout_s:g} s",
               name="call-ring-timeout")

    def _on_invite_response(self, msg: SIP.SIPMessage) -> None:
        call_id = msg.headers.get("Call-ID")
        inv = self.sip._invites.get(call_id)  # type: ignore[arg-type]
        call: FixedCall | None = self.calls.get(call_id)  # type: ignore[arg-type, assignment]
        code = int(msg.status)
        if code < 200:
            return
        if code >= 300:
            if inv is not None:
                to = msg.headers["To"]
                to_line = to["raw"] + (f";tag={to['tag']}" if to["tag"] else "")
                self.sip._send(sipmsg.build_ack_non2xx(inv["text"], to_line))
            if code in (401, 407) and inv is not None and not inv["auth"] and call is not None:
                return self._invite_with_auth(inv, msg, code)
            if call is not None:
                reason = msg.heading.decode("utf-8", "replace").split(" ", 1)[-1]
                self.sip._invites.pop(call_id, None)  # type: ignore[arg-type]
                end = CallEnd.CANCELLED if code == 487 else CallEnd.REJECTED
                call.end(end, reason)
            return
        # 2xx
        if call is None or inv is None:
            return
        to = msg.headers["To"]
        rr = _record_route(msg)
        if call.dialog is None:
            call.dialog = sipmsg.Dialog(
                call_id=call.call_id, local_uri=msg.headers["From"]["raw"],
                local_tag=msg.headers["From"]["tag"], remote_uri=to["raw"],
                remote_tag=to["tag"], remote_target=sipmsg.uri_of(msg.headers.get("Contact", "")),
                route_set=list(reversed(rr)), local_cseq=int(msg.headers["CSeq"]["check"]),
                invite_cseq=int(msg.headers["CSeq"]["check"]))
        if enabled("ack_2xx"):
            self.sip._send(sipmsg.build_ack_2xx(call.dialog, self.myIP, self.sip.myPort,
                                                USER_AGENT))
        else:
            self.sip._send(self.sip.gen_ack(msg))
        if call.state == VoIP.CallState.DIALING:
            call.answered(msg)
            call.answered_at = time.monotonic()
            call.watch_media()
            self._answered(call)

    def _invite_with_auth(self, inv: dict[str, Any], msg: SIP.SIPMessage, code: int) -> None:
        name = "WWW-Authenticate" if code == 401 else "Proxy-Authenticate"
        values = sipmsg.header_values(msg.text, name)  # type: ignore[attr-defined]
        call: FixedCall = self.calls[msg.headers["Call-ID"]]  # type: ignore[assignment]
        if not values:
            return call.end(CallEnd.REJECTED, f"{code} without a challenge")
        inv["auth"] = True
        ruri = inv["text"].split(" ", 2)[1]
        value = sipmsg.digest_authorization(sipmsg.parse_challenge(values[0]), "INVITE", ruri,
                                            self.username, self.password)
        header = "Authorization" if code == 401 else "Proxy-Authorization"
        text = self.sip.gen_invite(inv["number"], str(inv["sess"]), inv["medias"],
                                   RTP.TransmitType.SENDRECV, sipmsg.new_branch(),
                                   msg.headers["Call-ID"])
        # Same From tag as the first INVITE (gen_invite made a new one).
        old_tag = inv["text"].split(";tag=", 1)[1].split("\r\n", 1)[0]
        new_tag = self.sip.tagLibrary[msg.headers["Call-ID"]]
        text = text.replace(f";tag={new_tag}\r\n", f";tag={old_tag}\r\n", 1)
        self.sip.tagLibrary[msg.headers["Call-ID"]] = old_tag
        text = text.replace("\r\nContent-Length", f"\r\n{header}: {value}\r\nContent-Length", 1)
        inv["text"] = text
        self.sip._send(text)
