"""callguard's one vocabulary: the names every layer uses for legs, directions, stages,
verdicts, end reasons and actions, and the typed events a call publishes.

Every value is a :class:`~enum.StrEnum` whose value is the exact text the SQLite store
keeps (and kept before these enums existed), so ``Leg.CALLER == "caller"`` and old stores
read back unchanged. Nothing in callguard spells these values as string literals
elsewhere (SQL schema text and tests aside): compare and construct with the enums.

Events are small frozen dataclasses. Times are **call time in seconds** (0 = the call was
answered, on the engine's clock); ``at_s`` names a moment, ``seconds`` a length. Events
that carry transcript text (:class:`Transcribed`) hold personal data: show them to the
people entitled to see them, never log them at INFO.

This module imports nothing from callguard: it sits at the bottom of the layers.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Leg(StrEnum):
    """One side of a call's audio. The caller is whoever is not the counselor, in either
    direction."""

    CALLER = "caller"
    COUNSELOR = "counselor"


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class Source(StrEnum):
    """Where a stored call came from."""

    SIP = "sip"  # a live call on the phone line
    SIMULATE = "simulate"  # a recorded call played through the pipeline
    DEMO = "demo"  # the demo's sample call


class Stage(StrEnum):
    """The highest escalation stage a call reached, in order."""

    NONE = "none"
    NOTICE = "notice"  # the counselor was told (screen only)
    WARNED = "warned"  # a warning prompt was played to the caller
    FINAL = "final"  # the final notice was played, then the call was hung up

    @property
    def rank(self) -> int:
        return _STAGE_ORDER.index(self)

    def raised_to(self, other: Stage) -> Stage:
        """The higher of this stage and ``other`` (a stage never goes back)."""
        return other if other.rank > self.rank else self


_STAGE_ORDER = (Stage.NONE, Stage.NOTICE, Stage.WARNED, Stage.FINAL)


class VerdictKind(StrEnum):
    """A decision of the escalation and duration policy."""

    NOTICE = "notice"
    WARN = "warn"
    FINAL = "final"
    ALERT = "alert"
    DURATION_NOTICE = "duration_notice"
    DURATION_FINAL = "duration_final"
    #: A caller with recent flagged calls (any desk) hears the warning right after the
    #: pre-call notice ([repeat_callers] in the rules): no strike, no stage, no flag.
    REPEAT_WARNING = "repeat_warning"

    @property
    def prompt(self) -> str | None:
        """Key of the prompt (``[prompts.<key>]``) this verdict plays to the caller."""
        return _PROMPTS.get(self)

    @property
    def hangup(self) -> bool:
        """True when the call ends after the prompt has played to its last sample."""
        return self in (VerdictKind.FINAL, VerdictKind.DURATION_FINAL)

    @property
    def stage(self) -> Stage | None:
        """The stage this verdict raises the call to (``None``: it leaves it)."""
        return _STAGE_OF.get(self)

    @property
    def flags(self) -> bool:
        """True when the verdict marks the call for a supervisor's review."""
        return self in (VerdictKind.NOTICE, VerdictKind.WARN, VerdictKind.FINAL,
                        VerdictKind.ALERT)

    @property
    def end_reason(self) -> EndReason | None:
        """How the call ends when the agent hangs up after this verdict."""
        return _CUT.get(self)


_PROMPTS = {
    VerdictKind.WARN: "warning",
    VerdictKind.FINAL: "final",
    VerdictKind.DURATION_NOTICE: "duration_notice",
    VerdictKind.DURATION_FINAL: "duration_final",
    VerdictKind.REPEAT_WARNING: "warning",
}
_STAGE_OF = {VerdictKind.NOTICE: Stage.NOTICE, VerdictKind.WARN: Stage.WARNED,
             VerdictKind.FINAL: Stage.FINAL, VerdictKind.DURATION_FINAL: Stage.FINAL}

#: Key of the announcement played before the counselor is put through.
PRE_CALL_PROMPT = "pre_call"


class Cause(StrEnum):
    """Why a verdict was given: the rules' hits, the call's length, the counselor's
    *protect* press, crisis words, or the caller's recent flagged calls."""

    RULES = "rules"
    DURATION = "duration"
    PROTECT = "protect"
    CRISIS = "crisis"
    REPEAT = "repeat"


class HungUpBy(StrEnum):
    """Who ended a call."""

    REMOTE = "remote"  # the other party
    COUNSELOR = "counselor"
    AGENT = "agent"  # callguard: the final notice, the duration limit, or it was stopped


