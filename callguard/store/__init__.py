"""The call store: each call's audio, transcript, rule hits, verdicts and actions (SQLite).

Public API::

    store = await Store.open(path, recover=True)   # or: async with Store.open(path) as store
    await store.ensure_ruleset(version, path, text)
    call_id = await store.create_call("inbound", remote, "sip", started_at, version, 8000)
    await store.append_audio(call_id, "caller", start_sample, pcm16le)
    await store.add_utterance(call_id, "caller", start_s, end_s, text, "ok", hits=[...])
    await store.add_verdict(...); await store.add_action(...); await store.update_call(...)
    await store.end_call(call_id, ended_at, duration_s, "caller_hangup")
    await store.list_calls() -> [CallSummary]; await store.get_call(id) -> CallRecord
    await store.read_audio(id, "caller") -> bytes; await store.export_wav(id, path)

The store does not import the rules or policy packages: it takes plain values.
"""

from callguard.store.records import (
    ActionRecord,
    CallNotFoundError,
    CallRecord,
    CallSummary,
    HitRecord,
    StoreError,
    UtteranceRecord,
    VerdictRecord,
)
from callguard.store.schema import MIGRATIONS, SCHEMA_VERSION, migrate
from callguard.store.store import HitRow, Store

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "ActionRecord",
    "CallNotFoundError",
    "CallRecord",
    "CallSummary",
    "HitRecord",
    "HitRow",
    "Store",
    "StoreError",
    "UtteranceRecord",
    "VerdictRecord",
    "migrate",
]
