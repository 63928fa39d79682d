"""The shipped default rules: valid, sensible on typical call sentences, and measured.

The dataset tests are the acceptance figures of the rules engine: on the public
development sets the default rules must beat plain substring matching of the lexicon
(F1 > 0.72 on curse_dev, F1 > 0.67 on K-MHaS profanity) with precision >= 0.90.
"""

from __future__ import annotations

import pytest
from conftest import DATA, DEFAULT_RULES, require_shared

from callguard.policy import HitsObserved, PolicyEvaluator, PolicyState, VerdictKind
from callguard.rules import Category, Matcher, load_rules
from callguard.rules.evaluation import PRESETS, evaluate, read_dataset


@pytest.fixture(scope="module")
def default():
    return load_rules(DEFAULT_RULES)


@pytest.fixture(scope="module")
def matcher(default) -> Matcher:
    return Matcher(default.ruleset)


def test_default_rules_load_without_warnings(default):
    assert default.warnings == []
    rs = default.ruleset
    categories = {r.category for r in rs.enabled_rules}
    assert categories == set(Category)  # every category, crisis included, has rules
    assert rs.inbound.final_at and rs.outbound.final_at
    assert rs.inbound.notice_at < rs.inbound.final_at
    for key in ("pre_call", "warning", "final", "duration_notice", "duration_final"):
        assert rs.prompts[key].text, key


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("야 이 개새끼야", Category.PROFANITY),
        ("씨발 장난하냐 지금", Category.PROFANITY),
        ("너 진짜 죽여 버릴 거야", Category.THREAT),
        ("가만 안 둔다 진짜", Category.THREAT),
        ("이 병신 같은 게", Category.INSULT),
        ("너무 힘들어서 죽고 싶어요", Category.CRISIS),
    ],
)
def test_abusive_call_sentences_hit(matcher, text, category):
    assert category in matcher.match(text).categories, matcher.match(text)


@pytest.mark.parametrize(
    "text",
    [
        "시발점부터 다시 설명해 주세요",
        "새끼발가락을 다쳐서 병원에 가야 해요",
        "수박씨 발라 먹고 있었어요",
        "주문한 물건이 아직 안 왔는데 확인 좀 해 주세요",
        "환불 처리는 언제쯤 되나요",
        "번호로 전화 주세요",
    ],
)
def test_ordinary_call_sentences_do_not_hit(matcher, text):
    assert matcher.match(text).hits == ()


def test_default_escalation_warns_before_hanging_up(default, matcher):
    rs = default.ruleset
    policy = PolicyEvaluator.for_call(rs, "inbound")
    state = PolicyState("inbound")
    kinds: list[VerdictKind] = []
    t = 0.0
    while not state.ended and t < 600:
        t += 20
        state, verdicts = policy.step(state, HitsObserved(matcher.match("씨발 개새끼야").hits), t)
        kinds += [v.kind for v in verdicts]
    assert VerdictKind.WARN in kinds and kinds[-1] is VerdictKind.FINAL
    assert kinds.index(VerdictKind.WARN) < kinds.index(VerdictKind.FINAL)


def _report(matcher: Matcher, file: str, preset: str):
    require_shared()
    p = PRESETS[preset]
    examples = read_dataset(DATA / "abuse-dev" / file, fmt=p["format"], text=p.get("text"),
                            label=p.get("label"), labels=p["labels"])
    return evaluate(matcher, examples)


def test_curse_dev_beats_lexicon_baseline(matcher):
    score = _report(matcher, "curse_dev.txt", "curse").overall
    assert score.precision >= 0.90, score.as_dict()
    assert score.f1 > 0.72, score.as_dict()


def test_kmhas_profanity_beats_lexicon_baseline(matcher):
    score = _report(matcher, "kmhas_valid.tsv", "kmhas-profanity").per_category["profanity"]
    assert score.precision >= 0.90, score.as_dict()
    assert score.f1 > 0.67, score.as_dict()
