"""The office PBX of the tests with real SIP peers: kamailio on 127.0.0.1 with the agent's
account (``agent``, password ``agentpw``) and the callers' (``bob``, ...); bob calling the
agent; and the agent's side of it: its SIP line's settings, in code and as a settings file
for ``callguard run``, and a bare line that keeps its calls.

A test module gets the PBX as its ``pbx`` fixture with ``pbx = pbx_fixture(...)``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from peers import HOST, Baresip, Kamailio, require_peers

from callguard.telephony.sipline import SipCall, SipConfig, SipLine

AGENT_AND_BOB = {"agent": "agentpw", "bob": "bobpw"}
"""User -> password: the agent and one caller."""


def pbx_fixture(*peers: str, users: dict[str, str] = AGENT_AND_BOB, shared: bool = False):
    """A pytest fixture named ``pbx``: kamailio with ``users`` (user -> password), ready
    for REGISTER. It skips first when a binary of ``peers`` (``"kamailio"``, ``"baresip"``,
    ``"sipp"``) is missing, and when ``shared``, when ../shared/data is missing."""
    # Here, not at the top: bench_live.py runs without pytest and imports this module.
    import pytest
    from conftest import require_shared

    @pytest.fixture(name="pbx")
    def pbx():
        require_peers(*peers)
        if shared:
            require_shared()
        with Kamailio(users) as k:
            k.wait_ready()
            yield k

    return pbx


@contextmanager
def bob_calls_agent(pbx: Kamailio, src: Path) -> Iterator[Baresip]:
    """Bob (baresip), registered on ``pbx``, calls ``agent`` and plays ``src`` (a WAV) once,
    hanging up at its end; yields bob once he has dialled, stops him after."""
    with Baresip("bob", "bobpw", pbx, source_wav=src, source_pad_s=0) as bob:
        bob.wait_registered()
        bob.dial(pbx.uri("agent"))
        yield bob


def agent_sip(pbx: Kamailio, rtp_low: int, rtp_high: int, *, password: str = "agentpw",
              **settings) -> SipConfig:
    """The settings of a line registering as ``agent`` (with ``password``) on ``pbx``, from
    127.0.0.1 on a free SIP port, RTP on ports ``rtp_low`` to ``rtp_high``; ``settings``:
    any other of :class:`SipConfig`."""
    return SipConfig(server=HOST, port=pbx.port, user="agent", password=password,
                     local_ip=HOST, sip_port=0, rtp_low=rtp_low, rtp_high=rtp_high, **settings)


def agent_line(pbx: Kamailio, rtp_low: int, rtp_high: int, **settings) -> SipLine:
    """A :class:`SipLine` on :func:`agent_sip`'s settings (not started)."""
    return SipLine(agent_sip(pbx, rtp_low, rtp_high, **settings))


class BareLine:
    """A SIP line alone (no engine) with its calls as they come (``incoming``, the last
    one's ``time.monotonic()`` in ``incoming_at``) and as they end (``ended``);
    ``answer`` makes it answer every call at once. ``handlers``: the line's other
    handlers (``on_status``). Leaving the ``with`` block stops the line."""

    def __init__(self, line: SipLine, *, answer: bool = False, **handlers) -> None:
        self.incoming: list[SipCall] = []
        self.ended: list[SipCall] = []
        self.got_call = threading.Event()
        self.got_end = threading.Event()
        self.answer = answer
        self.line = line
        self.line.set_handlers(on_incoming=self._incoming, on_ended=self._ended, **handlers)

    def _incoming(self, call: SipCall) -> None:
        self.incoming.append(call)
        self.incoming_at = time.monotonic()
        if self.answer:
            call.answer()
        self.got_call.set()

    def _ended(self, call: SipCall) -> None:
        self.ended.append(call)
        self.got_end.set()

    def __exit__(self, *exc) -> None:
        self.line.stop()


def agent_settings(pbx: Kamailio, rules: Path, db: Path, *, rtp_low: int, rtp_high: int,
                   auto_answer: bool = False) -> str:
    """A settings file (TOML) for ``callguard run``: the ``[sip]`` of :func:`agent_sip`
    (with ``auto_answer = true`` when ``auto_answer``), the rules file ``rules`` and the
    store ``db``."""
    answer = "auto_answer = true\n" if auto_answer else ""
    return f"""
[sip]
server = "{HOST}"
port = {pbx.port}
user = "agent"
password = "agentpw"
local_ip = "{HOST}"
sip_port = 0
rtp_low = {rtp_low}
rtp_high = {rtp_high}
{answer}
[rules]
path = "{rules}"

[store]
path = "{db}"
"""
