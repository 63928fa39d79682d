"""Each pyVoIP 1.6.8 fix against a real peer (kamailio + baresip on 127.0.0.1): with the
fix the behaviour is right; with it disabled (pyVoIP's own behaviour) the same test shows
the defect. See callguard/telephony/pyvoip_fixes.py for the list."""

from __future__ import annotations

import time

import numpy as np
import pytest
from audiocheck import snr_db
from officepbx import BareLine, agent_line, pbx_fixture
from peers.baresip import Baresip, read_wav
from peers.kamailio import Kamailio

from callguard.telephony.base import CallEnd, CallState, LineState
from callguard.telephony.pyvoip_fixes import disabled
from callguard.telephony.sipline import SipCall, SipConfig, SipLine

pytestmark = pytest.mark.slow
RATE = 8000


pbx = pbx_fixture("kamailio", "baresip")


class Agent(BareLine):
    """The agent's SipLine alone (no engine) with its events and its statuses."""

    def __init__(self, pbx: Kamailio, password: str = "agentpw", **cfg) -> None:
        self.statuses = []
        super().__init__(agent_line(pbx, 33000, 33998, password=password, **cfg),
                         on_status=self.statuses.append)

    def wait_state(self, state: LineState, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while self.line.status.state is not state:
            if time.monotonic() > deadline:
                raise TimeoutError(f"line is {self.line.status}, not {state}")
            time.sleep(0.05)

    def __enter__(self) -> Agent:
        self.line.start()
        return self


def _ring(pbx, agent, bob) -> float:
    bob.wait_registered()
    t0 = time.monotonic()
    bob.dial(pbx.uri("agent"))
    assert agent.got_call.wait(5), "the INVITE never reached the agent"
    return agent.incoming_at - t0


def _answered(pbx, agent, bob) -> SipCall:
    """Bob calls the agent, which answers; returns the agent's call once established."""
    agent.answer = True
    agent.wait_state(LineState.REGISTERED)
    _ring(pbx, agent, bob)
    bob.wait_event("CALL_ESTABLISHED", 5)
    return agent.incoming[0]


@pytest.mark.parametrize("fixed", [True, False], ids=["fixed", "pyvoip"])
def test_inbound_call_is_handed_over_at_once(pbx, fixed):
    with (disabled() if fixed else disabled("no_delay")), Agent(pbx) as agent, \
            Baresip("bob", "bobpw", pbx) as bob:
        agent.wait_state(LineState.REGISTERED)
        if fixed:
            # Control, in this run: the same ring handed over the pyVoIP way; then cancelled.
            with disabled("no_delay"):
                control = _ring(pbx, agent, bob)
            since = len(bob.events)
            bob.hangup()
            assert agent.got_end.wait(5), "the control ring was not cancelled"
            bob.wait_event("CALL_CLOSED", 5, since=since)
            agent.got_call.clear()
        took = _ring(pbx, agent, bob)
    if fixed:
        # Against the control, not fixed seconds (was < 0.3 s): 2-3 ms against 1.0 s here.
        assert took < control / 4, (took, control)
    else:
        assert took >= 1.0, took  # pyVoIP's fixed 1 s Timer


@pytest.mark.parametrize("fixed", [True, False], ids=["fixed", "pyvoip"])
def test_cancel_while_ringing_ends_the_call(pbx, fixed):
    with (disabled() if fixed else disabled("cancel")), Agent(pbx) as agent, \
            Baresip("bob", "bobpw", pbx) as bob:
        agent.wait_state(LineState.REGISTERED)
        _ring(pbx, agent, bob)
        call = agent.incoming[0]
        bob.hangup()  # still ringing: baresip sends CANCEL
        ended = agent.got_end.wait(3)
        if fixed:
            assert ended and call.end_reason is CallEnd.CANCELLED
            assert bob.wait_event("CALL_CLOSED", 5)
        else:
            assert not ended and call.state is CallState.RINGING  # rings on for ever
        assert call.state is (CallState.ENDED if fixed else CallState.RINGING)


@pytest.mark.parametrize("fixed", [True, False], ids=["fixed", "pyvoip"])
def test_our_bye_is_answered(pbx, fixed):
    with (disabled() if fixed else disabled("bye")), Agent(pbx) as agent, \
            Baresip("bob", "bobpw", pbx) as bob:
        call = _answered(pbx, agent, bob)
        call.hangup()
        time.sleep(1.0)
        ok = agent.line.phone.sip.responses[("BYE", 200)]
        answered = agent.line.phone.sip.bye_answered(call.call_id)
    assert call.end_reason is CallEnd.LOCAL_HANGUP
    if fixed:
        assert ok == 1 and answered
    else:
        # pyVoIP's BYE carried the INVITE's Vias: the 200 OK went to the caller itself.
        assert ok == 0


@pytest.mark.parametrize("fixed", [True, False], ids=["fixed", "pyvoip"])
def test_calls_leave_the_table_when_they_end_and_free_their_ports(pbx, fixed):
    with (disabled() if fixed else disabled("call_table")), Agent(pbx) as agent, \
            Baresip("bob", "bobpw", pbx, source_pad_s=30) as bob:
        agent.answer = True
        agent.wait_state(LineState.REGISTERED)
        bob.wait_registered()
        for i in range(3):
            agent.got_call.clear()
            agent.got_end.clear()
            since = len(bob.events)
            bob.dial(pbx.uri("agent"))
            assert agent.got_call.wait(5)
            bob.wait_event("CALL_ESTABLISHED", 5, since=since)
            time.sleep(0.3)
            bob.hangup()  # the caller hangs up: its BYE must find the call
            ended = agent.got_end.wait(3)
            if not fixed:
                break
            assert ended, f"call {i} did not end on the caller's BYE"
        ports = list(agent.line.phone.assignedPorts)
        calls = dict(agent.line.phone.calls)
    if fixed:
        assert ports == [] and calls == {}
    else:
        # pyVoIP dropped the call from its table when the call-back returned: the BYE got
        # 481, the call never ended, and its RTP port stayed taken.
        assert not ended and ports != []


def test_call_ids_differ_across_restarts(pbx):
    def first_call_id(fixed: bool) -> str:
        with (disabled() if fixed else disabled("call_id")):
            line = SipLine(SipConfig(server="127.0.0.1", port=pbx.port, user="agent",
                                     password="agentpw", local_ip="127.0.0.1", sip_port=0))
            return line.phone.sip.gen_call_id()
    assert first_call_id(True) != first_call_id(True)
    # pyVoIP hashed a counter starting at 1: every restart repeats the same Call-IDs.
    assert first_call_id(False) == first_call_id(False)


def test_wrong_password_gives_a_clear_status_and_keeps_retrying(pbx):
    with Agent(pbx, password="wrong") as agent:
        agent.wait_state(LineState.FAILED, 5)
        status = agent.line.status
        assert "password" in status.detail or "403" in status.detail, status
        assert status.retry_in_s is not None and agent.line.phone.sip.NSD  # not stopped


def test_registrar_down_and_back(pbx):
    with Agent(pbx, register_expires=2) as agent:
        agent.wait_state(LineState.REGISTERED)
        pbx.stop()
        agent.wait_state(LineState.RETRYING, 10)
        assert "no answer from registrar" in agent.line.status.detail
        pbx.start()
        pbx.wait_ready()
        agent.wait_state(LineState.REGISTERED, 40)
        assert pbx.registered("agent")


@pytest.mark.parametrize("fixed", [True, False], ids=["fixed", "pyvoip"])
def test_sent_audio_reaches_the_far_end_at_g711_quality(pbx, fixed):
    # A chirp sweeping the telephone band at -30 dBFS (a quiet talker): what baresip hears,
    # against what we sent. G.711 keeps ~37 dB at any level; 8-bit linear loses 6 dB per
    # halving of the level.
    t = np.arange(2 * RATE) / RATE
    chirp = np.rint(1000 * np.sin(2 * np.pi * (300 * t + 800 * t ** 2))).astype(np.int16)
    with (disabled() if fixed else disabled("rtp_pcm16")), Agent(pbx) as agent, \
            Baresip("bob", "bobpw", pbx) as bob:
        call = _answered(pbx, agent, bob)
        call.write(chirp)
        time.sleep(2.6)
        call.hangup()
        bob.wait_event("CALL_CLOSED", 5)
        heard, _ = read_wav(bob.received_wav())
    snr = snr_db(chirp, heard)
    if fixed:
        assert snr > 30, snr  # G.711's own limit is ~37 dB
    else:
        assert snr < 25, snr


def _lateness(rtp, window: float = 0.1) -> tuple[float, float]:
    """How late (seconds) the sender's packets leave against their 20 ms slots from
    ``rtp.t0``, and the resolution of that figure: ``packets_out`` polled every ~0.2 ms for
    ``window`` seconds, the least lateness of the packets seen (polling only adds delay),
    and the longest interval between two polls."""
    seen: list[float] = []
    count, last = rtp.packets_out, time.monotonic()
    step, end = 0.0, last + window
    while (now := time.monotonic()) < end:
        step, last = max(step, now - last), now
        if rtp.packets_out != count:
            count = rtp.packets_out
            seen.append(now - (rtp.t0 + (count - 1) * 0.020))
        time.sleep(0.0002)
    return min(seen), step


@pytest.mark.parametrize("fixed", [True, False], ids=["fixed", "pyvoip"])
def test_send_clock_does_not_drift(pbx, fixed):
    with (disabled() if fixed else disabled("rtp_clock")), Agent(pbx) as agent, \
            Baresip("bob", "bobpw", pbx) as bob:
        call = _answered(pbx, agent, bob)
        rtp = call.fixed.rtp
        time.sleep(1.0)
        early, early_step = _lateness(rtp)
        time.sleep(8.9)
        late, late_step = _lateness(rtp)
        elapsed = time.monotonic() - rtp.t0
        sent = rtp.packets_out
        call.hangup()
    drift_ms = (elapsed - sent * 0.020) * 1000  # > 0: behind schedule
    if fixed:
        assert abs(drift_ms) < 25, drift_ms  # never more than about one 20 ms packet off
    else:
        # pyVoIP's relative sleeps fall further behind with every packet, by this machine's
        # sleep overshoot (a fixed "> 30 ms in 10 s" pinned that). So, both measured in this
        # call: its lateness 9 s on has grown far beyond what the polling resolves. Here it
        # grew 46-57 ms, resolution 0.4-0.6 ms; the fixed clock's grew 0.02-0.06 ms.
        grown = late - early
        assert grown > 10 * max(early_step, late_step), (early, late, early_step, late_step)
