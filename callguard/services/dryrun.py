"""Dry-run of rules on stored calls: which calls would they have warned or cut off?

An admin who has edited the rules wants to know, before saving, what the edit would have
done to past calls. :func:`dry_run` replays each stored call's caller utterances through
the rules' :class:`~callguard.rules.matcher.Matcher` and the real escalation and duration
policy (:class:`~callguard.policy.escalation.PolicyEvaluator`), and compares the outcome
with what the store recorded under the rules that were in force.

Pure and synchronous: call records in, a report out; no store, no event loop, no Qt. The
only I/O is :func:`prompt_lengths` reading prompt WAV headers, and only for prompts a call
never played.

The replay runs the same enforcement core as a live call
(:class:`~callguard.policy.enforcement.Enforcement`: policy, prompt queue, the moment a
warning is heard, stage, hangup), fed from what the store kept (all times are seconds of
call time, 0 = the call was answered):

- Only caller utterances with status ``ok`` count; the counselor's speech never escalates.
- An utterance's hits are observed at the call time the live call acted on them
  (``utterances.at_s``), so a replay under the rules in force gives the recorded actions at
  the recorded times. Stores older than schema 4 lack it: there the utterance's ``end_s``
  stands in, a little early (the live agent knew after the early-look pause and
  recognition), so right at a boundary (a cooldown's end, the window's edge) such a replay
  can differ from the recording.
- Stored rows that overlap in time are one utterance (an early look stored because it had
  hits, then the whole utterance recognised again at its end): as live, a rule counts once
  per utterance. Speech still open when the line closed (``end_s`` at the call's end) was
  recognised after the call and never escalated live, so it is not replayed either.
  (with ``at_s``: results the live call received only after it ended.)
- The clock ticks once per whole second up to the stored ``duration_s``, so duration limits
  fire with no speech.
- Prompts play one after another: the pre-call announcement from 0 s, then each verdict's
  prompt after whatever is playing. A warning counts as heard when its prompt ends
  (:meth:`PolicyEvaluator.warning_heard_at`), so abuse spoken over it counts for nothing.
  Prompt lengths are those the call recorded playing (its ``play_prompt`` actions), else
  the rules' (:func:`prompt_lengths`), unless the caller gives them.
- The counselor's *protect* presses recorded in the call (verdicts with cause ``protect``)
  are replayed at their time: they are the counselor's decision, not the rules'.
- The replay stops at the first verdict that hangs up. What a caller said after a recorded
  cut-off was never heard, so for rules that would have let such a call go on the replay
  shows only what was recorded up to the cut-off.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from callguard.policy.enforcement import Enforcement
from callguard.policy.escalation import ClockTick, Event, HitsObserved, ProtectRequested
from callguard.rules.loader import parse_rules
from callguard.rules.matcher import Hit, Matcher
from callguard.rules.model import RuleSet
from callguard.rules.problems import Problem, RulesError
from callguard.session.control import prompt_seconds
from callguard.store.records import CallRecord, UtteranceRecord
from callguard.text.analyzer import Analyzer
from callguard.vocabulary import (
    ActionKind,
    CallEvent,
    Cause,
    Direction,
    EndReason,
    Leg,
    UtteranceStatus,
    VerdictIssued,
    VerdictKind,
)

log = logging.getLogger(__name__)

# Float slack when comparing call times computed from sample counts.
_EPS = 1e-6


@dataclass(frozen=True)
class CompiledRules:
    """Rules ready to replay: the rule set, its compiled matcher, and the loader's warnings."""

    ruleset: RuleSet
    matcher: Matcher
    warnings: tuple[Problem, ...] = ()


