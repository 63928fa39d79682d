"""The broad-term guard (issue 15, item 6): a rule term of one syllable, or one that flags
more than BROAD_SHARE of the shipped sample of ordinary polite call-centre sentences, is an
error of `rules check` unless the rule says ``broad = true``; the message names the
sentences it would flag."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from callguard.rules.broad import BROAD_SHARE, ORDINARY_SENTENCES, one_syllable
from callguard.rules.loader import broad_terms, load_rules, parse_rules
from callguard.rules.matcher import Matcher
from callguard.rules.problems import RulesError, Severity

ROOT = Path(__file__).resolve().parents[1]


def rule(terms: str, extra: str = "", mode: str = "nospace") -> str:
    return (f'[[rule]]\nid = "x"\ncategory = "insult"\nmode = "{mode}"\nterms = {terms}\n'
            f"{extra}")


def errors_of(src: str, kiwi=None) -> list[str]:
    with pytest.raises(RulesError) as got:
        parse_rules(src, name="r.toml", analyzer=kiwi, check_analysis=kiwi is not None)
    return [p.message for p in got.value.problems if p.severity is Severity.ERROR]


def test_the_sample_is_ordinary_polite_talk_of_both_sides():
    assert len(ORDINARY_SENTENCES) >= 50 and len(set(ORDINARY_SENTENCES)) == len(
        ORDINARY_SENTENCES)
    assert "네 감사합니다." in ORDINARY_SENTENCES  # the false alarm
    assert 0 < BROAD_SHARE < 0.1


def test_da_is_refused_with_the_sentences_it_would_flag():
    (message,) = errors_of(rule('["다"]'))
    assert message.startswith("term '다' is too broad: it is one syllable")
    # ... and it flags most of the sample, shown by example.
    assert "'안녕하세요, 고객센터 상담사 김민지입니다.'" in message and " more. " in message
    allowed = parse_rules(rule('["다"]', "broad = true\n"), check_analysis=False)
    assert allowed.warnings == [] and broad_terms(allowed.ruleset.rules) == {}


def test_an_everyday_two_syllable_word_is_refused_and_the_sentences_shown():
    (message,) = errors_of(rule('["감사"]'))
    assert "it flags 4 of" in message and "'기다려 주셔서 감사합니다.'" in message
    assert "one syllable" not in message
    # The same with broad = true: loads, and the check says nothing.
    loaded = parse_rules(rule('["감사"]', "broad = true\n"), check_analysis=False)
    assert loaded.warnings == [] and loaded.ruleset.rules[0].broad


def test_the_flagged_sentences_are_the_ones_the_real_matcher_flags():
    ruleset = parse_rules(rule('["감사", "확인"]', "broad = true\n"),
                          check_analysis=False).ruleset
    matcher = Matcher(ruleset)
    expected = [s for s in ORDINARY_SENTENCES if matcher.match(s).hits]
    from dataclasses import replace

    found = broad_terms([replace(r, broad=False) for r in ruleset.rules])
    got = sorted({s for b in found.values() for s in b.flagged})
    assert got == sorted(expected) and len(got) >= 6


def test_one_ordinary_sentence_is_a_warning_not_an_error():
    loaded = parse_rules(rule('["수고"]'), name="r.toml", check_analysis=False)
    (warning,) = loaded.warnings
    assert "may be too broad" in warning.message and "'수고하세요, 감사합니다.'" in warning.message


def test_a_real_slur_passes_and_exceptions_count():
    assert parse_rules(rule('["새끼"]'), check_analysis=False).warnings == []
    # An exception that covers the ordinary use keeps the term.
    src = rule('["주문"]', 'exceptions = ["주문 번호", "주문한"]\n')
    assert parse_rules(src, check_analysis=False).warnings == []
    assert errors_of(rule('["주문"]'))  # without them: refused


def test_morpheme_terms_are_checked_with_kiwi(kiwi):
    (message,) = errors_of(rule('["감사/NNG"]', mode="morpheme"), kiwi)
    assert "flags" in message and "감사합니다" in message


@pytest.mark.parametrize("term,one", [("다", True), ("놈", True), ("씹/NNG", True),
                                      ("ㅄ", True), ("새끼", False), ("ㄴ/ETM+놈/NNB", False),
                                      ("이 놈", False)])
def test_one_syllable(term, one):
    assert one_syllable(term) is one


def test_the_default_rules_pass_and_flag_no_ordinary_sentence(kiwi):
    loaded = load_rules(ROOT / "rules" / "default.toml", analyzer=kiwi)
    assert loaded.warnings == []
    # Even the rules that allow one-syllable slurs flag none of the ordinary sentences.
    matcher = Matcher(loaded.ruleset, kiwi)
    assert [s for s in ORDINARY_SENTENCES if matcher.match(s).hits] == []


def test_rules_check_refuses_the_file(tmp_path):
    path = tmp_path / "r.toml"
    path.write_text(rule('["다"]'), encoding="utf-8")
    out = subprocess.run([sys.executable, "-m", "callguard", "rules", "check", str(path)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 1
    assert f"{path}:5: rule x: term '다' is too broad" in out.stdout
