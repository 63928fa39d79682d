"""Benchmark: Korean recognition quality (CER) of whole utterances vs. a segmented live stream.

Prints JSON. Data: the speech-ko set (kNNN.wav, 16 kHz mono, with kNNN.txt references) read
in place from ``../shared/data/speech-ko`` — never copied into the project. Every file is
first brought to telephone quality (8 kHz int16 after a G.711 round trip), as a call
delivers it. Three passes, all through the real Whisper model and the hallucination guard
(:func:`callguard.asr.guard.judge`):

``whole``
    each file recognised on its own (the segmentation upper bound): per-file and corpus CER.
``stream``
    all files concatenated into one telephone stream with ``gap_s`` seconds before, between
    and after them, and low-level Gaussian noise (RMS ``noise_rms`` on the int16 scale,
    fixed seed) as a continuous line-noise floor (``--noise floor``, the default) or only in
    the gaps (``--noise gaps``: webrtcvad calls such noise onsets speech and bridges the
    gaps, see :func:`build_stream`); the :class:`~callguard.audio.vad.Segmenter` runs over
    it in 20 ms chunks as in a live call (final utterances only, no early looks); each
    utterance is recognised and guarded, the texts are joined in order and scored against
    the joined references. The ``whole`` pass recognises each file's span of this same
    stream, so both passes hear the same codec and noise.
    Also reported: segment count, references split over several segments, references that
    share a segment with another (merged), references no segment covered (missed), and an
    approximate per-reference CER (each segment's text credited to the reference it
    overlaps most).
``baseline``
    the same stream through the naive segmentation of DESIGN.md (300 ms hangover, no
    pre-roll, no tail), the setting that measured CER ≈ 0.70.

``--sweep 'hangover_ms=800,pre_roll_ms=400' ...`` adds stream passes with other segmenter
settings (keys of :class:`SegSettings`); ``--pad-s`` pads each utterance with zeros at both
ends (16 kHz float) before recognition.

Units: CER is edits / reference characters (see :mod:`callguard.text.cer`); times are
wall-clock seconds; RTF is recognition wall time / recognised audio seconds (< 1 is faster
than real time); segment boundaries are seconds on the stream timeline.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from callguard.asr.guard import judge
from callguard.asr.transcript import ASR_RATE, Transcriber
from callguard.audio import g711
from callguard.audio.resample import to_16k
from callguard.audio.vad import Segmenter, Utterance
from callguard.audio.wavfile import TELEPHONE_RATE, read_wav, to_telephone
from callguard.bench.stats import percentile
from callguard.session.call import SessionConfig
from callguard.text.cer import corpus_cer, score

#: The repository root: the folder that holds the ``callguard`` package.
REPO_ROOT = Path(__file__).resolve().parents[2]
DATA_ENV = "CALLGUARD_SPEECH_DATA"
CHUNK_MS = 20  # a live call delivers 20 ms RTP packets


def default_data_dir() -> Path:
    """``$CALLGUARD_SPEECH_DATA`` or ``<repo root>/../shared/data/speech-ko``."""
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env)
    return REPO_ROOT.parent / "shared" / "data" / "speech-ko"


# --- data ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpeechItem:
    """One reference utterance: ``pcm`` is int16 mono at 8 kHz, linear (the codec is
    applied to the assembled stream by :func:`build_stream`)."""

    name: str
    reference: str
    pcm: np.ndarray = field(repr=False)

    @property
    def seconds(self) -> float:
        return self.pcm.size / TELEPHONE_RATE


def load_items(data_dir: Path, *, names: Sequence[str] | None = None,
               limit: int | None = None) -> list[SpeechItem]:
    """Read ``kNNN.wav`` + ``kNNN.txt`` pairs (sorted by name, or exactly ``names``),
    resampled to 8 kHz int16. Raises FileNotFoundError when the folder or a named file is
    missing."""
    if not data_dir.is_dir():
        raise FileNotFoundError(f"speech data not found at {data_dir} (set --data or "
                                f"${DATA_ENV})")
    stems = list(names) if names is not None else sorted(
        p.stem for p in data_dir.glob("*.wav") if p.with_suffix(".txt").is_file())
    if limit is not None:
        stems = stems[:limit]
    items = []
    for stem in stems:
        data, rate = read_wav(data_dir / f"{stem}.wav")
        ref = (data_dir / f"{stem}.txt").read_text(encoding="utf-8").strip()
        items.append(SpeechItem(stem, ref, to_telephone(data[:, 0], rate, codec=None)))
    return items


def noise(n: int, rms: float, rng: np.random.Generator) -> np.ndarray:
    """``n`` samples of Gaussian noise with ``rms`` on the int16 scale (float64)."""
    return rng.normal(0.0, rms, n) if rms > 0 else np.zeros(n)


#: Where the noise goes: ``floor`` = a continuous line-noise floor under the whole stream,
#: speech included (what a phone line has); ``gaps`` = only in the gaps between files.
NOISE_MODES = ("floor", "gaps")


def build_stream(items: Sequence[SpeechItem], *, gap_s: float = 1.0, noise_rms: float = 100.0,
                 noise_mode: str = "floor", seed: int = 1234, codec: str | None = "ulaw",
                 ) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Join the items into one telephone stream (8 kHz int16 after the ``codec`` round
    trip) with ``gap_s`` seconds before, between and after them, and Gaussian noise of
    ``noise_rms`` (int16 scale) either under everything (``noise_mode="floor"``) or only
    in the gaps (``"gaps"``). Returns the stream and each item's ``(start, end)`` sample
    span on it; ``stream[start:end]`` is that item as the call delivers it.

    Measured: noise only in the gaps at RMS ≥ 30 is called speech by webrtcvad (modes 1-2,
    98 % of gap frames: the detector adapts to the quiet floor inside the recordings, so a
    noise onset looks like an event), which bridges every gap; a continuous floor at RMS
    100 is never called speech.
    """
    if noise_mode not in NOISE_MODES:
        raise ValueError(f"noise_mode must be one of {NOISE_MODES}, not {noise_mode!r}")
    rng = np.random.default_rng(seed)
    gap = round(gap_s * TELEPHONE_RATE)
    total = gap * (len(items) + 1) + sum(i.pcm.size for i in items)
    linear = np.zeros(total)
    spans: list[tuple[int, int]] = []
    pos = gap
    for item in items:
        linear[pos : pos + item.pcm.size] = item.pcm
        spans.append((pos, pos + item.pcm.size))
        pos += item.pcm.size + gap
    if noise_mode == "floor":
        linear += noise(total, noise_rms, rng)
    else:
        prev = 0
        for start, end in [*spans, (total, total)]:
            linear[prev:start] += noise(start - prev, noise_rms, rng)
            prev = end
    pcm = np.clip(np.rint(linear), -32768, 32767).astype(np.int16)
    pcm = g711.round_trip(pcm, codec)
    return np.asarray(pcm, dtype=np.int16), spans


