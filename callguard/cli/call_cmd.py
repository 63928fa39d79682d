"""``callguard simulate`` and ``callguard demo``: a recorded call through the live pipeline."""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
from collections.abc import Callable
from pathlib import Path

from callguard.asr.transcript import Transcriber
from callguard.cli.failure import say
from callguard.cli.timeline import clock, event_record, format_event
from callguard.config import DEMO_DIR, Settings, load_settings
from callguard.session.call import SessionConfig
from callguard.sim.driver import SimulationResult
from callguard.sim.runner import RunInfo, simulate_file
from callguard.vocabulary import (
    CallEvent,
    Direction,
    EndReason,
    Source,
    Transcribed,
    VerdictKind,
)

CODECS = {"ulaw": "ulaw", "alaw": "alaw", "none": None}


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="settings file (default: see README)")
    p.add_argument("--db", type=Path, help="SQLite store to write the call to "
                   "(default: the configured store)")
    p.add_argument("--no-store", action="store_true", help="do not store the call")
    p.add_argument("--realtime", action="store_true",
                   help="pace the audio in real time, as a live line does "
                   "(default: as fast as possible on a simulated clock)")
    p.add_argument("--json", action="store_true",
                   help="print the timeline as JSON lines and a summary object")


def register(sub: argparse._SubParsersAction) -> None:
    sim = sub.add_parser("simulate", help="run a recorded call through the live pipeline")
    sim.add_argument("wav", type=Path, help="call recording: mono = caller; stereo = caller "
                     "left, counselor right; PCM WAV at any sample rate")
    sim.add_argument("--rules", type=Path, help="rules file (default: the configured one)")
    sim.add_argument("--outbound", action="store_true", help="treat it as an outbound call")
    sim.add_argument("--codec", choices=sorted(CODECS), default="ulaw",
                     help="telephone codec round trip applied to the audio (default ulaw)")
    _common(sim)
    sim.set_defaults(func=cmd_simulate)

    bench = sub.add_parser("bench", help="measure whether this machine is fast enough "
                           "(model load, real-time factor, detection latency, CPU, memory); "
                           "`callguard bench cer --help`: accuracy on the test speech")
    from callguard.bench.pipeline import add_arguments, execute

    add_arguments(bench)
    bench.set_defaults(func=execute)

    model = sub.add_parser("model", help="prepare and show the configured Whisper model")
    model.add_argument("--config", type=Path, help="settings file")
    model.set_defaults(func=cmd_model)

    demo = sub.add_parser("demo", help="simulate the bundled sample call with the demo rules")
    _common(demo)
    demo.add_argument("--scripted", action="store_true",
                      help="play the call from its scripted transcript (no speech "
                      "recognition), as when no recorded Korean speech is found")
    demo.set_defaults(func=cmd_demo)


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(args.config)


def _printer(as_json: bool):
    def show(ev: CallEvent) -> None:
        if as_json:
            print(json.dumps(event_record(ev), ensure_ascii=False), flush=True)
            return
        line = format_event(ev)
        if line is not None:
            print(line, flush=True)
    return show


def summary(result: SimulationResult, info: RunInfo) -> dict:
    s = result.session
    lat = sorted(s.latencies)
    return {
        "call_id": result.call_id,
        "store": str(info.store_path) if info.store_path else None,
        "audio_s": round(result.audio_s, 2),
        "wall_s": round(result.wall_s, 2),
        "end_reason": result.end_reason,
        "verdicts": [[round(t, 2), k] for t, k in result.verdicts()],
        "hangup_at": [round(t, 2) for t in result.hangups()],
        "prompts": [[k, round(d, 1)] for k, d in result.control.played],
        "utterances": sum(1 for e in result.timeline
                          if isinstance(e, Transcribed) and not e.early),
        "latency_p50_s": round(statistics.median(lat), 3) if lat else None,
        "latency_max_s": round(lat[-1], 3) if lat else None,
        "rules_version": info.rules.version,
        "model": info.model,
        "model_load_s": round(info.load_s, 2),
    }


def _header(path: Path, info: RunInfo, rules_path: Path, realtime: bool) -> str:
    a = info.audio
    legs = "caller only (mono)" if a.channels == 1 else "caller left, counselor right"
    mode = "real time" if realtime else "as fast as possible, simulated clock"
    return (f"callguard simulate: {path.name} — {a.seconds:.1f} s, {legs}, "
            f"{a.source_rate} Hz → 8 kHz telephone audio\n"
            f"  rules {rules_path} ({info.rules.version[:12]}), model {info.model} "
            f"(loaded in {info.load_s:.1f} s), {mode}\n"
            f"  time     who        what")


