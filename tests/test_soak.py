"""The soak program, bounded (issue 13, item 9): 1,000 generated hostile SIP messages and
as many RTP packets against a live ``callguard run`` registered to kamailio on 127.0.0.1,
with a SIPp canary call after every 500. The agent must never die, never be unregistered,
answer and record every canary (the caller's tone, its whole length), log no traceback, and
stop cleanly with no call left open. The full run is ``python3 -m callguard.bench.soak
--messages 10000 --json`` (README, Fuzzing and soak).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from peers import require_peers

pytestmark = pytest.mark.slow


def test_a_bounded_soak_keeps_the_line_up_and_every_canary_recorded():
    require_peers("kamailio", "sipp")
    run = subprocess.run(
        [sys.executable, "-m", "callguard.bench.soak", "--messages", "1000",
         "--canary-every", "500", "--seed", "7", "--max-minutes", "3", "--json"],
        capture_output=True, text=True, timeout=240, check=False)
    assert run.stdout.strip(), run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    print(json.dumps(out, ensure_ascii=False))
    assert out["messages_sent"] == 1000
    assert out["rtp_packets_sent"] >= 1000
    assert set(out["messages_by_channel"]) == {"stranger", "allowed", "proxy"}
    assert out["crashes"] == 0, out.get("crash_notes")
    assert out["register_checks"] > 0 and out["times_not_registered"] == 0
    assert out["canaries_placed"] == 2
    assert out["canaries_answered"] == 2 and out["canaries_recorded"] == 2, \
        out.get("failed_canaries")
    assert out["canary_audio_ratio_min"] >= 0.9
    assert out["canary_floods_on_its_port"] >= 1  # a stranger's RTP flood hit a canary's port
    assert out["agent_tracebacks"] == 0, out.get("workdir")
    assert out["agent_exit_code"] == 0
    assert out["calls_stored"] >= 2 and out["calls_left_open"] == 0
    # The hostile traffic got answers of every kind: refused strangers, bad requests, calls.
    assert {"403", "400"} <= set(out["answers_received"]), out["answers_received"]
    assert run.returncode == 0
