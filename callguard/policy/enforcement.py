"""Enforcement: what a call's verdicts do. One pure core for the live session and the
dry-run, so a dry-run can never drift from what a live call does.

Time is passed in (**call time in seconds**, 0 = answered); nothing here reads a clock or
does I/O. The one effect, starting a prompt, is a callback the driver gives
(:data:`PromptPlayer`): the live session starts the prompt on the line and returns its
length, the dry-run returns the length the stored call recorded. Every step returns the
typed events of :mod:`callguard.vocabulary` that the driver publishes and stores::

    event at t ─► policy ─► verdict ─► VerdictIssued
                                   ├─► prompt queued after whatever plays ─► PromptStarted
                                   │     (a warning is *heard* when its prompt ends: the
                                   │      cooldown and the next strikes count from then)
                                   ├─► AlertRaised (crisis words)
                                   └─► hangup due once the final prompt has played
                                         (+ HANGUP_MARGIN_S) ─► driver hangs up ─► hung_up()

The stage only rises (none → notice → warned → final) and becomes ``final`` when the agent
hangs up; the call is *flagged* for review by a notice, warning, final notice or alert, or
by hits heard after the call ended.
"""

from __future__ import annotations

from collections.abc import Callable

from callguard.policy.escalation import (
    Event,
    PolicyEvaluator,
    PolicyState,
    Progress,
)
from callguard.rules.model import RuleSet
from callguard.vocabulary import (
    PRE_CALL_PROMPT,
    AlertRaised,
    CallEvent,
    Cause,
    Direction,
    EndReason,
    PromptFailed,
    PromptStarted,
    Stage,
    VerdictIssued,
    VerdictKind,
)

#: Starts prompt ``key`` (after anything already playing) and returns its length in
#: seconds; raises if it cannot be played (the call goes on, the failure is an event).
PromptPlayer = Callable[[str], float]

#: Extra time after a final prompt's nominal end before BYE, for jitter buffers downstream.
HANGUP_MARGIN_S = 0.3


class Enforcement:
    """One call's policy state, prompt queue, stage and hangup schedule."""

    def __init__(self, ruleset: RuleSet, direction: Direction) -> None:
        self.policy = PolicyEvaluator.for_call(ruleset, direction)
        self.state = PolicyState(direction)
        self._configured = frozenset(ruleset.prompts)
        self._repeat = ruleset.repeat_callers
        self.playing_until = 0.0  # call time the last queued prompt ends
        self.stage = Stage.NONE
        self.flagged = False
        self.warnings = 0  # warning prompts given
        #: Call time the agent is due to hang up, and the verdict that decided it.
        self.hangup_at: float | None = None
        self.hangup_verdict: VerdictKind | None = None
        self.hung_up = False

    @property
    def decided(self) -> bool:
        """True once a verdict has decided to end the call (no later event counts)."""
        return self.hangup_at is not None or self.state.ended

    def start(self, play: PromptPlayer, *, pre_call: bool = True,
              repeat_flagged: int = 0) -> list[CallEvent]:
        """The call was answered: the pre-call announcement, if configured and wanted; then,
        for a caller with ``repeat_flagged`` recent flagged calls at or above the rules'
        ``[repeat_callers] warn_after``, the warning (a ``repeat_warning`` verdict: no
        strike, no stage, no flag)."""
        out: list[CallEvent] = []
        if pre_call and PRE_CALL_PROMPT in self._configured:
            out.append(self._play(0.0, PRE_CALL_PROMPT, play))
        warn_after = self._repeat.warn_after
        if warn_after and repeat_flagged >= warn_after:
            out.extend(self._enforce(VerdictIssued(
                0.0, VerdictKind.REPEAT_WARNING, Cause.REPEAT,
                f"repeat caller: {repeat_flagged} recent flagged call(s)"), play))
        return out

    def observe(self, event: Event, at_s: float, play: PromptPlayer) -> list[CallEvent]:
        """Apply a policy event (hits, a clock tick, a protect press) at ``at_s``."""
        if self.state.ended or self.hung_up:
            return []
        self.state, verdicts = self.policy.step(self.state, event, at_s)
        out: list[CallEvent] = []
        for v in verdicts:
            out.extend(self._enforce(v, play))
        return out

    def late_hits(self) -> None:
        """Hits heard only after the call ended: evidence for review, no action."""
        self.flagged = True

    def hangup_done(self) -> EndReason:
        """The agent has hung up (at :attr:`hangup_at`): the call's end reason."""
        assert self.hangup_verdict is not None, "no hangup was due"
        self.hung_up = True
        self.stage = Stage.FINAL
        reason = self.hangup_verdict.end_reason
        assert reason is not None
        return reason

    def progress(self, now: float) -> Progress:
        """The next escalation step and how close the call is to it at ``now``."""
        return self.policy.progress(self.state, now)

    # --- internals --------------------------------------------------------------------

    def _enforce(self, v: VerdictIssued, play: PromptPlayer) -> list[CallEvent]:
        self.flagged = self.flagged or v.kind.flags
        if v.kind.stage is not None and self.stage is not Stage.FINAL:
            self.stage = self.stage.raised_to(v.kind.stage)
        out: list[CallEvent] = [v]
        ends_at = v.at_s
        key = v.prompt
        if key is not None:
            if key in self._configured:
                played = self._play(v.at_s, key, play)
                out.append(played)
                # A prompt that failed takes no time: the hangup follows what played before.
                ends_at = played.ends_at if isinstance(played, PromptStarted) else played.at_s
            else:
                out.append(PromptFailed(key, v.at_s, "prompt not configured"))
        if v.kind is VerdictKind.WARN:
            self.warnings += 1
            self.state = self.policy.warning_heard_at(self.state, ends_at)
        if v.kind is VerdictKind.ALERT:
            out.append(AlertRaised(v.at_s, v.rule_ids))
        if v.hangup and self.hangup_at is None:
            self.hangup_at = ends_at + (HANGUP_MARGIN_S if ends_at > v.at_s else 0.0)
            self.hangup_verdict = v.kind
        return out

    def _play(self, at_s: float, key: str, play: PromptPlayer) -> PromptStarted | PromptFailed:
        """Queue prompt ``key`` after whatever is playing."""
        begin = max(at_s, self.playing_until)
        try:
            seconds = float(play(key))
        except Exception as exc:  # a broken prompt must not keep the call up
            return PromptFailed(key, begin, str(exc) or type(exc).__name__)
        self.playing_until = begin + seconds
        return PromptStarted(key, begin, seconds)
