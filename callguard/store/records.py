"""What the call store gives back: immutable records, and the store's errors.

Times follow the schema (see :mod:`callguard.store.schema`): ``started_at``/``ended_at``
are wall-clock **unix epoch seconds**; ``start_s``/``end_s``/``t_s`` are **seconds of call
time** (0 = the call was answered); ``duration_s``/``asr_s``/``lag_s`` are seconds.

Fields holding personal data (the remote party's number, transcripts, matched words,
supervisor notes) are left out of ``repr()`` so that logging or printing a record by
mistake cannot leak them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from callguard.errors import ResourceError


class StoreError(ResourceError):
    """The call store cannot do what was asked (bad file, newer schema, missing row...)."""


class CallNotFoundError(StoreError, KeyError):
    """No call with the given id. Also a :class:`KeyError`, as for a missing mapping key."""

    def __init__(self, call_id: int) -> None:
        super().__init__(call_id)
        self.call_id = call_id

    def __str__(self) -> str:  # KeyError would quote the bare id
        return f"no call with id {self.call_id} in the call store"


@dataclass(frozen=True, slots=True)
class HitRecord:
    """One rule hit in an utterance; ``start``/``end`` are character offsets into its text."""

    id: int
    utterance_id: int
    rule_id: str
    category: str
    severity: int
    term: str
    start: int
    end: int
    matched: str = field(repr=False)  # the caller's words: personal data


@dataclass(frozen=True, slots=True)
class UtteranceRecord:
    """One recognised stretch of speech on ``leg`` (a :class:`~callguard.vocabulary.Leg`).

    ``status`` is ``ok``, ``rejected`` (``reason`` says why, e.g. ``stock_phrase``),
    ``deferred`` or ``failed``. ``asr_s`` is the recogniser's wall time and ``lag_s`` the
    delay from the end of speech to the result, both in seconds, ``None`` if unknown.
    """

    id: int
    call_id: int
    leg: str
    start_s: float
    end_s: float
    text: str = field(repr=False)  # transcript: personal data
    status: str = "ok"
    reason: str | None = None
    asr_s: float | None = None
    lag_s: float | None = None
    hits: tuple[HitRecord, ...] = ()
    #: Call time (seconds) the live call acted on this result; ``None`` before schema 4.
    at_s: float | None = None


@dataclass(frozen=True, slots=True)
class VerdictRecord:
    """A policy decision at call time ``t_s``; ``prompt`` is a prompt key or ``None``."""

    id: int
    call_id: int
    t_s: float
    kind: str
    prompt: str | None
    hangup: bool
    reason: str
    #: Why it was given (:class:`~callguard.vocabulary.Cause`); ``None`` in a store older
    #: than schema 4 only where the migration could not tell.
    cause: str | None = None


@dataclass(frozen=True, slots=True)
class ActionRecord:
    """Something the agent did at call time ``t_s`` (played a prompt, hung up, alerted)."""

    id: int
    call_id: int
    t_s: float
    kind: str
    detail: str
    ok: bool
    error: str | None
    #: For ``play_prompt``: the prompt's key and the seconds it played (0 when it failed).
    prompt: str | None = None
    seconds: float | None = None


@dataclass(frozen=True, slots=True)
class CallSummary:
    """One line of the call list.

    ``started_at`` is unix epoch seconds; ``duration_s`` and ``end_reason`` are ``None``
    while the call is going on; ``stage`` is the highest escalation stage reached
    (``none``, ``notice``, ``warned``, ``final``).
    """

    id: int
    direction: str
    source: str
    started_at: float
    duration_s: float | None
    end_reason: str | None
    flagged: bool
    stage: str
    remote: str = field(repr=False)  # phone number / SIP URI: personal data
    counselor: str = ""  # the line's account (user name or extension)
    hung_up_by: str | None = None  # remote, counselor, agent; None if unknown
    recording_sha256: str | None = None  # SHA-256 hex of the stereo WAV, stored at close
    reviewed: bool = False  # a supervisor has recorded a verdict


@dataclass(frozen=True, slots=True)
class CallRecord(CallSummary):
    """A whole call for review: its summary plus everything recorded about it.

    ``sample_rate`` is the rate of both audio legs in Hz; ``rules_version`` is the
    SHA-256 of the rules file in force (see :meth:`Store.ruleset`), ``None`` if none was.
    Utterances, verdicts and actions are in call-time order.
    """

    ended_at: float | None = None
    sample_rate: int = 8000
    rules_version: str | None = None
    note: str | None = field(default=None, repr=False)  # supervisor's words, may name people
    utterances: tuple[UtteranceRecord, ...] = ()
    verdicts: tuple[VerdictRecord, ...] = ()
    actions: tuple[ActionRecord, ...] = ()
    #: The call's id everywhere (UUIDv7, made on the desk; schema 6); ``synced_at`` is
    #: when the central server verified it (unix epoch seconds), ``None`` until then.
    uuid: str | None = None
    synced_at: float | None = None


@dataclass(frozen=True, slots=True)
class ReviewRecord:
    """One supervisor verdict on a call (append-only). ``at`` is unix epoch seconds;
    ``verdict`` is ``abuse_confirmed``, ``wrongful_cutoff`` or ``note``."""

    id: int
    call_id: int
    at: float
    reviewer: str
    verdict: str
    note: str = field(repr=False)  # the reviewer's words: may name people


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One audit log entry (append-only). ``at`` is unix epoch seconds; ``detail`` never
    holds a transcript or a phone number."""

    id: int
    at: float
    actor: str
    role: str
    kind: str
    call_id: int | None
    detail: str


@dataclass(frozen=True, slots=True)
class RulesVersion:
    """One saved rules file: ``version`` is the SHA-256 hex of its UTF-8 text."""

    id: int
    version: str
    saved_at: float
    saved_by: str
    note: str


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """One thing the central server must receive: an ended call (``kind == "call"``) or an
    alert (``kind == "alert"``; ``source``/``ref_id`` name its row: ``actions``,
    ``verdicts`` or ``audit_log``). ``created_at`` is unix epoch seconds; ``tries`` counts
    the failed deliveries so far."""

    id: int
    kind: str
    call_id: int | None
    source: str | None
    ref_id: int | None
    created_at: float
    tries: int
