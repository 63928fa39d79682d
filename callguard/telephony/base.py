"""The telephony interface the engine uses: a registered line and its calls.

Audio is int16 mono at 8000 Hz (:data:`RATE`). A call's timeline starts at 0 when it is
answered (inbound: when we send 200 OK; outbound: when the far end's 200 OK arrives);
positions on it are sample indices at 8 kHz. Received audio is placed on that timeline by
RTP timestamp, so silence and lost packets keep their length.

Callbacks (incoming call, call ended, line status) arrive on the line's own threads; an
asyncio user hops to its loop with ``call_soon_threadsafe``.

Implementations: :class:`callguard.telephony.sipline.SipLine` (pyVoIP, fixed) and
:class:`callguard.telephony.fake.FakeLine` (in memory, for tests and the demo).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from callguard.vocabulary import CallEnd, Direction

__all__ = ["FRAME", "RATE", "Call", "CallEnd", "CallState", "Line", "LineState", "LineStatus"]

RATE = 8000
FRAME = 160  # samples per 20 ms packet at 8 kHz


class LineState(enum.StrEnum):
    OFFLINE = "offline"  # not started, or stopped
    REGISTERING = "registering"
    REGISTERED = "registered"
    RETRYING = "retrying"  # registrar unreachable or refused; retrying with back-off
    FAILED = "failed"  # credentials refused: retrying slowly, an admin must act


@dataclass(frozen=True)
class LineStatus:
    state: LineState
    detail: str = ""  # human-readable: "wrong password (403 Forbidden)", "no answer from ..."
    retry_in_s: float | None = None

    def __str__(self) -> str:
        s = str(self.state)
        if self.detail:
            s += f": {self.detail}"
        if self.retry_in_s is not None:
            s += f" (retry in {self.retry_in_s:.0f} s)"
        return s


class CallState(enum.StrEnum):
    RINGING = "ringing"  # inbound, not answered yet
    DIALING = "dialing"  # outbound, no final answer yet
    ACTIVE = "active"
    ENDED = "ended"


class Call(Protocol):
    call_id: str
    direction: Direction
    remote: str  # the far end's number or URI: personal data, never log it at INFO

    @property
    def state(self) -> CallState: ...

    @property
    def end_reason(self) -> CallEnd | None: ...

    @property
    def end_detail(self) -> str: ...

    def answer(self) -> None:
        """Inbound and ringing: accept (200 OK); the timeline starts now."""

    def decline(self, busy: bool = True) -> None:
        """Inbound and ringing: refuse (486 Busy Here)."""

    def hangup(self) -> None:
        """End the call: BYE when active, CANCEL when dialing, 486 when ringing. Idempotent;
        never raises for a call already ended."""

    def read(self, upto: int) -> np.ndarray:
        """Far-end audio from the last read position up to sample ``upto`` (exclusive) of
        the call timeline: int16 at 8 kHz, zeros where nothing arrived."""

    def write(self, pcm: np.ndarray) -> None:
        """Queue int16 8 kHz audio to send to the far end, after what is queued. The
        sender sends 20 ms packets on an absolute clock and silence when the queue is empty."""

    @property
    def sent_samples(self) -> int:
        """Samples taken from the write queue and sent so far (silence fill excluded)."""

    @property
    def queued_samples(self) -> int:
        """Samples written but not sent yet."""

    @property
    def underrun_samples(self) -> int:
        """Silence the sender sent because nothing was queued when a packet was due (the
        writer was late). Audio written afterwards goes out that much later than planned;
        the engine drops as much microphone audio to stay on the call timeline."""

    def dtmf(self) -> str:
        """DTMF digits received (RFC 4733) since the last call."""

    @property
    def dropped_rtp(self) -> int:
        """Media packets refused so far: not from the address the far end's SDP declared,
        or not of the SSRC latched from it. 0 on a line without media checks."""
        return 0


class Line(Protocol):
    @property
    def status(self) -> LineStatus: ...

    def start(self) -> None:
        """Bind, register, and keep registered (retrying on failure) until ``stop``."""

    def stop(self) -> None:
        """Hang up every call, unregister, release sockets. Idempotent."""

    def dial(self, number: str) -> Call:
        """Place an outbound call; returns at once with a call in ``DIALING``."""

    def set_handlers(self, *, on_incoming: Callable[[Call], None] | None = None,
                     on_ended: Callable[[Call], None] | None = None,
                     on_answered: Callable[[Call], None] | None = None,
                     on_status: Callable[[LineStatus], None] | None = None) -> None:
        """Where events go. ``on_incoming`` gets ringing inbound calls (answer, decline or
        leave ringing); ``on_answered`` fires when a call becomes active (either direction)."""