# --- recognition --------------------------------------------------------------------------


@dataclass
class Recognized:
    """One recognition: guarded ``text`` (what rules would see), Whisper's ``raw`` text,
    ``asr_s`` wall seconds, ``audio_s`` seconds of audio (without padding)."""

    text: str
    raw: str
    asr_s: float
    audio_s: float
    dropped: tuple[tuple[str, str], ...] = ()


class Recognizer:
    """Telephone int16 → 16 kHz float (optionally padded with ``pad_s`` seconds of zeros at
    both ends) → transcriber → guard. Results are cached by ``key`` (deterministic greedy
    decoding gives the same text for the same audio), so sweeps re-use shared segments."""

    def __init__(self, transcriber: Transcriber, *, pad_s: float = 0.0) -> None:
        self.transcriber = transcriber
        self.pad_s = pad_s
        self._cache: dict[Any, Recognized] = {}

    def __call__(self, pcm: np.ndarray, rate: int = TELEPHONE_RATE,
                 key: Any = None) -> Recognized:
        if key is not None and (key, self.pad_s) in self._cache:
            return self._cache[(key, self.pad_s)]
        audio = to_16k(pcm, rate)
        if self.pad_s > 0:
            pad = np.zeros(round(self.pad_s * ASR_RATE), dtype=np.float32)
            audio = np.concatenate([pad, audio, pad])
        started = time.perf_counter()
        transcript = self.transcriber.transcribe(audio)
        verdict = judge(transcript)
        out = Recognized(verdict.text, transcript.text, time.perf_counter() - started,
                         pcm.size / rate, verdict.dropped)
        if key is not None:
            self._cache[(key, self.pad_s)] = out
        return out


