"""Export one stored call as an evidence package: a zip a third party can check.

Layout of the zip (format ``callguard-evidence``, version 1)::

    recording.wav    the call's canonical stereo WAV, byte for byte Store.wav_bytes(): RIFF
                     WAVE, PCM16 little-endian, 2 channels (left = caller, right =
                     counselor) at the call's sample rate (8000 Hz for telephone calls);
                     its SHA-256 is the hash the store sealed when the call ended
    call.json        who/when/how the call ended; recording_sha256 = that sealed hash
    transcript.json  every utterance: leg, start_s/end_s, text, status, rule hits
    transcript.txt   the same for people, with the agent's actions interleaved
    events.json      policy verdicts, agent actions, rule hits, supervisor reviews and the
                     audit log entries for the call
    rules.toml       the exact rules file in force (its SHA-256 is call.json's
                     rules_version); absent if the call ran without rules
    manifest.json    every file above with its SHA-256 and size, format version, who
                     exported the package and when
    manifest.sig     HMAC-SHA256 of manifest.json's bytes with the site key, as 64 lowercase
                     hex digits and a newline; absent in an unsigned package

Units: ``*_s`` fields (``start_s``, ``end_s``, ``t_s``, ``duration_s``) are seconds of call
time, 0 = the moment the call was answered; ``started_at``, ``ended_at``, ``at``,
``exported_at`` are unix epoch seconds, each with an ``*_iso`` twin in local time with its
UTC offset. Hit ``start``/``end`` are character offsets into the utterance text (end
exclusive). JSON files are UTF-8.

What each check proves: the manifest hashes show a file was not changed *unless* the
manifest was rewritten too; the sealed hash in call.json ties the recording to the moment
the call ended; the HMAC ties manifest.json (and so every file) to the holder of the site
key. See :func:`callguard.evidence.verify.verify_package`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import time
import zipfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from callguard import __version__
from callguard.errors import ResourceError
from callguard.evidence.keys import key_id
from callguard.store import AuditRecord, CallRecord, ReviewRecord, Store
from callguard.store.schema import ROLES
from callguard.text.spans import mark_spans
from callguard.vocabulary import Leg

log = logging.getLogger(__name__)

FORMAT = "callguard-evidence"
FORMAT_VERSION = 1

RECORDING = "recording.wav"
CALL = "call.json"
TRANSCRIPT_JSON = "transcript.json"
TRANSCRIPT_TXT = "transcript.txt"
EVENTS = "events.json"
RULES = "rules.toml"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"

AUDIT_KIND = "evidence_exported"

_TIME_NOTE = {
    "*_s": "seconds of call time; 0 = the moment the call was answered",
    "*_at": "unix epoch seconds (UTC); *_iso: the same in local time with its UTC offset",
}


class EvidenceError(ResourceError):
    """The call cannot be exported as evidence (still going on, recording altered...)."""


def iso(t: float | None) -> str | None:
    """Unix epoch seconds as ISO 8601 in local time with its UTC offset (ms precision)."""
    if t is None:
        return None
    return datetime.fromtimestamp(t, tz=UTC).astimezone().isoformat(timespec="milliseconds")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sign(manifest: bytes, key: bytes) -> str:
    """The HMAC-SHA256 of manifest.json's bytes, as lowercase hex."""
    return hmac.new(key, manifest, hashlib.sha256).hexdigest()


