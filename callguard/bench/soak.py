"""Soak: thousands of hostile SIP messages and RTP packets against a live agent, with a
real canary call answered and recorded after every batch (issue 13, item 9). Prints JSON.

    python3 -m callguard.bench.soak --messages 10000 --json
    python3 -m callguard.bench.soak --messages 1000 --canary-every 500 --seed 7

What runs, all on 127.0.0.1: kamailio as the registrar/proxy; ``callguard run
--auto-answer`` in its own process, with its own temporary settings, rules and store,
registered to kamailio (its recogniser is the tone fake of :mod:`callguard.asr.fake`,
which hears nothing in these calls, so that a 2-core PC spends the run on SIP and RTP, not
on Whisper; ``--whisper`` uses the configured model instead). The hostile traffic comes
from :mod:`callguard.bench.hostile`, the generators of the fuzz tests, over three
channels: straight to the agent's SIP port from a stranger (answered 403/481, or dropped);
straight from an address in the agent's ``[sip] allow`` list, so messages reach the
parsers, the dialog checks, the SDP offer and the call table behind the trust check; and
through kamailio, as a caller's would. After each message one or more hostile RTP packets
go to the agent's RTP ports (preferring the ports of calls it has just answered, from the
SDP answers it sent back).

After every ``--canary-every`` messages the soak waits for the agent's calls to end (its
``ack_timeout_s`` is set short, since the hostile INVITEs are never ACKed), checks with
kamailio that the agent is REGISTERED, and places a canary: SIPp calls the agent through
kamailio and plays a known tone; meanwhile a stranger floods the RTP port range with hostile
packets. The canary must be answered (SIPp's scenario completes), and its recording must
appear in the agent's store with the caller's audio (the tone's length, within a frame or
two). A background thread asks kamailio every second whether the agent is registered.

JSON: ``messages_sent`` (by channel), ``rtp_packets_sent``, ``crashes`` (the agent process
died; it is restarted on the same store and the soak goes on), ``times_not_registered``
(kamailio checks that found no contact for the agent) of ``register_checks``,
``canaries_placed`` / ``_answered`` / ``_recorded``, ``canary_audio_ratio_min`` (caller
audio stored over audio sent, worst canary), ``agent_tracebacks`` (tracebacks and ERROR
lines in the agent's stderr), ``calls_stored`` and ``calls_left_open`` in the store after
the agent stopped, ``agent_exit_code`` (0: a clean stop on SIGTERM), ``duration_s``.

Needs a source checkout (the SIP peers live in tests/peers), kamailio and SIPp
(``installer/install.sh --dev``). Every loop is bounded in count and time; the soak stops
its processes itself, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from callguard.bench import hostile

HOST = "127.0.0.1"
RATE = 8000
CANARY_S = 2.0  # the canary's tone
CANARY_HZ = 440.0
RTP_LOW, RTP_HIGH = 38000, 38198

RULES = """\
format = 1
name = "soak"
[escalation]
window = "2m"
cooldown = "1s"
notice_at = 1
warn_at = 2
warnings = 1
final_at = 3
[duration.inbound]
final_at = "10m"
[duration.outbound]
final_at = "10m"
[[rule]]
id = "soak.never"
category = "insult"
terms = ["결코들리지않는말"]
"""


def _peers() -> Any:
    """The SIP peers of the test suite (tests/peers in the source checkout)."""
    tests = Path(__file__).resolve().parents[2] / "tests"
    if not (tests / "peers" / "__init__.py").is_file():
        raise SystemExit("callguard.bench.soak needs a source checkout: tests/peers not found "
                         f"at {tests}")
    if str(tests) not in sys.path:
        sys.path.insert(0, str(tests))
    import peers

    missing = peers.missing_peers("kamailio", "sipp")
    if missing:
        raise SystemExit(f"callguard.bench.soak needs {', '.join(missing)} "
                         "(installer/install.sh --dev)")
    return peers


# --- the agent in its own process -------------------------------------------------------------


#: ``callguard run`` with the tone recogniser (hears nothing here) instead of Whisper; the
#: command, wiring, engine, line and store are the real ones. A program of its own (the
#: agent is a process, not a library call: the bench layer sits below the CLI).
AGENT = """\
import sys

