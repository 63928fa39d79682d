"""The hallucination guard: stock phrases, Whisper's no-speech rule, loops, speaking rate."""

from __future__ import annotations

import pytest

from callguard.asr.guard import (
    STOCK_PHRASES,
    GuardConfig,
    GuardResult,
    collapse_runs,
    compression_ratio,
    judge,
    squash,
)
from callguard.asr.transcript import SegmentInfo, Transcript


def one(text: str, duration_s: float = 3.0, **scores: float) -> Transcript:
    return Transcript(segments=(SegmentInfo(text=text, **scores),), duration_s=duration_s)


# --- helpers ------------------------------------------------------------------------------

def test_squash_drops_spaces_punctuation_and_case():
    assert squash(" 시청해 주셔서, 감사합니다! ") == "시청해주셔서감사합니다"
    assert squash("MBC 뉴스_") == "mbc뉴스"
    assert squash("...  !?") == ""


def test_squash_composes_decomposed_hangul():
    decomposed = "\u1100\u1161\u11b7\u1109\u1161"  # 감사 as conjoining jamo (NFD)
    assert squash(decomposed) == "감사"


def test_compression_ratio_values():
    assert compression_ratio("") == 0.0
    assert compression_ratio("안녕하세요 상담원입니다") < 1.2
    assert compression_ratio("제가 말씀드린 것처럼 " * 10) > 2.4


def test_stock_phrases_are_kept_squashed():
    assert all(squash(p) == p for p in STOCK_PHRASES)
    assert "감사합니다" not in STOCK_PHRASES


# --- accepted -----------------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "안녕하세요, 환불 문의 좀 드리려고요.",
    "어제 주문한 물건이 아직 안 왔어요",
    "감사합니다",
    "네 감사합니다.",
])
def test_normal_korean_is_accepted_unchanged(text):
    result = judge(one(text, avg_logprob=-0.3, no_speech_prob=0.05))
    assert result == GuardResult(text=text, dropped=())
    assert result.accepted is True
    assert result.reason is None


def test_segment_text_is_stripped_and_joined_with_one_space():
    t = Transcript(segments=(SegmentInfo(" 안녕하세요 "), SegmentInfo("  문의드립니다")),
                   duration_s=2.0)
    assert judge(t).text == "안녕하세요 문의드립니다"


# --- stock phrases ------------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "시청해 주셔서 감사합니다.",
    "시청해주셔서 감사합니다",
    " 시청해 주셔서 정말 감사합니다!",
    "오늘도 시청해 주셔서 감사합니다.",
    "구독과 좋아요 부탁드립니다!",
    "구독과 좋아요",
    "좋아요와 구독 부탁드립니다~",
    "다음 영상에서 만나요.",
    "자막 제공",
    "자막 by 한효정",
    "MBC 뉴스",
    "KBS 뉴스.",
    "이덕영입니다.",
])
def test_stock_phrase_variants_are_rejected(text):
    result = judge(one(text, avg_logprob=-0.2, no_speech_prob=0.01))
    assert result.text == ""
    assert result.accepted is False
    assert result.reason == "stock_phrase"
    assert result.dropped == (("stock_phrase", text.strip()),)


def test_stock_phrase_with_few_extra_characters_is_rejected():
    # "네 " + phrase: 1 extra character, within the default slack of 4
    assert judge(one("네 시청해 주셔서 감사합니다")).reason == "stock_phrase"


def test_sentence_that_merely_contains_a_stock_phrase_is_kept():
    text = "유튜브에서 구독과 좋아요 누르라고 해서 눌렀는데 환불이 안 된대요"
    assert judge(one(text)).text == text


def test_stock_slack_is_configurable():
    text = "여러분 시청해 주셔서 감사합니다"  # 3 extra characters
    assert judge(one(text)).reason == "stock_phrase"
    assert judge(one(text), GuardConfig(stock_slack=0)).text == text


@pytest.mark.parametrize("text", ["MBC 뉴스 이덕영입니다.", "한글 자막 by 한효정"])
def test_well_known_credit_lines_are_rejected(text):
    assert judge(one(text)).reason == "stock_phrase"


# --- Whisper's no-speech rule -------------------------------------------------------------

def test_no_speech_with_low_logprob_is_rejected():
    result = judge(one("안녕하세요", no_speech_prob=0.9, avg_logprob=-1.5))
    assert result.text == ""
    assert result.reason == "no_speech"
    assert result.dropped == (("no_speech", "안녕하세요"),)


def test_no_speech_with_confident_text_is_kept():
    # Whisper skips only when BOTH no_speech_prob > 0.6 and avg_logprob < -1.0
    result = judge(one("안녕하세요", no_speech_prob=0.9, avg_logprob=-0.3))
    assert result.text == "안녕하세요"
    assert result.dropped == ()


def test_low_logprob_alone_is_kept():
    assert judge(one("안녕하세요", no_speech_prob=0.1, avg_logprob=-1.5)).text == "안녕하세요"


def test_no_speech_thresholds_are_strict_and_configurable():
    at_limit = one("안녕하세요", no_speech_prob=0.6, avg_logprob=-1.0)
    assert judge(at_limit).text == "안녕하세요"
    strict = GuardConfig(no_speech_prob=0.5, logprob_floor=-0.5)
    assert judge(at_limit, strict).reason == "no_speech"


# --- repetition ---------------------------------------------------------------------------

def test_filler_loop_is_rejected():
    result = judge(one("하하하하하하하하"))
    assert result.reason == "repetition"
    assert result.dropped == (("repetition", "하하하하하하하하"),)


