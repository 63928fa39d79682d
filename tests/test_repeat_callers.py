"""Repeat callers and what the rules say follows (``[repeat_callers] warn_after``): the
loader, the pure enforcement core, and the real engine on the in-memory line whose central
link (over the in-memory central server) knows the caller before the answer."""

from __future__ import annotations

import time

import pytest
from fakerig import FakeRig, rules_text

from callguard.central.callers import caller_key, normalise_number
from callguard.central.fake import FakeCentral
from callguard.central.link import CentralLink
from callguard.policy.enforcement import Enforcement
from callguard.rules.loader import parse_rules
from callguard.rules.problems import RulesError
from callguard.vocabulary import (
    Cause,
    Direction,
    PromptStarted,
    Stage,
    VerdictIssued,
    VerdictKind,
)

REPEAT = rules_text() + "\n[repeat_callers]\nwarn_after = 2\n"


def load(text: str):
    return parse_rules(text, name="t.toml", check_analysis=False).ruleset


def test_numbers_are_normalised_before_they_are_hashed():
    assert normalise_number("sip:+82-10-1234-5678@pbx.local;user=phone") == "01012345678"
    assert normalise_number("tel:0082 10 1234 5678") == "01012345678"
    assert normalise_number("010.1234.5678") == "01012345678"
    key = b"k" * 32
    assert caller_key(key, "+821012345678") == caller_key(key, "010-1234-5678")
    assert caller_key(key, "010-1234-5678") != caller_key(b"x" * 32, "010-1234-5678")


def test_the_rules_say_after_how_many_flagged_calls_the_warning_follows():
    assert load(rules_text()).repeat_callers.warn_after == 0  # default: nothing follows
    assert load(REPEAT).repeat_callers.warn_after == 2
    with pytest.raises(RulesError, match="warn_afterr"):
        load(rules_text() + "\n[repeat_callers]\nwarn_afterr = 2\n")
    no_warning = REPEAT.replace('[prompts.warning]\nfile = "warning.wav"\ntext = "경고"\n', "")
    assert no_warning != REPEAT
    with pytest.raises(RulesError) as refused:
        load(no_warning)
    assert any("warn_after" in p.message and "[prompts.warning]" in p.message
               for p in refused.value.problems)


@pytest.mark.parametrize(("flagged", "warned"), [(0, False), (1, False), (2, True), (5, True)])
def test_a_repeat_caller_hears_the_warning_right_after_the_pre_call_notice(flagged, warned):
    ruleset = load(REPEAT.replace("[prompts.warning]",
                                  '[prompts.pre_call]\ntext = "녹음됩니다"\n\n[prompts.warning]'))
    enforcement = Enforcement(ruleset, Direction.INBOUND)
    lengths = {"pre_call": 4.0, "warning": 2.5}
    events = enforcement.start(lambda key: lengths[key], repeat_flagged=flagged)
    started = [(e.key, e.at_s) for e in events if isinstance(e, PromptStarted)]
    verdicts = [e for e in events if isinstance(e, VerdictIssued)]
    if warned:
        assert started == [("pre_call", 0.0), ("warning", 4.0)]  # queued after the notice
        (v,) = verdicts
        assert v.kind is VerdictKind.REPEAT_WARNING and v.cause is Cause.REPEAT
        # A warning given for the past: no strike, no stage, no flag for this call.
        assert enforcement.stage is Stage.NONE and not enforcement.flagged
        assert enforcement.warnings == 0
    else:
        assert started == [("pre_call", 0.0)] and not verdicts


def test_the_engine_marks_a_ringing_repeat_caller_and_plays_what_the_rules_say(tmp_path):
    central = FakeCentral()
    central.callers = [{"key": caller_key(central.repeat_key, "010-5555-1234"),
                        "flagged": 3, "last_at": time.time() - 86400}]
    link = CentralLink(tmp_path / "calls.db", lambda: central, rules_target=None,
                       rules_base=tmp_path, poll_s=1.0, idle_s=0.1)
    rig = FakeRig(tmp_path, REPEAT, stepped=True, central=link)
    rig.engine.start()
    try:
        deadline = time.monotonic() + 10
        while link.callers.lookup("010-5555-1234") is None:
            assert time.monotonic() < deadline, "the caller list never arrived"
            time.sleep(0.05)
        call = rig.line.ring("+82 10 5555 1234")
        ringing = rig.wait("ringing", pred=lambda ev: ev.call_id == call.call_id)
        assert ringing.data["repeat"] == {"flagged": 3, "days": 30}
        rig.engine.answer(call.call_id).result(5)
        rig.wait("answered")
        rig.settle()
        rig.advance(1.5)
        other = None
        verdict = rig.wait("timeline", pred=lambda ev: isinstance(ev.data, VerdictIssued))
        assert verdict.data.kind is VerdictKind.REPEAT_WARNING
        played = rig.wait("timeline", pred=lambda ev: isinstance(ev.data, PromptStarted))
        assert played.data.key == "warning" and played.data.at_s == 0.0  # no pre-call prompt
        call.far_hangup()
        rig.advance(0.1)
        rig.wait("ended")
        # An unknown caller rings next: nothing follows.
        other = rig.line.ring("010-0000-0000")
        plain = rig.wait("ringing", pred=lambda ev: ev.call_id == other.call_id)
        assert "repeat" not in plain.data
    finally:
        rig.stop()
