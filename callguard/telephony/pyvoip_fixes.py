"""Every fix callguard needs in pyVoIP, in one place, for exactly pyVoIP 1.6.8.

pyVoIP 1.6.8 out of the box fails against RFC-compliant peers (measured against baresip and
kamailio on loopback; see ../shared/DESIGN.md). Each defect has a named fix below; tests turn
one off with :func:`disabled` and show the failure against a real peer, then turn it on and
show it gone. With a fix disabled the code takes pyVoIP's own path (or, inside the RTP client,
reproduces pyVoIP's behaviour exactly where that path cannot be reused, e.g. 8-bit audio).

The fixes are subclasses, not monkey-patches: :class:`FixedPhone` is a ``VoIPPhone`` whose SIP
client, calls and RTP clients are the fixed ones here. Only :mod:`callguard.telephony.sipline`
uses them.

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
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.on_status = on_status
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
        """Responses go back where the request came from (RFC 3581 symmetric response);
        pyVoIP sent them all to the registrar."""
        self._send(text, getattr(request, "source", None))

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

    def _handle(self, raw: bytes, addr: tuple[str, int]) -> None:
        if raw.strip(b"\r\n\x00") == b"":
            return  # keep-alive
        data = sipmsg.normalize(raw) if enabled("headers") else raw
        try:
            msg = SIP.SIPMessage(data)
        except Exception as exc:  # pyVoIP's parser raises anything; it dropped such messages
            log.warning("unparsable SIP message from %s:%s dropped (%s)", *addr, exc)
            return
        msg.source = addr  # type: ignore[attr-defined]
        msg.text = data.decode("utf-8", errors="replace")  # type: ignore[attr-defined]
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
        method = msg.method
        if method in ("INVITE", "BYE", "CANCEL", "ACK"):
            self.phone._on_request(msg)  # type: ignore[attr-defined]
        elif method == "OPTIONS":
            self.send_to_source(sipmsg.build_response(msg.text, 200, "OK", None, USER_AGENT,
                                                      "Allow: INVITE, ACK, BYE, CANCEL, "
                                                      "OPTIONS\r\n"), msg)
        else:
            self.send_to_source(sipmsg.build_response(msg.text, 405, "Method Not Allowed",
                                                      None, USER_AGENT), msg)

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
                if v.isdigit():
                    expires = int(v)
            for v in sipmsg.header_values(text, "Contact"):
                for part in v.split(";"):
                    if part.strip().startswith("expires=") and part.split("=")[1].isdigit():
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
                data = self.sin.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            if looks_like_rtcp(data):
                continue  # RTCP multiplexed on the RTP port (RFC 5761): not audio
            try:
                pkt = parse_rtp(data)
            except RtpError as exc:
                log.debug("bad RTP packet: %s", exc)
                continue
            self._on_packet(pkt, time.monotonic())

    def _on_packet(self, pkt: RtpPacket, now: float) -> None:
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
        super().__init__(phone, callstate, request, session_id, myIP, ms, sendmode)
        if callstate == VoIP.CallState.DIALING and ms:
            self.ports.extend(ms)

    # RTP clients: ours, and remember their ports so they are released when the call ends.
    def create_rtp_clients(self, codecs: dict[int, RTP.PayloadType], ip: str, port: int,
                           request: SIP.SIPMessage, baseport: int) -> None:
        if port not in self.ports:
            self.ports.append(port)
        if not any(p in (RTP.PayloadType.PCMU, RTP.PayloadType.PCMA) for p in codecs.values()):
            return  # no codec in common: the INVITE is refused with 488
        for ii in range(len(request.body["c"])):
            self.RTPClients.append(FixedRTPClient(
                codecs, ip, port, request.body["c"][ii]["address"], baseport + ii,
                self.sendmode, dtmf=self.dtmf_callback))

    @property
    def rtp(self) -> FixedRTPClient | None:
        return self.RTPClients[0] if self.RTPClients else None  # type: ignore[return-value]

    def answer(self) -> None:
        if self.state != VoIP.CallState.RINGING:
            raise VoIP.InvalidStateError("Call is not ringing")
        m = self.gen_ms()
        text = self.sip.gen_answer(self.request, self.session_id, m, self.sendmode)
        self.phone.sip.send_to_source(text, self.request)
        self.state = VoIP.CallState.ANSWERED
        self.answered_at = time.monotonic()
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
                 on_status: Callable[[LineStatus], None] | None = None) -> None:
        if myIP in ("", "0.0.0.0"):
            # pyVoIP's default put 0.0.0.0 in the SDP: the far end sends media nowhere.
            raise ValueError("the SIP line needs an explicit local IP address (myIP), "
                             "not 0.0.0.0: it is written into the SDP for the far end")
        super().__init__(server, port, username, password, myIP=myIP, callCallback=None,
                         sipPort=sipPort, rtpPortLow=rtpPortLow, rtpPortHigh=rtpPortHigh)
        self.on_incoming, self.on_answered, self.on_ended = on_incoming, on_answered, on_ended
        self.sip = FixedSIPClient(server, port, username, password, phone=self, myIP=myIP,
                                  myPort=sipPort, on_status=on_status)
        self._table_lock = threading.RLock()

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

    def _on_request(self, msg: SIP.SIPMessage) -> None:
        call_id = msg.headers["Call-ID"]
        call: FixedCall | None = self.calls.get(call_id)  # type: ignore[assignment]
        if msg.method == "INVITE":
            return self._on_invite(msg, call)
        if msg.method == "ACK":
            return
        if msg.method == "BYE":
            if call is None:
                self.sip.send_to_source(sipmsg.build_response(
                    msg.text, 481, "Call/Transaction Does Not Exist", None, USER_AGENT), msg)
                return
            self.sip.send_to_source(sipmsg.build_response(msg.text, 200, "OK", None,
                                                          USER_AGENT), msg)
            call.bye()
            return
        if msg.method == "CANCEL":
            if not enabled("cancel"):  # pyVoIP: 200 to the registrar, the call rings on
                self.sip._send(self.sip.gen_ok(msg))
                return
            self.sip.send_to_source(sipmsg.build_response(msg.text, 200, "OK", None,
                                                          USER_AGENT), msg)
            if call is not None and call.state == VoIP.CallState.RINGING:
                self.sip.send_to_source(sipmsg.build_response(
                    call.request.text, 487, "Request Terminated",  # type: ignore[attr-defined]
                    call.ringing_tag, USER_AGENT), call.request)
                call.end(CallEnd.CANCELLED, "caller cancelled while ringing")

    def _on_invite(self, msg: SIP.SIPMessage, existing: FixedCall | None) -> None:
        if existing is not None:
            if existing.state == VoIP.CallState.RINGING and existing.ringing_tag:
                # A retransmitted INVITE: say we are still ringing.
                self.sip.send_to_source(sipmsg.build_response(
                    msg.text, 180, "Ringing", existing.ringing_tag, USER_AGENT), msg)
            elif existing.state == VoIP.CallState.ANSWERED:
                existing.renegotiate(msg)
            return
        sess_id = random.randint(1, 100000)
        try:
            call = FixedCall(self, VoIP.CallState.RINGING, msg, sess_id, self.myIP,
                             sendmode=self.recvmode)
        except Exception as exc:
            log.warning("cannot take an incoming call: %s", exc)
            self.sip.send_to_source(sipmsg.build_response(
                msg.text, 488, "Not Acceptable Here", sipmsg.new_tag(), USER_AGENT), msg)
            return
        if not call.RTPClients:
            self.release_ports(call)
            self.sip.send_to_source(sipmsg.build_response(
                msg.text, 488, "Not Acceptable Here", sipmsg.new_tag(), USER_AGENT), msg)
            return
        tag = self.sip.gen_tag()
        self.sip.tagLibrary[call.call_id] = tag
        call.ringing_tag = tag
        call.dialog = sipmsg.Dialog(
            call_id=call.call_id, local_uri=msg.headers["To"]["raw"], local_tag=tag,
            remote_uri=msg.headers["From"]["raw"], remote_tag=msg.headers["From"]["tag"],
            remote_target=sipmsg.uri_of(msg.headers.get("Contact", "")),
            route_set=_record_route(msg),
            local_cseq=random.randint(1, 10000))
        with self._table_lock:
            self.calls[call.call_id] = call
        self.sip.send_to_source(sipmsg.build_response(msg.text, 180, "Ringing", tag,
                                                      USER_AGENT), msg)
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
            _spawn(handler, call, name="call-incoming")
        else:  # pyVoIP: Timer(1, callCallback)
            threading.Timer(1.0, handler, [call]).start()

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
        return call

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
