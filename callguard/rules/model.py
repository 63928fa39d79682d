"""The rules as data: categories, rules, escalation and duration policy, prompts.

Everything here is immutable. Times are in **seconds** on the call timeline (0 = the call
was answered). A :class:`RuleSet` is built by :mod:`callguard.rules.loader`; its
``version`` is the SHA-256 of the file's bytes, stored with every call so a supervisor can
tell which rules were in force.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from callguard.text.analyzer import Dictionary
from callguard.vocabulary import Direction


class Category(StrEnum):
    """What kind of abuse a rule detects. ``CRISIS`` hits only ever raise an alert."""

    PROFANITY = "profanity"  # 욕설
    INSULT = "insult"  # 모욕
    THREAT = "threat"  # 협박
    SEXUAL = "sexual"  # 성희롱
    DISCRIMINATION = "discrimination"  # 혐오
    CRISIS = "crisis"  # 자해·자살 암시

    @property
    def label_ko(self) -> str:
        return _LABELS_KO[self]

    @property
    def escalates(self) -> bool:
        """False for categories that must never lead to a warning or a hangup."""
        return self is not Category.CRISIS


_LABELS_KO = {
    Category.PROFANITY: "욕설",
    Category.INSULT: "모욕",
    Category.THREAT: "협박",
    Category.SEXUAL: "성희롱",
    Category.DISCRIMINATION: "혐오",
    Category.CRISIS: "자해·자살 암시",
}


class MatchMode(StrEnum):
    """How a rule's terms are looked for in a transcript.

    - ``surface``: plain substring of the (case-folded) text.
    - ``nospace``: substring after removing spaces, punctuation and symbols from both the
      text and the term (씨 발, 씨.발 → 씨발).
    - ``morpheme``: a contiguous run of Kiwi morphemes; a term may pin tags (``보지/NNG``).
      Matches only on morpheme boundaries, so 보지/NNG does not fire on 보/VV+지/EC.
    - ``phrase``: the content morphemes (stems, nouns, adverbs) of the term in order, with at
      most ``gap`` other content morphemes between them, in any inflection or spacing
      (죽여버린다 / 죽여 버릴 거야 / 죽인다 all contain 죽이/VV).
    """

    SURFACE = "surface"
    NOSPACE = "nospace"
    MORPHEME = "morpheme"
    PHRASE = "phrase"

    @property
    def needs_analyzer(self) -> bool:
        return self in (MatchMode.MORPHEME, MatchMode.PHRASE)


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule. ``severity`` is the number of strikes one hit adds (1-10)."""

    id: str
    category: Category
    terms: tuple[str, ...]
    mode: MatchMode = MatchMode.NOSPACE
    severity: int = 1
    exceptions: tuple[str, ...] = ()
    enabled: bool = True
    gap: int = 2
    description: str = ""
    line: int = 0  # line of the rule's [[rule]] header in its file, for messages
    broad: bool = False  # the admin allows terms the broad-term guard would refuse


@dataclass(frozen=True, slots=True)
class EscalationPolicy:
    """Strike-based escalation of abuse hits (seconds, strikes).

    Strikes are the summed severities of hits inside the sliding ``window``. At
    ``notice_at`` the counselor is notified; at ``warn_at`` the warning prompt is played to
    the caller (up to ``warnings`` times, ``cooldown`` seconds apart). Once every warning
    has been given, ``final_at`` strikes counted from ``cooldown`` seconds after the last
    warning lead to the final notice and a hangup: only abuse that goes on after the
    caller was warned can end the call.
    """

    window: float = 120.0
    cooldown: float = 5.0
    notice_at: int = 1
    warn_at: int = 2
    warnings: int = 1
    final_at: int = 2


@dataclass(frozen=True, slots=True)
class RepeatCallerPolicy:
    """What follows when a caller with recent flagged calls rings (``[repeat_callers]``;
    the count comes from the central server's history, see the README): with at least
    ``warn_after`` such calls the warning prompt plays right after the pre-call notice.
    ``0`` (the default): nothing follows."""

    warn_after: int = 0


@dataclass(frozen=True, slots=True)
class DurationPolicy:
    """Call-length limits for one direction, seconds from answer; ``None`` disables."""

    notice_at: float | None = None
    final_at: float | None = None


@dataclass(frozen=True, slots=True)
class Prompt:
    """An audio prompt: the WAV file played to the caller and the words it says."""

    file: Path | None
    text: str = ""


PROMPT_KEYS = ("pre_call", "warning", "final", "duration_notice", "duration_final")


@dataclass(frozen=True, slots=True)
class RuleSet:
    """A validated rules file. ``version`` is the SHA-256 hex digest of its bytes."""

    path: Path | None
    version: str
    name: str
    rules: tuple[Rule, ...]
    description: str = ""
    global_exceptions: tuple[str, ...] = ()
    escalation: EscalationPolicy = EscalationPolicy()
    inbound: DurationPolicy = DurationPolicy()
    outbound: DurationPolicy = DurationPolicy()
    prompts: dict[str, Prompt] = field(default_factory=dict)
    dictionary: Dictionary = Dictionary()
    repeat_callers: RepeatCallerPolicy = RepeatCallerPolicy()
    #: The file's exact text (UTF-8), kept with each call as evidence of the rules in force.
    source: str = field(default="", repr=False, compare=False)

    @property
    def enabled_rules(self) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if r.enabled)

    def rule(self, rule_id: str) -> Rule:
        for r in self.rules:
            if r.id == rule_id:
                return r
        raise KeyError(rule_id)

    def duration(self, direction: Direction) -> DurationPolicy:
        """The duration policy for calls in ``direction``."""
        if direction == Direction.INBOUND:
            return self.inbound
        if direction == Direction.OUTBOUND:
            return self.outbound
        raise ValueError(f"direction must be one of {', '.join(Direction)}, not {direction!r}")
