"""``callguard bench``: is this desktop fast enough for live calls with the configured model?

Runs a call through the live pipeline (VAD → recognition worker → rules → escalation →
store in a temporary SQLite file) and reports, for the configured model:

* ``model_load_s``: seconds to load the model (after the bundled one is assembled);
* ``rtf``: recognition wall time over the call's audio seconds (``rtf_speech``: over the
  seconds of speech that was recognised);
* ``latency_p50_s`` / ``latency_p95_s``: end of caller speech → result (the moment a verdict
  could be issued), per caller utterance, in seconds;
* ``cpu_cores``: CPU seconds over wall seconds (1.0 = one core busy) of this process and of
  the child processes that ended meanwhile (the recogniser's, stopped with the call);
* ``peak_rss_mb``: this process's peak resident memory; ``asr_child_peak_rss_mb`` the
  recogniser process's (``callguard.asr.process``; null when the model ran in this process),
  ``kiwi_child_peak_rss_mb`` the Kiwi process's; ``peak_rss_with_asr_mb`` the peak of this
  process and the recogniser's together (what the model costs the PC wherever it runs: the
  memory target applies to it), ``peak_rss_total_mb`` with every child process. RSS counts
  the pages two processes share (libraries, Python itself) in each, so a sum of RSS
  overstates; ``peak_pss_with_asr_mb`` is the same peak in proportional set size (shared
  pages split between the processes that map them; Linux, sampled every 0.5 s).

By default the call is paced in real time, as on a live line, so recognition competes with
audio handling as it would; ``--fast`` runs it on a simulated clock instead. The call is
assembled from the speech in ``../shared/data/speech-ko`` (``$CALLGUARD_SPEECH_DATA``), or
given as a WAV file.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import threading
import time
import wave
from pathlib import Path

import numpy as np

from callguard.audio.wavfile import read_wav
from callguard.bench.stats import percentile
from callguard.config import load_settings
from callguard.vocabulary import Source, Transcribed

TARGETS = {"latency_p95_s": 1.0, "rtf": 0.2, "peak_rss_with_asr_mb": 600.0}

_CHILDREN = {"asr": "callguard.asr.process", "kiwi": "callguard.text.kiwiproc"}


class _Peak:
    """Samples RSS every 50 ms (psutil): this process's (also for platforms without
    ``ru_maxrss``) and its child processes' (the recogniser's, Kiwi's)."""

    def __init__(self) -> None:
        import psutil

        self._psutil = psutil
        self._proc = psutil.Process()
        self.peak = self._proc.memory_info().rss
        self.child_peak: dict[str, int] = {}
        self.with_asr = self.total = self.peak
        self.pss_with_asr: int | None = None
        self._n = 0
        self._kinds: dict[int, str] = {}
        self._children: list = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _kind(self, child) -> str:
        kind = self._kinds.get(child.pid)
        if kind is None:
            cmd = " ".join(child.cmdline())
            kind = next((k for k, mod in _CHILDREN.items() if mod in cmd), "other")
            self._kinds[child.pid] = kind
        return kind

    def _pss(self, proc) -> int | None:
        try:
            return getattr(proc.memory_full_info(), "pss", None)
        except (self._psutil.Error, OSError):
            return None

    def _sample(self) -> None:
        self._n += 1
        with_pss = self._n % 10 == 1  # smaps is costlier to read than the RSS
        own = self._proc.memory_info().rss
        self.peak = max(self.peak, own)
        pss = self._pss(self._proc) if with_pss else None
        asr = others = 0
        if with_pss:
            # Listing the children walks /proc (about 2 ms here): twice a second is enough
            # to see a recogniser that was restarted, and keeps the sampler's own CPU low.
            self._children = self._proc.children(recursive=True)
        for child in self._children:
            try:
                kind, rss = self._kind(child), child.memory_info().rss
            except self._psutil.Error:  # it ended meanwhile
                continue
            self.child_peak[kind] = max(self.child_peak.get(kind, 0), rss)
            if kind == "asr":
                asr += rss
                if pss is not None:
                    child_pss = self._pss(child)
                    pss = None if child_pss is None else pss + child_pss
            else:
                others += rss
        self.with_asr = max(self.with_asr, own + asr)
        self.total = max(self.total, own + asr + others)
        if pss is not None:
            self.pss_with_asr = max(self.pss_with_asr or 0, pss)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self._sample()

    def child_mb(self, kind: str) -> float | None:
        peak = self.child_peak.get(kind)
        return None if peak is None else round(peak / 2**20, 1)

    def stop(self) -> float:
        self._stop.set()
        self._t.join()
        peak = self.peak
        try:
            import resource

            peak = max(peak, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
        except ImportError:  # Windows
            pass
        return peak / 2**20


def _children_cpu() -> float:
    """CPU seconds of the child processes that have ended and been waited for."""
    try:
        import resource
    except ImportError:  # Windows
        return 0.0
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def build_bench_call(out: Path, data: Path, count: int, gap_s: float = 1.0) -> float:
    """Caller-only call of the first ``count`` speech-ko utterances; returns seconds."""
    parts = []
    for k in range(1, count + 1):
        x, rate = read_wav(data / f"k{k:03d}.wav")
        parts += [x[:, 0], np.zeros(int(gap_s * rate))]
    pcm = np.clip(np.rint(np.concatenate(parts) * 32767), -32768, 32767).astype("<i2")
    with wave.open(str(out), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return pcm.size / rate


def run(wav: Path, *, realtime: bool, config: Path | None, rules: Path | None) -> dict:
    from callguard.sim.runner import simulate_file

    settings = load_settings(config)
    peak = _Peak()
    cpu0, wall0 = time.process_time() + _children_cpu(), time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        result, info = asyncio.run(simulate_file(
            wav, settings=settings, rules_path=rules or settings.rules_path,
            store_path=Path(tmp) / "bench.db", realtime=realtime, source=Source.SIMULATE))
    wall = time.perf_counter() - wall0
    cpu = time.process_time() + _children_cpu() - cpu0
    peak_mb = peak.stop()
    speech = [e for e in result.timeline if isinstance(e, Transcribed)]
    asr_total = sum(e.asr_s or 0 for e in speech)
    speech_s = sum(e.end_s - e.start_s for e in speech if not e.early)
    lat = result.session.latencies
    out = {
        "model": info.model,
        "compute_type": settings.asr.compute_type,
        "cpu_threads": settings.asr.cpu_threads,
        "cpu_count": os.cpu_count(),
        "mode": "realtime" if realtime else "fast",
        "audio_s": round(result.audio_s, 2),
        "utterances": len(lat),
        "model_load_s": round(info.load_s, 3),
        "rtf": round(asr_total / result.audio_s, 4) if result.audio_s else None,
        "rtf_speech": round(asr_total / speech_s, 4) if speech_s else None,
        "latency_p50_s": _r(percentile(lat, 50)),
        "latency_p95_s": _r(percentile(lat, 95)),
        "latency_max_s": _r(max(lat) if lat else None),
        "cpu_cores": round(cpu / wall, 3),
        "wall_s": round(wall, 2),
        "peak_rss_mb": round(peak_mb, 1),
        "asr_in_child": "asr" in peak.child_peak,
        "asr_child_peak_rss_mb": peak.child_mb("asr"),
        "kiwi_child_peak_rss_mb": peak.child_mb("kiwi"),
        "peak_rss_with_asr_mb": round(max(peak.with_asr / 2**20, peak_mb), 1),
        "peak_rss_total_mb": round(max(peak.total / 2**20, peak_mb), 1),
        "peak_pss_with_asr_mb": None if peak.pss_with_asr is None
        else round(peak.pss_with_asr / 2**20, 1),
    }
    out["meets_targets"] = {k: (out[k] is not None and out[k] <= v) for k, v in TARGETS.items()}
    return out


def _r(v: float | None) -> float | None:
    return None if v is None else round(v, 3)


def table(r: dict) -> str:
    rows = [
        ("model", f"{r['model']} ({r['compute_type']}, {r['cpu_threads']} threads, "
                  f"{r['cpu_count']} CPUs)", ""),
        ("call", f"{r['audio_s']} s, {r['utterances']} caller utterances, {r['mode']}", ""),
        ("model load", f"{r['model_load_s']:.2f} s", ""),
        ("real-time factor", f"{r['rtf']}", f"≤ {TARGETS['rtf']}"),
        ("  (per second of speech)", f"{r['rtf_speech']}", ""),
        ("detection latency p50", f"{r['latency_p50_s']} s", ""),
        ("detection latency p95", f"{r['latency_p95_s']} s", f"≤ {TARGETS['latency_p95_s']} s"),
        ("detection latency max", f"{r['latency_max_s']} s", ""),
        ("CPU", f"{r['cpu_cores']} cores busy on average", ""),
        ("peak memory (RSS)", f"{r['peak_rss_mb']} MB", ""),
        ("  recogniser process", "in this process" if not r["asr_in_child"]
         else f"{r['asr_child_peak_rss_mb']} MB", ""),
        ("  with the recogniser", f"{r['peak_rss_with_asr_mb']} MB",
         f"≤ {TARGETS['peak_rss_with_asr_mb']:g} MB"),
        ("  the same in PSS", f"{r['peak_pss_with_asr_mb']} MB", ""),
        ("  Kiwi process", f"{r['kiwi_child_peak_rss_mb']} MB", ""),
    ]
    ok = r["meets_targets"]
    lines = []
    for name, value, target in rows:
        key = {"real-time factor": "rtf", "detection latency p95": "latency_p95_s",
               "  with the recogniser": "peak_rss_with_asr_mb"}.get(name)
        mark = "" if key is None else ("  ok" if ok[key] else "  TOO SLOW/BIG")
        lines.append(f"  {name:<26} {value:<40} {target}{mark}")
    verdict = "fast enough" if all(ok.values()) else "NOT fast enough"
    return "\n".join(["callguard bench", *lines, f"  → this machine is {verdict} for live "
                      "calls with this model"])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="callguard bench", description=__doc__.split("\n")[0])
    add_arguments(p)
    return execute(p.parse_args(argv))


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("wav", nargs="?", type=Path, help="call recording to use (default: a call "
                   "assembled from the speech-ko test speech)")
    p.add_argument("--utterances", type=int, default=20,
                   help="speech-ko utterances in the assembled call (default 20)")
    p.add_argument("--fast", action="store_true", help="simulated clock instead of real time")
    p.add_argument("--config", type=Path)
    p.add_argument("--rules", type=Path)
    p.add_argument("--json", action="store_true", help="print only the JSON object")


def execute(args: argparse.Namespace) -> int:
    from callguard.demo.scenario import DemoDataMissing, speech_dir

    with tempfile.TemporaryDirectory() as tmp:
        wav = args.wav
        if wav is None:
            try:
                data = speech_dir()
            except DemoDataMissing as exc:
                print(f"error: give a call recording to benchmark: {exc}", file=sys.stderr)
                return 2
            wav = Path(tmp) / "bench_call.wav"
            build_bench_call(wav, data, max(1, min(args.utterances, 40)))
        result = run(wav, realtime=not args.fast, config=args.config, rules=args.rules)
    if not args.json:
        print(table(result))
    print(json.dumps(result, ensure_ascii=False))
    return 0