class EndReason(StrEnum):
    """Why a call ended (``calls.end_reason``)."""

    CALLER_HANGUP = "caller_hangup"  # the caller of an inbound call hung up
    REMOTE_HANGUP = "remote_hangup"  # the called party of an outbound call hung up
    COUNSELOR_HANGUP = "counselor_hangup"
    FINAL_NOTICE = "final_notice"  # callguard hung up after the final notice
    DURATION_LIMIT = "duration_limit"  # callguard hung up at the duration limit
    INTERRUPTED = "interrupted"  # the agent stopped mid-call (crash, power cut)
    AGENT_STOPPED = "agent_stopped"  # the agent was stopped (SIGTERM, SIGHUP, quit): BYE sent
    END_OF_AUDIO = "end_of_audio"  # a simulated call's recording ended
    NO_ACK = "no_ack"  # our 200 OK was never ACKed ([sip] ack_timeout_s, Timer H): BYE sent
    MEDIA_TIMEOUT = "media_timeout"  # no RTP from the caller for [sip] media_timeout_s: BYE
    LINE_FAILED = "failed"  # signalling or media failed, or the line stopped
    ENDED = "ended"  # the line ended the call for no reason it named

    @property
    def hung_up_by(self) -> HungUpBy | None:
        """Who ended the call; ``None`` when nobody hung up (interrupted, end of audio)."""
        return _HUNG_UP_BY.get(self)

    @property
    def cut_off(self) -> bool:
        """True when callguard ended the call (final notice or duration limit)."""
        return self in (EndReason.FINAL_NOTICE, EndReason.DURATION_LIMIT)


_CUT = {VerdictKind.FINAL: EndReason.FINAL_NOTICE,
        VerdictKind.DURATION_FINAL: EndReason.DURATION_LIMIT}
_HUNG_UP_BY = {EndReason.FINAL_NOTICE: HungUpBy.AGENT, EndReason.DURATION_LIMIT: HungUpBy.AGENT,
               EndReason.CALLER_HANGUP: HungUpBy.REMOTE, EndReason.REMOTE_HANGUP: HungUpBy.REMOTE,
               EndReason.COUNSELOR_HANGUP: HungUpBy.COUNSELOR,
               EndReason.AGENT_STOPPED: HungUpBy.AGENT, EndReason.NO_ACK: HungUpBy.AGENT,
               EndReason.MEDIA_TIMEOUT: HungUpBy.AGENT}


class CallEnd(StrEnum):
    """How the phone line says a call ended, in signalling terms (the line's word;
    :class:`EndReason` is the call's, as stored)."""

    LOCAL_HANGUP = "local_hangup"  # we sent BYE
    REMOTE_HANGUP = "remote_hangup"  # far end sent BYE
    CANCELLED = "cancelled"  # caller gave up while it rang (CANCEL), or we cancelled
    DECLINED = "declined"  # we refused it (486)
    REJECTED = "rejected"  # far end refused our call (4xx-6xx)
    NO_ACK = "no_ack"  # our 200 OK got no ACK within the ACK timeout (Timer H); we sent BYE
    RING_TIMEOUT = "ring_timeout"  # rang unanswered for the ring timeout: 480 (or CANCEL)
    MEDIA_TIMEOUT = "media_timeout"  # no RTP from the far end for the media timeout; BYE
    FAILED = "failed"  # no answer to signalling, media failure, line stopped


class ActionKind(StrEnum):
    """What the agent did on a call (``actions.kind``)."""

    PLAY_PROMPT = "play_prompt"
    HANGUP = "hangup"
    ALERT = "alert"
    FAULT = "fault"


class UtteranceStatus(StrEnum):
    """What became of one utterance's recognition."""

    OK = "ok"
    REJECTED = "rejected"  # the hallucination guard refused the text
    DEFERRED = "deferred"  # not recognised (the worker was busy)
    FAILED = "failed"  # recognition raised

    @property
    def heard(self) -> bool:
        """True when recognition ran to a result (accepted or refused by the guard)."""
        return self in (UtteranceStatus.OK, UtteranceStatus.REJECTED)


class Role(StrEnum):
    COUNSELOR = "counselor"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"


class ReviewVerdict(StrEnum):
    """A supervisor's judgement of a call (the append-only review trail)."""

    ABUSE_CONFIRMED = "abuse_confirmed"
    WRONGFUL_CUTOFF = "wrongful_cutoff"
    CRISIS_RESPONSE = "crisis_response"  # a crisis call: handled as a crisis, not as abuse
    NOTE = "note"


