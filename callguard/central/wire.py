"""What a desk sends the central server: one ended call, or one alert, as JSON.

Both sides use this module: the desk builds a payload from its store's records, the server
checks one before it writes anything (a payload that does not fit is refused with a clear
message, never half-written). Keys made on the desk make redelivery harmless: a call is
named by its UUIDv7, an alert by ``<call uuid>/<table>/<row id>``, audio by its SHA-256.

Units as in the desk's store: ``started_at``/``ended_at``/``raised_at`` unix epoch seconds;
``start_s``/``end_s``/``at_s``/``t_s`` seconds of call time; ``frames`` samples per leg.
"""

from __future__ import annotations

import math
import uuid as uuidlib
from dataclasses import dataclass
from typing import Any

from callguard.errors import InputError
from callguard.store.records import CallRecord

WIRE_VERSION = 1
ALERT_KINDS = ("crisis", "protect", "supervisor_notified", "rest_started", "alert")


class WireError(InputError):
    """A payload that does not follow this format; the message names the field."""


@dataclass(frozen=True, slots=True)
class AudioRef:
    """The compressed recording sent beside a call (see :mod:`callguard.audio.compress`)."""

    sha256: str
    codec: str
    bytes: int
    frames: int


def call_payload(call: CallRecord, call_uuid: str, audio: AudioRef | None,
                 rules_text: str | None = None) -> dict[str, Any]:
    """The JSON payload of one ended call from the desk's store; ``rules_text`` is the rules
    file in force (its SHA-256 is ``rules_version``), kept by the server once per version."""
    return {
        "rules_text": rules_text,
        "wire": WIRE_VERSION,
        "uuid": call_uuid,
        "desk_call_id": call.id,
        "counselor": call.counselor,
        "direction": call.direction,
        "source": call.source,
        "remote": call.remote,
        "started_at": call.started_at,
        "ended_at": call.ended_at,
        "duration_s": call.duration_s,
        "end_reason": call.end_reason,
        "hung_up_by": call.hung_up_by,
        "flagged": call.flagged,
        "stage": call.stage,
        "rules_version": call.rules_version,
        "sample_rate": call.sample_rate,
        "recording_sha256": call.recording_sha256,
        "audio": None if audio is None else {
            "sha256": audio.sha256, "codec": audio.codec, "bytes": audio.bytes,
            "frames": audio.frames},
        "utterances": [{
            "seq": u.id, "leg": u.leg, "start_s": u.start_s, "end_s": u.end_s,
            "at_s": u.at_s, "text": u.text, "status": u.status, "reason": u.reason,
            "hits": [{"seq": h.id, "rule_id": h.rule_id, "category": h.category,
                      "severity": h.severity, "term": h.term, "start": h.start,
                      "end": h.end, "matched": h.matched} for h in u.hits],
        } for u in call.utterances],
        "verdicts": [{"seq": v.id, "t_s": v.t_s, "kind": v.kind, "prompt": v.prompt,
                      "hangup": v.hangup, "reason": v.reason, "cause": v.cause}
                     for v in call.verdicts],
        "actions": [{"seq": a.id, "t_s": a.t_s, "kind": a.kind, "detail": a.detail,
                     "ok": a.ok, "error": a.error, "prompt": a.prompt, "seconds": a.seconds}
                    for a in call.actions],
    }


def _field(obj: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str,
           optional: bool = False) -> Any:
    if not isinstance(obj, dict):
        raise WireError(f"{where} must be an object")
    value = obj.get(key)
    if value is None:
        if optional:
            return None
        raise WireError(f"{where}.{key} is missing")
    if kind is float:
        kind = (int, float)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise WireError(f"{where}.{key} has the wrong type")
    if isinstance(value, float) and not math.isfinite(value):
        raise WireError(f"{where}.{key} must be a finite number")
    if isinstance(value, str) and len(value) > 100_000:
        raise WireError(f"{where}.{key} is too long")
    return value


def check_uuid(text: str, where: str = "uuid") -> str:
    try:
        return str(uuidlib.UUID(text))
    except (ValueError, TypeError, AttributeError):
        raise WireError(f"{where} is not a UUID") from None


