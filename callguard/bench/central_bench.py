"""Central server benchmark (issue 14): ingest from many desks, the supervisor's queries on a
million calls, and audio bytes per call-hour. Prints one JSON object.

    python3 -m callguard.bench.central_bench --json
    python3 -m callguard.bench.central_bench --desks 3 --calls-per-desk 2 --rows 2000 \\
        --min-call-s 20 --max-call-s 40 --window-s 10 --json

What runs, all on 127.0.0.1 (:mod:`callguard.server.trial`): a private PostgreSQL cluster
(Debian's binaries) and the real server process (``callguard server run``, HTTPS with the
pinned self-signed certificate), set up by ``callguard server init`` and ``migrate``.

1. **Audio**: a two-leg call built from real Korean speech (``--speech-dir``, 16 kHz WAVs
   brought to the telephone: 8 kHz through a G.711 round trip; the caller talks, the
   counselor's leg is partly speech, partly line silence) is encoded with
   :func:`callguard.audio.compress.encode` as Opus and FLAC; bytes per call-hour against the
   raw PCM16 stereo the desk stores, and the CPU time to encode and to decode (the server
   decodes every upload to verify it).
2. **Ingest**: ``--desks`` desks are enrolled (:func:`callguard.server.admin.add_desk`, as
   ``callguard server desk add``) and each ends ``--calls-per-desk`` calls of 3–6 minutes
   spread over ``--window-s`` seconds (the working day, compressed). At a call's end the
   desk delivers it as the real uploader does, through
   :class:`callguard.central.client.HttpCentral`: its alerts first, then the Opus recording
   (resumable upload by SHA-256), then the call's JSON (utterances on both legs, rule hits,
   verdicts, actions). Each desk delivers its calls one after another (one uploader per
   desk); the desks run concurrently as asyncio tasks in ``--client-procs`` processes. The
   recordings are a few pre-encoded Opus files of real speech (one per call length), each
   made distinct per call by a unique comment in its Ogg ``OpusTags`` header (page CRC
   recomputed), so every call uploads its own blob of realistic size and the server decodes
   and verifies every one. Sync lag: from the call's end (the moment the desk queues it) to
   the server's acceptance (``POST /api/v1/calls`` answered 201).
3. **Query**: the calls table is filled up to ``--rows`` calls with COPY (psycopg), spread
   over all desks and ``--days`` days, ``--flagged-share`` flagged, each with a few
   utterances (and a hit, verdict and action when flagged); then a supervisor signs in and
   the real HTTP API is timed: the filtered list (flagged, one desk, since a date), paging
   through it with ``before``, the all-desks flagged list and a call's detail. EXPLAIN
   ANALYZE of the list queries is in the JSON, and the same is measured again with a
   candidate index (created in this throwaway database only, never as a migration).

Everything is stopped and removed at the end, also on Ctrl-C or an error. Every loop is
bounded in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time
import uuid as uuidlib
from pathlib import Path
from typing import Any

import numpy as np

from callguard.bench.stats import percentile

RATE = 8000
RAW_BYTES_PER_S = RATE * 2 * 2  # PCM16, two legs: what the desk stores
SPEECH_DIR = Path("/work/shared/data/speech-ko")
SUPERVISOR = ("bench-supervisor", "password-123")
CANDIDATE_INDEX = ("CREATE INDEX IF NOT EXISTS calls_desk_flagged ON calls"
                   " (desk_id, started_at DESC, uuid DESC) WHERE flagged")
CANDIDATE_INDEX_ALL = ("CREATE INDEX IF NOT EXISTS calls_flagged_desc ON calls"
                       " (started_at DESC, uuid DESC) WHERE flagged")
ABUSE = [("이 새끼야 진짜 말귀를 못 알아듣네", "insult-1", "insult", 2, "새끼", 2, 4),
         ("너 죽여버린다 각오해", "threat-1", "threat", 3, "죽여", 2, 4),
         ("씨발 장난하냐 지금", "profanity-1", "profanity", 2, "씨발", 0, 2)]


def _stats(values: list[float], scale: float = 1.0, digits: int = 3) -> dict[str, Any]:
    if not values:
        return {"n": 0, "p50": None, "p95": None, "max": None}
    return {"n": len(values),
            "p50": round(percentile(values, 50) * scale, digits),  # type: ignore[operator]
            "p95": round(percentile(values, 95) * scale, digits),  # type: ignore[operator]
            "max": round(max(values) * scale, digits)}


# -- audio ----------------------------------------------------------------------------------
def load_speech(directory: Path, limit: int = 80) -> list[tuple[np.ndarray, str]]:
    """The speech clips as telephone audio (int16, 8 kHz) with their transcripts."""
    from callguard.audio.wavfile import read_wav, to_telephone

    clips = []
    for wav in sorted(directory.glob("*.wav"))[:limit]:
        x, rate = read_wav(wav)
        txt = wav.with_suffix(".txt")
        text = txt.read_text(encoding="utf-8").strip() if txt.exists() else ""
        clips.append((to_telephone(x[:, 0], rate), text))
    return clips


def _synthetic_clip(rng: np.random.Generator) -> np.ndarray:
    n = int(rng.uniform(1.5, 4.0) * RATE)
    env = (np.sin(np.arange(n) / RATE * 2 * np.pi * 3) > -0.3).astype(np.float32)
    return (rng.standard_normal(n) * 2500 * env).astype(np.int16)


def build_call(seconds: float, clips: list[tuple[np.ndarray, str]],
               rng: np.random.Generator) -> np.ndarray:
    """A two-leg call (int16 ``(n, 2)``, caller left): turns of the clips, the caller
    talking more, the counselor's leg silent while the caller talks (and the reverse), low
    line noise in the pauses."""
    n = int(seconds * RATE)
    out = (rng.standard_normal((n, 2)) * 6).astype(np.int16)  # line noise
    pos, leg = int(0.5 * RATE), 0
    while pos < n:
        for _ in range(int(rng.integers(1, 4 if leg == 0 else 3))):
            clip = clips[int(rng.integers(len(clips)))][0] if clips else _synthetic_clip(rng)
            end = min(n, pos + len(clip))
            out[pos:end, leg] = clip[:end - pos]
            pos = end + int(rng.uniform(0.1, 0.4) * RATE)
            if pos >= n:
                break
        pos += int(rng.uniform(0.3, 1.2) * RATE)
        leg = 1 - leg
    return out


def audio_section(clips: list[tuple[np.ndarray, str]], seconds: float, seed: int,
                  source: str) -> dict[str, Any]:
    from callguard.audio.compress import decode, encode, stereo_wav

    frames = build_call(seconds, clips, np.random.default_rng(seed))
    wav = stereo_wav(frames, RATE)
    hour = 3600 / seconds
    out: dict[str, Any] = {
        "source": source, "call_seconds": seconds,
        "speech_share": {"caller": round(float(np.mean(np.abs(frames[:, 0]) > 200)), 3),
                         "counselor": round(float(np.mean(np.abs(frames[:, 1]) > 200)), 3)},
        "raw_pcm16_stereo_8k_bytes_per_call_hour": RAW_BYTES_PER_S * 3600,
        "raw_bytes_per_s": RAW_BYTES_PER_S}
    for codec in ("opus", "flac"):
        t0 = time.process_time()
        enc = encode(wav, codec)
        t1 = time.process_time()
        back = decode(enc.data, RATE)
        t2 = time.process_time()
        out[codec] = {
            "bytes_per_call_hour": round(len(enc.data) * hour),
            "bytes_per_s": round(len(enc.data) / seconds, 1),
            "ratio_vs_raw": round(len(enc.data) / (RAW_BYTES_PER_S * seconds), 4),
            "encode_cpu_s_per_call_hour": round((t1 - t0) * hour, 2),
            "decode_cpu_s_per_call_hour": round((t2 - t1) * hour, 2),
            "decoded_frames_match": bool(abs(len(back) - len(frames)) <= RATE // 50)}
        if codec == "opus":  # what the server's check needs, without decoding
            t3 = time.perf_counter()
            counted = opus_frames_from_ogg(enc.data)
            out[codec]["frames_from_ogg_granule"] = {
                "frames": counted, "decoded_frames": len(back), "encoded_frames": len(frames),
                "cpu_ms": round((time.perf_counter() - t3) * 1000, 3)}
    out["target_bytes_per_s"] = 4000
    return out


# -- distinct Opus blobs --------------------------------------------------------------------
def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        r = i << 24
        for _ in range(8):
            r = ((r << 1) ^ 0x04C11DB7) if r & 0x80000000 else (r << 1)
        table.append(r & 0xFFFFFFFF)
    return table


_CRC = _crc_table()


def ogg_crc(data: bytes) -> int:
    """Ogg's page checksum (CRC-32, polynomial 0x04C11DB7, no reflection, start 0)."""
    crc = 0
    for b in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ _CRC[((crc >> 24) & 0xFF) ^ b]
    return crc


