"""A live call and the dry-run of its stored record take the same actions at the same call
times: both run callguard.policy.enforcement, fed by the same transcript timeline.

The live call is the real engine on the in-memory line (20 ms runner, VAD, recogniser
worker with a tone-to-sentence fake, prompts, SQLite store); the dry-run replays what that
store kept under the same rules. Each scenario exercises another part of the core: the
prompt queue and the moment a warning is heard (abuse spoken over the warning must not
count), the final notice and its hangup time, a duration limit with no speech, and a
protect press.
"""

from __future__ import annotations

import asyncio

import pytest
from fakerig import ABUSE_HZ, FakeRig, rules_text
from synth import call_audio

from callguard.services.dryrun import compile_rules, replay_call
from callguard.store import Store
from callguard.vocabulary import ActionKind, PromptStarted, VerdictIssued

# (name, duration limit, caller speech bursts (start s, length s), protect at call time s)
SCENARIOS = [
    # Warned at the first burst; the second is spoken while the warning plays (it must not
    # count); the third, after the warning was heard and the cooldown, ends the call.
    ("warn_over_warning_final", "10m", ((0.3, 1.0), (2.3, 0.6), (5.5, 1.0)), None),
    ("duration_limit", "4s", ((0.5, 1.0),), None),
    ("protect", "10m", ((0.5, 1.0),), 3.0),
]


def _live(rig: FakeRig, bursts, protect_at: float | None):
    call = rig.line.ring("010-1234-5678")
    rig.wait("answered")
    call.far_play(call_audio([(s, d, ABUSE_HZ) for s, d in bursts], 12.0), at_s=0.0)
    if protect_at is not None:
        rig.wait("call_status", 15, pred=lambda ev: ev.data.at_s >= protect_at)
        rig.engine.protect(call.call_id).result(5)
    ended = rig.wait("ended", 30)

    async def read():
        async with Store.open(rig.db) as store:
            return await store.get_call(ended.data["store_id"])
    return asyncio.run(read())


def _recorded(record) -> tuple[list, list, float | None]:
    verdicts = [(round(v.t_s, 6), v.kind) for v in record.verdicts]
    prompts = [(round(a.t_s, 6), a.prompt, round(a.seconds, 6)) for a in record.actions
               if a.kind == ActionKind.PLAY_PROMPT]
    hangups = [round(a.t_s, 6) for a in record.actions if a.kind == ActionKind.HANGUP]
    return verdicts, prompts, (hangups[0] if hangups else None)


def _replayed(row) -> tuple[list, list, float | None]:
    verdicts = [(round(e.at_s, 6), e.kind) for e in row.events if isinstance(e, VerdictIssued)]
    prompts = [(round(e.at_s, 6), e.key, round(e.seconds, 6)) for e in row.events
               if isinstance(e, PromptStarted)]
    return verdicts, prompts, None if row.hangup_at is None else round(row.hangup_at, 6)


@pytest.mark.parametrize(("name", "limit", "bursts", "protect_at"), SCENARIOS,
                         ids=[s[0] for s in SCENARIOS])
def test_a_dry_run_of_a_live_call_takes_its_actions_at_its_times(tmp_path, name, limit,
                                                                  bursts, protect_at):
    rig = FakeRig(tmp_path, rules_text(limit), auto_answer=True)
    rig.engine.start()
    try:
        record = _live(rig, bursts, protect_at)
    finally:
        rig.engine.stop()
    compiled = compile_rules(rig.rules.read_bytes(), name=str(rig.rules),
                             base_dir=rig.rules.parent)
    row = replay_call(record, compiled.ruleset, compiled.matcher)
    live, replay = _recorded(record), _replayed(row)
    assert live[0], "the live call gave no verdict: the scenario tests nothing"
    assert replay == live
    assert (row.outcome, row.changed) == (record.stage, False)
    expected = {"warn_over_warning_final": ["notice", "warn", "final"],
                "duration_limit": ["notice", "warn", "duration_final"],
                "protect": ["notice", "warn", "final"]}[name]
    assert [k for _, k in live[0]] == expected
    if name == "warn_over_warning_final":
        # The burst spoken over the warning left no verdict of its own.
        assert len({t for t, _ in live[0]}) == 2
    if name == "protect":
        assert [v.cause for v in record.verdicts][-1] == "protect"