def compile_rules(text: str | bytes, *, name: str = "<edited rules>",
                  base_dir: Path | None = None,
                  analyzer: Analyzer | None = None) -> CompiledRules:
    """Validate and compile rules given as TOML text (an editor's unsaved buffer).

    Raises :class:`~callguard.rules.problems.RulesError` with every problem (file ``name``,
    line, rule), exactly as ``callguard rules check`` reports them. ``base_dir`` is the
    directory of the file the text will be saved as: prompt files are found (and their
    lengths read) relative to it. Kiwi is the shared instance for the rules' ``[dictionary]``
    (:func:`callguard.text.analyzer.kiwi_analyzer`) unless ``analyzer`` is given: editing
    ``[dictionary]`` loads another Kiwi, other edits reuse the one already loaded.
    """
    result = parse_rules(text, name=name, base_dir=base_dir, analyzer=analyzer)
    try:
        matcher = Matcher(result.ruleset, analyzer)
    except Exception as exc:  # as ActiveRules: a compile failure is a problem with the rules
        raise RulesError([Problem(name, 0, f"could not compile the rules: {exc}")]) from exc
    return CompiledRules(result.ruleset, matcher, tuple(result.warnings))


def prompt_lengths(ruleset: RuleSet) -> dict[str, float]:
    """Seconds each of the rules' prompts plays for: its WAV's length, or an estimate from
    its text (as the simulator's call control plays them). Reads the WAV headers."""
    return {key: prompt_seconds(prompt) for key, prompt in ruleset.prompts.items()}


@dataclass(frozen=True, slots=True)
class CallReplay:
    """What the rules would have done to one stored call, beside what it recorded.

    ``outcome`` is the highest stage reached (``none``, ``notice``, ``warned``, ``final``)
    and ``warnings`` how many warning prompts were given. ``cut_reason`` is
    ``final_notice`` or ``duration_limit`` when the call would have been cut off, by the
    verdict at call time ``cut_at`` (seconds; the line is hung up once the final prompt has
    played); ``reason`` is that verdict's reason, which never quotes the caller. ``hits``
    counts the hits the policy saw (a rule once per utterance) up to the cut-off, by the
    rules in ``rules`` (sorted ids).

    ``actual_*`` is what the store recorded: ``calls.stage``, ``calls.end_reason`` and the
    cut-off the recorded verdicts decided (``None`` if none; it differs from the end reason
    when the line went down while the final prompt played). ``changed`` is true when the
    stage or the cut-off decision differs from the recording.
    """

    call_id: int
    direction: str
    outcome: str
    warnings: int
    cut_reason: str | None
    cut_at: float | None
    reason: str | None
    hits: int
    rules: tuple[str, ...]
    actual_stage: str
    actual_end_reason: str | None
    actual_cut_reason: str | None
    actual_rules_version: str | None
    changed: bool
    #: Everything the enforcement core did, in order (verdicts, prompts, alerts), and the
    #: call time it would have hung up (``None``: it would not have).
    events: tuple[CallEvent, ...] = ()
    hangup_at: float | None = None

    @property
    def cut_off(self) -> bool:
        return self.cut_reason is not None

    def as_dict(self) -> dict:
        return {
            "call_id": self.call_id,
            "direction": self.direction,
            "outcome": self.outcome,
            "warnings": self.warnings,
            "cut_off": self.cut_off,
            "cut_reason": self.cut_reason,
            "cut_at": None if self.cut_at is None else round(self.cut_at, 3),
            "reason": self.reason,
            "hits": self.hits,
            "rules": list(self.rules),
            "actual": {"stage": self.actual_stage, "end_reason": self.actual_end_reason,
                       "cut_reason": self.actual_cut_reason,
                       "rules_version": self.actual_rules_version},
            "changed": self.changed,
        }