def run(args: argparse.Namespace, wav: Path, rules: Path | None, *, source: str,
        codec: str | None, direction: str, banner: str = "", outcome: dict | None = None,
        factory: Callable[[], Transcriber] | None = None,
        header: Callable[[RunInfo], str] | None = None,
        show: Callable[[CallEvent], None] | None = None, extra: dict | None = None,
        session: SessionConfig | None = None) -> int:
    """Simulate the call and print it; a bad settings, rules or audio file (or a store or
    model failure) is a :class:`~callguard.errors.CallguardError` for ``main`` to report.

    The scripted demo passes its own recogniser ``factory`` (default: the configured
    model), ``header``, event printer ``show``, ``extra`` summary fields and its
    ``session`` settings."""
    settings = _settings(args)
    rules_path = rules or settings.rules_path
    store_path = None if args.no_store else (args.db or settings.store_path)
    as_json = args.json

    def ready(info: RunInfo) -> None:
        if not as_json:
            if banner:
                print(banner)
            print(header(info) if header else _header(wav, info, rules_path, args.realtime),
                  flush=True)

    result, info = asyncio.run(simulate_file(
        wav, settings=settings, rules_path=rules_path, store_path=store_path,
        realtime=args.realtime, codec=codec, direction=direction, source=source,
        factory=factory, config=session, on_event=show or _printer(as_json),
        on_ready=ready))
    info_sum = {**summary(result, info), **(extra or {})}
    if outcome is not None:
        outcome.update(info_sum)
    if as_json:
        print(json.dumps({"summary": info_sum}, ensure_ascii=False))
    else:
        lat = info_sum["latency_p50_s"]
        print(f"\n{len(info_sum['verdicts'])} verdict(s); call ended: {info_sum['end_reason']}"
              + (f" at {clock(info_sum['hangup_at'][0])}" if info_sum["hangup_at"] else ""))
        if lat is not None:
            print(f"end of caller speech → result: median {lat:.2f} s, "
                  f"worst {info_sum['latency_max_s']:.2f} s; {info_sum['audio_s']:.1f} s of "
                  f"audio in {info_sum['wall_s']:.1f} s")
        if info_sum["call_id"] is not None:
            print(f"stored as call #{info_sum['call_id']} in {store_path}")
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    return run(args, args.wav, args.rules, source=Source.SIMULATE, codec=CODECS[args.codec],
               direction=Direction.OUTBOUND if args.outbound else Direction.INBOUND)


DEMO_BANNER = """\
callguard demo — what you are about to see
  • The speech is real recorded Korean conversation (KsponSpeech, AI-Hub), read from
    {data}. It is research data that may not be redistributed, and no Korean speech that
    may be was found, so callguard ships none: the call is assembled on this machine.
  • Nobody in it is abusive. The demo rules ({rules}) make two ordinary phrases
    stand in for abuse: "몰라" (an insult) and "절대로 안 할" (a threat). One warning, then the
    final notice; the duration notice comes at 40 s instead of 15 min.
  • Everything else is the real pipeline: G.711 telephone audio, webrtcvad, the bundled
    Whisper model, Kiwi rules, escalation, and the SQLite store. Prompts are not played
    (no audio device); their length is estimated from their text.
  Script (caller left, counselor right):
{script}
"""


def cmd_demo(args: argparse.Namespace) -> int:
    from callguard.asr.bundled import default_cache_dir
    from callguard.demo.scenario import DemoDataMissing, build_call, speech_dir

    rules = DEMO_DIR / "demo_rules.toml"
    wav = default_cache_dir() / "demo" / "sample_call.wav"
    outcome: dict = {}
    try:
        data = None if args.scripted else speech_dir()
    except DemoDataMissing:
        data = None  # no recorded speech here: the scripted demo says where it looked
    if data is None:
        from callguard.cli.demo_scripted import run_scripted

        code = run_scripted(args, rules, outcome, forced=args.scripted)
    else:
        try:
            starts = build_call(wav, data)
        except ValueError as exc:  # a clip at another sample rate; AudioFileError is one too
            say(exc)
            return 2
        script = "\n".join(f"    {clock(t)}  {leg:<9}  {line.banner}"
                           for t, leg, line in starts)
        banner = DEMO_BANNER.format(data=data, rules=rules.relative_to(DEMO_DIR.parents[1]),
                                    script=script)
        code = run(args, wav, rules, source=Source.DEMO, codec="ulaw",
                   direction=Direction.INBOUND,
                   banner=banner, outcome=outcome)
    if code:
        return code
    verdicts = [k for _, k in outcome["verdicts"]]
    warn, final = VerdictKind.WARN, VerdictKind.FINAL
    ok = (verdicts.count(warn) == 1 and verdicts.count(final) == 1
          and verdicts.index(warn) < verdicts.index(final)
          and outcome["end_reason"] == EndReason.FINAL_NOTICE
          and len(outcome["hangup_at"]) == 1)
    if not args.json:
        print("demo check: " + ("OK — warned once, then the final notice played to the end "
                                "and the call was hung up" if ok else
                                f"FAILED — verdicts {verdicts}, ended {outcome['end_reason']}"))
    return 0 if ok else 1


def cmd_model(args: argparse.Namespace) -> int:
    """Assemble the bundled model if needed (once, verified) and say what will be loaded."""
    from callguard.config import resolve_model

    settings = _settings(args)
    where = resolve_model(settings.asr)
    kind = "bundled Whisper base (verified SHA-256)" if settings.asr.model == "bundled" \
        else "configured"
    print(f"model: {where} — {kind}, {settings.asr.compute_type}, "
          f"{settings.asr.cpu_threads} CPU threads")
    return 0