async def export_package(store: Store, call_id: int, dest: str | os.PathLike[str],
                         exported_by: str, key: bytes | None, *, role: str = "supervisor",
                         now: float | None = None) -> Path:
    """Write call ``call_id`` as an evidence package (zip) to ``dest``; return its path.

    ``exported_by`` (a user name) and ``role`` (counselor, supervisor, admin) go into the
    manifest and the audit log; ``key`` (32 bytes, see :func:`load_or_create_key`) signs
    the manifest, ``None`` leaves the package unsigned; ``now`` is the export time in unix
    epoch seconds (default: the wall clock).

    The package holds personal data: the caller's words and the remote party's number, in
    full. It is evidence for the counselor's own case (a complaint, a dispute, a police
    report) and must be handled as such; the audit log records who exported which call.

    Only a call that has ended and whose stored recording still matches the hash sealed at
    its close can be exported (:class:`EvidenceError` otherwise): a package must not carry
    a recording that could have been changed in the store, nor one whose audio was
    deleted. The zip is written to a temporary file beside ``dest`` and renamed into place,
    so ``dest`` never holds half a package. The export is complete only once it is in the
    audit log (kind ``evidence_exported``, detail: the manifest's SHA-256 and whether it was
    signed); if that entry cannot be written the package is removed again.
    """
    if not exported_by:
        raise ValueError("an evidence export needs the exporting user's name")
    if role not in ROLES:  # checked before any work: the audit entry must be writable
        raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if key is not None and len(key) < 16:
        raise ValueError("the signing key is too short (use load_or_create_key)")
    dest = Path(dest)
    call = await store.get_call(call_id)
    if call.ended_at is None or call.recording_sha256 is None:
        raise EvidenceError(f"call {call_id} has not ended (its recording is not sealed yet): "
                            "export it once the call is over")
    wav = await store.wav_bytes(call_id)
    # Hash off the loop: a long call's WAV is tens of MB.
    if await asyncio.to_thread(sha256_hex, wav) != call.recording_sha256:
        raise EvidenceError(
            f"call {call_id}: the stored recording no longer matches the SHA-256 sealed when "
            "the call ended (it was altered or deleted); not exported")
    rules_path = rules_text = None
    if call.rules_version is not None:
        # StoreError if the stored text no longer hashes to its version.
        rules_path, rules_text = await store.ruleset(call.rules_version)
    reviews = await store.reviews(call_id)
    audit = await store.audit_log(call_id=call_id, limit=1_000_000)
    exported_at = time.time() if now is None else now

    files: dict[str, bytes] = {RECORDING: wav}
    files[CALL] = _json(_call_json(call, rules_path))
    files[TRANSCRIPT_JSON] = _json(_transcript_json(call))
    files[TRANSCRIPT_TXT] = _transcript_txt(call).encode("utf-8")
    files[EVENTS] = _json(_events_json(call, reviews, audit))
    if rules_text is not None:
        files[RULES] = rules_text.encode("utf-8")  # exactly the bytes rules_version hashes
    manifest = await asyncio.to_thread(_manifest, files, call_id, exported_at, exported_by,
                                       key)
    signature = None if key is None else (sign(manifest, key) + "\n").encode("ascii")
    await asyncio.to_thread(_write_zip, dest, files, manifest, signature, exported_at)
    try:
        await store.audit(exported_by, role, AUDIT_KIND, call_id=call_id, at=exported_at,
                          detail=f"manifest sha256 {sha256_hex(manifest)}, "
                                 + ("signed, key id " + key_id(key) if key else "unsigned"))
    except BaseException:
        dest.unlink(missing_ok=True)  # an export nobody can trace must not exist
        raise
    log.info("call %d exported as evidence (%s)", call_id,
             "signed" if key is not None else "unsigned")
    log.debug("evidence package of call %d at %s", call_id, dest)
    return dest


# -- the files ---------------------------------------------------------------------------