@dataclass(frozen=True)
class DryRunReport:
    """Replays of many calls under one rule set (``rules_version`` is its SHA-256)."""

    rules_version: str
    rules_name: str
    rows: tuple[CallReplay, ...]

    @property
    def calls(self) -> int:
        return len(self.rows)

    @property
    def warned(self) -> int:
        """Calls in which at least one warning prompt would have been played."""
        return sum(1 for r in self.rows if r.warnings)

    @property
    def cut_off(self) -> int:
        """Calls the rules would have cut off (final notice or duration limit)."""
        return sum(1 for r in self.rows if r.cut_off)

    @property
    def changed(self) -> int:
        """Calls whose stage or cut-off decision differs from the recording."""
        return sum(1 for r in self.rows if r.changed)

    def as_dict(self) -> dict:
        return {
            "rules_version": self.rules_version,
            "rules_name": self.rules_name,
            "calls": self.calls,
            "warned": self.warned,
            "cut_off": self.cut_off,
            "changed": self.changed,
            "rows": [r.as_dict() for r in self.rows],
        }


def dry_run(records: Iterable[CallRecord], ruleset: RuleSet, matcher: Matcher, *,
            prompt_s: Mapping[str, float] | None = None,
            play_pre_call: bool = True) -> DryRunReport:
    """Replay every record under ``ruleset`` (compiled as ``matcher``); see
    :func:`replay_call` for the options and the module docstring for how."""
    # Read the rules' prompt files once, not once per call.
    fallback = prompt_lengths(ruleset) if prompt_s is None else {}
    rows = tuple(_replay(r, ruleset, matcher, prompt_s, fallback, play_pre_call)
                 for r in records)
    report = DryRunReport(ruleset.version, ruleset.name, rows)
    log.debug("dry run of rules %s: %d call(s), %d warned, %d cut off, %d changed",
              ruleset.version[:12], report.calls, report.warned, report.cut_off,
              report.changed)
    return report


def replay_call(record: CallRecord, ruleset: RuleSet, matcher: Matcher, *,
                prompt_s: Mapping[str, float] | None = None,
                play_pre_call: bool = True) -> CallReplay:
    """Replay one stored call under ``ruleset`` (compiled as ``matcher``).

    ``prompt_s`` gives each prompt's length in seconds, for every call alike; by default a
    call's own recorded lengths are used, and :func:`prompt_lengths` for prompts it never
    played. ``play_pre_call`` mirrors :class:`~callguard.session.call.SessionConfig`.
    """
    fallback = prompt_lengths(ruleset) if prompt_s is None else {}
    return _replay(record, ruleset, matcher, prompt_s, fallback, play_pre_call)


def _replay(record: CallRecord, ruleset: RuleSet, matcher: Matcher,
            prompt_s: Mapping[str, float] | None, fallback: Mapping[str, float],
            play_pre_call: bool) -> CallReplay:
    lengths = dict(prompt_s) if prompt_s is not None else {**fallback,
                                                           **_played_lengths(record)}
    # A call still going on has no end yet: replay everything heard so far.
    ongoing = record.duration_s is None
    end = (max((_heard_at(u) for u in record.utterances), default=0.0) if ongoing
           else record.duration_s)

    events: list[tuple[float, int, Event]] = []  # (call time, order at equal times, event)
    for t, hits in _caller_hits(record, matcher):
        if ongoing or t < end - _EPS:
            events.append((t, 0, HitsObserved(hits, Leg.CALLER)))
    for v in record.verdicts:
        if v.cause == Cause.PROTECT:
            events.append((v.t_s, 1, ProtectRequested()))
    # At equal times the session delivers the results due before it ticks the clock.
    events.extend((float(k), 2, ClockTick()) for k in range(1, math.floor(end + _EPS) + 1))
    events.sort(key=lambda e: (e[0], e[1]))

    def play(key: str) -> float:
        return lengths.get(key, 0.0)

    enforcement = Enforcement(ruleset, Direction(record.direction))
    # A repeat caller's warning is replayed when the call had one: how many flagged calls
    # the caller had is not kept, only that it was enough.
    repeated = any(v.cause == Cause.REPEAT for v in record.verdicts)
    done = enforcement.start(play, pre_call=play_pre_call,
                             repeat_flagged=10**6 if repeated else 0)
    hit_count = 0
    rule_ids: set[str] = set()
    cut: VerdictIssued | None = None
    for t, _, event in events:
        if isinstance(event, HitsObserved):
            hit_count += len(event.hits)
            rule_ids.update(h.rule_id for h in event.hits)
        for ev in enforcement.observe(event, t, play):
            done.append(ev)
            if isinstance(ev, VerdictIssued) and ev.hangup and cut is None:
                cut = ev
        if cut is not None:
            break

    cut_reason = cut.kind.end_reason if cut is not None else None
    actual_cut = _recorded_cut(record)
    return CallReplay(
        call_id=record.id, direction=record.direction, outcome=enforcement.stage,
        warnings=enforcement.warnings, cut_reason=cut_reason,
        cut_at=cut.at_s if cut is not None else None,
        reason=cut.reason if cut is not None else None, hits=hit_count,
        rules=tuple(sorted(rule_ids)), actual_stage=record.stage,
        actual_end_reason=record.end_reason, actual_cut_reason=actual_cut,
        actual_rules_version=record.rules_version,
        changed=enforcement.stage != record.stage or cut_reason != actual_cut,
        events=tuple(done), hangup_at=enforcement.hangup_at)


