"""The counselor's SIP line over pyVoIP (with :mod:`pyvoip_fixes`): the real
:class:`~callguard.telephony.base.Line`.

Configuration is a :class:`SipConfig`. The local IP written into SDP must be explicit; when
it is not configured it is the address the OS would use to reach the registrar.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from pyVoIP.VoIP import VoIP

from callguard.telephony.base import CallEnd, CallState, LineState, LineStatus
from callguard.telephony.pyvoip_fixes import FixedCall, FixedPhone
from callguard.vocabulary import Direction


@dataclass(frozen=True)
class SipConfig:
    """``server``/``port``: the registrar (office PBX). ``local_ip``: address for SIP and
    RTP, written into SDP ("" = detect). ``sip_port`` 0 = any free port. RTP ports are
    taken in pairs from ``rtp_low``..``rtp_high``."""

    server: str
    user: str
    password: str
    port: int = 5060
    local_ip: str = ""
    sip_port: int = 5060
    rtp_low: int = 10000
    rtp_high: int = 20000
    auto_answer: bool = False
    register_expires: int = 120  # seconds asked for; refreshed at 80 % of what is granted
    # Trust and timeouts (issue 13): SIP requests are taken from the registrar/proxy, these
    # "host" / "host:port" entries and, in a dialog, its far end; no ACK for our 200 within
    # ack_timeout_s ends the call (Timer H, CallEnd.NO_ACK); a call nobody answers rings
    # ring_timeout_s (CallEnd.RING_TIMEOUT).
    allow: tuple[str, ...] = ()
    ack_timeout_s: float = 32.0
    ring_timeout_s: float = 120.0
    # An answered call with no RTP from the far end for this long (while it is not on hold)
    # ends with a BYE as a media timeout; 0 = never.
    media_timeout_s: float = 60.0


def local_ip_for(server: str, port: int) -> str:
    """The local address the OS routes to ``server`` (no packet is sent)."""
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_DGRAM)) as s:
        s.connect((server, port))
        return s.getsockname()[0]


_STATE = {VoIP.CallState.RINGING: CallState.RINGING, VoIP.CallState.DIALING: CallState.DIALING,
          VoIP.CallState.ANSWERED: CallState.ACTIVE, VoIP.CallState.ENDED: CallState.ENDED}


class SipCall:
    """:class:`~callguard.telephony.base.Call` over a :class:`FixedCall`."""

    def __init__(self, call: FixedCall, direction: Direction, remote: str) -> None:
        self._c = call
        self.call_id = call.call_id
        self.direction = direction
        self.remote = remote

    @property
    def state(self) -> CallState:
        return _STATE[self._c.state]

    @property
    def end_reason(self) -> CallEnd | None:
        return self._c.end_reason

    @property
    def end_detail(self) -> str:
        return self._c.end_detail

    @property
    def fixed(self) -> FixedCall:
        """The pyVoIP call underneath (tests and diagnostics)."""
        return self._c

    def answer(self) -> None:
        self._c.answer()

    def decline(self, busy: bool = True) -> None:
        if self._c.state == VoIP.CallState.RINGING:
            self._c.deny()

    def hangup(self) -> None:
        self._c.hangup()

    def wait_ended(self, timeout: float | None = None) -> bool:
        return self._c.ended_event.wait(timeout)

    def read(self, upto: int) -> np.ndarray:
        rtp = self._c.rtp
        if rtp is None:
            return np.zeros(0, np.int16)
        return rtp.read_pcm(upto)

    def write(self, pcm: np.ndarray) -> None:
        rtp = self._c.rtp
        if rtp is not None:
            rtp.write_pcm(pcm)

    @property
    def sent_samples(self) -> int:
        rtp = self._c.rtp
        return rtp.sent_samples if rtp is not None else 0

    @property
    def underrun_samples(self) -> int:
        rtp = self._c.rtp
        return rtp.underrun_samples if rtp is not None else 0

    @property
    def queued_samples(self) -> int:
        rtp = self._c.rtp
        return rtp.queued_samples if rtp is not None else 0

    @property
    def bye_sent_at(self) -> float | None:
        """``time.monotonic()`` when our BYE left the socket (None if we sent none)."""
        return self._c.bye_sent_at

    @property
    def media_start(self) -> float | None:
        """Monotonic time of sample 0 of the call timeline (RTP started), or None."""
        rtp = self._c.rtp
        return rtp.t0 if rtp is not None else None

    @property
    def dropped_rtp(self) -> int:
        """RTP packets dropped because they came from another address than the SDP
        declared or with another SSRC than the latched one (issue 13)."""
        rtp = self._c.rtp
        return rtp.dropped_rtp if rtp is not None else 0

    def dtmf(self) -> str:
        return self._c.get_dtmf(64)


def _remote_of(call: FixedCall, inbound: bool) -> str:
    h = call.request.headers.get("From" if inbound else "To", {})
    return str(h.get("number") or h.get("address") or "")


class SipLine:
    """:class:`~callguard.telephony.base.Line` on a real SIP registrar."""

    def __init__(self, config: SipConfig) -> None:
        self.config = config
        ip = config.local_ip or local_ip_for(config.server, config.port)
        self._handlers: dict[str, Callable | None] = dict.fromkeys(
            ("incoming", "ended", "answered", "status"))
        self._calls: dict[str, SipCall] = {}
        self._lock = threading.Lock()
        self.phone = FixedPhone(config.server, config.port, config.user, config.password,
                                myIP=ip, sipPort=config.sip_port, rtpPortLow=config.rtp_low,
                                rtpPortHigh=config.rtp_high, on_incoming=self._incoming,
                                on_answered=self._answered, on_ended=self._ended,
                                on_status=self._status, allow=tuple(config.allow),
                                ack_timeout_s=config.ack_timeout_s,
                                ring_timeout_s=config.ring_timeout_s,
                                media_timeout_s=config.media_timeout_s)
        self.phone.sip.default_expires = config.register_expires

    @property
    def local_ip(self) -> str:
        return self.phone.myIP

    @property
    def sip_port(self) -> int:
        return self.phone.sip.myPort

    @property
    def status(self) -> LineStatus:
        return self.phone.sip.status

    def set_handlers(self, *, on_incoming: Callable | None = None,
                     on_ended: Callable | None = None, on_answered: Callable | None = None,
                     on_status: Callable[[LineStatus], None] | None = None) -> None:
        self._handlers.update(incoming=on_incoming, ended=on_ended, answered=on_answered,
                              status=on_status)

    def start(self) -> None:
        self.phone.start()

    def stop(self) -> None:
        if self.phone.sip.NSD:
            self.phone.stop()

    def dial(self, number: str) -> SipCall:
        if self.status.state is not LineState.REGISTERED:
            raise RuntimeError(f"the line is not registered ({self.status})")
        fixed = self.phone.call(number)
        return self._wrap(fixed, Direction.OUTBOUND, number)

    def calls(self) -> list[SipCall]:
        with self._lock:
            return list(self._calls.values())

    # -- events from the phone's threads

    def _wrap(self, fixed: FixedCall, direction: Direction,
              remote: str | None = None) -> SipCall:
        with self._lock:
            call = self._calls.get(fixed.call_id)
            if call is None:
                call = SipCall(fixed, direction, remote if remote is not None
                               else _remote_of(fixed, direction == Direction.INBOUND))
                self._calls[fixed.call_id] = call
            return call

    def _incoming(self, fixed: FixedCall) -> None:
        call = self._wrap(fixed, Direction.INBOUND)
        cb = self._handlers["incoming"]
        if cb is not None:
            cb(call)
        elif self.config.auto_answer:
            call.answer()

    def _answered(self, fixed: FixedCall) -> None:
        cb = self._handlers["answered"]
        if cb is not None:
            cb(self._wrap(fixed, _direction_of(fixed)))

    def _ended(self, fixed: FixedCall) -> None:
        with self._lock:
            call = self._calls.pop(fixed.call_id, None)
        if call is None:
            call = SipCall(fixed, _direction_of(fixed),
                           _remote_of(fixed, bool(fixed.ringing_tag)))
        cb = self._handlers["ended"]
        if cb is not None:
            cb(call)

    def _status(self, status: LineStatus) -> None:
        cb = self._handlers["status"]
        if cb is not None:
            cb(status)


def _direction_of(fixed: FixedCall) -> Direction:
    """A call that rang here (it has our ringing tag) is inbound."""
    return Direction.INBOUND if fixed.ringing_tag else Direction.OUTBOUND