class EngineEventKind(StrEnum):
    """What an :class:`~callguard.engine.engine.EngineEvent` reports (its payload is
    documented there)."""

    STATUS = "status"  # the line's registration state
    RINGING = "ringing"  # an inbound call rings
    DIALING = "dialing"  # an outbound call is being set up
    ANSWERED = "answered"  # a call is up: recording and recognition run
    ENDED = "ended"  # a call is over (answered or not)
    DECLINED = "declined"  # an inbound call was refused (busy, resting)
    TIMELINE = "timeline"  # a call event (:data:`CallEvent`)
    CALL_STATUS = "call_status"  # about once a second during a call (:class:`CallStatus`)
    RULES = "rules"  # the rules were reloaded, refused, or fell back to the last good ones
    HEADSET = "headset"  # the headset could not be opened or failed
    STORE = "store"  # the call store's health changed
    RECOGNITION = "recognition"  # the recogniser went down (crashed, restarting) or is back
    CENTRAL = "central"  # the link to the central server changed (reachable, waiting, rules)
    ALERT_DELIVERED = "alert_delivered"  # the server has an alert: who had it on screen


# --- events a call publishes (call time in seconds) ----------------------------------------


@dataclass(frozen=True, slots=True)
class HitSpan:
    """A rule hit inside an utterance's text: characters ``[start, end)`` (NFC)."""

    start: int
    end: int
    rule_id: str
    category: str


@dataclass(frozen=True, slots=True)
class CallStarted:
    at_s: float
    direction: Direction
    rules_version: str


@dataclass(frozen=True, slots=True)
class Transcribed:
    """A recognition result, published at call time ``at_s`` (when it arrived).

    ``start_s``/``end_s`` bound the utterance; ``early`` marks a provisional look at speech
    still going on (published only when it found hits); ``after_end`` a result that came in
    after the call ended (kept as evidence, never acted on). ``lag_s`` is end of speech →
    result, ``asr_s`` the recogniser's own time (wall seconds). ``text`` is personal data.
    """

    at_s: float
    leg: Leg
    text: str
    start_s: float
    end_s: float
    status: UtteranceStatus
    reason: str | None = None
    hits: tuple[HitSpan, ...] = ()
    lag_s: float | None = None
    asr_s: float = 0.0
    early: bool = False
    after_end: bool = False

    @property
    def rule_ids(self) -> tuple[str, ...]:
        return tuple(h.rule_id for h in self.hits)


@dataclass(frozen=True, slots=True)
class VerdictIssued:
    """The policy decided ``kind`` at ``at_s``. ``reason`` never quotes the transcript."""

    at_s: float
    kind: VerdictKind
    cause: Cause
    reason: str
    strikes: int = 0
    rule_ids: tuple[str, ...] = ()

    @property
    def prompt(self) -> str | None:
        return self.kind.prompt

    @property
    def hangup(self) -> bool:
        return self.kind.hangup


@dataclass(frozen=True, slots=True)
class PromptStarted:
    """Prompt ``key`` plays to the caller from ``at_s`` for ``seconds``."""

    key: str
    at_s: float
    seconds: float

    @property
    def ends_at(self) -> float:
        return self.at_s + self.seconds


@dataclass(frozen=True, slots=True)
class PromptFinished:
    """Prompt ``key``'s last sample was due at ``at_s``."""

    key: str
    at_s: float


@dataclass(frozen=True, slots=True)
class PromptFailed:
    """Prompt ``key`` could not be played (``error``); the call goes on."""

    key: str
    at_s: float
    error: str


@dataclass(frozen=True, slots=True)
class AlertRaised:
    """Crisis words: a supervisor alert, never a warning or a hangup."""

    at_s: float
    rule_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class HangupSent:
    """The agent hung up at ``at_s`` after ``verdict`` (``ok`` False: the BYE failed)."""

    at_s: float
    verdict: VerdictKind
    ok: bool = True
    error: str | None = None


@dataclass(frozen=True, slots=True)
class FaultNoted:
    """Part of the call's machinery failed (headset, a step); the call went on."""

    at_s: float
    detail: str


@dataclass(frozen=True, slots=True)
class CallEnded:
    at_s: float
    reason: EndReason

    @property
    def hung_up_by(self) -> HungUpBy | None:
        return self.reason.hung_up_by


@dataclass(frozen=True, slots=True)
class CallStatus:
    """Where a call stands at ``at_s``, for the counselor's screen (about once a second).

    ``next`` is the verdict the next strikes lead to (``None`` once decided), ``strikes``
    counted toward it and ``needed``; ``warnings_given`` of ``warnings`` warning prompts
    have played; ``notice_s``/``limit_s`` are the call's duration limits (``None``: off).
    ``muted`` and ``store_id`` (the stored call's row) are filled in by the engine.
    """

    at_s: float
    next: VerdictKind | None
    strikes: int
    needed: int
    notice_s: float | None
    limit_s: float | None
    stage: Stage
    ended: bool
    warnings_given: int = 0
    warnings: int = 0
    muted: bool = False
    store_id: int | None = None


CallEvent = (CallStarted | Transcribed | VerdictIssued | PromptStarted | PromptFinished
             | PromptFailed | AlertRaised | HangupSent | FaultNoted | CallEnded)