from callguard.asr.fake import ToneTranscriber
from callguard.engine import wiring


def factory(settings, **_kw):
    return lambda: ToneTranscriber({})


wiring.transcriber_factory = factory
from callguard.cli.main import main

sys.exit(main(sys.argv[1:]))
"""


class Agent:
    """The live agent process: settings, rules and store in ``workdir``."""

    def __init__(self, workdir: Path, pbx_port: int, sip_port: int, allow_port: int,
                 whisper: bool) -> None:
        self.dir = workdir
        self.sip_port = sip_port
        self.db = workdir / "store" / "calls.db"
        self.rules = workdir / "rules.toml"
        self.rules.write_text(RULES, encoding="utf-8")
        self.config = workdir / "agent.toml"
        from callguard.config import SipSettings

        extra = "media_timeout_s = 10\n" if "media_timeout_s" in getattr(
            SipSettings, "__dataclass_fields__", {}) else ""
        self.config.write_text(f"""
[sip]
server = "{HOST}"
port = {pbx_port}
user = "agent"
password = "agentpw"
local_ip = "{HOST}"
sip_port = {sip_port}
rtp_low = {RTP_LOW}
rtp_high = {RTP_HIGH}
allow = ["{HOST}:{allow_port}"]
ack_timeout_s = 3
ring_timeout_s = 10
{extra}
[rules]
path = "{self.rules}"

[store]
path = "{self.db}"
""", encoding="utf-8")
        self.config.chmod(0o600)
        self.whisper = whisper
        self.proc: subprocess.Popen[bytes] | None = None
        self.runs = 0

    def out_path(self, run: int | None = None) -> Path:
        return self.dir / f"agent-out{run or self.runs}.log"

    def err_path(self, run: int | None = None) -> Path:
        return self.dir / f"agent-err{run or self.runs}.log"

    def out(self) -> str:
        return self.out_path().read_text(errors="replace")

    def start(self, timeout: float = 90.0) -> None:
        self.runs += 1
        script = self.dir / "agent.py"
        script.write_text(AGENT, encoding="utf-8")
        cmd = [sys.executable] + (["-m", "callguard"] if self.whisper else [str(script)])
        cmd += ["run", "--config", str(self.config), "--auto-answer"]
        with self.out_path().open("wb") as out, self.err_path().open("wb") as err:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=err,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while "line: registered" not in self.out():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the agent did not register; stderr:\n"
                                   + self.err_path().read_text(errors="replace")[-3000:])
            time.sleep(0.1)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 20.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode

    def tracebacks(self) -> int:
        n = 0
        for run in range(1, self.runs + 1):
            text = self.err_path(run).read_text(errors="replace")
            n += text.count("Traceback") + len(re.findall(r" ERROR ", text))
        return n


# --- the store, read from outside ---------------------------------------------------------------


def _store_calls(db: Path) -> list[Any]:
    from callguard.store import Store

    async def read() -> list[Any]:
        async with Store.open(db) as store:
            return list(await store.list_calls(limit=100000))
    return asyncio.run(read())


def _caller_audio(db: Path, call_id: int) -> np.ndarray:
    from callguard.store import Store

    async def read() -> bytes:
        async with Store.open(db) as store:
            return bytes(await store.read_audio(call_id, "caller"))
    return np.frombuffer(asyncio.run(read()), dtype="<i2")


def _tone_seconds(pcm: np.ndarray, threshold: float = 500.0) -> float:
    """Seconds of 20 ms frames loud enough to be the canary's tone (not silence)."""
    n = pcm.size // 160
    if n == 0:
        return 0.0
    frames = pcm[: n * 160].astype(np.float64).reshape(n, 160)
    rms = np.sqrt(np.mean(frames * frames, axis=1))
    return float(np.count_nonzero(rms > threshold)) * 0.02


# --- the soak -----------------------------------------------------------------------------------


