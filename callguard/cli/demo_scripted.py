"""``callguard demo`` without recorded speech: the demo's call from a scripted transcript.

Used when no recorded Korean speech is found (a user's machine has no ``../shared``) or
with ``callguard demo --scripted``. The call runs through the same pipeline as the recorded
demo (:func:`callguard.cli.call_cmd.run`: session, policy, prompts, hangup, store); only
the recogniser is the stand-in of :mod:`callguard.demo.scripted`, and the screen says so:
the banner first, then every transcript line marked ``[scripted]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from dataclasses import replace
from pathlib import Path

from callguard.cli.timeline import clock, event_record, format_event
from callguard.demo import scripted
from callguard.demo.scenario import speech_candidates
from callguard.session.call import SessionConfig
from callguard.sim.runner import RunInfo
from callguard.vocabulary import CallEvent, Direction, Transcribed

BANNER = """\
callguard demo — SCRIPTED TRANSCRIPT: no speech recognition in this run
  • {why}
  • The transcript lines below are scripted, not heard. Each is a tone burst in the call
    audio at the call time the line has in the recorded demo, and a stand-in recogniser
    returns the scripted line when the voice detector closes it. Whisper is not loaded.
  • Nobody in it is abusive. The demo rules ({rules}) make two
    ordinary phrases stand in for abuse: "몰라" (an insult) and "절대로 안 할" (a threat).
    One warning, then the final notice; the duration notice comes at 40 s, not 15 min.
  • Everything after the recogniser is the real session: G.711 telephone audio, webrtcvad,
    Kiwi rules, escalation, the warning and the final notice played to its end (their
    length estimated from their text: no audio device), the hangup, and the SQLite store,
    where the call is kept as a demo call noted as scripted.
  • To see speech recognition:
      callguard simulate YOUR_CALL.wav     a recording of your own (mono = caller;
                                           stereo = caller left, counselor right)
      CALLGUARD_SPEECH_DATA=DIR callguard demo
                                           the recorded-speech demo: DIR holds the
                                           KsponSpeech utterances k001.wav … k040.wav
  Scripted transcript (caller left, counselor right):
{script}
"""

TAG = "[scripted]"


def why(forced: bool) -> str:
    """The banner's first point: why this run is scripted and, if no speech was found,
    where the demo looked (one folder a line)."""
    if forced:
        return ("--scripted was given: recorded speech is not used even where it is found,\n"
                "    so this run uses a scripted transcript instead of speech recognition.")
    env = os.environ.get("CALLGUARD_SPEECH_DATA")
    looked = "".join(
        f"\n      {c}" + ("   ($CALLGUARD_SPEECH_DATA)" if env and str(c) == env else "")
        for c in speech_candidates())
    return ("No recorded Korean speech was found, so this run uses a scripted transcript\n"
            f"    instead of speech recognition. Looked in:{looked}")


def _header(info: RunInfo, rules: Path, realtime: bool) -> str:
    mode = "real time" if realtime else "as fast as possible, simulated clock"
    return (f"callguard demo (scripted): a {info.audio.seconds:.1f} s call of tone bursts, "
            f"caller left, counselor right, 8 kHz\n"
            f"  rules {rules} ({info.rules.version[:12]}), {mode}\n"
            f"  recogniser: {info.model}\n"
            f"  time     who        what")


def printer(as_json: bool):
    """Like ``simulate``'s printer, with every transcript line labelled scripted (JSON:
    ``"scripted": true``) and without a recognition delay: there was no recognition to
    measure."""
    def show(ev: CallEvent) -> None:
        said = isinstance(ev, Transcribed)
        if said:
            ev = replace(ev, lag_s=None)
        if as_json:
            record = {**event_record(ev), "scripted": True} if said else event_record(ev)
            print(json.dumps(record, ensure_ascii=False), flush=True)
            return
        line = format_event(ev)
        if line is None:
            return
        if said:
            lead = f"{clock(ev.at_s)}  {ev.leg:<9}  "
            line = (lead + TAG + " " + line[len(lead):] if line.startswith(lead)
                    else f"{line}   {TAG}")
        print(line, flush=True)
    return show


async def _note(store_path: Path, call_id: int) -> None:
    from callguard.store import Store

    async with Store.open(store_path) as store:
        await store.update_call(call_id, note=scripted.NOTE)


def run_scripted(args: argparse.Namespace, rules: Path, outcome: dict, *,
                 forced: bool) -> int:
    """Play the demo's call from the scripted transcript; fill ``outcome`` as
    :func:`~callguard.cli.call_cmd.run` does. Returns its exit status."""
    from callguard.asr.bundled import default_cache_dir
    from callguard.cli.call_cmd import run
    from callguard.config import DEMO_DIR

    wav = default_cache_dir() / "demo" / "scripted_call.wav"
    starts = scripted.build_scripted_call(wav)
    shown_rules = rules.relative_to(DEMO_DIR.parents[1])
    script = "\n".join(f"    {clock(t)}  {leg:<9}  {TAG} {line.banner}"
                       for t, leg, line in starts)
    banner = BANNER.format(why=why(forced), rules=shown_rules, script=script)
    if args.json:
        # The banner is for the screen; JSON readers get the flag on every transcript line
        # and in the summary, and a person watching still sees why.
        print("callguard demo: scripted transcript, no speech recognition: "
              + " ".join(why(forced).split()), file=sys.stderr, flush=True)
    code = run(args, wav, rules, source=scripted.SOURCE, codec="ulaw", direction=Direction.INBOUND,
               banner=banner, outcome=outcome, factory=scripted.ScriptedLines,
               header=lambda info: _header(info, shown_rules, args.realtime),
               show=printer(args.json),
               extra={"scripted": True, "latency_p50_s": None, "latency_max_s": None},
               # The stand-in recogniser hears a whole line from any piece of its tone, so
               # no look inside a line (it would act on words not yet said): looks at the
               # end of a pause only, as the script's timings promise.
               session=SessionConfig(sample_rate=scripted.RATE, early_long_ms=None))
    if code == 0 and outcome.get("call_id") is not None and outcome.get("store"):
        asyncio.run(_note(Path(outcome["store"]), outcome["call_id"]))
    return code