def _ogg_pages(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of the first pages of an Ogg stream (enough to find OpusTags)."""
    pages, pos = [], 0
    while pos < len(data) and len(pages) < 3:
        if data[pos:pos + 4] != b"OggS":
            raise ValueError("not an Ogg page")
        nseg = data[pos + 26]
        body = sum(data[pos + 27:pos + 27 + nseg])
        end = pos + 27 + nseg + body
        pages.append((pos, end))
        pos = end
    return pages


def opus_frames_from_ogg(data: bytes, rate: int = RATE) -> int:
    """Samples per leg of an Ogg Opus file without decoding it: the last page's granule
    position (48 kHz) less the OpusHead pre-skip, at ``rate``."""
    nseg = data[26]
    head = data[27 + nseg:]
    if not head.startswith(b"OpusHead"):
        raise ValueError("no OpusHead")
    pre_skip = struct.unpack_from("<H", head, 10)[0]
    last = data.rfind(b"OggS")
    granule = struct.unpack_from("<q", data, last + 6)[0]
    return (granule - pre_skip) * rate // 48000


def opus_variant(data: bytes, tag: str) -> bytes:
    """The same Ogg Opus recording with ``CALLGUARD_BENCH=<tag>`` added to its OpusTags
    header (one page, CRC recomputed): other bytes, the very same audio."""
    start, end = _ogg_pages(data)[1]
    nseg = data[start + 26]
    packet = data[start + 27 + nseg:end]
    if not packet.startswith(b"OpusTags") or data[start + 27 + nseg - 1] == 255:
        raise ValueError("the second page is not one whole OpusTags packet")
    vlen = struct.unpack_from("<I", packet, 8)[0]
    count_at = 12 + vlen
    count = struct.unpack_from("<I", packet, count_at)[0]
    comment = f"CALLGUARD_BENCH={tag}".encode()
    packet = (packet[:count_at] + struct.pack("<I", count + 1) + packet[count_at + 4:]
              + struct.pack("<I", len(comment)) + comment)
    lacing = [255] * (len(packet) // 255) + [len(packet) % 255]
    header = bytearray(data[start:start + 27])
    header[26] = len(lacing)
    header[22:26] = b"\0\0\0\0"
    page = bytearray(header + bytes(lacing) + packet)
    page[22:26] = struct.pack("<I", ogg_crc(bytes(page)))
    return data[:start] + bytes(page) + data[end:]


# -- synthetic calls ------------------------------------------------------------------------
def uuid7(epoch: float, rng: random.Random) -> str:
    ms = int(epoch * 1000) & ((1 << 48) - 1)
    value = (ms << 80) | (0x7 << 76) | (rng.getrandbits(12) << 64) | (0b10 << 62) \
        | rng.getrandbits(62)
    return str(uuidlib.UUID(int=value))


def call_payload(desk: int, k: int, ended_at: float, seconds: float,
                 blob: dict[str, Any] | None, texts: list[str],
                 rng: random.Random) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One ended call as the desk sends it, and its alerts: an utterance every ~7 s
    alternating legs; ~10 % flagged (hits, a warning and its prompt), a few of them with a
    final verdict and hang-up, a crisis alert or a protect press."""
    call_uuid = uuid7(ended_at - seconds, rng)
    counselor = f"counselor-{desk:03d}"
    utterances, verdicts, actions, alerts = [], [], [], []
    flagged = rng.random() < 0.10
    abusive_at = set(rng.sample(range(2, 40), rng.randint(1, 3))) if flagged else set()
    t, seq = 1.0, 0
    while t < seconds - 3:
        seq += 1
        leg = "caller" if seq % 2 else "counselor"
        length = rng.uniform(1.5, 5.0)
        u = {"seq": seq, "leg": leg, "start_s": round(t, 2),
             "end_s": round(min(seconds, t + length), 2),
             "at_s": round(min(seconds, t + length + 0.6), 2),
             "text": rng.choice(texts) if texts else "네 말씀하세요", "status": "ok",
             "reason": None, "hits": []}
        if seq in abusive_at and leg == "caller":
            text, rule, cat, sev, term, a, b = rng.choice(ABUSE)
            u["text"] = text
            u["hits"] = [{"seq": seq, "rule_id": rule, "category": cat, "severity": sev,
                          "term": term, "start": a, "end": b, "matched": term}]
            at = u["at_s"]
            verdicts.append({"seq": len(verdicts) + 1, "t_s": at, "kind": "warn",
                             "prompt": "warning", "hangup": False, "reason": f"rule {rule}",
                             "cause": "rules"})
            actions.append({"seq": len(actions) + 1, "t_s": at, "kind": "play_prompt",
                            "detail": "warning (3.0 s)", "ok": True, "error": None,
                            "prompt": "warning", "seconds": 3.0})
        utterances.append(u)
        t += length + rng.uniform(0.5, 3.5)
    end_reason, hung_up_by = "caller_hangup", "remote"
    if flagged:
        roll = rng.random()
        last = utterances[-1]["end_s"] if utterances else seconds / 2
        if roll < 0.10:  # crisis words
            verdicts.append({"seq": len(verdicts) + 1, "t_s": last, "kind": "alert",
                             "prompt": None, "hangup": False, "reason": "crisis words",
                             "cause": "crisis"})
            actions.append({"seq": len(actions) + 1, "t_s": last, "kind": "alert",
                            "detail": "crisis: self-harm", "ok": True, "error": None,
                            "prompt": None, "seconds": None})
            alerts.append({"key": f"{call_uuid}/actions/{len(actions)}", "kind": "crisis",
                           "raised_at": ended_at - seconds + last, "counselor": counselor,
                           "call_uuid": call_uuid, "detail": "crisis: self-harm"})
        elif roll < 0.25:  # the counselor pressed protect
            verdicts.append({"seq": len(verdicts) + 1, "t_s": last, "kind": "final",
                             "prompt": "final", "hangup": True,
                             "reason": "counselor pressed protect", "cause": "protect"})
            actions.append({"seq": len(actions) + 1, "t_s": last, "kind": "hangup",
                            "detail": "protect", "ok": True, "error": None, "prompt": None,
                            "seconds": None})
            alerts.append({"key": f"{call_uuid}/verdicts/{len(verdicts)}", "kind": "protect",
                           "raised_at": ended_at - seconds + last, "counselor": counselor,
                           "call_uuid": call_uuid, "detail": "protect"})
            end_reason, hung_up_by = "agent_hangup", "agent"
        elif roll < 0.35:
            alerts.append({"key": f"{call_uuid}/audit_log/{k}", "kind": "supervisor_notified",
                           "raised_at": ended_at - 5, "counselor": counselor,
                           "call_uuid": call_uuid, "detail": ""})
    payload = {
        "wire": 1, "uuid": call_uuid, "desk_call_id": k + 1, "counselor": counselor,
        "direction": "inbound", "source": "sip",
        "remote": f"010-{rng.randint(1000, 9999)}-{rng.randint(1000, 9999)}",
        "started_at": ended_at - seconds, "ended_at": ended_at,
        "duration_s": round(seconds, 2), "end_reason": end_reason, "hung_up_by": hung_up_by,
        "flagged": flagged, "stage": "final" if flagged else "none",
        "rules_version": "bench-rules-1", "sample_rate": RATE,
        "recording_sha256": hashlib.sha256(call_uuid.encode()).hexdigest(),
        "audio": blob, "utterances": utterances, "verdicts": verdicts, "actions": actions}
    return payload, alerts


# -- the desks (client processes) -----------------------------------------------------------
async def _deliver(central: Any, payload: dict[str, Any], alerts: list[dict[str, Any]],
                   blob: bytes, deadline: float) -> int:
    """Deliver one call as the uploader does, retrying what may be retried; the number of
    retries."""
    from callguard.central.client import CentralUnavailable

    retries = 0
    pending = list(alerts)
    while True:
        try:
            while pending:
                await central.post_alert(pending[0])
                pending.pop(0)
            await central.upload_blob(payload["audio"]["sha256"], blob)
            answer = await central.post_call(payload)
            if not answer.get("verified"):
                raise CentralUnavailable("not verified")
            return retries
        except CentralUnavailable:
            retries += 1
            if retries > 12 or time.time() > deadline:
                raise
            await asyncio.sleep(min(10.0, 0.5 * 2 ** retries) * (1 + 0.2 * random.random()))


async def _desk(spec: dict[str, Any], desk: dict[str, Any], blobs: list[bytes],
                results: dict[str, Any]) -> None:
    from callguard.central.client import HttpCentral
    from callguard.central.settings import CentralSettings

    rng = random.Random(spec["seed"] * 100_003 + desk["index"])
    settings = CentralSettings(spec["url"], desk["token"], spec["fingerprint"], audio="opus",
                               cert_cache=Path(spec["cert_cache"]))
    central = HttpCentral(settings, timeout=120)
    n, window = spec["calls_per_desk"], spec["window_s"]
    ends = sorted(spec["start_at"] + (k + rng.random()) * window / n for k in range(n))
    try:
        for k, end in enumerate(ends):
            await asyncio.sleep(max(0.0, end - time.time()))
            b = rng.randrange(len(blobs))
            meta = spec["blobs"][b]
            data = opus_variant(blobs[b], f"{desk['index']}-{k}-{rng.getrandbits(32):08x}")
            ref = {"sha256": hashlib.sha256(data).hexdigest(), "codec": "opus",
                   "bytes": len(data), "frames": meta["frames"]}
            payload, alerts = call_payload(desk["index"], k + 100_000 * spec["phase"], end,
                                           meta["seconds"], ref, spec["texts"], rng)
            try:
                retries = await _deliver(central, payload, alerts, data,
                                         end + spec["give_up_s"])
            except Exception as exc:  # counted and reported, the desk goes on
                results["failed"] += 1
                if len(results["errors"]) < 10:
                    results["errors"].append(f"{type(exc).__name__}: {exc}"[:300])
                continue
            results["lags"].append(time.time() - end)
            results["calls"] += 1
            results["alerts"] += len(alerts)
            results["retries"] += retries
            results["bytes"] += len(data)
            results["call_seconds"] += meta["seconds"]
    finally:
        await central.aclose()


async def _worker_main(spec: dict[str, Any]) -> dict[str, Any]:
    blobs = [Path(b["path"]).read_bytes() for b in spec["blobs"]]  # noqa: ASYNC240
    results: dict[str, Any] = {"lags": [], "calls": 0, "alerts": 0, "failed": 0,
                               "retries": 0, "bytes": 0, "call_seconds": 0.0, "errors": []}
    await asyncio.gather(*(_desk(spec, d, blobs, results) for d in spec["desks"]))
    return results


def worker(spec_path: Path) -> int:
    spec = json.loads(spec_path.read_text(encoding="utf-8"))
    results = asyncio.run(_worker_main(spec))
    ru = __import__("resource").getrusage(__import__("resource").RUSAGE_SELF)
    results["cpu_s"] = round(ru.ru_utime + ru.ru_stime, 2)
    print(json.dumps(results))
    return 0


# -- process sampling -----------------------------------------------------------------------
class Sampler:
    """Samples the server's CPU and RSS (psutil) every ``period`` seconds in a thread."""

    def __init__(self, pid: int, pg_pid: int | None, period: float = 1.0) -> None:
        import psutil

        self.proc = psutil.Process(pid)
        self.pg = psutil.Process(pg_pid) if pg_pid else None
        self.period = period
        self.cpu: list[float] = []
        self.rss: list[int] = []
        self.machine: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _pg_cpu(self) -> float:
        import psutil

        if self.pg is None:
            return 0.0
        total = 0.0
        with contextlib.suppress(psutil.Error):
            for p in [self.pg, *self.pg.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    t = p.cpu_times()
                    total += t.user + t.system
        return total

    def start(self) -> None:
        import psutil

        t = self.proc.cpu_times()
        self.cpu0 = t.user + t.system
        self.pg0 = self._pg_cpu()
        self.t0 = time.monotonic()
        self.proc.cpu_percent(None)
        psutil.cpu_percent(None)
        self._thread.start()

    def _run(self) -> None:
        import psutil

        while not self._stop.wait(self.period):
            with contextlib.suppress(psutil.Error):
                self.cpu.append(self.proc.cpu_percent(None))
                self.rss.append(self.proc.memory_info().rss)
                self.machine.append(psutil.cpu_percent(None))

    def stop(self) -> dict[str, Any]:
        import psutil

        self._stop.set()
        self._thread.join(5)
        wall = time.monotonic() - self.t0
        cpu_s = 0.0
        with contextlib.suppress(psutil.Error):
            t = self.proc.cpu_times()
            cpu_s = t.user + t.system - self.cpu0
        return {"cpu_s": round(cpu_s, 1),
                "cpu_pct_of_one_core_mean": round(100 * cpu_s / wall, 1) if wall else None,
                "cpu_pct_of_one_core_p95": _stats(self.cpu, digits=1)["p95"],
                "rss_mb_peak": round(max(self.rss) / 2**20, 1) if self.rss else None,
                "rss_mb_end": round(self.rss[-1] / 2**20, 1) if self.rss else None,
                "postgres_cpu_s": round(self._pg_cpu() - self.pg0, 1),
                "machine_cpu_pct_mean": round(sum(self.machine) / len(self.machine), 1)
                if self.machine else None}


def _postmaster_pid(pg: Any) -> int | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        return int((pg.data / "postmaster.pid").read_text().split()[0])
    return None


# -- phases ---------------------------------------------------------------------------------
def _desk_phase(trial: Any, args: argparse.Namespace, work: Path, desks: list[dict[str, Any]],
                calls_per_desk: int, window_s: float, phase: int, blobs: list[dict[str, Any]],
                texts: list[str], cert_cache: Path) -> dict[str, Any]:
    """Run the desks in ``--client-procs`` processes: each desk ends ``calls_per_desk``
    calls in ``window_s`` seconds and delivers them; lag, throughput, server use."""
    server = trial.server
    procs = max(1, min(args.client_procs, len(desks)))
    start_at = time.time() + 3.0
    specs = []
    for p in range(procs):
        spec = {"url": server.url, "fingerprint": server.fingerprint,
                "cert_cache": str(cert_cache), "desks": desks[p::procs], "phase": phase,
                "calls_per_desk": calls_per_desk, "window_s": window_s,
                "start_at": start_at, "seed": args.seed + 7919 * phase, "blobs": blobs,
                "texts": texts, "give_up_s": args.give_up_s}
        path = work / f"worker-{phase}-{p}.json"
        path.write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
        specs.append(path)
    sampler = Sampler(server.pid, _postmaster_pid(trial.pg))
    sampler.start()
    t_start = time.time()
    workers = [subprocess.Popen([sys.executable, "-m", "callguard.bench.central_bench",
                                 "--worker", str(path)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for path in specs]
    results = []
    budget = 3.0 + window_s + args.give_up_s + 120
    try:
        for w in workers:
            out, err = w.communicate(timeout=max(10.0, budget - (time.time() - t_start)))
            if w.returncode != 0:
                raise RuntimeError(f"a desk process failed ({w.returncode}): {err[-2000:]}")
            results.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.wait(10)
    wall = time.time() - start_at
    server_use = sampler.stop()
    lags = [x for r in results for x in r["lags"]]
    calls = sum(r["calls"] for r in results)
    call_seconds = sum(r["call_seconds"] for r in results)
    per_call_cpu = server_use["cpu_s"] / calls if calls else None
    return {
        "desks": len(desks), "client_processes": procs,
        "calls_planned": len(desks) * calls_per_desk, "calls_accepted": calls,
        "calls_failed": sum(r["failed"] for r in results),
        "alerts_accepted": sum(r["alerts"] for r in results),
        "retries": sum(r["retries"] for r in results),
        "errors": [e for r in results for e in r["errors"]][:10],
        "window_s": window_s, "wall_s": round(wall, 1),
        "offered_calls_per_s": round(len(desks) * calls_per_desk / max(window_s, 1.0), 3),
        "calls_per_s": round(calls / wall, 3) if wall > 0 else None,
        "call_hours_ingested": round(call_seconds / 3600, 2),
        "call_hours_per_wall_hour": round(call_seconds / wall, 1) if wall > 0 else None,
        "opus_bytes_uploaded": sum(r["bytes"] for r in results),
        "sync_lag_s": _stats(lags),
        "server": {**server_use,
                   "cpu_s_per_call": round(per_call_cpu, 3) if per_call_cpu else None,
                   "cpu_s_per_call_hour": round(server_use["cpu_s"] / (call_seconds / 3600), 1)
                   if call_seconds else None},
        "client_cpu_s": round(sum(r.get("cpu_s", 0) for r in results), 1),
        "_call_seconds": call_seconds,
    }


def ingest(trial: Any, args: argparse.Namespace, work: Path,
           clips: list[tuple[np.ndarray, str]], notes: list[str]) -> dict[str, Any]:
    import psycopg

    from callguard.audio.compress import encode, stereo_wav

    server = trial.server
    t0 = time.monotonic()
    desks = [{"index": i, "name": f"desk-{i:03d}", "token": server.desk(f"desk-{i:03d}")}
             for i in range(args.desks)]
    enrol_s = time.monotonic() - t0
    # A few Opus recordings of real speech, one per call length (3–6 min by default).
    rng = np.random.default_rng(args.seed)
    lengths = np.linspace(args.min_call_s, args.max_call_s, args.blobs)
    blobs = []
    for i, seconds in enumerate(lengths):
        enc = encode(stereo_wav(build_call(float(seconds), clips, rng), RATE), "opus")
        path = work / f"blob-{i}.opus"
        path.write_bytes(enc.data)
        blobs.append({"path": str(path), "frames": enc.frames,
                      "seconds": round(enc.frames / RATE, 3), "bytes": len(enc.data)})
    cert_cache = work / "central.pem"
    cert_cache.write_text(server.cert_pem, encoding="ascii")
    texts = [t for _, t in clips if t] or ["네 말씀하세요"]
    out = _desk_phase(trial, args, work, desks, args.calls_per_desk, args.window_s, 0,
                      blobs, texts, cert_cache)
    call_seconds, calls, cpu_s = out.pop("_call_seconds"), out["calls_accepted"], \
        out["server"]["cpu_s"]
    out["enrol_s"] = round(enrol_s, 2)
    notes.append(
        f"ingest (paced): each of {args.desks} desks ended {args.calls_per_desk} call(s) of "
        f"{args.min_call_s:.0f}-{args.max_call_s:.0f} s (real speech, Opus) at random moments "
        f"in a {args.window_s:.0f} s window; the recordings are {args.blobs} pre-encoded Opus "
        "files of real speech (one per call length), made distinct per call by a unique "
        "comment in the Ogg OpusTags header (page CRC recomputed), so each call uploads its "
        "own blob of realistic size and the server decodes and verifies each one; lag = "
        "server's 201 to POST /api/v1/calls minus the call's end (when the desk queues it)")
    if args.backlog > 0:
        few = desks[:min(args.backlog, len(desks))]
        catch = _desk_phase(trial, args, work, few, 1, 0.001, 1, blobs, texts, cert_cache)
        call_seconds += catch.pop("_call_seconds")
        calls += catch["calls_accepted"]
        cpu_s += catch["server"]["cpu_s"]
        out["catch_up"] = catch
        notes.append(
            f"ingest (catch-up): then {len(few)} desks each queued one more call at the same "
            "moment (as after a network outage): the server's drain rate when saturated; "
            "its 'lag' is time in that queue")
    with psycopg.connect(trial.pg.dsn) as conn:
        counts = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                  for t in ("calls", "utterances", "hits", "verdicts", "actions", "alerts")}
        counts["desks_with_calls"] = conn.execute(
            "SELECT count(DISTINCT desk_id) FROM calls").fetchone()[0]
    out["server_counts"] = counts
    out["recordings"] = [{k: b[k] for k in ("seconds", "bytes")} for b in blobs]
    if calls and call_seconds:
        # A full working day: 200 desks, 60 calls each of the mean length measured here.
        mean_s = call_seconds / calls
        day_calls = 200 * 60
        out["projection_full_day"] = {
            "desks": 200, "calls_per_desk": 60, "mean_call_s": round(mean_s, 1),
            "server_cpu_s_per_call": round(cpu_s / calls, 3),
            "server_cpu_hours": round(day_calls * cpu_s / calls / 3600, 2),
            "mean_calls_per_s_over_8h": round(day_calls / (8 * 3600), 3),
            "server_cores_busy_at_that_rate": round(day_calls / (8 * 3600) * cpu_s / calls, 2)}
    return out


def _copy_text(rows: list[str]) -> str:
    return "".join(rows)


def bulk_load(dsn: str, target: int, args: argparse.Namespace,
              texts: list[str]) -> dict[str, Any]:
    """Fill ``calls`` up to ``target`` rows with COPY (and a few utterances per call)."""
    import psycopg

    t0 = time.monotonic()
    rng = np.random.default_rng(args.seed + 1)
    with psycopg.connect(dsn) as conn:
        have = conn.execute("SELECT count(*) FROM calls").fetchone()[0]
        desks = [r[0] for r in conn.execute("SELECT id FROM desks ORDER BY id").fetchall()]
        n = max(0, target - have)
        now = time.time()
        # Bulk load: the rows are made consistent here, so the foreign-key triggers are
        # skipped for this session (superuser), as pg_restore does.
        conn.execute("SET session_replication_role = replica")
        rows_u = rows_h = 0
        done = 0
        chunk = 100_000
        texts = [t.replace("\t", " ").replace("\\", "") for t in texts] or ["네"]
        while done < n:
            m = min(chunk, n - done)
            desk = rng.integers(0, len(desks), m)
            start = now - rng.uniform(0, args.days * 86400, m)
            dur = rng.uniform(60, 480, m)
            flagged = rng.random(m) < args.flagged_share
            crisis = flagged & (rng.random(m) < 0.05)
            hi = rng.integers(0, 2**62, m)
            lo = rng.integers(0, 2**62, m)
            calls, utts, hits, verdicts, actions = [], [], [], [], []
            for i in range(m):
                r = int(lo[i])
                u = (f"{int(start[i] * 1000) & 0xFFFFFFFFFFFF:012x}7{int(hi[i]) & 0xFFF:03x}"
                     f"{0x8000 | (r & 0x3FFF):04x}{r >> 14 & 0xFFFFFFFFFFFF:012x}")
                u = f"{u[:8]}-{u[8:12]}-{u[12:16]}-{u[16:20]}-{u[20:]}"
                d = int(desk[i])
                s = float(start[i])
                f = bool(flagged[i])
                st = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(s))
                en = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(s + float(dur[i])))
                calls.append(
                    f"{u}\t{desks[d]}\t{10_000_000 + done + i}\tcounselor-{d:03d}\tinbound\tsip"
                    f"\t010-0000-{i % 10000:04d}\t{int(hi[i]):x}\t{st}+00\t{en}+00"
                    f"\t{dur[i]:.1f}\tcaller_hangup\tremote\t{'t' if f else 'f'}"
                    f"\t{'t' if crisis[i] else 'f'}\t{'final' if f else 'none'}"
                    f"\t{'{insult}' if f else '{}'}\tbench-rules-1\t8000\t{int(lo[i]):064x}"
                    f"\t{int(hi[i]):064x}\topus\t{int(dur[i] * 2700)}\t{int(dur[i] * 8000)}"
                    "\tblob\n")
                for k in range(args.utterances):
                    t = 2.0 + 6.0 * k
                    text = ABUSE[0][0] if f and k == 1 else texts[(i + k) % len(texts)]
                    utts.append(f"{u}\t{k + 1}\t{'caller' if k % 2 == 0 else 'counselor'}"
                                f"\t{t}\t{t + 3}\t{t + 3.5}\t{text}\tok\t\\N\n")
                if f and args.utterances >= 2:
                    hits.append(f"{u}\t1\t2\tinsult-1\tinsult\t2\t새끼\t2\t4\t새끼\n")
                    verdicts.append(f"{u}\t1\t11.5\twarn\twarning\tf\trule insult-1\trules\n")
                    actions.append(f"{u}\t1\t11.5\tplay_prompt\twarning (3.0 s)\tt\t\\N"
                                   "\twarning\t3.0\n")
            with conn.cursor() as cur:
                for table, cols, data in (
                        ("calls", "uuid, desk_id, desk_call_id, counselor, direction, source,"
                         " remote, remote_key, started_at, ended_at, duration_s, end_reason,"
                         " hung_up_by, flagged, crisis, stage, categories, rules_version,"
                         " sample_rate, recording_sha256, audio_sha256, audio_codec,"
                         " audio_bytes, audio_frames, audio_verified", calls),
                        ("utterances", "call_uuid, seq, leg, start_s, end_s, at_s, text,"
                         " status, reason", utts),
                        ("hits", "call_uuid, seq, utterance_seq, rule_id, category, severity,"
                         " term, start_ch, end_ch, matched", hits),
                        ("verdicts", "call_uuid, seq, t_s, kind, prompt, hangup, reason, cause",
                         verdicts),
                        ("actions", "call_uuid, seq, t_s, kind, detail, ok, error, prompt,"
                         " seconds", actions)):
                    if data:
                        with cur.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
                            copy.write(_copy_text(data))
            conn.commit()
            rows_u += len(utts)
            rows_h += len(hits)
            done += m
        load_s = time.monotonic() - t0
    with psycopg.connect(dsn, autocommit=True) as conn:
        t1 = time.monotonic()
        conn.execute("VACUUM (ANALYZE) calls, utterances, hits, verdicts, actions")
        vacuum_s = time.monotonic() - t1
        total = conn.execute("SELECT count(*), avg(flagged::int) FROM calls").fetchone()
        size = conn.execute("SELECT pg_size_pretty(pg_database_size(current_database()))"
                            ).fetchone()[0]
    return {"calls_before": have, "calls_loaded": n, "calls_total": total[0],
            "flagged_share": round(float(total[1] or 0), 4), "utterances_loaded": rows_u,
            "utterances_per_loaded_call": args.utterances, "hits_loaded": rows_h,
            "desks": len(desks), "days": args.days, "load_s": round(load_s, 1),
            "vacuum_analyze_s": round(vacuum_s, 1), "database_size": size}


def _list_sql(where: str) -> str:
    """The list query as :func:`callguard.server.app.list_calls` builds it (same columns,
    join and order; its page size)."""
    from callguard.server.app import _SUMMARY

    return (f"SELECT {_SUMMARY} FROM calls c JOIN desks d ON d.id = c.desk_id WHERE {where}"
            " ORDER BY c.started_at DESC, c.uuid DESC LIMIT 100")


def explain(dsn: str, desk: str, since: float, before: tuple[float, str] | None
            ) -> dict[str, list[str]]:
    import datetime as dt

    import psycopg

    ts = dt.datetime.fromtimestamp(since, dt.UTC)
    plans = {}
    queries = {
        "list_flagged_desk": ("c.flagged AND d.name = %s AND c.started_at >= %s", (desk, ts)),
        "list_flagged_all_desks": ("c.flagged AND c.started_at >= %s", (ts,))}
    if before is not None:
        queries["list_flagged_desk_page"] = (
            "c.flagged AND d.name = %s AND c.started_at >= %s"
            " AND (c.started_at, c.uuid) < (%s, %s)",
            (desk, ts, dt.datetime.fromtimestamp(before[0], dt.UTC), before[1]))
    with psycopg.connect(dsn) as conn:
        for name, (where, params) in queries.items():
            rows = conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + _list_sql(where),
                                params).fetchall()
            plans[name] = [r[0] for r in rows]
    return plans