def check_call(p: dict[str, Any]) -> dict[str, Any]:
    """Validate a call payload (raises :class:`WireError`); return it, normalised."""
    if not isinstance(p, dict):
        raise WireError("a call payload is a JSON object")
    if p.get("wire") != WIRE_VERSION:
        raise WireError(f"wire version {p.get('wire')!r} is not {WIRE_VERSION}")
    out = dict(p)
    out["uuid"] = check_uuid(_field(p, "uuid", str, "call"), "call.uuid")
    _field(p, "desk_call_id", int, "call")
    for key in ("counselor", "direction", "source", "remote", "end_reason", "stage"):
        _field(p, key, str, "call")
    for key in ("started_at", "ended_at", "duration_s"):
        _field(p, key, float, "call")
    _field(p, "hung_up_by", str, "call", optional=True)
    _field(p, "rules_version", str, "call", optional=True)
    _field(p, "rules_text", str, "call", optional=True)
    _field(p, "recording_sha256", str, "call", optional=True)
    _field(p, "flagged", bool, "call")
    rate = _field(p, "sample_rate", int, "call")
    if not 0 < rate <= 48000:
        raise WireError("call.sample_rate is out of range")
    audio = p.get("audio")
    if audio is not None:
        for key in ("sha256", "codec"):
            _field(audio, key, str, "call.audio")
        for key in ("bytes", "frames"):
            if _field(audio, key, int, "call.audio") < 0:
                raise WireError(f"call.audio.{key} must not be negative")
    for i, u in enumerate(_field(p, "utterances", list, "call")):
        where = f"call.utterances[{i}]"
        _field(u, "seq", int, where)
        for key in ("leg", "text", "status"):
            _field(u, key, str, where)
        for key in ("start_s", "end_s"):
            _field(u, key, float, where)
        _field(u, "at_s", float, where, optional=True)
        _field(u, "reason", str, where, optional=True)
        for j, h in enumerate(_field(u, "hits", list, where)):
            w = f"{where}.hits[{j}]"
            for key in ("seq", "severity", "start", "end"):
                _field(h, key, int, w)
            for key in ("rule_id", "category", "term", "matched"):
                _field(h, key, str, w)
    for i, v in enumerate(_field(p, "verdicts", list, "call")):
        where = f"call.verdicts[{i}]"
        _field(v, "seq", int, where)
        _field(v, "t_s", float, where)
        _field(v, "kind", str, where)
        _field(v, "hangup", bool, where)
        _field(v, "reason", str, where)
        _field(v, "prompt", str, where, optional=True)
        _field(v, "cause", str, where, optional=True)
    for i, a in enumerate(_field(p, "actions", list, "call")):
        where = f"call.actions[{i}]"
        _field(a, "seq", int, where)
        _field(a, "t_s", float, where)
        for key in ("kind", "detail"):
            _field(a, key, str, where)
        _field(a, "ok", bool, where)
        for key in ("error", "prompt"):
            _field(a, key, str, where, optional=True)
        _field(a, "seconds", float, where, optional=True)
    return out


def check_alert(p: dict[str, Any]) -> dict[str, Any]:
    """Validate an alert payload: ``key``, ``kind``, ``raised_at``, ``counselor``,
    optional ``call_uuid`` and ``detail`` (never a transcript or a number)."""
    if not isinstance(p, dict):
        raise WireError("an alert payload is a JSON object")
    out = dict(p)
    key = _field(p, "key", str, "alert")
    if not 0 < len(key) <= 200:
        raise WireError("alert.key must be 1..200 characters")
    if _field(p, "kind", str, "alert") not in ALERT_KINDS:
        raise WireError(f"alert.kind must be one of {', '.join(ALERT_KINDS)}")
    _field(p, "raised_at", float, "alert")
    _field(p, "counselor", str, "alert")
    call_uuid = _field(p, "call_uuid", str, "alert", optional=True)
    out["call_uuid"] = None if call_uuid is None else check_uuid(call_uuid, "alert.call_uuid")
    out["detail"] = _field(p, "detail", str, "alert", optional=True) or ""
    return out