def timing(recs: Sequence[Recognized]) -> dict[str, float | int]:
    """RTF (recognition seconds / audio seconds) and per-utterance mean, p95, max seconds."""
    times = sorted(r.asr_s for r in recs)
    audio = sum(r.audio_s for r in recs)
    if not times:
        return {"utterances": 0, "audio_s": 0.0, "asr_s": 0.0, "rtf": 0.0,
                "mean_s": 0.0, "p95_s": 0.0, "max_s": 0.0}
    p95 = percentile(times, 95)
    return {"utterances": len(times), "audio_s": round(audio, 3),
            "asr_s": round(sum(times), 3), "rtf": round(sum(times) / audio, 4),
            "mean_s": round(statistics.fmean(times), 3), "p95_s": round(p95, 3),
            "max_s": round(times[-1], 3)}


def run_whole(items: Sequence[SpeechItem], stream: np.ndarray,
              spans: Sequence[tuple[int, int]], rec: Recognizer) -> dict[str, Any]:
    """Recognise each item on its own — exactly its span of the stream, so with the same
    codec and noise as the stream passes; per-file and corpus CER (guarded and raw text)."""
    files = []
    recs = []
    for item, (start, end) in zip(items, spans, strict=True):
        r = rec(stream[start:end], key=("whole", item.name))
        recs.append(r)
        s = score(item.reference, r.text)
        files.append({"name": item.name, "cer": round(s.cer, 4), "edits": s.edits,
                      "ref_chars": s.ref_chars, "audio_s": round(item.seconds, 3),
                      "asr_s": round(r.asr_s, 3), "ref": item.reference, "hyp": r.text,
                      **({"dropped": [list(d) for d in r.dropped]} if r.dropped else {})})
    return {
        "cer": round(corpus_cer((i.reference, r.text) for i, r in zip(items, recs,
                                                                       strict=True)), 4),
        "raw_cer": round(corpus_cer((i.reference, r.raw) for i, r in zip(items, recs,
                                                                         strict=True)), 4),
        "mean_file_cer": round(statistics.fmean(f["cer"] for f in files), 4) if files else 0,
        "timing": timing(recs),
        "files": files,
    }


# --- segmentation -------------------------------------------------------------------------


@dataclass(frozen=True)
class SegSettings:
    """Segmenter settings (milliseconds / seconds as named; mode is webrtcvad's 0-3)."""

    mode: int = 2
    frame_ms: int = 20
    pre_roll_ms: int = 300
    hangover_ms: int = 600
    tail_ms: int = 300
    min_speech_ms: int = 200
    max_utterance_s: float = 15.0

    @classmethod
    def session_default(cls) -> SegSettings:
        """What a live call uses: :class:`~callguard.session.call.SessionConfig`'s values."""
        c = SessionConfig()
        return cls(mode=c.vad_mode, frame_ms=c.frame_ms, pre_roll_ms=c.pre_roll_ms,
                   hangover_ms=c.hangover_ms, tail_ms=c.tail_ms,
                   max_utterance_s=c.max_utterance_s)

    @classmethod
    def naive(cls) -> SegSettings:
        """DESIGN.md's naive webrtcvad segmentation: 300 ms hangover, no pre-roll, no tail."""
        return cls(pre_roll_ms=0, hangover_ms=300, tail_ms=0)

    def replace(self, spec: str) -> SegSettings:
        """Apply ``key=value,key=value`` (keys are this class's fields)."""
        kinds = {f.name: f.type for f in dataclasses.fields(self)}
        changes: dict[str, Any] = {}
        for part in filter(None, (p.strip() for p in spec.split(","))):
            key, sep, value = part.partition("=")
            key = key.strip().replace("-", "_")
            if not sep or key not in kinds:
                raise ValueError(f"bad setting {part!r}; keys: {', '.join(kinds)}")
            changes[key] = float(value) if kinds[key] in ("float", float) else int(value)
        return dataclasses.replace(self, **changes)

    def segmenter(self) -> Segmenter:
        """A live-call segmenter with these settings (no early looks)."""
        return Segmenter(sample_rate=TELEPHONE_RATE, frame_ms=self.frame_ms, mode=self.mode,
                         pre_roll_ms=self.pre_roll_ms, hangover_ms=self.hangover_ms,
                         tail_ms=self.tail_ms, min_speech_ms=self.min_speech_ms,
                         max_utterance_s=self.max_utterance_s, early_ms=None)


