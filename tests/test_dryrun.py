"""Dry-run of rules on stored calls.

The calls are made by the real session (synthetic speech through the real VAD, worker
thread, policy and SQLite store; only the recogniser is a fake that hears tones as
sentences). Replaying them under the rules that were in force must give back what the store
recorded; edited rules must change exactly the calls the edit is about.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from synth import call_audio

from callguard.asr.fake import ToneTranscriber
from callguard.asr.worker import RecognitionWorker
from callguard.policy.escalation import PolicyEvaluator, PolicyState, ProtectRequested
from callguard.rules.active import ActiveRules
from callguard.rules.loader import load_rules
from callguard.rules.problems import RulesError
from callguard.services.dryrun import compile_rules, dry_run, replay_call
from callguard.session.call import SessionConfig
from callguard.sim.callaudio import CallAudio
from callguard.sim.driver import run_call
from callguard.store import Store
from callguard.store.records import ActionRecord, CallRecord, UtteranceRecord, VerdictRecord
from callguard.text.analyzer import _kiwi_for, kiwi_analyzer

ROOT = Path(__file__).resolve().parents[1]
DEMO_RULES = ROOT / "callguard" / "demo" / "demo_rules.toml"
DEFAULT_RULES = ROOT / "rules" / "default.toml"

# Tones the fake recogniser hears as sentences. Under the demo rules 몰라 stands in for an
# insult and 절대로 안 할 for a threat; 짜증 is in no rules file (an edit adds it); the
# others hit the default rules (개새끼: 1 strike, 씨발 + 개새끼: 2, 미친놈: 1, crisis).
CLEAN, INSULT, THREAT, ANNOYED = 1000.0, 1500.0, 2000.0, 2500.0
SAEKKI, DOUBLE, CRAZY, CRISIS = 1200.0, 1700.0, 2200.0, 2700.0
SCRIPT = {
    CLEAN: "안녕하세요 요금 문의드릴게요",
    INSULT: "그건 저도 몰라요",
    THREAT: "그건 절대로 안 할 거예요",
    ANNOYED: "아 진짜 짜증나네요",
    SAEKKI: "야 이 개새끼야",
    DOUBLE: "씨발 진짜 개새끼네",
    CRAZY: "이 미친놈아",
    CRISIS: "죽고 싶다",
}

# Demo rules: notice, warning and final at 1 strike each, 1 s cooldown, one warning; prompts
# are text only (warning 5.9 s, final 3.5 s as the simulator plays them); duration notice
# at 40 s, limit 5 min. Each call: (speech spans (start s, length s, tone), length s).
DEMO_CALLS = {
    "clean": ([(1, 1.5, CLEAN), (4, 1.5, CLEAN)], 8),
    "warned": ([(1, 1.2, INSULT), (6, 1.5, CLEAN)], 10),
    # The second insult is spoken while the warning (from ~2.5 s to ~8.4 s) still plays: it
    # must not count, so the call is warned but not cut off.
    "over_warning": ([(1, 1.2, INSULT), (4, 1.2, INSULT), (10, 1.5, CLEAN)], 14),
    # The threat comes after the warning was heard and its cooldown: final notice, hangup.
    "final": ([(1, 1.2, INSULT), (11, 1.2, THREAT), (15, 3, CLEAN)], 20),
    "annoyed": ([(2, 1.2, ANNOYED), (6, 1.5, CLEAN)], 10),
    # Passes the 40 s duration notice (no stage of its own); under 30 s only with an edit.
    "long": ([(1, 1.5, CLEAN), (20, 1.5, CLEAN), (35, 1.5, CLEAN)], 45),
}
DEMO_EXPECTED = {"clean": ("none", None), "warned": ("warned", None),
                 "over_warning": ("warned", None), "final": ("final", "final_notice"),
                 "annoyed": ("none", None), "long": ("none", None)}

# Default rules: notice at 1 strike, warning at 2 (two warnings), final at 2 more after the
# last warning's 5 s cooldown; a 9.1 s pre-call announcement plays first, and the first
# warning (9.7 s) waits for it: it is heard only at ~18.8 s.
DEFAULT_CALLS = {
    # 개새끼 → notice; 미친놈 → warning 1 (played 9.1-18.8 s); 씨발 개새끼 at 20 s lies in
    # its cooldown; at 26 s → warning 2 (played ~27.5-37.2 s); at 38 s in its cooldown; at
    # 44 s → final notice and hangup. Had the first warning not waited for the pre-call
    # announcement, it would have ended at ~16 s: the abuse at 20 s would have been the
    # second warning and the one at 38 s the final notice.
    "escalated": ([(2, 1.2, SAEKKI), (5, 1.0, CRAZY), (20, 1.2, DOUBLE), (26, 1.2, DOUBLE),
                   (38, 1.2, DOUBLE), (44, 1.2, DOUBLE), (50, 3, CLEAN)], 56),
    "noticed": ([(2, 1.2, SAEKKI), (8, 1.5, CRISIS), (11, 1.5, CLEAN)], 14),
}


async def _record_calls(rules: Path, calls: dict, db: Path) -> dict[str, int]:
    """Run each call through a real session into the store at ``db``; return call ids."""
    engine = ActiveRules(rules)
    worker = RecognitionWorker(lambda: ToneTranscriber(SCRIPT, delay_s=0.02))
    await worker.start()
    ids = {}
    try:
        async with Store.open(db) as store:
            for name, (spans, seconds) in calls.items():
                caller = call_audio(spans, seconds)
                audio = CallAudio(caller, np.zeros_like(caller), 8000, 8000, 2)
                res = await run_call(audio, ruleset=engine.ruleset, matcher=engine.matcher,
                                     recogniser=worker, store=store, config=SessionConfig())
                ids[name] = res.call_id
    finally:
        await worker.stop()
    return ids


async def _read(db: Path, ids: dict[str, int]) -> dict[str, CallRecord]:
    async with Store.open(db) as store:
        return {name: await store.get_call(i) for name, i in ids.items()}


@pytest.fixture(scope="module")
def demo_calls(tmp_path_factory) -> tuple[Path, dict[str, CallRecord]]:
    """The demo calls, recorded once for the module: (store path, records by name)."""
    db = tmp_path_factory.mktemp("dryrun") / "calls.db"
    ids = asyncio.run(_record_calls(DEMO_RULES, DEMO_CALLS, db))
    return db, asyncio.run(_read(db, ids))


@pytest.fixture(scope="module")
def demo_rules():
    """The demo rules as a file in force would be compiled (no Kiwi: nospace rules only)."""
    return compile_rules(DEMO_RULES.read_bytes(), name=str(DEMO_RULES),
                         base_dir=DEMO_RULES.parent)


def _edit(old: str, new: str):
    text = DEMO_RULES.read_text(encoding="utf-8")
    assert old in text  # the edit must really apply to the demo file
    return compile_rules(text.replace(old, new), name="edited.toml", base_dir=DEMO_RULES.parent)


def _recorded_cut(record: CallRecord) -> str | None:
    return record.end_reason if record.end_reason in ("final_notice", "duration_limit") else None


def _assert_replay_matches_the_store(records: dict[str, CallRecord], compiled) -> None:
    report = dry_run(records.values(), compiled.ruleset, compiled.matcher)
    rows = {r.call_id: r for r in report.rows}
    for name, record in records.items():
        row = rows[record.id]
        assert (row.outcome, row.cut_reason) == (record.stage, _recorded_cut(record)), name
        assert row.warnings == sum(v.kind == "warn" for v in record.verdicts), name
        assert not row.changed, name
        finals = [v.t_s for v in record.verdicts if v.hangup]
        if finals:
            # A replay counts hits at the utterance's end; live, the result came a little
            # later (early-look pause + recognition; ~0.2 s here).
            assert 0 <= finals[0] - row.cut_at < 1.5, name
    assert report.calls == len(records)
    assert report.warned == sum(any(v.kind == "warn" for v in r.verdicts)
                                for r in records.values())
    assert report.cut_off == sum(_recorded_cut(r) is not None for r in records.values())
    assert report.changed == 0


def test_replaying_the_rules_in_force_gives_what_the_store_recorded(demo_calls, demo_rules):
    _, records = demo_calls
    # The calls cover every outcome (else the comparison below would prove little).
    assert {name: (r.stage, _recorded_cut(r)) for name, r in records.items()} == DEMO_EXPECTED
    _assert_replay_matches_the_store(records, demo_rules)
    report = dry_run(records.values(), demo_rules.ruleset, demo_rules.matcher)
    assert (report.calls, report.warned, report.cut_off, report.changed) == (6, 3, 1, 0)


def test_default_rules_replay_matches_the_store_with_pre_call_and_two_warnings(tmp_path):
    ids = asyncio.run(_record_calls(DEFAULT_RULES, DEFAULT_CALLS, tmp_path / "calls.db"))
    records = asyncio.run(_read(tmp_path / "calls.db", ids))
    escalated = records["escalated"]
    assert [v.kind for v in escalated.verdicts] == ["notice", "warn", "warn", "final"]
    assert (escalated.stage, escalated.end_reason) == ("final", "final_notice")
    assert records["noticed"].stage == "notice"
    assert [v.kind for v in records["noticed"].verdicts] == ["notice", "alert"]
    compiled = compile_rules(DEFAULT_RULES.read_bytes(), name=str(DEFAULT_RULES),
                             base_dir=DEFAULT_RULES.parent)
    _assert_replay_matches_the_store(records, compiled)
    # Control: without the pre-call announcement ahead of the first warning, every stage
    # comes one abusive utterance early and the call is cut off ~6 s sooner.
    early = replay_call(escalated, compiled.ruleset, compiled.matcher, play_pre_call=False)
    assert early.cut_reason == "final_notice" and early.changed is False
    assert early.cut_at < escalated.verdicts[-1].t_s - 5


def test_abuse_over_a_playing_warning_needs_the_prompt_length(demo_calls, demo_rules):
    # Control for the "over_warning" call: if the warning took no time to play, the second
    # insult would count after the 1 s cooldown and cut the call off.
    record = demo_calls[1]["over_warning"]
    assert replay_call(record, demo_rules.ruleset, demo_rules.matcher).outcome == "warned"
    instant = replay_call(record, demo_rules.ruleset, demo_rules.matcher,
                          prompt_s=dict.fromkeys(demo_rules.ruleset.prompts, 0.0))
    assert (instant.outcome, instant.cut_reason, instant.changed) == (
        "final", "final_notice", True)


def test_a_new_term_warns_the_call_that_said_it(demo_calls):
    _, records = demo_calls
    edited = _edit('terms = ["몰라", "몰랐"]', 'terms = ["몰라", "몰랐", "짜증"]')
    report = dry_run(records.values(), edited.ruleset, edited.matcher)
    changed = [r for r in report.rows if r.changed]
    assert [r.call_id for r in changed] == [records["annoyed"].id]
    row = changed[0]
    assert (row.outcome, row.warnings, row.cut_reason, row.actual_stage) == (
        "warned", 1, None, "none")
    assert row.rules == ("demo.standin_insult",) and row.hits == 1
    assert (report.warned, report.cut_off, report.changed) == (4, 1, 1)


def test_a_lower_duration_limit_cuts_the_long_call_off(demo_calls):
    _, records = demo_calls
    edited = _edit('notice_at = "40s"\nfinal_at = "5m"', 'notice_at = "20s"\nfinal_at = "30s"')
    report = dry_run(records.values(), edited.ruleset, edited.matcher)
    changed = [r for r in report.rows if r.changed]
    assert [r.call_id for r in changed] == [records["long"].id]
    row = changed[0]
    assert (row.outcome, row.cut_reason, row.cut_at) == ("final", "duration_limit", 30.0)
    assert row.reason == "call reached the 30 s limit"
    assert (row.actual_stage, row.actual_end_reason) == ("none", "end_of_audio")
    assert (report.cut_off, report.changed) == (2, 1)


def test_a_disabled_rule_no_longer_cuts_the_call_off(demo_calls):
    _, records = demo_calls
    edited = _edit('id = "demo.standin_threat"', 'id = "demo.standin_threat"\nenabled = false')
    report = dry_run(records.values(), edited.ruleset, edited.matcher)
    changed = [r for r in report.rows if r.changed]
    assert [r.call_id for r in changed] == [records["final"].id]
    assert (changed[0].outcome, changed[0].cut_reason, changed[0].actual_cut_reason) == (
        "warned", None, "final_notice")
    assert (report.warned, report.cut_off, report.changed) == (3, 0, 1)


def test_edited_text_raises_the_errors_rules_check_prints(write_rules):
    text = ('[escalation]\nwarn_at = 0\n\n[[rule]]\nid = "a"\ncategory = "rude"\n'
            'terms = ["x"]\nenabeld = 1\n')
    path = write_rules(text)
    with pytest.raises(RulesError) as checked:
        load_rules(path)
    with pytest.raises(RulesError) as edited:
        compile_rules(text, name=str(path), base_dir=path.parent)
    assert [str(p) for p in edited.value.problems] == [str(p) for p in checked.value.problems]
    assert str(edited.value.problems[0]).startswith(f"{path}:2: 'warn_at' must be at least 1")
    assert any(f"{path}:6: rule a: category must be one of" in str(p)
               for p in edited.value.problems)


def test_compiled_text_is_versioned_like_the_saved_file_and_reuses_kiwi():
    text = DEFAULT_RULES.read_text(encoding="utf-8")
    compiled = compile_rules(text, name="edited.toml", base_dir=DEFAULT_RULES.parent)
    assert compiled.ruleset.version == load_rules(DEFAULT_RULES).ruleset.version
    assert compiled.matcher.analyzer is kiwi_analyzer(compiled.ruleset.dictionary)
    # Another edit that leaves [dictionary] alone loads no further Kiwi (~270 MB each).
    loaded = _kiwi_for.cache_info().misses
    edited = compile_rules(text.replace('"새끼", "새꺄"', '"새끼", "새꺄", "짜증"'),
                           name="edited.toml", base_dir=DEFAULT_RULES.parent)
    assert edited.ruleset.version != compiled.ruleset.version
    assert edited.matcher.analyzer is compiled.matcher.analyzer
    assert _kiwi_for.cache_info().misses == loaded


# -- replays of hand-made records: the session's bookkeeping the replay must follow -------

SMALL_RULES = """\
[escalation]
cooldown = "1s"
notice_at = 1
warn_at = 2
warnings = 1
final_at = 1
[prompts.warning]
text = "경고"
[[rule]]
id = "p.x"
category = "profanity"
terms = ["나쁜말"]
[[rule]]
id = "p.y"
category = "insult"
terms = ["못된말"]
"""


def _utt(i: int, start: float, end: float, text: str, reason: str | None = None):
    return UtteranceRecord(i, 1, "caller", start, end, text, "ok", reason)


def _call(utterances=(), verdicts=(), actions=(), duration=20.0, stage="none",
          end_reason="caller_hangup") -> CallRecord:
    return CallRecord(1, "inbound", "sip", 0.0, duration, end_reason, stage != "none", stage,
                      "", utterances=tuple(utterances), verdicts=tuple(verdicts),
                      actions=tuple(actions))


@pytest.fixture(scope="module")
def small():
    return compile_rules(SMALL_RULES, name="small.toml")


def test_an_early_look_and_its_whole_utterance_count_a_rule_once(small):
    # The early look (stored because it had hits) and the whole utterance recognised at its
    # end are one utterance: 나쁜말 counts once, as live; 못된말, new in the whole, counts.
    once = _call([_utt(1, 1.0, 2.4, "이 나쁜말", "early_look"),
                  _utt(2, 1.0, 3.6, "이 나쁜말 진짜")])
    row = replay_call(once, small.ruleset, small.matcher)
    assert (row.outcome, row.hits) == ("notice", 1)
    both = _call([_utt(1, 1.0, 2.4, "이 나쁜말", "early_look"),
                  _utt(2, 1.0, 3.6, "이 나쁜말 못된말")])
    row = replay_call(both, small.ruleset, small.matcher)
    assert (row.outcome, row.hits, row.rules) == ("warned", 2, ("p.x", "p.y"))
    # Two utterances one after the other are two strikes.
    apart = _call([_utt(1, 1.0, 2.4, "이 나쁜말"), _utt(2, 3.0, 4.0, "또 나쁜말")])
    assert replay_call(apart, small.ruleset, small.matcher).outcome == "warned"


def test_speech_still_open_when_the_line_closed_never_escalates(small):
    # Flushed at the end of the call: recognised after it, evidence only.
    record = _call([_utt(1, 1.0, 2.0, "나쁜말"), _utt(2, 8.0, 10.0, "못된말")], duration=10.0)
    assert replay_call(record, small.ruleset, small.matcher).outcome == "notice"


def test_the_warning_length_the_call_recorded_is_used(small):
    # A live call plays a text-only prompt as a 1.5 s chime, not the simulator's estimate.
    utts = [_utt(1, 1.0, 2.0, "나쁜말 못된말"), _utt(2, 5.0, 6.0, "나쁜말")]
    played = ActionRecord(1, 1, 2.0, "play_prompt", "warning (1.5 s)", True, None,
                          prompt="warning", seconds=1.5)
    record = _call(utts, actions=[played])
    assert replay_call(record, small.ruleset, small.matcher).cut_reason == "final_notice"
    # With the rules' own estimate (a longer prompt), the 5 s abuse is spoken over it.
    long = replay_call(record, small.ruleset, small.matcher, prompt_s={"warning": 4.0})
    assert (long.outcome, long.cut_reason) == ("warned", None)


def test_a_protect_press_is_replayed_as_the_counselors_decision(small):
    verdict = PolicyEvaluator.for_call(small.ruleset, "inbound").step(
        PolicyState(), ProtectRequested(), 1.0)[1][0]
    assert verdict.cause == "protect"  # what the store keeps and the replay looks for
    # Told from a rules decision by its cause, never by its wording.
    pressed = VerdictRecord(1, 1, 5.0, "final", "final", True, "reworded reason",
                            cause="protect")
    record = _call([_utt(1, 1.0, 2.0, "안녕하세요")], verdicts=[pressed], stage="final",
                   end_reason="final_notice")
    row = replay_call(record, small.ruleset, small.matcher)
    assert (row.cut_reason, row.cut_at, row.reason, row.changed) == (
        "final_notice", 5.0, verdict.reason, False)
    # A rules decision with the same wording is not a press.
    ruled = VerdictRecord(1, 1, 5.0, "final", "final", True, verdict.reason, cause="rules")
    record = _call([_utt(1, 1.0, 2.0, "안녕하세요")], verdicts=[ruled], stage="final",
                   end_reason="final_notice")
    assert replay_call(record, small.ruleset, small.matcher).cut_reason is None


# -- the command ---------------------------------------------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "callguard", "rules", "dryrun", *args],
                          capture_output=True, text=True, timeout=120, encoding="utf-8")


def test_cli_json_reports_the_changed_call(demo_calls, tmp_path):
    db, records = demo_calls
    edited = tmp_path / "edited.toml"
    edited.write_text(DEMO_RULES.read_text(encoding="utf-8").replace(
        'terms = ["몰라", "몰랐"]', 'terms = ["몰라", "몰랐", "짜증"]'), encoding="utf-8")
    out = _cli(str(edited), "--store", str(db), "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert {k: report[k] for k in ("calls", "warned", "cut_off", "changed")} == {
        "calls": 6, "warned": 4, "cut_off": 1, "changed": 1}
    assert report["skipped_ongoing"] == 0
    rows = {r["call_id"]: r for r in report["rows"]}
    annoyed = rows[records["annoyed"].id]
    assert annoyed == {
        "call_id": records["annoyed"].id, "direction": "inbound", "outcome": "warned",
        "warnings": 1, "cut_off": False, "cut_reason": None, "cut_at": None, "reason": None,
        "hits": 1, "rules": ["demo.standin_insult"],
        "actual": {"stage": "none", "end_reason": "end_of_audio", "cut_reason": None,
                   "rules_version": records["annoyed"].rules_version},
        "changed": True}
    final = rows[records["final"].id]
    assert (final["cut_reason"], final["actual"]["cut_reason"], final["changed"]) == (
        "final_notice", "final_notice", False)
    # The report names rules and outcomes, never what the caller said.
    assert not any(text in out.stdout for text in SCRIPT.values())


def test_cli_text_and_limit(demo_calls):
    db, records = demo_calls
    out = _cli(str(DEMO_RULES), "--store", str(db), "--limit", "2")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    # The latest two calls, newest first; the rules in force change nothing.
    assert lines[1].startswith(f"call {records['long'].id} inbound: recorded none "
                               "(end_of_audio) → replay none; 0 hit(s)")
    assert lines[2].startswith(f"call {records['annoyed'].id} inbound:")
    assert lines[-1] == "2 call(s): 0 warned, 0 cut off, 0 changed"


def test_cli_refuses_a_missing_store_without_creating_it(tmp_path):
    out = _cli(str(DEMO_RULES), "--store", str(tmp_path / "nope.db"))
    assert out.returncode == 2 and "no call store" in out.stderr
    assert not (tmp_path / "nope.db").exists()
