"""``callguard run``: the agent headless, on the line configured in ``[sip]``.

Prints the line status and each call's events (verdicts, prompts, hangups; transcripts only
with ``--show-text``) until Ctrl-C or SIGTERM. ``--dial NUMBER`` places one outbound call
once registered; ``--mic``/``--speaker`` use WAV files instead of a headset. On a terminal,
keys control the call (p protect, h hang up, a answer, d NUMBER dial, q quit); SIGUSR1
protects and SIGUSR2 hangs up (for a hotkey daemon or a script).

SIGHUP (the terminal was closed, the SSH session dropped) stops the agent cleanly, as
SIGTERM and Ctrl-C do: a call in progress gets its BYE and is stored as ended by the agent
being stopped (``agent_stopped``). Not a reload: the rules file is already reloaded when it
changes, and an agent whose terminal is gone has lost its controls and its output. The
rules file changing is picked up within a few seconds (see callguard.engine.engine).

Files are created private (umask 077): the call store holds recordings and transcripts.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from callguard.cli.timeline import format_event
from callguard.config import HeadsetSettings, exposed_password_warning, load_settings
from callguard.engine.engine import Engine, EngineEvent
from callguard.engine.wiring import build_engine, headset_factory, sip_line
from callguard.vocabulary import EngineEventKind, Transcribed

log = logging.getLogger(__name__)

#: Signals that stop the agent cleanly (BYE to a call in progress, ``agent_stopped``).
#: Windows has no SIGHUP (nor SIGUSR1/SIGUSR2: there the protect hotkey is the GUI's).
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP")
                     if hasattr(signal, name))


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run the agent on the configured SIP line (headless)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", type=Path, help="settings file (default: ~/.config/callguard/"
                   "config.toml)")
    p.add_argument("--rules", type=Path, help="rules file (default: from the settings)")
    p.add_argument("--store", type=Path, help="call store (default: from the settings)")
    p.add_argument("--auto-answer", action="store_true", help="answer inbound calls at once")
    p.add_argument("--dial", metavar="NUMBER", help="call NUMBER once registered")
    p.add_argument("--mic", type=Path, help="WAV played as the counselor's microphone")
    p.add_argument("--speaker", type=Path, help="WAV file the call audio is written to")
    p.add_argument("--headset", action="store_true",
                   help="use the sound card ([headset] in the settings; see `callguard devices`)")
    p.add_argument("--show-text", action="store_true",
                   help="print transcripts (personal data) on this terminal")
    p.add_argument("--exit-after-call", action="store_true",
                   help="stop after the first call ends (scripts and tests)")
    p.set_defaults(func=run)
    d = sub.add_parser("devices", help="list the sound devices a headset can be set to")
    d.set_defaults(func=devices)


def devices(args: argparse.Namespace) -> int:
    """Print PortAudio's devices: number, name, host API and channels; ``>`` and ``<``
    mark the system's default input and output. Numbers or names go into ``[headset]``."""
    try:
        import sounddevice as sd
    except (ImportError, OSError) as exc:
        print(f"callguard devices: PortAudio is not available (Debian: libportaudio2): {exc}",
              file=sys.stderr)
        return 2
    found = sd.query_devices()
    if not found:
        print("no sound devices found")
        return 1
    default_in, default_out = sd.default.device
    apis = sd.query_hostapis()
    for index, dev in enumerate(found):
        mark = ((">" if index == default_in else " ") + ("<" if index == default_out else " "))
        print(f"{index:3d} {mark} {dev['name']} ({apis[dev['hostapi']]['name']}): "
              f"{dev['max_input_channels']} in, {dev['max_output_channels']} out")
    return 0


def _device_factory(args: argparse.Namespace, headset: HeadsetSettings):
    from callguard.audio.devices import FileDevice, NullDevice

    use_headset = headset_factory(headset)

    def make(call):
        if args.headset:  # if it cannot be opened, the engine goes on without it
            return use_headset(call)
        if args.mic or args.speaker:
            return FileDevice(args.mic, args.speaker)
        return NullDevice()
    return make


