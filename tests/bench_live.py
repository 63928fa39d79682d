"""Live-call benchmark: the agent on a real SIP line (kamailio on 127.0.0.1 as the PBX,
baresip as the caller), printing JSON.

    python tests/bench_live.py                      # 10-minute call + 10 short calls
    python tests/bench_live.py --minutes 1 --short-calls 3

Measures (targets from issue 4):

- ``bye_latency_ms``: from the moment the policy's hangup is due (the ``hangup`` action's
  call time, i.e. after the final notice's last sample and the margin) to our BYE leaving
  the socket, per call (target ≤ 50 ms). ``far_end_closed_ms`` is the same interval to
  baresip reporting the call closed (adds the proxy hop and baresip's control socket).
- ``cpu_per_call``: the agent process's CPU time during the long call divided by its wall
  time, in cores (target ≤ 0.10). Recognition is excluded by construction: the recogniser
  returns nothing at no cost, so this is signalling, RTP, timeline, VAD, mixing, recording
  and the store.
- ``drift_ms``: the caller's audio carries a 50 ms beep every 10 s; in the stored recording,
  the worst deviation of a beep's position from where the first beep predicts it (target
  ≤ 20 ms over 10 minutes). The counselor leg carries beeps from the microphone file too.

Needs kamailio and baresip (``installer/install.sh --dev`` installs them). Everything stays
on 127.0.0.1; the call ends by the rules' inbound duration limit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fakerig import EventLog
from officepbx import agent_line, bob_calls_agent
from peers import Kamailio, missing_peers, write_wav
from rulestext import prompts, rules_toml

from callguard.asr.fake import ScriptedTranscriber
from callguard.audio.devices import FileDevice
from callguard.engine.engine import Engine
from callguard.store import Store
from callguard.vocabulary import HangupSent

RATE = 8000
BEEP_EVERY_S = 10.0
BEEP_S = 0.05

def beeps(seconds: float, hz: float, offset_s: float = 0.5) -> np.ndarray:
    """int16 8 kHz: silence with a 50 ms ``hz`` beep every 10 s starting at ``offset_s``."""
    x = np.zeros(int(seconds * RATE), np.int16)
    t = np.arange(int(BEEP_S * RATE)) / RATE
    beep = np.rint(12000 * np.sin(2 * np.pi * hz * t)).astype(np.int16)
    at = offset_s
    while at + BEEP_S < seconds:
        i = round(at * RATE)
        x[i : i + beep.size] = beep
        at += BEEP_EVERY_S
    return x


def onsets(x: np.ndarray, threshold: int = 4000) -> list[int]:
    """Sample positions where a beep starts (first sample above ``threshold`` after 1 s of
    quiet)."""
    loud = np.flatnonzero(np.abs(x.astype(np.int32)) > threshold)
    out: list[int] = []
    for i in loud:
        if not out or i - out[-1] > RATE:
            out.append(int(i))
    return out


def drift_ms(positions: list[int]) -> float | None:
    """Worst deviation (ms) of beep k from ``first + k * 10 s``."""
    if len(positions) < 2:
        return None
    first = positions[0]
    return max(abs(p - first - k * BEEP_EVERY_S * RATE) for k, p in enumerate(positions)) \
        / RATE * 1000


class Agent:
    def __init__(self, tmp: Path, pbx: Kamailio, limit_s: float, mic: Path) -> None:
        t = np.arange(int(1.0 * RATE)) / RATE
        write_wav(tmp / "final.wav", np.rint(6000 * np.sin(2 * np.pi * 700 * t)).astype(
            np.int16))
        # Never hit: the call ends by the inbound duration limit alone.
        rules = rules_toml("live benchmark", inbound={"final_at": f"{limit_s}s"},
                           prompts=prompts("duration_final"),
                           rules=[{"id": "bench.never", "category": "insult",
                                   "terms": ["벤치마크전용단어"]}])
        (tmp / "rules.toml").write_text(rules, encoding="utf-8")
        self.db = tmp / "calls.db"
        self.log = EventLog()
        self.events = self.log.events
        self.wait = self.log.wait
        self.line = agent_line(pbx, 33000, 33998)
        self.engine = Engine(line=self.line, rules_path=tmp / "rules.toml", store_path=self.db,
                             transcriber_factory=lambda: ScriptedTranscriber([]),
                             device_factory=lambda call: FileDevice(mic, None),
                             auto_answer=True, on_event=self.log, counselor="agent")


def one_call(agent: Agent, pbx: Kamailio, tmp: Path, seconds: float, limit_s: float,
             long: bool) -> dict:
    """One inbound call of about ``limit_s`` ended by the duration limit."""
    src = write_wav(tmp / "caller.wav", beeps(seconds, 1000.0))
    n_events = len(agent.events)
    with bob_calls_agent(pbx, src) as bob:
        agent.wait("answered", 15, after=n_events)
        cpu0, wall0 = time.process_time(), time.monotonic()
        ended = agent.wait("ended", limit_s + 30, after=n_events)
        cpu1, wall1 = time.process_time(), time.monotonic()
        bob.wait_event("CALL_CLOSED", 10)
        closed_at = time.monotonic()
    runner = agent.engine.finished[-1]
    hangup = [e for e in runner.session.timeline if isinstance(e, HangupSent)]
    due = runner.call.media_start + hangup[0].at_s if hangup else None
    out = {
        "end_reason": ended.data["reason"],
        "bye_latency_ms": None if due is None or runner.control.bye_sent_at is None
        else (runner.control.bye_sent_at - due) * 1000,
        "far_end_closed_ms": None if due is None else (closed_at - due) * 1000,
        "parts_ms": None if due is None or runner.control.bye_sent_at is None else [
            round((runner.control.decided_at - due) * 1000, 1),
            round((runner.control.drained_at - runner.control.decided_at) * 1000, 1),
            round((runner.control.bye_sent_at - runner.control.drained_at) * 1000, 1)],
        "steps": len(runner.step_s),
        "step_ms_p99": float(np.percentile(runner.step_s, 99) * 1000) if runner.step_s else None,
        "faults": runner.faults,
    }
    if long:
        out["cpu_cores"] = (cpu1 - cpu0) / (wall1 - wall0)
        out["wall_s"] = wall1 - wall0

        async def legs():
            async with Store.open(agent.db) as store:
                sid = ended.data["store_id"]
                return (await store.read_audio(sid, "caller"),
                        await store.read_audio(sid, "counselor"))
        caller, counselor = asyncio.run(legs())
        # Beeps before the limit only: the final notice is loud too.
        end = int((limit_s - 0.5) * RATE)
        c = onsets(np.frombuffer(caller, "<i2")[:end])
        m = onsets(np.frombuffer(counselor, "<i2")[:end])
        out["caller_beeps"], out["counselor_beeps"] = len(c), len(m)
        out["drift_ms_caller"] = drift_ms(c)
        out["drift_ms_counselor"] = drift_ms(m)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="length of the long call")
    ap.add_argument("--short-calls", type=int, default=10, help="calls for BYE latency")
    args = ap.parse_args(argv)
    missing = missing_peers("kamailio", "baresip")
    if missing:
        print(json.dumps({"error": f"missing SIP peers: {missing}"}))
        return 2
    long_s = args.minutes * 60
    with tempfile.TemporaryDirectory(prefix="callguard-bench-") as d, \
            Kamailio({"agent": "agentpw", "bob": "bobpw"}) as pbx:
        tmp = Path(d)
        pbx.wait_ready()
        mic = write_wav(tmp / "mic.wav", beeps(long_s + 60, 1500.0, offset_s=0.0))
        results = []
        short_limit = 4.0
        plan = [(tmp / "long", long_s, int(long_s > 0), True),
                (tmp / "short", short_limit, args.short_calls, False)]
        for workdir, limit_s, calls, long in plan:
            if not calls:
                continue
            workdir.mkdir()
            agent = Agent(workdir, pbx, limit_s, mic)
            agent.engine.start()
            try:
                agent.wait("status", 15, pred=lambda ev: str(ev.data.state) == "registered")
                for _ in range(calls):
                    results.append(one_call(agent, pbx, workdir, limit_s + 30, limit_s, long))
            finally:
                agent.engine.stop()
    long = results[0] if args.minutes > 0 else {}
    byes = [r["bye_latency_ms"] for r in results if r["bye_latency_ms"] is not None]
    far = [r["far_end_closed_ms"] for r in results if r["far_end_closed_ms"] is not None]
    report = {
        "benchmark": "live_call",
        "long_call_s": long_s,
        "calls": len(results),
        "end_reasons": sorted({r["end_reason"] for r in results}),
        "bye_latency_ms": {"p50": statistics.median(byes), "max": max(byes),
                           "target_max": 50} if byes else None,
        "far_end_closed_ms": {"p50": statistics.median(far), "max": max(far)} if far else None,
        "cpu_cores_per_call": long.get("cpu_cores"), "cpu_target_max": 0.10,
        "recognition": "excluded (a recogniser that returns nothing)",
        "step_ms_p99": long.get("step_ms_p99"),
        "drift_ms_caller": long.get("drift_ms_caller"),
        "drift_ms_counselor": long.get("drift_ms_counselor"), "drift_target_max": 20,
        "beeps": [long.get("caller_beeps"), long.get("counselor_beeps")],
        "faults": sum(r["faults"] for r in results),
    }
    report["bye_parts_ms"] = {"dispatch_drain_send": [r["parts_ms"] for r in results]}
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