def segment(stream: np.ndarray, settings: SegSettings) -> list[Utterance]:
    """Run the segmenter over ``stream`` in 20 ms chunks, then flush: final utterances."""
    seg = settings.segmenter()
    step = TELEPHONE_RATE * CHUNK_MS // 1000
    out: list[Utterance] = []
    for i in range(0, stream.size, step):
        out.extend(seg.push(stream[i : i + step]))
    out.extend(seg.flush())
    return [u for u in out if not u.provisional]


def _overlap(a: tuple[int, int], b: tuple[int, int]) -> int:
    return max(0, min(a[1], b[1]) - max(a[0], b[0]))


def run_stream(items: Sequence[SpeechItem], stream: np.ndarray, spans: Sequence[tuple[int, int]],
               rec: Recognizer, settings: SegSettings) -> dict[str, Any]:
    """Segment the stream, recognise every final utterance, score the joined text.

    A segment *covers* a reference when they overlap by at least 200 ms or by half the
    segment; a reference covered by several segments is *split*, one sharing a segment
    with another reference is *merged*, one covered by none is *missed*.
    """
    started = time.perf_counter()
    utts = segment(stream, settings)
    seg_s = time.perf_counter() - started
    recs = [rec(u.pcm, u.sample_rate, key=("stream", u.start, u.end)) for u in utts]
    hyp = " ".join(r.text for r in recs if r.text)
    ref = " ".join(i.reference for i in items)
    total = score(ref, hyp)
    min_ov = round(0.2 * TELEPHONE_RATE)
    covers: list[list[int]] = []  # per utterance: indices of the references it covers
    assigned: list[list[str]] = [[] for _ in items]
    for u, r in zip(utts, recs, strict=True):
        ov = [_overlap((u.start, u.end), sp) for sp in spans]
        covers.append([k for k, o in enumerate(ov)
                       if o >= min(min_ov, (u.end - u.start) // 2) and o > 0])
        if r.text and max(ov, default=0) > 0:
            assigned[int(np.argmax(ov))].append(r.text)
    per_ref_segments = [sum(k in c for c in covers) for k in range(len(items))]
    merged_refs = {k for c in covers if len(c) > 1 for k in c}
    per_ref = []
    edits = chars = 0
    for k, item in enumerate(items):
        s = score(item.reference, " ".join(assigned[k]))
        edits += s.edits
        chars += s.ref_chars
        per_ref.append({"name": item.name, "cer": round(s.cer, 4), "segments":
                        per_ref_segments[k], "merged": k in merged_refs,
                        "hyp": " ".join(assigned[k])})
    return {
        "settings": dataclasses.asdict(settings),
        "cer": round(total.cer, 4),
        "edits": total.edits,
        "ref_chars": total.ref_chars,
        "raw_cer": round(score(ref, " ".join(r.raw for r in recs if r.raw.strip())).cer, 4),
        "aligned_cer": round(edits / chars, 4) if chars else 0.0,
        "segments": len(utts),
        "forced_cuts": sum(u.forced for u in utts),
        "refs_split": sum(n > 1 for n in per_ref_segments),
        "refs_merged": len(merged_refs),
        "refs_missed": sum(n == 0 for n in per_ref_segments),
        "segments_spanning_refs": sum(len(c) > 1 for c in covers),
        "segments_without_ref": sum(not c for c in covers),
        "guard_rejected": sum(1 for r in recs if not r.text and r.raw.strip()),
        "segment_s": round(seg_s, 3),
        "timing": timing(recs),
        "per_ref": per_ref,
        "utterances": [{"start_s": round(u.start_s, 2), "end_s": round(u.end_s, 2),
                        "refs": [items[k].name for k in c], "text": r.text,
                        **({"dropped": [list(d) for d in r.dropped]} if r.dropped else {})}
                       for u, r, c in zip(utts, recs, covers, strict=True)],
    }


# --- program ------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    d = SegSettings.session_default()
    p = argparse.ArgumentParser(
        prog="callguard bench cer",
        description="CER of Whisper on telephone-quality Korean speech: whole utterances vs. "
                    "a webrtcvad-segmented stream vs. the naive segmentation. Prints JSON.")
    p.add_argument("--data", type=Path, default=None,
                   help=f"speech-ko folder (default ${DATA_ENV} or ../shared/data/speech-ko "
                        "beside the repository)")
    p.add_argument("--limit", type=int, default=None, help="use the first N files only")
    p.add_argument("--files", nargs="+", default=None, metavar="NAME",
                   help="use exactly these files (e.g. k001 k007)")
    p.add_argument("--gap-s", type=float, default=1.0,
                   help="seconds of noise between files in the stream (default 1.0)")
    p.add_argument("--noise-rms", type=float, default=100.0,
                   help="RMS of the gap noise on the int16 scale (default 100)")
    p.add_argument("--noise", choices=NOISE_MODES, default="floor",
                   help="floor: continuous line noise under the whole stream (default); "
                        "gaps: noise only between files (webrtcvad calls its onsets speech)")
    p.add_argument("--seed", type=int, default=1234, help="noise seed")
    p.add_argument("--codec", choices=["ulaw", "alaw", "none"], default="ulaw",
                   help="G.711 round trip (default ulaw; none: 8 kHz linear)")
    p.add_argument("--pad-s", type=float, default=0.0,
                   help="seconds of zeros added at both ends of each utterance (16 kHz) "
                        "before recognition (default 0)")
    p.add_argument("--model", type=Path, default=None,
                   help="CTranslate2 Whisper folder (default: the bundled base model)")
    p.add_argument("--threads", type=int, default=2, help="CPU threads for Whisper")
    p.add_argument("--compute-type", default="int8")
    seg = p.add_argument_group("segmenter (defaults: SessionConfig)")
    seg.add_argument("--mode", type=int, default=d.mode, help="webrtcvad aggressiveness 0-3")
    seg.add_argument("--frame-ms", type=int, default=d.frame_ms, choices=[10, 20, 30])
    seg.add_argument("--pre-roll-ms", type=int, default=d.pre_roll_ms)
    seg.add_argument("--hangover-ms", type=int, default=d.hangover_ms)
    seg.add_argument("--tail-ms", type=int, default=d.tail_ms)
    seg.add_argument("--min-speech-ms", type=int, default=d.min_speech_ms)
    seg.add_argument("--max-utterance-s", type=float, default=d.max_utterance_s)
    p.add_argument("--sweep", nargs="+", default=[], metavar="K=V[,K=V]",
                   help="extra stream passes, each changing the segmenter settings above, "
                        "e.g. 'hangover_ms=800,pre_roll_ms=400'")
    p.add_argument("--skip", nargs="+", default=[], choices=["whole", "stream", "baseline"],
                   help="passes to leave out")
    p.add_argument("--brief", action="store_true",
                   help="leave per-file, per-segment and per-reference lists out of the JSON")
    p.add_argument("--json-only", action="store_true",
                   help="no progress or summary on stderr; only the JSON on stdout")
    return p


def _brief(result: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if k not in ("files", "per_ref", "utterances")}


def _row(name: str, r: dict[str, Any]) -> str:
    s = r.get("settings")
    cfg = (f"mode={s['mode']} frame={s['frame_ms']} pre={s['pre_roll_ms']} "
           f"hang={s['hangover_ms']} tail={s['tail_ms']}") if s else ""
    extra = (f" segs={r['segments']} split={r['refs_split']} merged={r['refs_merged']} "
             f"missed={r['refs_missed']}") if s else ""
    return (f"{name:<10} CER {r['cer']:.3f}  rtf {r['timing']['rtf']:.3f}  "
            f"mean {r['timing']['mean_s']:.2f}s p95 {r['timing']['p95_s']:.2f}s  {cfg}{extra}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; print JSON on stdout (and a summary on stderr). Returns 0, or 2
    when the data or the model cannot be found."""
    args = _parser().parse_args(argv)
    say = (lambda *_a: None) if args.json_only else (
        lambda *a: print(*a, file=sys.stderr, flush=True))
    codec = None if args.codec == "none" else args.codec
    data_dir = args.data or default_data_dir()
    settings = SegSettings(mode=args.mode, frame_ms=args.frame_ms,
                           pre_roll_ms=args.pre_roll_ms, hangover_ms=args.hangover_ms,
                           tail_ms=args.tail_ms, min_speech_ms=args.min_speech_ms,
                           max_utterance_s=args.max_utterance_s)
    try:
        sweep = [settings.replace(spec) for spec in args.sweep]
        items = load_items(data_dir, names=args.files, limit=args.limit)
    except (ValueError, FileNotFoundError) as exc:
        print(f"callguard bench cer: {exc}", file=sys.stderr)
        return 2
    if not items:
        print(f"callguard bench cer: no kNNN.wav + kNNN.txt pairs in {data_dir}",
              file=sys.stderr)
        return 2

    from callguard.asr.bundled import ModelError, bundled_model_dir
    from callguard.asr.whisper import WhisperTranscriber

    try:
        model = args.model or bundled_model_dir()
        transcriber = WhisperTranscriber(model, compute_type=args.compute_type,
                                         cpu_threads=args.threads)
    except ModelError as exc:
        print(f"callguard bench cer: {exc}", file=sys.stderr)
        return 2
    rec = Recognizer(transcriber, pad_s=args.pad_s)
    rec(np.zeros(TELEPHONE_RATE, dtype=np.int16))  # warm-up: first call pays lazy set-up
    stream, spans = build_stream(items, gap_s=args.gap_s, noise_rms=args.noise_rms,
                                 noise_mode=args.noise, seed=args.seed, codec=codec)
    out: dict[str, Any] = {
        "data": str(data_dir), "files": len(items),
        "audio_s": round(sum(i.seconds for i in items), 3),
        "stream_s": round(stream.size / TELEPHONE_RATE, 3),
        "codec": args.codec, "gap_s": args.gap_s, "noise_rms": args.noise_rms,
        "noise": args.noise,
        "seed": args.seed, "pad_s": args.pad_s, "model": transcriber.name,
        "compute_type": args.compute_type, "threads": args.threads,
        "model_load_s": round(transcriber.load_s, 3),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
    }
    say(f"{len(items)} files, {out['audio_s']:.1f} s of speech, stream {out['stream_s']:.1f} s")
    cut = _brief if args.brief else (lambda r: r)
    if "whole" not in args.skip:
        out["whole"] = cut(run_whole(items, stream, spans, rec))
        say(_row("whole", out["whole"]))
    if "stream" not in args.skip:
        out["stream"] = cut(run_stream(items, stream, spans, rec, settings))
        say(_row("stream", out["stream"]))
    if "baseline" not in args.skip:
        out["baseline"] = cut(run_stream(items, stream, spans, rec, SegSettings.naive()))
        say(_row("baseline", out["baseline"]))
    if sweep:
        out["sweep"] = []
        for i, s in enumerate(sweep):
            r = _brief(run_stream(items, stream, spans, rec, s))
            out["sweep"].append(r)
            say(_row(f"sweep {i + 1}", r))
    print(json.dumps(out, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