def run(args: argparse.Namespace) -> int:
    # Everything the agent creates (the store, its WAL, recordings exported) is the
    # counselor's alone; the store's existing files are also made private when it opens.
    os.umask(0o077)
    settings = load_settings(args.config)  # a ConfigError goes to main: exit 2
    exposed = exposed_password_warning(settings)
    if exposed is not None:
        log.warning("%s", exposed)
        print(f"callguard run: warning: {exposed}", file=sys.stderr, flush=True)
    line = sip_line(settings)
    if line is None:
        print("callguard run: no SIP line configured: set [sip] server, user and password in "
              f"{settings.source or 'the settings file (~/.config/callguard/config.toml)'}",
              file=sys.stderr)
        return 2
    done = threading.Event()
    dialled = threading.Event()
    ringing: list[str] = []  # the Call-ID of the last call that rang

    def on_event(ev: EngineEvent) -> None:
        if ev.kind is EngineEventKind.STATUS:
            print(f"line: {ev.data}", flush=True)
            if str(ev.data.state) == "registered" and args.dial and not dialled.is_set():
                dialled.set()
                engine.dial(args.dial)
        elif ev.kind is EngineEventKind.TIMELINE:
            te = ev.data
            if isinstance(te, Transcribed) and not args.show_text:
                # The transcript is personal data: only the rules it hit, unless asked.
                if te.hits:
                    print(f"{te.at_s:7.2f}s {te.leg}: hits {list(te.rule_ids)}", flush=True)
                return
            line = format_event(te)
            if line is not None:
                print(line, flush=True)
        elif ev.kind is EngineEventKind.CALL_STATUS:
            return  # once a second: for the GUI's clock, too chatty for a terminal
        elif ev.kind is EngineEventKind.STORE:
            # Disk full, read-only, deleted, damaged: the calls go on either way.
            state = "ok" if ev.data["ok"] else f"PROBLEM: {ev.data['problem']}"
            print(f"store: {state}", flush=True)
            if not ev.data["ok"]:
                print(f"callguard run: {ev.data['problem']}", file=sys.stderr, flush=True)
        elif ev.kind is EngineEventKind.RECOGNITION:
            # The recogniser's process crashed (restarting) or cannot start: calls go on,
            # recorded and cut off by their limits, but what the caller says is not heard.
            state = "ok" if ev.data["ok"] else f"UNAVAILABLE: {ev.data['problem']}"
            print(f"recognition: {state}", flush=True)
            if not ev.data["ok"]:
                print(f"callguard run: recognition unavailable: {ev.data['problem']}",
                      file=sys.stderr, flush=True)
        elif ev.kind is EngineEventKind.RULES:
            print(f"rules: {ev.data.message}", flush=True)
            if not ev.data.ok:  # the file on disk is not what runs: never only on stdout
                print(f"callguard run: {ev.data.headline}", file=sys.stderr, flush=True)
        elif ev.kind is EngineEventKind.ALERT_DELIVERED:
            names = ", ".join(ev.data.get("recipients") or []) or "no supervisor watching"
            print(f"alert delivered: {ev.data.get('kind')} → {names}", flush=True)
        elif ev.kind is EngineEventKind.CENTRAL:
            st = ev.data
            parts = [f"server {st['server']}", f"{st['pending'] or 0} waiting"]
            if st.get("rules"):
                parts.append(f"rules {str(st['rules'])[:12]}")
            if st.get("rules_error"):
                parts.append(f"newest rules refused: {st['rules_error']}")
            print(f"central: {' · '.join(parts)}", flush=True)
        else:
            if ev.kind is EngineEventKind.RINGING:
                ringing[:] = [ev.call_id]
                repeat = (ev.data or {}).get("repeat")
                if repeat:  # the count, never the number
                    print(f"call ringing: repeat caller, {repeat['flagged']} flagged call(s) "
                          f"in the last {repeat['days']} days", flush=True)
            # A ringing call's data is the caller's number: personal data, not printed.
            shown = "" if ev.kind is EngineEventKind.RINGING else ev.data
            print(f"call {ev.kind}: {shown}", flush=True)
            if ev.kind is EngineEventKind.ENDED and args.exit_after_call:
                done.set()

    engine = build_engine(settings, line, rules_path=args.rules, store_path=args.store,
                          device_factory=_device_factory(args, settings.headset),
                          auto_answer=args.auto_answer or settings.sip.auto_answer,
                          on_event=on_event)
    for sig in STOP_SIGNALS:
        signal.signal(sig, lambda *_: done.set())
    # Protect and hang up from outside (a hotkey daemon, a script): SIGUSR1, SIGUSR2.
    if hasattr(signal, "SIGUSR1"):  # POSIX only
        signal.signal(signal.SIGUSR1, lambda *_: engine.protect())
        signal.signal(signal.SIGUSR2, lambda *_: engine.hangup())
    try:
        engine.start()
    except Exception as exc:
        print(f"callguard run: {exc}", file=sys.stderr)
        return 1
    if engine.recovered:
        print(f"recovered {len(engine.recovered)} call(s) interrupted by a crash", flush=True)
    print(f"callguard is running on {line.local_ip}:{line.sip_port}; Ctrl-C to stop",
          flush=True)
    if engine.rules_fallback is not None:
        print(f"status: {engine.rules_fallback.headline}", flush=True)
    if sys.stdin is not None and sys.stdin.isatty():
        print(COMMANDS_HELP, flush=True)
        threading.Thread(target=_commands, args=(engine, ringing, done), name="stdin",
                         daemon=True).start()
    done.wait()
    engine.stop()
    return 0


COMMANDS_HELP = ("keys: p = protect (final notice, then hang up), h = hang up, a = answer, "
                 "d NUMBER = dial, q = quit")


def _commands(engine: Engine, ringing: list[str], done: threading.Event) -> None:
    """Terminal commands, one per line (the counselor's controls without the GUI)."""
    for raw in sys.stdin:
        cmd, _, arg = raw.strip().partition(" ")
        if cmd == "p":
            engine.protect()
        elif cmd == "h":
            engine.hangup()
        elif cmd == "a" and ringing:
            engine.answer(ringing[-1])
        elif cmd == "d" and arg:
            engine.dial(arg.strip())
        elif cmd == "q":
            break
        elif cmd:
            print(COMMANDS_HELP, flush=True)
    done.set()
