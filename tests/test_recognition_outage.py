"""Recognition unavailable, said plainly (issue 13, "recognition unavailable").

A real ``callguard run`` registered to kamailio on 127.0.0.1, called by baresip, whose
recogniser runs in its own process as the real model does (``callguard.asr.process``; a tone
recogniser there, so the call's course is known: a burst with the marker tone is heard as
abuse). Mid-call, between utterances, the recogniser's process is killed (SIGKILL, as the OOM
killer would). The agent must notice it then — not only at the next utterance — and say so:
its status line (``recognition: UNAVAILABLE: ...`` on stdout, a line on stderr), a fault
kept with the call in progress, ``recognition: ok`` once a new process is ready, and that
kept with the call too. The new process hears the caller's next burst, which ends the call.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from fakerig import ABUSE_HZ, rules_text
from officepbx import bob_calls_agent, pbx_fixture
from peers.baresip import write_wav
from synth import call_audio
from test_agent_runtime import Agent

pytestmark = pytest.mark.slow

# ``callguard run`` whose recogniser is the tone fake in a child process (the same command,
# wiring, engine, line, store and process machinery otherwise).
CHILD_AGENT = f"""\
import sys

import callguard.engine.wiring as wiring
from callguard.asr.process import child_factory, tone_spec

SCRIPT = {{{ABUSE_HZ!r}: "이 새끼야"}}
wiring.transcriber_factory = lambda settings, **kw: child_factory(tone_spec(SCRIPT))

from callguard.cli.main import main

sys.exit(main(sys.argv[1:]))
"""


pbx = pbx_fixture("kamailio", "baresip")


def recogniser_pids(parent: int) -> list[int]:
    """Children of ``parent`` running ``python -m callguard.asr.process``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == parent and b"callguard.asr.process" in cmdline:
            found.append(int(entry.name))
    return found


def test_a_killed_recogniser_is_reported_and_kept_with_the_call(pbx, tmp_path):
    a = Agent(pbx, tmp_path, rules_text())
    a.script.write_text(CHILD_AGENT, encoding="utf-8")
    a.start()
    try:
        (first,) = recogniser_pids(a.proc.pid)
        # Abuse at 0.5 s (a warning), the recogniser killed at about 4 s, abuse again at
        # 10 s: heard by the new recogniser, it ends the call (final notice).
        audio = call_audio([(0.5, 1.2, ABUSE_HZ), (10.0, 1.2, ABUSE_HZ)], 20.0)
        src = write_wav(tmp_path / "caller.wav", audio)
        with bob_calls_agent(pbx, src) as bob:
            bob.wait_event("CALL_ESTABLISHED", 10)
            a.wait_out("prompt   warning", 10)  # the first burst was heard: the recogniser is idle
            time.sleep(1.0)
            os.kill(first, signal.SIGKILL)
            killed = time.monotonic()
            a.wait_out("recognition: UNAVAILABLE", 10)
            noticed = time.monotonic() - killed
            a.wait_out("recognition: ok", 30)
            back = time.monotonic() - killed
            bob.wait_event("CALL_CLOSED", 30)
        a.wait_out("call ended", 10)
        second = recogniser_pids(a.proc.pid)
    finally:
        assert a.stop() == 0
    print(f"outage noticed {noticed:.2f} s after the kill, over {back:.2f} s after it")
    print(a.out)
    assert "callguard run: recognition unavailable: " in a.err, a.err
    line = next(ln for ln in a.out.splitlines() if "recognition: UNAVAILABLE" in ln)
    assert "SIGKILL" in line and "restarting" in line, line
    assert second and second != [first]
    (rec,) = a.calls()
    faults = [(x.t_s, x.detail) for x in rec.actions if x.kind == "fault"]
    print("faults:", faults)
    down = [f for f in faults if f[1].startswith("recognition: unavailable")]
    up = [f for f in faults if f[1] == "recognition: available again"]
    assert len(down) == 1 and len(up) == 1, faults  # once per outage, and when it is back
    assert "SIGKILL" in down[0][1]
    assert 2.0 < down[0][0] <= up[0][0] < 10.0, faults  # during the call, before 2nd burst
    # The new recogniser heard the second burst: the call ended on the final notice.
    assert rec.end_reason == "final_notice", rec.end_reason
