"""Each match mode, exceptions, POS tags and phrase inflection, against real Kiwi."""

from __future__ import annotations

import pytest

from callguard.rules import Category, Matcher, MatchMode, parse_rules

RULES = """
[dictionary]
aliases = { "개색기" = "개새끼/NNG", "씨빨" = "씨발/IC" }

[exceptions]
terms = ["시발점", "새끼발가락", "수박씨 발라"]

[[rule]]
id = "surface.babo"
category = "insult"
mode = "surface"
terms = ["바보"]

[[rule]]
id = "nospace.ssibal"
category = "profanity"
terms = ["씨발", "시발"]

[[rule]]
id = "nospace.saekki"
category = "profanity"
terms = ["새끼"]
exceptions = ["새끼손가락"]

[[rule]]
id = "morph.boji"
category = "sexual"
mode = "morpheme"
terms = ["보지/NNG"]

[[rule]]
id = "morph.gaesaekki"
category = "profanity"
mode = "morpheme"
terms = ["개새끼"]

[[rule]]
id = "morph.michin"
category = "insult"
mode = "morpheme"
terms = ["미치/VV+ㄴ/ETM+놈/NNB"]

[[rule]]
id = "phrase.kill"
category = "threat"
mode = "phrase"
severity = 3
terms = ["죽이다", "가만 안 두다"]

[[rule]]
id = "phrase.visit"
category = "threat"
mode = "phrase"
gap = 1
terms = ["집 찾아가다"]

[[rule]]
id = "off"
category = "insult"
enabled = false
terms = ["멍청이"]

[[rule]]
id = "crisis.die"
category = "crisis"
mode = "phrase"
terms = ["죽고 싶다"]
"""


@pytest.fixture(scope="module")
def matcher(kiwi) -> Matcher:
    return Matcher(parse_rules(RULES, name="m.toml", analyzer=kiwi).ruleset, kiwi)


def hits(matcher: Matcher, text: str) -> list[tuple[str, str]]:
    return [(h.rule_id, h.matched) for h in matcher.match(text).hits]


def test_surface_is_substring_with_spaces(matcher):
    assert hits(matcher, "너 바보야") == [("surface.babo", "바보")]
    assert hits(matcher, "너 바 보야") == []


def test_nospace_ignores_spaces_and_punctuation(matcher):
    assert hits(matcher, "씨 발 진짜") == [("nospace.ssibal", "씨 발")]
    assert hits(matcher, "아 시.발") == [("nospace.ssibal", "시.발")]
    result = matcher.match("아 씨-발 뭐야")
    (h,) = result.hits
    assert (h.start, h.end) == (2, 5) and result.text[h.start:h.end] == "씨-발"
    assert h.category is Category.PROFANITY and h.mode is MatchMode.NOSPACE


def test_global_exceptions_suppress_and_are_reported(matcher):
    for text, exception in [("시발점으로 돌아가자", "시발점"),
                            ("새끼발가락을 다쳤어요", "새끼발가락"),
                            ("수박씨 발라 먹어", "수박씨 발라"), ("수박씨발라", "수박씨 발라")]:
        result = matcher.match(text)
        assert result.hits == (), text
        assert [s.exception for s in result.suppressed] == [exception], text


def test_rule_exception_only_applies_to_its_rule(matcher):
    result = matcher.match("새끼손가락 걸고 약속")
    assert result.hits == ()
    assert [(s.hit.rule_id, s.exception) for s in result.suppressed] == [
        ("nospace.saekki", "새끼손가락")]


def test_exception_elsewhere_in_sentence_does_not_hide_a_real_hit(matcher):
    result = matcher.match("시발점에서 씨발")
    assert [(h.rule_id, h.matched, h.start) for h in result.hits] == [
        ("nospace.ssibal", "씨발", 6)]
    assert len(result.suppressed) == 1


def test_pos_tag_keeps_noun_and_skips_verb(matcher):
    assert ("morph.boji", "보지") in hits(matcher, "보지를 빨고 싶다")
    assert ("morph.boji", "보지") in hits(matcher, "너 보지 냄새")
    assert hits(matcher, "그거 보지 마세요") == []  # 보/VV + 지/EC