class Soak:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.peers = _peers()
        self.r = random.Random(args.seed)
        self.workdir = Path(tempfile.mkdtemp(prefix="callguard-soak-"))
        self.stats: Counter[str] = Counter()
        self.channels: Counter[str] = Counter()
        self.answers: Counter[str] = Counter()  # status codes the soak's sockets got back
        self.canaries: list[dict[str, Any]] = []
        self.live_rtp: list[int] = []  # RTP ports of calls the agent answered (SDP answers)
        self.crashes = 0
        self.crash_notes: list[str] = []
        self.reg_checks = 0
        self.not_registered = 0
        self._stop = threading.Event()
        self.socks: dict[str, socket.socket] = {}
        for name in ("stranger", "allowed", "proxy", "rtp"):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind((HOST, 0))
            s.setblocking(False)
            self.socks[name] = s
        self.pbx = self.peers.Kamailio({"agent": "agentpw"}, workdir=self.workdir / "kamailio")
        sip_port = self.peers.free_udp_port()
        self.agent = Agent(self.workdir, self.pbx.port, sip_port,
                           self.socks["allowed"].getsockname()[1], args.whisper)

    # -- background: registration checks, answers

    def _watch_registration(self) -> None:
        while not self._stop.wait(1.0):
            if not self.agent.alive:
                continue
            self.reg_checks += 1
            if not self.pbx.registered("agent"):
                self.not_registered += 1

    def _drain(self) -> None:
        """Read what came back to the soak's sockets: count status codes, and learn the RTP
        ports of the calls the agent answered (its SDP answers)."""
        for name, s in self.socks.items():
            while True:
                try:
                    data = s.recv(65535)
                except (BlockingIOError, OSError):
                    break
                if name == "rtp":  # the agent's RTP to the hostile calls it answered
                    self.stats["rtp_received"] += 1
                    continue
                first = data.split(b"\r\n", 1)[0]
                if first.startswith(b"SIP/2.0 "):
                    self.answers[first[8:11].decode("ascii", "replace")] += 1
                    m = re.search(rb"\r\nm=audio (\d+) ", data)
                    if m and int(m.group(1)) > 0:
                        self.live_rtp = [*self.live_rtp, int(m.group(1))][-16:]
                else:  # a request: the agent's BYE for a call the soak never ACKed
                    self.answers[first.split(b" ", 1)[0][:12].decode("ascii", "replace")] += 1

    # -- the hostile traffic

    def _send_sip(self) -> None:
        kind = self.r.random()
        if kind < 0.3:
            name, dest, via_to = "stranger", (HOST, self.agent.sip_port), self.agent.sip_port
        elif kind < 0.7:
            name, dest, via_to = "allowed", (HOST, self.agent.sip_port), self.agent.sip_port
        else:
            name, dest, via_to = "proxy", (HOST, self.pbx.port), self.pbx.port
        sock = self.socks[name]
        target = hostile.Target(agent_port=via_to, source_port=sock.getsockname()[1],
                                rtp_port=self.socks["rtp"].getsockname()[1])
        data = hostile.hostile_sip(self.r, target)
        with contextlib.suppress(OSError):
            sock.sendto(data, dest)
            self.channels[name] += 1
            self.stats["messages"] += 1

    def _send_rtp(self, sock: socket.socket | None = None, port: int | None = None) -> None:
        if port is None:
            if self.live_rtp and self.r.random() < 0.7:
                port = self.r.choice(self.live_rtp)
            else:
                port = self.r.randrange(RTP_LOW, RTP_HIGH + 1, 2)
        data = hostile.hostile_rtp(self.r, ssrc=self.r.getrandbits(32)
                                   if self.r.random() < 0.5 else None)
        with contextlib.suppress(OSError):
            (sock or self.socks["rtp"]).sendto(data, (HOST, port))
            self.stats["rtp"] += 1

    def _batch(self, n: int) -> None:
        for i in range(n):
            self._send_sip()
            for _ in range(self.args.rtp_per_message):
                self._send_rtp()
            if i % 10 == 9:
                self._drain()
                time.sleep(self.args.pace_ms / 1000 * 10)
        self._drain()

    # -- the canary

    def _open_calls(self) -> int:
        try:
            return sum(c.end_reason is None for c in _store_calls(self.agent.db))
        except Exception:
            return -1

    def _wait_quiet(self, timeout: float = 30.0) -> bool:
        """Until no call of the agent is open in its store (the hostile INVITEs it answered
        end by their ACK timeout), bounded."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._drain()
            if self._open_calls() == 0:
                return True
            time.sleep(0.5)
        return False

    def _canary(self, pcap: Path) -> None:
        n = len(self.canaries) + 1
        quiet = self._wait_quiet()
        registered = self.pbx.registered("agent")
        started = time.time()
        before = {c.id for c in _store_calls(self.agent.db)}
        sipp = self.peers.start_call_with_media(
            self.pbx.address, "agent", pcap, hangup="bye", hold_ms=300, timeout=30,
            recv_timeout=10, workdir=self.workdir / f"canary{n}")
        # Once its media runs (and is latched), a stranger floods the canary's RTP port (from
        # the agent's SDP answer in SIPp's message log) and the whole RTP port range.
        time.sleep(1.0)
        port = self._answered_port(sipp.workdir / "messages.log")
        flood = 0
        span = (RTP_HIGH - RTP_LOW) // 2 + 1
        for i in range(self.args.canary_flood):
            self._send_rtp(self.socks["stranger"], port if port and i % 2 else
                           RTP_LOW + 2 * (i % span))
            flood += 1
            if i % 20 == 19:
                time.sleep(0.002)
        result = sipp.wait()
        answered = result.ok
        entry: dict[str, Any] = {"n": n, "answered": answered, "quiet_before": quiet,
                                 "registered_before": registered, "rtp_flood": flood,
                                 "flood_hit_its_port": port is not None}
        if not answered:
            entry["sipp"] = result.describe(tail=20)[-1500:]
        # The recording: a new call in the store, from SIPp, closed, with the tone in it.
        rec: Any = None
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            new = [c for c in _store_calls(self.agent.db) if c.id not in before
                   and c.started_at >= started - 1 and "sipp" in (c.remote or "")]
            if new and new[0].end_reason is not None:
                rec = new[0]
                break
            time.sleep(0.3)
        if rec is not None:
            pcm = _caller_audio(self.agent.db, rec.id)
            tone = _tone_seconds(pcm)
            entry.update(caller_samples=int(pcm.size), tone_s=round(tone, 2),
                         audio_ratio=round(tone / CANARY_S, 3), end_reason=rec.end_reason)
            entry["recorded"] = pcm.size > 0 and tone / CANARY_S >= 0.9
        else:
            entry.update(recorded=False, caller_samples=0, audio_ratio=0.0)
        self.canaries.append(entry)

    @staticmethod
    def _answered_port(log: Path) -> int | None:
        """The agent's RTP port for the canary: the m=audio of its 200 OK, as SIPp logged
        it (None if not there yet)."""
        try:
            text = log.read_text(errors="replace")
        except FileNotFoundError:
            return None
        _, _, answer = text.partition("SIP/2.0 200 OK")
        m = re.search(r"m=audio (\d+) ", answer)
        return int(m.group(1)) if m and int(m.group(1)) > 0 else None

    def _canary_pcap(self) -> Path:
        from callguard.audio.g711 import alaw_encode

        t = np.arange(int(CANARY_S * RATE)) / RATE
        tone = (8000 * np.sin(2 * np.pi * CANARY_HZ * t)).astype(np.int16)
        path = self.workdir / "canary.pcap"
        self.peers.write_audio_pcap(path, bytes(alaw_encode(tone)))
        return path

    # -- the run

    def _check_alive(self) -> None:
        if not self.agent.alive:
            self.crashes += 1
            code = self.agent.proc.returncode if self.agent.proc else None
            tail = self.agent.err_path().read_text(errors="replace")[-1500:]
            self.crash_notes.append(f"exit {code}: {tail}")
            self.agent.start()

    def run(self) -> dict[str, Any]:
        t0 = time.monotonic()
        deadline = t0 + self.args.max_minutes * 60
        exit_code: int | None = None
        watcher = threading.Thread(target=self._watch_registration, name="soak-reg",
                                   daemon=True)
        try:
            self.pbx.start()
            self.agent.start()
            pcap = self._canary_pcap()
            watcher.start()
            while self.stats["messages"] < self.args.messages and time.monotonic() < deadline:
                n = min(self.args.canary_every, self.args.messages - self.stats["messages"])
                self._batch(n)
                self._check_alive()
                if self.stats["messages"] % self.args.canary_every == 0 or \
                        self.stats["messages"] >= self.args.messages:
                    self._canary(pcap)
                    self._check_alive()
                    if not self.args.json:
                        c = self.canaries[-1]
                        print(f"{self.stats['messages']} messages, canary {c['n']}: answered "
                              f"{c['answered']}, recorded {c['recorded']}", flush=True)
        finally:
            self._stop.set()
            with contextlib.suppress(RuntimeError):
                watcher.join(3)
            exit_code = self.agent.stop()
            self.pbx.stop()
            for s in self.socks.values():
                s.close()
        stored = _store_calls(self.agent.db) if self.agent.db.exists() else []
        out = {
            "messages_sent": self.stats["messages"],
            "messages_by_channel": dict(self.channels),
            "rtp_packets_sent": self.stats["rtp"],
            "rtp_packets_received": self.stats["rtp_received"],
            "crashes": self.crashes,
            "times_not_registered": self.not_registered,
            "register_checks": self.reg_checks,
            "canaries_placed": len(self.canaries),
            "canaries_answered": sum(c["answered"] for c in self.canaries),
            "canaries_recorded": sum(bool(c["recorded"]) for c in self.canaries),
            "canary_audio_ratio_min": min((c["audio_ratio"] for c in self.canaries),
                                          default=None),
            "canary_floods_on_its_port": sum(c["flood_hit_its_port"] for c in self.canaries),
            "agent_tracebacks": self.agent.tracebacks(),
            "agent_exit_code": exit_code,
            "calls_stored": len(stored),
            "calls_left_open": sum(c.end_reason is None for c in stored),
            "answers_received": dict(self.answers.most_common(12)),
            "recogniser": "whisper" if self.args.whisper else "tones (fake: hears nothing)",
            "seed": self.args.seed,
            "duration_s": round(time.monotonic() - t0, 1),
        }
        bad = [c for c in self.canaries if not (c["answered"] and c["recorded"])]
        if bad:
            out["failed_canaries"] = bad
        if self.crash_notes:
            out["crash_notes"] = self.crash_notes
        out["workdir"] = str(self.workdir)
        return out

    def cleanup(self, keep: bool) -> None:
        self.pbx.close()
        if not keep:
            shutil.rmtree(self.workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(prog="python -m callguard.bench.soak", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--messages", type=int, default=10000, help="hostile SIP messages to send")
    p.add_argument("--canary-every", type=int, default=500,
                   help="a canary call after every this many messages")
    p.add_argument("--rtp-per-message", type=int, default=1,
                   help="hostile RTP packets sent after each SIP message")
    p.add_argument("--canary-flood", type=int, default=300,
                   help="hostile RTP packets a stranger sends during each canary call")
    p.add_argument("--pace-ms", type=float, default=1.0, help="pause per message, ms")
    p.add_argument("--seed", type=int, default=13)
    p.add_argument("--max-minutes", type=float, default=30.0,
                   help="stop sending after this long, whatever the count")
    p.add_argument("--whisper", action="store_true",
                   help="the agent runs the configured Whisper model (default: tone fake)")
    p.add_argument("--keep", action="store_true", help="keep the work dir (logs, store)")
    p.add_argument("--json", action="store_true", help="only the JSON on stdout")
    args = p.parse_args(argv)
    if args.messages <= 0 or args.canary_every <= 0:
        p.error("--messages and --canary-every must be positive")
    soak = Soak(args)
    old = signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        out = soak.run()
    finally:
        signal.signal(signal.SIGTERM, old)
        ok = False
        with contextlib.suppress(Exception):
            ok = not soak.crashes and all(c["answered"] and c["recorded"]
                                          for c in soak.canaries)
        soak.cleanup(keep=args.keep or not ok)
    if ok:
        out.pop("workdir", None)
    print(json.dumps(out, ensure_ascii=False, indent=None if args.json else 2), flush=True)
    return 0 if ok and out["times_not_registered"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