def _json(obj: Any) -> bytes:
    return (json.dumps(obj, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def _call_json(call: CallRecord, rules_path: str | None) -> dict[str, Any]:
    return {
        "call_id": call.id,
        "direction": call.direction,
        "source": call.source,
        "counselor": call.counselor,
        "remote": call.remote,
        "started_at": call.started_at,
        "started_at_iso": iso(call.started_at),
        "ended_at": call.ended_at,
        "ended_at_iso": iso(call.ended_at),
        "duration_s": call.duration_s,
        "end_reason": call.end_reason,
        "hung_up_by": call.hung_up_by,
        "stage": call.stage,
        "flagged": call.flagged,
        "note": call.note,
        "rules_version": call.rules_version,
        "rules_path": rules_path,
        "recording_sha256": call.recording_sha256,
        "recording": {
            "file": RECORDING,
            "sha256_sealed_at_close": call.recording_sha256,
            "format": "WAV, PCM16 little-endian, 2 channels: left = caller, "
                      "right = counselor; sample 0 = the moment the call was answered",
            "sample_rate_hz": call.sample_rate,
        },
        "callguard_version": __version__,
        "units": _TIME_NOTE,
    }


def _hit(h: Any) -> dict[str, Any]:
    return {"rule_id": h.rule_id, "category": h.category, "severity": h.severity,
            "term": h.term, "start": h.start, "end": h.end, "matched": h.matched}


def _transcript_json(call: CallRecord) -> dict[str, Any]:
    return {
        "call_id": call.id,
        "units": {"start_s/end_s": _TIME_NOTE["*_s"],
                  "hits.start/end": "character offsets into text, end exclusive"},
        "legs": {Leg.CALLER: "the remote party (left channel of recording.wav)",
                 Leg.COUNSELOR: "the counselor (right channel)"},
        "utterances": [
            {"id": u.id, "leg": u.leg, "start_s": u.start_s, "end_s": u.end_s, "text": u.text,
             "status": u.status, "reason": u.reason, "hits": [_hit(h) for h in u.hits]}
            for u in call.utterances],
    }


def _events_json(call: CallRecord, reviews: Sequence[ReviewRecord],
                 audit: Sequence[AuditRecord]) -> dict[str, Any]:
    return {
        "call_id": call.id,
        "units": _TIME_NOTE,
        "verdicts": [{"t_s": v.t_s, "kind": v.kind, "prompt": v.prompt, "hangup": v.hangup,
                      "reason": v.reason} for v in call.verdicts],
        "actions": [{"t_s": a.t_s, "kind": a.kind, "detail": a.detail, "ok": a.ok,
                     "error": a.error} for a in call.actions],
        "hits": [{"t_s": u.start_s, "utterance_id": u.id, "leg": u.leg, **_hit(h)}
                 for u in call.utterances for h in u.hits],
        "reviews": [{"at": r.at, "at_iso": iso(r.at), "reviewer": r.reviewer,
                     "verdict": r.verdict, "note": r.note} for r in reviews],
        "audit": [{"at": a.at, "at_iso": iso(a.at), "actor": a.actor, "role": a.role,
                   "kind": a.kind, "detail": a.detail} for a in audit],
    }


def clock(t_s: float) -> str:
    """Seconds of call time as ``mm:ss.ss`` (``h:mm:ss.ss`` past an hour)."""
    t_s = max(0.0, t_s)
    h, rest = divmod(t_s, 3600)
    m, s = divmod(rest, 60)
    return f"{int(h)}:{int(m):02d}:{s:05.2f}" if h else f"{int(m):02d}:{s:05.2f}"


_LEG_LABEL = {Leg.CALLER: "고객 caller", Leg.COUNSELOR: "상담사 counselor"}


def marked(text: str, hits: Sequence[Any]) -> str:
    """``text`` with each hit span wrapped in 【】 (overlapping spans merged)."""
    return mark_spans(text, ((h.start, h.end) for h in hits), "【", "】")


def _transcript_txt(call: CallRecord) -> str:
    lines = [
        f"callguard evidence: call {call.id} transcript / 통화 {call.id} 녹취록",
        f"started {iso(call.started_at)}, ended {iso(call.ended_at)}, "
        f"duration {call.duration_s:.2f} s, end reason {call.end_reason}",
        "Times are call time since the call was answered (mm:ss.ss) / "
        "시간은 통화 연결 후 경과 시간입니다.",
        "Rule hits are marked 【like this】 / 규칙에 걸린 말은 【】로 표시합니다.",
        "",
    ]
    # Utterances and the agent's actions in one timeline (stable: utterances first at ties).
    rows: list[tuple[float, int, list[str]]] = []
    for u in call.utterances:
        status = "" if u.status == "ok" else f"  [{u.status}{': ' + u.reason if u.reason else ''}]"
        text = marked(u.text, u.hits) if u.text else "(no text / 텍스트 없음)"
        row = [f"[{clock(u.start_s)}–{clock(u.end_s)}] {_LEG_LABEL.get(u.leg, u.leg)}: "
               f"{text}{status}"]
        row += [f"    hit {h.rule_id} ({h.category}, severity {h.severity}), term {h.term!r}, "
                f"characters {h.start}–{h.end}" for h in u.hits]
        rows.append((u.start_s, 0, row))
    for a in call.actions:
        ok = "" if a.ok else f"  FAILED: {a.error or 'unknown error'}"
        rows.append((a.t_s, 1, [f"[{clock(a.t_s)}] >> agent {a.kind}: {a.detail}{ok}"]))
    for _, _, row in sorted(rows, key=lambda r: (r[0], r[1])):
        lines += row
    return "\n".join(lines) + "\n"


def _manifest(files: dict[str, bytes], call_id: int, exported_at: float, exported_by: str,
              key: bytes | None) -> bytes:
    return _json({
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "call_id": call_id,
        "exported_at": exported_at,
        "exported_at_iso": iso(exported_at),
        "exported_by": exported_by,
        "callguard_version": __version__,
        "hash": "sha256",
        "files": [{"name": name, "sha256": sha256_hex(data), "size": len(data)}
                  for name, data in files.items()],
        "signature": None if key is None else {
            "file": SIGNATURE, "algorithm": "HMAC-SHA256 of manifest.json's bytes",
            "key_id": key_id(key)},
    })


def _write_zip(dest: Path, files: dict[str, bytes], manifest: bytes, signature: bytes | None,
               exported_at: float) -> None:
    """Write the zip to a temporary file beside ``dest``, sync it, rename it into place."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.part")
    stamp = datetime.fromtimestamp(exported_at).timetuple()[:6]  # zip times are local
    entries = [*files.items(), (MANIFEST, manifest)]
    if signature is not None:
        entries.append((SIGNATURE, signature))
    try:
        # 0600 whatever the umask: a package holds the recording and the transcript.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        if hasattr(os, "fchmod"):  # POSIX (Windows: the file is in the user's profile)
            os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as raw:
            with zipfile.ZipFile(raw, "w") as zf:
                for name, data in entries:
                    info = zipfile.ZipInfo(name, date_time=stamp)
                    info.compress_type = zipfile.ZIP_DEFLATED
                    info.external_attr = 0o644 << 16
                    zf.writestr(info, data)
            raw.flush()
            os.fsync(raw.fileno())
        tmp.replace(dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
