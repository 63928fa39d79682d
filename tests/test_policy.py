"""Escalation and duration policy, driven by a manual clock (seconds of call time)."""

from __future__ import annotations

import pytest

from callguard.policy import (
    ClockTick,
    HitsObserved,
    PolicyEvaluator,
    PolicyState,
    ProtectRequested,
    VerdictKind,
)
from callguard.rules import Category, DurationPolicy, EscalationPolicy, Hit, MatchMode

N, W, F, A = VerdictKind.NOTICE, VerdictKind.WARN, VerdictKind.FINAL, VerdictKind.ALERT


def hit(rule_id: str = "p", severity: int = 1, category: Category = Category.PROFANITY,
        start: int = 0, end: int = 2) -> Hit:
    return Hit(rule_id, category, severity, start, end, "씨발", "씨발", MatchMode.NOSPACE)


class Call:
    """Drives one call through the evaluator and records verdicts with their times."""

    def __init__(self, escalation=EscalationPolicy(), duration=DurationPolicy(),
                 direction="inbound") -> None:
        self.policy = PolicyEvaluator(escalation, duration)
        self.state = PolicyState(direction)
        self.log: list[tuple[float, VerdictKind]] = []

    def send(self, event, now: float) -> list[VerdictKind]:
        self.state, verdicts = self.policy.step(self.state, event, now)
        assert all(v.at_s == now for v in verdicts)
        self.log.extend((now, v.kind) for v in verdicts)
        return [v.kind for v in verdicts]

    def say(self, now: float, *hits: Hit, leg: str = "caller") -> list[VerdictKind]:
        return self.send(HitsObserved(tuple(hits) or (hit(),), leg), now)

    def tick(self, now: float) -> list[VerdictKind]:
        return self.send(ClockTick(), now)


POLICY = EscalationPolicy(window=60, cooldown=5, notice_at=1, warn_at=2, warnings=1, final_at=2)


def test_stages_notice_warn_final():
    call = Call(POLICY)
    assert call.say(10) == [N]
    assert call.say(20) == [W]
    assert call.say(30) == []
    assert call.say(40) == [F]
    assert call.state.ended
    assert call.say(50) == [] and call.tick(60) == []  # nothing after the hangup


def test_verdicts_carry_prompts_and_hangup_flag():
    policy = PolicyEvaluator(POLICY, DurationPolicy())
    state, (notice,) = policy.step(PolicyState(), HitsObserved((hit("a"),)), 1)
    state, (warn,) = policy.step(state, HitsObserved((hit("b"),)), 2)
    assert notice.prompt is None and not notice.hangup
    assert warn.prompt == "warning" and not warn.hangup and warn.rule_ids == ("b",)
    assert warn.strikes == 2
    state, _ = policy.step(state, HitsObserved((hit(),)), 10)
    state, (final,) = policy.step(state, HitsObserved((hit(),)), 11)
    assert final.prompt == "final" and final.hangup
    assert "2 strike" in final.reason and "씨발" not in final.reason  # no transcript text


def test_strikes_fall_out_of_the_window():
    call = Call(POLICY)
    assert call.say(0) == [N]
    # 60 s later the first strike has left the window: one strike is not enough to warn.
    assert call.say(60) == []
    assert call.policy.progress(call.state, 60).strikes == 1
    assert call.say(119.9) == [W]  # strikes at 60 and 119.9 are both inside


def test_hits_during_cooldown_do_not_count_toward_final():
    call = Call(POLICY)
    call.say(0)
    assert call.say(1) == [W]
    assert call.say(2) == [] and call.say(5.9) == []  # inside the 5 s cooldown
    assert call.say(6) == []  # the first strike after the cooldown
    assert call.say(7) == [F]


def test_final_needs_abuse_after_the_warning_not_before():
    # A burst before the warning can never end the call on its own.
    call = Call(EscalationPolicy(window=60, cooldown=0, notice_at=1, warn_at=1, final_at=3))
    assert call.say(0, hit("a", 5)) == [N, W]
    assert call.tick(10) == []
    assert call.say(20) == [] and call.say(21) == []
    assert call.say(22) == [F]


def test_several_warnings_before_the_final():
    call = Call(EscalationPolicy(window=60, cooldown=2, notice_at=1, warn_at=1, warnings=2,
                                 final_at=1))
    assert call.say(0) == [N, W]
    assert call.say(1) == []  # cooldown
    assert call.say(3) == [W]
    assert call.say(6) == [F]
    assert [k for _, k in call.log] == [N, W, W, F]


def test_severity_and_one_strike_per_rule_per_utterance():
    call = Call(POLICY)
    # two hits of one rule in one utterance count once; two rules add up
    assert call.say(0, hit("a"), hit("a")) == [N]
    assert call.policy.progress(call.state, 0).strikes == 1
    call2 = Call(POLICY)
    assert call2.say(0, hit("a"), hit("b", start=3, end=5)) == [N, W]
    call3 = Call(POLICY)
    assert call3.say(0, hit("threat", 3, Category.THREAT)) == [N, W]