def _timed(client: Any, url: str, out: list[float]) -> Any:
    t = time.perf_counter()
    r = client.get(url)
    out.append(time.perf_counter() - t)
    if r.status_code != 200:
        raise RuntimeError(f"GET {url}: {r.status_code} {r.text[:200]}")
    return r.json()


def query_phase(trial: Any, args: argparse.Namespace, ingested: list[str],
                label: str) -> dict[str, Any]:
    """Time the supervisor's requests through the real API (one signed-in supervisor,
    requests one after another, after a short warm-up)."""
    rng = random.Random(args.seed + 2)
    token = trial.server.login(*SUPERVISOR)
    since = time.time() - 7 * 86400
    lat: dict[str, list[float]] = {"list_flagged_desk": [], "list_flagged_desk_page": [],
                                   "list_flagged_all_desks": [], "call_detail": [],
                                   "call_detail_ingested": []}
    seen: list[str] = []
    cursor: tuple[float, str] | None = None
    desk_names = [f"desk-{i:03d}" for i in range(args.desks)]
    with trial.server.client(token, timeout=60) as c:
        for _ in range(5):  # warm-up: connection, session, caches
            _timed(c, f"/api/v1/calls?flagged=1&since={since:.0f}", [])
        n = args.queries
        for i in range(n):
            desk = rng.choice(desk_names)
            page = _timed(c, f"/api/v1/calls?flagged=1&desk={desk}&since={since:.0f}",
                          lat["list_flagged_desk"])["calls"]
            seen += [r["uuid"] for r in page[:3]]
            if page and i % 4 == 0:  # page on from here: three pages with `before`
                for _ in range(3):
                    last = page[-1]
                    cursor = cursor or (last["started_at"], last["uuid"])
                    page = _timed(c, f"/api/v1/calls?flagged=1&desk={desk}&since={since:.0f}"
                                     f"&before={last['started_at']!r},{last['uuid']}",
                                  lat["list_flagged_desk_page"])["calls"]
                    if not page:
                        break
        for _ in range(max(1, n // 4)):
            _timed(c, f"/api/v1/calls?flagged=1&since={since:.0f}",
                   lat["list_flagged_all_desks"])
        for _ in range(n):
            if seen:
                _timed(c, f"/api/v1/calls/{rng.choice(seen)}", lat["call_detail"])
        for _ in range(min(n, len(ingested))):
            _timed(c, f"/api/v1/calls/{rng.choice(ingested)}", lat["call_detail_ingested"])
    return {"label": label, "since_days": 7,
            "latency_ms": {k: _stats(v, 1000, 1) for k, v in lat.items()},
            "_cursor": cursor, "_desk": desk_names[0]}


def run(args: argparse.Namespace) -> dict[str, Any]:
    import psycopg

    from callguard.server.trial import Trial, private_tmp

    notes: list[str] = []
    result: dict[str, Any] = {"benchmark": "central", "cpus": os.cpu_count(),
                              "params": {k: v for k, v in vars(args).items() if k != "worker"}}
    t_all = time.monotonic()
    speech_dir = Path(args.speech_dir)
    clips = load_speech(speech_dir) if speech_dir.is_dir() else []
    source = (f"{len(clips)} Korean speech clips from {speech_dir} (16 kHz → 8 kHz G.711)"
              if clips else "synthetic speech-like noise (no speech directory)")
    result["audio"] = audio_section(clips, args.audio_call_s, args.seed, source)
    work = private_tmp("callguard-bench-")
    trial = None
    try:
        trial = Trial.start()
        trial.server.user(*SUPERVISOR[:1], "supervisor", SUPERVISOR[1])
        result["ingest"] = ingest(trial, args, work, clips, notes)
        with psycopg.connect(trial.pg.dsn) as conn:
            ingested = [str(r[0]) for r in conn.execute(
                "SELECT uuid FROM calls ORDER BY random() LIMIT 500").fetchall()]
        texts = [t for _, t in clips if t]
        load = bulk_load(trial.pg.dsn, args.rows, args, texts)
        q = query_phase(trial, args, ingested, "schema as migrated")
        cursor, desk = q.pop("_cursor"), q.pop("_desk")
        since = time.time() - 7 * 86400
        q["explain"] = explain(trial.pg.dsn, desk, since, cursor)
        query: dict[str, Any] = {**load, "as_migrated": q}
        if args.candidate_index:
            with psycopg.connect(trial.pg.dsn, autocommit=True) as conn:
                t0 = time.monotonic()
                conn.execute(CANDIDATE_INDEX)
                conn.execute(CANDIDATE_INDEX_ALL)
                conn.execute("ANALYZE calls")
                build_s = time.monotonic() - t0
            q2 = query_phase(trial, args, ingested, "with candidate indexes")
            q2.pop("_cursor"), q2.pop("_desk")
            q2["indexes"] = [CANDIDATE_INDEX, CANDIDATE_INDEX_ALL]
            q2["index_build_s"] = round(build_s, 1)
            q2["explain"] = explain(trial.pg.dsn, desk, since, cursor)
            query["with_candidate_indexes"] = q2
        result["query"] = query
        errors = trial.server.errors()
        result["server_log_errors"] = sum(1 for line in errors.splitlines()
                                          if "Traceback" in line or "ERROR" in line)
    finally:
        if trial is not None:
            trial.close()
        shutil.rmtree(work, ignore_errors=True)
    ing, qm = result["ingest"], result["query"]["as_migrated"]["latency_ms"]
    p95s = [v["p95"] for v in qm.values() if v["p95"] is not None]
    result["targets"] = {
        "sync_lag_p95_s": 5.0, "sync_lag_p95_met": ing["sync_lag_s"]["p95"] is not None
        and ing["sync_lag_s"]["p95"] <= 5.0,
        "query_p95_ms": 200.0, "query_p95_met": bool(p95s) and max(p95s) <= 200.0,
        "audio_bytes_per_s": 4000, "opus_met": result["audio"]["opus"]["bytes_per_s"] <= 4000}
    notes.append(f"query: calls filled with COPY to {args.rows} rows over {args.days} days "
                 f"and all desks, {args.flagged_share:.0%} flagged, {args.utterances} "
                 "utterances per loaded call (flagged ones also 1 hit, 1 verdict, 1 action); "
                 "foreign-key triggers skipped during the COPY (session_replication_role = "
                 "replica), then VACUUM ANALYZE; one supervisor, requests in sequence over "
                 "HTTPS; 'since' is 7 days ago; candidate indexes only in this throwaway "
                 "database")
    notes.append("audio: bytes of one call built from real speech, scaled to an hour; CPU "
                 "seconds measured in this process (process_time)")
    result["notes"] = notes
    result["duration_s"] = round(time.monotonic() - t_all, 1)
    return result


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python3 -m callguard.bench.central_bench",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--desks", type=int, default=200)
    p.add_argument("--calls-per-desk", type=int, default=1)
    p.add_argument("--window-s", type=float, default=480.0,
                   help="seconds over which each desk's calls end (200 desks, 1 call each, "
                        "480 s: 0.42 calls/s, a 200-seat centre's mean rate)")
    p.add_argument("--backlog", type=int, default=80,
                   help="then this many desks queue one call each at once (0: skip)")
    p.add_argument("--min-call-s", type=float, default=180.0)
    p.add_argument("--max-call-s", type=float, default=360.0)
    p.add_argument("--blobs", type=int, default=6, help="pre-encoded recordings (lengths)")
    p.add_argument("--client-procs", type=int, default=2)
    p.add_argument("--give-up-s", type=float, default=300.0,
                   help="a desk stops retrying a call this long after its end")
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--flagged-share", type=float, default=0.10)
    p.add_argument("--utterances", type=int, default=3, help="per bulk-loaded call")
    p.add_argument("--queries", type=int, default=200, help="timed requests of each kind")
    p.add_argument("--no-candidate-index", dest="candidate_index", action="store_false")
    p.add_argument("--audio-call-s", type=float, default=300.0)
    p.add_argument("--speech-dir", default=str(SPEECH_DIR))
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", action="store_true", help="one line of JSON (else indented)")
    p.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    for name in ("desks", "calls_per_desk", "blobs", "client_procs", "queries"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    if not 0 < args.min_call_s <= args.max_call_s or args.window_s <= 0:
        p.error("call lengths and the window must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker is not None:
        return worker(args.worker)

    def terminate(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    result = run(args)
    print(json.dumps(result, ensure_ascii=False, indent=None if args.json else 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
