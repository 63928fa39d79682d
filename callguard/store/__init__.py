"""The call store: each call's audio, transcript, rule hits, verdicts and actions (SQLite).

Public API::

    store = await Store.open(path, recover=True)   # or: async with Store.open(path) as store
    await store.ensure_ruleset(version, path, text)
    call_id = await store.create_call(Direction.INBOUND, remote, Source.SIP, started_at,
                                      version, 8000)
    await store.append_audio(call_id, Leg.CALLER, start_sample, pcm16le)
    await store.add_utterance(call_id, Leg.CALLER, start_s, end_s, text, UtteranceStatus.OK,
                              hits=[...], at_s=acted_on_s)
    await store.add_verdict(...); await store.add_action(...); await store.update_call(...)
    await store.end_call(call_id, ended_at, duration_s, EndReason.CALLER_HANGUP)
    await store.list_calls() -> [CallSummary]; await store.get_call(id) -> CallRecord
    await store.read_audio(id, Leg.CALLER) -> bytes; await store.export_wav(id, path)
    await store.wav_bytes(id); await store.check_recording(id)   # sealed SHA-256 vs now
    await store.add_review(id, reviewer, "abuse_confirmed", note); await store.reviews(id)
    await store.audit(actor, role, kind, detail); await store.audit_log()
    await store.set_password(name, role, pw); await store.check_password(name, pw)
    await store.save_rules(path, text, saved_by); await store.rules_history()

The store does not import the rules or policy packages: it takes plain values, named by
:mod:`callguard.vocabulary` (its enums are the strings the tables hold).
"""

from callguard.store.records import (
    ActionRecord,
    AuditRecord,
    CallNotFoundError,
    CallRecord,
    CallSummary,
    HitRecord,
    ReviewRecord,
    RulesVersion,
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
    "AuditRecord",
    "CallNotFoundError",
    "CallRecord",
    "CallSummary",
    "HitRecord",
    "HitRow",
    "ReviewRecord",
    "RulesVersion",
    "Store",
    "StoreError",
    "UtteranceRecord",
    "VerdictRecord",
    "migrate",
]