def test_counselor_leg_never_escalates():
    call = Call(POLICY)
    for t in range(10):
        assert call.say(t, leg="counselor") == []
    assert call.state.strikes == ()


def test_crisis_only_alerts_never_warns_or_hangs_up():
    call = Call(EscalationPolicy(window=60, cooldown=0, notice_at=1, warn_at=1, final_at=1))
    crisis = hit("crisis.die", 10, Category.CRISIS)
    for t in range(20):
        assert call.say(t, crisis) == [A]
    assert not call.state.ended and call.state.strikes == () and call.state.alerts == 20
    # crisis words alongside abuse: alert and escalate on the abuse only
    assert call.say(30, crisis, hit("p", start=5, end=7)) == [A, N, W]


def test_protect_ends_the_call_at_once():
    call = Call(POLICY)
    assert call.send(ProtectRequested(), 3) == [F]
    assert call.state.ended
    assert call.send(ProtectRequested(), 4) == []  # idempotent


@pytest.mark.parametrize(
    ("direction", "notice", "final"),
    [("inbound", 900.0, 1200.0), ("outbound", 300.0, 600.0)],
)
def test_duration_stages_per_direction(direction, notice, final):
    from callguard.rules import RuleSet

    rs = RuleSet(None, "v", "t", (), inbound=DurationPolicy(900, 1200),
                 outbound=DurationPolicy(300, 600))
    policy = PolicyEvaluator.for_call(rs, direction)
    state = PolicyState(direction)
    state, v = policy.step(state, ClockTick(), notice - 0.001)
    assert v == []
    state, v = policy.step(state, ClockTick(), notice)
    assert [x.kind for x in v] == [VerdictKind.DURATION_NOTICE]
    assert v[0].prompt == "duration_notice"
    state, v = policy.step(state, ClockTick(), notice + 1)
    assert v == []  # the notice is given once
    state, v = policy.step(state, ClockTick(), final - 0.001)
    assert v == []
    state, v = policy.step(state, ClockTick(), final)
    assert [x.kind for x in v] == [VerdictKind.DURATION_FINAL]
    assert v[0].hangup and v[0].prompt == "duration_final" and state.ended


def test_duration_fires_on_hits_events_too_and_before_escalation():
    call = Call(POLICY, DurationPolicy(None, 30))
    call.say(0)
    assert call.say(30) == [VerdictKind.DURATION_FINAL]


def test_late_first_event_gives_notice_then_final_not_just_final():
    # If the clock jumps past both limits, the final wins and the call ends.
    call = Call(POLICY, DurationPolicy(10, 20))
    assert call.tick(25) == [VerdictKind.DURATION_FINAL]


def test_no_duration_limit_means_none():
    call = Call(POLICY, DurationPolicy())
    assert call.tick(10**6) == []


def test_stage_reports_next_step():
    call = Call(POLICY)
    assert call.policy.progress(call.state, 0).next is N
    call.say(0)
    s = call.policy.progress(call.state, 0)
    assert (s.next, s.strikes, s.needed) == (W, 1, 2)
    call.say(1)
    s = call.policy.progress(call.state, 1)
    assert (s.next, s.strikes, s.needed) == (F, 0, 2)
    call.say(10)
    call.say(11)
    assert call.policy.progress(call.state, 11).next is None


def test_step_is_pure():
    policy = PolicyEvaluator(POLICY, DurationPolicy())
    state = PolicyState()
    a = policy.step(state, HitsObserved((hit(),)), 5)
    b = policy.step(state, HitsObserved((hit(),)), 5)
    assert a == b and state == PolicyState()


def test_utterance_weight_counts_overlapping_words_once():
    from callguard.policy.escalation import utterance_weight

    # 미친놈 hit by two rules on overlapping spans: one cluster, highest severity.
    assert utterance_weight([hit("insult", 1, Category.INSULT, 0, 3),
                             hit("nom", 2, Category.INSULT, 2, 3)]) == (2, ("insult", "nom"))
    # separate words add up; the same rule twice counts once
    assert utterance_weight([hit("a", 1, start=0, end=2), hit("b", 3, start=5, end=7),
                             hit("a", 1, start=9, end=11)]) == (4, ("a", "b"))
    # crisis hits add nothing
    assert utterance_weight([hit("c", 5, Category.CRISIS)]) == (0, ())


def test_strikes_spoken_over_a_playing_warning_do_not_count():
    call = Call(POLICY)
    assert call.say(10) == [N] and call.say(11) == [W]
    # The warning prompt plays from 11 s to 19 s: the caller hears it only then.
    call.state = call.policy.warning_heard_at(call.state, 19.0)
    assert call.say(17) == [] and call.say(18) == []  # would be past the 5 s cooldown
    assert call.say(23) == []  # 19 + 5 s cooldown not yet passed
    assert call.say(24) == [] and call.say(25) == [F]
    # An earlier end than the warning itself never moves the mark back.
    state = PolicyEvaluator(POLICY, DurationPolicy()).warning_heard_at(
        PolicyState(last_warning_at=30.0), 20.0)
    assert state.last_warning_at == 30.0
    assert PolicyEvaluator.warning_heard_at(PolicyState(), 5.0).last_warning_at is None