def _heard_at(u: UtteranceRecord) -> float:
    """Call time the live call acted on ``u``'s result (its end in an older store)."""
    return u.end_s if u.at_s is None else u.at_s


def _caller_hits(record: CallRecord,
                 matcher: Matcher) -> Iterator[tuple[float, tuple[Hit, ...]]]:
    """``(call time, hits)`` of each stored caller result, each rule once per utterance."""
    groups = _utterances(u for u in record.utterances
                         if u.leg == Leg.CALLER and u.status == UtteranceStatus.OK and u.text)
    rows = [u for g in groups for u in g]
    results = iter(matcher.match_many([u.text for u in rows]))  # one Kiwi batch per call
    for group in groups:
        seen: set[str] = set()
        for u in group:
            new = tuple(h for h in next(results).hits if h.rule_id not in seen)
            seen.update(h.rule_id for h in new)
            if new:
                yield _heard_at(u), new


def _utterances(rows: Iterable[UtteranceRecord]) -> list[list[UtteranceRecord]]:
    """Rows grouped into utterances, each group in the order its results arrived.

    One leg's utterances never overlap (a forced cut starts the next one at this one's end),
    but an early look lies inside the whole utterance recognised after it.
    """
    groups: list[list[UtteranceRecord]] = []
    group_end = -math.inf
    for u in sorted(rows, key=lambda u: (u.start_s, u.end_s, u.id)):
        if groups and u.start_s < group_end - _EPS:
            groups[-1].append(u)
            group_end = max(group_end, u.end_s)
        else:
            groups.append([u])
            group_end = u.end_s
    return [sorted(g, key=lambda u: (_heard_at(u), u.id)) for g in groups]


def _played_lengths(record: CallRecord) -> dict[str, float]:
    """Seconds each prompt played for in this call, from its ``play_prompt`` actions (a
    prompt that failed to play took no time). Live calls play the recorded announcement or
    a short chime, the simulator an estimate: the call's own record is the truth."""
    return {a.prompt: (a.seconds or 0.0) if a.ok else 0.0 for a in record.actions
            if a.kind == ActionKind.PLAY_PROMPT and a.prompt is not None}


def _recorded_cut(record: CallRecord) -> EndReason | None:
    """The cut-off the recorded verdicts decided, else the one the end reason names."""
    for v in record.verdicts:
        reason = VerdictKind(v.kind).end_reason
        if v.hangup and reason is not None:
            return reason
    if record.end_reason is not None and record.end_reason in tuple(EndReason):
        reason = EndReason(record.end_reason)
        return reason if reason.cut_off else None
    return None