def test_short_repeat_is_kept():
    assert judge(one("네네네 알겠습니다")).text == "네네네 알겠습니다"


def test_runs_collapse_from_five_repeats():
    assert judge(one("아니 아니 아니 아니")).text == "아니 아니 아니 아니"
    assert judge(one("아니 아니 아니 아니 아니")).text == "아니"
    assert collapse_runs("그러니까 죽어 죽어 죽어 죽어 죽어 죽어 진짜") == "그러니까 죽어 진짜"


def test_a_repeated_insult_is_kept_once_so_rules_still_see_it():
    result = judge(one("씨발 " * 12))
    assert result.text == "씨발" and result.dropped == ()


def test_long_repeated_phrase_is_said_once():
    text = "제가 말씀드린 것처럼 " * 8
    assert compression_ratio(text.strip()) > 2.4
    assert judge(one(text, duration_s=30.0)).text == "제가 말씀드린 것처럼"


def test_what_still_compresses_like_a_loop_is_rejected():
    # A unit longer than 16 characters is not collapsed, but compresses like a loop.
    text = " ".join(["제가 아까 말씀드린 것처럼 다시 한 번 말씀드리면"] * 8)
    result = judge(one(text, duration_s=30.0))
    assert compression_ratio(collapse_runs(text)) > 2.4
    assert result.reason == "repetition"


def test_amount_with_many_zeros_is_not_a_loop():
    for text in ("환불금 1,000,000원 언제 들어와요", "번호는 010-1111-1111 이에요"):
        assert judge(one(text)).text == text


# --- speaking rate ------------------------------------------------------------------------

def test_too_fast_is_rejected():
    text = "".join(chr(0xAC00 + 37 * i) for i in range(80))  # 80 different syllables
    assert len(squash(text)) == 80
    result = judge(one(text, duration_s=1.0))
    assert result.text == ""
    assert result.reason == "too_fast"
    assert result.dropped == (("too_fast", text),)


def test_rate_bound_uses_at_least_one_second():
    text = "".join(chr(0xAC00 + 37 * i) for i in range(20))
    # 20 letters in 0.2 s is 100/s, but a blip is measured as 1 s: 20 <= 25 → kept
    assert judge(one(text, duration_s=0.2)).text == text
    assert judge(one(text + text[:6], duration_s=0.2)).reason == "too_fast"


def test_rate_bound_is_skipped_without_duration():
    text = "".join(chr(0xAC00 + 37 * i) for i in range(80))
    assert judge(one(text, duration_s=0.0)).text == text


def test_normal_rate_is_kept():
    text = "안녕하세요 어제 주문한 물건이 아직 안 왔는데요"  # 19 syllables in 3 s
    assert judge(one(text, duration_s=3.0)).text == text


# --- mixed and empty ----------------------------------------------------------------------

def test_mixed_transcript_keeps_good_segments_and_lists_dropped_ones():
    t = Transcript(segments=(
        SegmentInfo(" 안녕하세요", avg_logprob=-0.2),
        SegmentInfo(" 시청해 주셔서 감사합니다.", avg_logprob=-0.2),
        SegmentInfo(" 음", avg_logprob=-1.6, no_speech_prob=0.95),
        SegmentInfo(" 환불 문의드립니다", avg_logprob=-0.3),
        SegmentInfo(" 하하하하하하하하"),
        SegmentInfo("   "),
    ), duration_s=6.0)
    result = judge(t)
    assert result.text == "안녕하세요 환불 문의드립니다"
    assert result.accepted is True
    assert result.reason is None
    assert result.dropped == (
        ("stock_phrase", "시청해 주셔서 감사합니다."),
        ("no_speech", "음"),
        ("repetition", "하하하하하하하하"),
    )


def test_reason_is_first_dropped_when_everything_goes():
    t = Transcript(segments=(SegmentInfo("구독과 좋아요"), SegmentInfo("하하하하하하하")),
                   duration_s=2.0)
    result = judge(t)
    assert result.text == ""
    assert result.reason == "stock_phrase"
    assert [r for r, _ in result.dropped] == ["stock_phrase", "repetition"]


def test_empty_transcript_reason_is_empty():
    result = judge(Transcript(segments=(), duration_s=1.0))
    assert result == GuardResult(text="", dropped=())
    assert result.accepted is False
    assert result.reason == "empty"


def test_blank_segments_count_as_empty_not_dropped():
    result = judge(Transcript(segments=(SegmentInfo("  "), SegmentInfo("")), duration_s=1.0))
    assert result.dropped == ()
    assert result.reason == "empty"


def test_very_low_confidence_is_dropped_whatever_the_no_speech_probability():
    assert judge(one("이 정도는 이 정도의", no_speech_prob=0.1,
                     avg_logprob=-2.6)).reason == "low_confidence"
    assert judge(one("안녕하세요", no_speech_prob=0.1, avg_logprob=-1.9)).text == "안녕하세요"


def test_thresholds_separate_measured_speech_from_measured_noise():
    # Extremes measured with the bundled model (see GuardConfig): all speech kept, all
    # silence/noise dropped.
    assert judge(one("불편하잖아 장갑", no_speech_prob=0.49, avg_logprob=-0.51)).text
    assert judge(one("그래", no_speech_prob=0.22, avg_logprob=-1.92)).text
    assert judge(one("이 정도는 기회가", no_speech_prob=0.58, avg_logprob=-2.11)).reason == (
        "no_speech")
