"""Escalation and duration policy: a pure function of (state, event, now).

Nothing here does I/O, reads a clock or keeps hidden state: the caller passes the
current **call time in seconds** (0 = the call was answered, on the engine's clock) and
gets back a new immutable :class:`PolicyState` and the verdicts to act on. The same inputs
always give the same outputs, so the tests drive it with a manual clock.

Stages (see :class:`~callguard.rules.model.EscalationPolicy`)::

    hits ─► strikes in window ≥ notice_at ─► NOTICE   (counselor's screen)
                              ≥ warn_at   ─► WARN     (warning prompt to the caller)
    after every warning, strikes counted from last warning + cooldown
                              ≥ final_at  ─► FINAL    (final notice to its end, then BYE)
    call time ≥ duration notice_at        ─► DURATION_NOTICE
    call time ≥ duration final_at         ─► DURATION_FINAL (final notice, then BYE)
    crisis hits                           ─► ALERT    (never a warning or a hangup)
    counselor presses protect             ─► FINAL

One caller utterance adds one :class:`Strike` (see :func:`utterance_weight`): words hit
by several rules at once count once, at the highest severity, and a rule repeated in one
utterance counts once. Hits on the counselor's leg never escalate.
Once a hangup verdict is given the state is ``ended`` and nothing further is returned.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from callguard.rules.matcher import Hit
from callguard.rules.model import Category, DurationPolicy, EscalationPolicy
from callguard.vocabulary import Cause, Direction, Leg, VerdictIssued, VerdictKind


@dataclass(frozen=True, slots=True)
class Strike:
    """Strikes from one caller utterance at call time ``at`` (seconds)."""

    at: float
    weight: int
    rule_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class HitsObserved:
    """Rule hits found in one utterance of ``leg``."""

    hits: tuple[Hit, ...]
    leg: Leg = Leg.CALLER


@dataclass(frozen=True, slots=True)
class ClockTick:
    """Time has passed; lets duration limits fire with no speech at all."""


@dataclass(frozen=True, slots=True)
class ProtectRequested:
    """The counselor pressed *protect*: play the final notice and end the call now."""


Event = HitsObserved | ClockTick | ProtectRequested


@dataclass(frozen=True, slots=True)
class PolicyState:
    """Everything the policy remembers about one call. Start with ``PolicyState(direction)``."""

    direction: Direction = Direction.INBOUND
    strikes: tuple[Strike, ...] = ()
    noticed: bool = False
    warnings_given: int = 0
    last_warning_at: float | None = None
    duration_noticed: bool = False
    alerts: int = 0
    ended: bool = False


@dataclass(frozen=True, slots=True)
class Progress:
    """Where a call stands, for the counselor's screen.

    ``next`` is the verdict kind the next strikes lead to (``None`` once ended);
    ``strikes`` counts toward it and ``needed`` is its threshold.
    """

    next: VerdictKind | None
    strikes: int
    needed: int


def utterance_weight(hits: Iterable[Hit]) -> tuple[int, tuple[str, ...]]:
    """Strikes one utterance adds, and the escalating rules behind them.

    Escalating hits whose spans overlap form one cluster worth its highest severity (미친놈
    hit by an insult rule and a 놈 rule is one insult, not two); a cluster made only of
    rules already counted in this utterance adds nothing (씨발 씨발 is one strike).
    """
    spans = sorted((h for h in hits if h.category.escalates), key=lambda h: (h.start, h.end))
    clusters: list[list[Hit]] = []
    for h in spans:
        if clusters and h.start < max(x.end for x in clusters[-1]):
            clusters[-1].append(h)
        else:
            clusters.append([h])
    weight = 0
    counted: set[str] = set()
    for cluster in clusters:
        rules = {h.rule_id for h in cluster}
        if rules <= counted:
            continue
        weight += max(h.severity for h in cluster)
        counted |= rules
    return weight, tuple(sorted(counted))


class PolicyEvaluator:
    """Applies an :class:`EscalationPolicy` and a :class:`DurationPolicy` to call events."""

    def __init__(self, escalation: EscalationPolicy, duration: DurationPolicy) -> None:
        self.escalation = escalation
        self.duration = duration

    @classmethod
    def for_call(cls, ruleset, direction: Direction) -> PolicyEvaluator:
        """The evaluator for a call in ``direction`` under ``ruleset`` (a RuleSet)."""
        return cls(ruleset.escalation, ruleset.duration(direction))

    # -- queries ---------------------------------------------------------------------------
    def _live(self, strikes: Iterable[Strike], now: float) -> tuple[Strike, ...]:
        return tuple(s for s in strikes if now - s.at < self.escalation.window)

    def _counted(self, state: PolicyState, strikes: Iterable[Strike]) -> int:
        """Strikes that count toward the next stage: after the last warning's cooldown."""
        if state.last_warning_at is None:
            return sum(s.weight for s in strikes)
        # Strictly after the warning (the strike that caused it never counts again), and
        # not before the cooldown has passed.
        warned = state.last_warning_at
        since = warned + self.escalation.cooldown
        return sum(s.weight for s in strikes if s.at > warned and s.at >= since)

    def progress(self, state: PolicyState, now: float) -> Progress:
        """The next escalation stage and how close the call is to it at ``now``."""
        if state.ended:
            return Progress(None, 0, 0)
        live = self._live(state.strikes, now)
        counted = self._counted(state, live)
        p = self.escalation
        if not state.noticed and p.notice_at < p.warn_at:
            return Progress(VerdictKind.NOTICE, counted, p.notice_at)
        if state.warnings_given < p.warnings:
            return Progress(VerdictKind.WARN, counted, p.warn_at)
        return Progress(VerdictKind.FINAL, counted, p.final_at)

    @staticmethod
    def warning_heard_at(state: PolicyState, t: float) -> PolicyState:
        """The last warning's prompt ends at call time ``t`` (seconds), possibly in the future.

        From then on the caller has heard it: the cooldown, and which strikes count toward
        the next stage, run from ``t``, so abuse spoken over a warning that is still playing
        never leads to another warning or the final notice by itself.
        """
        if state.last_warning_at is None or t <= state.last_warning_at:
            return state
        return replace(state, last_warning_at=t)

    # -- the step function -----------------------------------------------------------------
    def step(self, state: PolicyState, event: Event,
             now: float) -> tuple[PolicyState, list[VerdictIssued]]:
        """Apply ``event`` at call time ``now`` (seconds); return the new state and verdicts."""
        if state.ended:
            return state, []
        verdicts: list[VerdictIssued] = []
        state = replace(state, strikes=self._live(state.strikes, now))

        if isinstance(event, ProtectRequested):
            return self._end(state, verdicts, VerdictIssued(
                now, VerdictKind.FINAL, Cause.PROTECT, "counselor pressed protect",
                self._counted(state, state.strikes)))

        d = self.duration
        if d.final_at is not None and now >= d.final_at:
            return self._end(state, verdicts, VerdictIssued(
                now, VerdictKind.DURATION_FINAL, Cause.DURATION,
                f"call reached the {d.final_at:g} s limit"))
        if d.notice_at is not None and now >= d.notice_at and not state.duration_noticed:
            state = replace(state, duration_noticed=True)
            verdicts.append(VerdictIssued(now, VerdictKind.DURATION_NOTICE, Cause.DURATION,
                                          f"call passed {d.notice_at:g} s"))

        if isinstance(event, HitsObserved) and event.leg == Leg.CALLER:
            state = self._observe(state, event.hits, now, verdicts)
        return state, verdicts

    def _observe(self, state: PolicyState, hits: tuple[Hit, ...], now: float,
                 verdicts: list[VerdictIssued]) -> PolicyState:
        crisis = sorted({h.rule_id for h in hits if h.category is Category.CRISIS})
        if crisis:
            state = replace(state, alerts=state.alerts + 1)
            verdicts.append(VerdictIssued(now, VerdictKind.ALERT, Cause.CRISIS,
                                          "crisis words (자해·자살 암시)", 0, tuple(crisis)))
        weight, rule_ids = utterance_weight(hits)
        if not weight:
            return state
        strike = Strike(now, weight, rule_ids)
        state = replace(state, strikes=(*state.strikes, strike))
        p = self.escalation
        total = sum(s.weight for s in state.strikes)
        if not state.noticed and total >= p.notice_at:
            state = replace(state, noticed=True)
            verdicts.append(VerdictIssued(now, VerdictKind.NOTICE, Cause.RULES,
                                          f"{total} strike(s) within {p.window:g} s", total,
                                          rule_ids))
        counted = self._counted(state, state.strikes)
        if state.warnings_given < p.warnings:
            if counted >= p.warn_at:
                state = replace(state, warnings_given=state.warnings_given + 1,
                                last_warning_at=now, noticed=True)
                verdicts.append(VerdictIssued(
                    now, VerdictKind.WARN, Cause.RULES,
                    f"warning {state.warnings_given}/{p.warnings}: {counted} strike(s)",
                    counted, rule_ids))
        elif counted >= p.final_at:
            verdicts.append(VerdictIssued(
                now, VerdictKind.FINAL, Cause.RULES,
                f"abuse went on after {p.warnings} warning(s): {counted} strike(s)",
                counted, rule_ids))
            state = replace(state, ended=True)
        return state

    @staticmethod
    def _end(state: PolicyState, verdicts: list[VerdictIssued],
             final: VerdictIssued) -> tuple[PolicyState, list[VerdictIssued]]:
        verdicts.append(final)
        return replace(state, ended=True), verdicts