def test_morpheme_mode_on_boundaries_and_aliases(matcher):
    assert ("morph.gaesaekki", "개새끼") in hits(matcher, "이 개새끼야")
    assert ("morph.gaesaekki", "개색기") in hits(matcher, "이 개색기야")  # alias


def test_tagged_morpheme_sequence_survives_spacing(matcher):
    assert hits(matcher, "미친놈이네") == [("morph.michin", "미친놈")]
    assert hits(matcher, "미친 놈이네") == [("morph.michin", "미친 놈")]


@pytest.mark.parametrize("text", ["죽여버린다", "죽여 버릴 거야", "죽인다", "진짜 죽일 거야"])
def test_phrase_survives_inflection(matcher, text):
    assert [r for r, _ in hits(matcher, text)] == ["phrase.kill"]


def test_phrase_with_several_parts_and_gap(matcher):
    assert hits(matcher, "가만 안 둘 거야") == [("phrase.kill", "가만 안 둘")]
    assert hits(matcher, "너네 집으로 찾아갈 거야") == [("phrase.visit", "집으로 찾아갈")]
    # one content morpheme between the parts is allowed (gap = 1) ...
    assert [r for r, _ in hits(matcher, "집 바로 찾아간다")] == ["phrase.visit"]
    # ... two are not
    assert hits(matcher, "집 내일 바로 찾아간다") == []


def test_disabled_rule_does_not_match(matcher):
    assert hits(matcher, "멍청이") == []


def test_crisis_is_matched_as_crisis(matcher):
    (h,) = matcher.match("요즘 너무 힘들어서 죽고 싶어요").hits
    assert h.category is Category.CRISIS and h.rule_id == "crisis.die"


def test_shorter_hit_inside_a_longer_one_of_the_same_rule_is_folded():
    rs = parse_rules('[[rule]]\nid = "a"\ncategory = "profanity"\nterms = ["씨발", "씨발놈"]\n',
                     name="x").ruleset
    result = Matcher(rs).match("씨발놈아")
    assert [(h.matched, h.term) for h in result.hits] == [("씨발놈", "씨발놈")]


def test_match_many_equals_match(matcher):
    texts = ["씨 발 진짜", "죽여 버릴 거야", "안녕하세요", "시발점", "보지 만지고"]
    assert [r.hits for r in matcher.match_many(texts)] == [matcher.match(t).hits for t in texts]


def test_surface_only_rules_need_no_analyzer():
    rs = parse_rules('[[rule]]\nid = "a"\ncategory = "insult"\nterms = ["바보"]\n',
                     name="x").ruleset
    m = Matcher(rs)
    assert m.analyzer is None
    result = m.match("바보야")
    assert result.morphs is None and [h.rule_id for h in result.hits] == ["a"]


def test_kiwi_analysis_is_returned_for_display(matcher):
    result = matcher.match("죽여버린다")
    assert [str(m) for m in result.morphs] == ["죽이/VV", "어/EC", "버리/VX", "ᆫ다/EF"]


def test_overlapping_hits_of_one_rule_merge_into_one_span():
    rs = parse_rules('[[rule]]\nid = "a"\ncategory = "profanity"\nterms = ["개새", "새끼"]\n',
                     name="x").ruleset
    (h,) = Matcher(rs).match("야 이 개새끼야").hits
    assert (h.start, h.end, h.matched, h.term) == (4, 7, "개새끼", "개새")


def test_exception_judges_each_piece_before_merging():
    rs = parse_rules('[[rule]]\nid = "a"\ncategory = "profanity"\nterms = ["새끼", "끼발"]\n'
                     'exceptions = ["새끼발가락"]\n', name="x").ruleset
    result = Matcher(rs).match("새끼발가락")
    assert result.hits == ()
    assert sorted(s.hit.matched for s in result.suppressed) == ["끼발", "새끼"]
