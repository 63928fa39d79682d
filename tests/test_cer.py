"""Character error rate: normalisation, Levenshtein distance, per-text and corpus CER."""

from __future__ import annotations

import unicodedata

import pytest

from callguard.text.cer import CerScore, cer, cer_normalize, corpus_cer, edit_distance, score


def test_normalize_drops_spaces_punctuation_and_lowercases() -> None:
    assert cer_normalize("아 몬 소리야, 그건 또.") == "아몬소리야그건또"
    assert cer_normalize("  Hello,  World!? ") == "helloworld"
    assert cer_normalize("3G… “쓰리 쥐”~ (음)") == "3g쓰리쥐음"
    assert cer_normalize("\t\n ,.?!") == ""


def test_normalize_composes_hangul() -> None:
    decomposed = unicodedata.normalize("NFD", "한국어")
    assert len(decomposed) > 3
    assert cer_normalize(decomposed) == "한국어"


@pytest.mark.parametrize(("ref", "hyp", "dist"), [
    ("", "", 0),
    ("abc", "", 3),
    ("", "abc", 3),
    ("abc", "abc", 0),
    ("abc", "abd", 1),  # substitution
    ("abc", "ab", 1),  # deletion
    ("abc", "abxc", 1),  # insertion
    ("kitten", "sitting", 3),
    ("flaw", "lawn", 2),
    ("안녕하세요", "안녕하십니까", 3),
])
def test_edit_distance(ref: str, hyp: str, dist: int) -> None:
    assert edit_distance(ref, hyp) == dist
    assert edit_distance(hyp, ref) == dist  # symmetric


def test_cer_ignores_spacing_and_punctuation() -> None:
    assert cer("아 근데 강남 너무 비싸.", "아근데 강남너무 비싸") == 0.0
    assert cer("불편하잖아, 장갑.", "불편하잖아 장갑!") == 0.0


def test_cer_counts_edits_over_reference_characters() -> None:
    # reference 복싱안배워봤어 = 7 chars; hypothesis 혹시안되어봤어: 복→혹, 싱→시, 배→되, 워→어
    s = score("복싱 안 배워봤어?", "혹시 안 되어봤어?")
    assert s == CerScore(edits=4, ref_chars=7)
    assert cer("복싱 안 배워봤어?", "혹시 안 되어봤어?") == pytest.approx(4 / 7)


def test_cer_can_exceed_one_and_handles_empty_texts() -> None:
    assert cer("왜", "왜 그랬어 도대체") == pytest.approx(6.0)  # 6 insertions / 1 char
    assert cer("그래", "") == 1.0
    assert cer("", "") == 0.0
    assert cer(".", "") == 0.0  # nothing left of the reference after normalising
    assert cer("", "아") == 1.0


def test_corpus_cer_weighs_by_reference_length() -> None:
    pairs = [("가나다라마바사아자차", "가나다라마바사아자카"),  # 1 edit / 10 chars
             ("왜", "")]  # 1 edit / 1 char
    assert corpus_cer(pairs) == pytest.approx(2 / 11)
    # the mean of per-text CERs would be (0.1 + 1.0) / 2 = 0.55: not what corpus CER is
    assert corpus_cer(pairs) != pytest.approx(0.55)
    assert corpus_cer([]) == 0.0
    assert corpus_cer(iter(pairs)) == pytest.approx(2 / 11)  # any iterable


def test_joined_texts_score_like_their_parts_when_aligned() -> None:
    refs = ["아 몬 소리야", "그건 또"]
    hyps = ["아 본 소리야", "그건 또"]
    joined = cer(" ".join(refs), " ".join(hyps))
    assert joined == pytest.approx(corpus_cer(zip(refs, hyps, strict=True)))
