"""Hallucination guard: what Whisper prints for silence and noise must never become a hit.

Whisper was trained on subtitled video, so on silence, breath or line noise it tends to
write a video's closing line ("시청해주셔서 감사합니다", "구독과 좋아요"), a caption credit,
or one syllable over and over. The guard drops such segments using Whisper's own scores (the
same no-speech rule Whisper uses), a list of known stock phrases and a speaking-rate bound;
a unit repeated over and over is kept once (callers repeat insults too), and what still
compresses like a loop is dropped. What is left is the text that rules may match.

Pure: no model, no clock. Thresholds are in the units Whisper reports (see
:class:`~callguard.asr.transcript.SegmentInfo`).
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field

from callguard.asr.transcript import SegmentInfo, Transcript
from callguard.text.normalize import nfc

#: Known closing lines and credits of Korean subtitled video, compared without spaces or
#: punctuation. A segment that is one of these (or one of these plus a few characters) is
#: dropped. Ordinary courtesy ("감사합니다" alone) is *not* here: callers say it.
STOCK_PHRASES: tuple[str, ...] = (
    "시청해주셔서감사합니다",
    "시청해주셔서고맙습니다",
    "시청해주셔서정말감사합니다",
    "시청해주신여러분감사합니다",
    "오늘도시청해주셔서감사합니다",
    "끝까지시청해주셔서감사합니다",
    "지금까지시청해주셔서감사합니다",
    "구독과좋아요부탁드립니다",
    "구독과좋아요",
    "좋아요와구독부탁드립니다",
    "구독좋아요알림설정",
    "구독과좋아요알림설정부탁드립니다",
    "다음영상에서만나요",
    "다음영상에서뵙겠습니다",
    "다음시간에만나요",
    "영상이도움이되셨다면",
    "자막제공",
    "자막제작",
    "한글자막",
    "자막by",
    "한글자막by",
    "mbc뉴스",
    "kbs뉴스",
    "sbs뉴스",
    "ytn뉴스",
    "뉴스를전해드렸습니다",
    "이덕영입니다",
    "이영상은",
)

_DROP = re.compile(r"[\s\W_]+", re.UNICODE)
# A unit of up to 16 characters said 5 or more times in a row, with optional separators.
_RUN = re.compile(r"(\S.{0,15}?)(?:[\s,.!?~]*\1){4,}")
_LETTER = re.compile(r"[^\d\W_]")


def squash(text: str) -> str:
    """Lower-case, NFC, without spaces or punctuation: the form stock phrases are kept in."""
    return _DROP.sub("", nfc(text).lower())


def compression_ratio(text: str) -> float:
    """UTF-8 length over zlib-compressed length (Whisper's repetition measure)."""
    raw = text.encode("utf-8")
    return len(raw) / len(zlib.compress(raw)) if raw else 0.0


@dataclass(frozen=True)
class GuardConfig:
    """Thresholds. Whisper's own rule drops a segment when the no-speech probability is high
    *and* the mean log-probability low (it uses 0.6 and -1.0; compression 2.4). Measured on
    the bundled model with callguard's short encoder window, at telephone quality: the 40
    speech-ko utterances had no-speech ≤ 0.49 and log-prob ≥ -1.92, while silence and white
    noise (-66 to -14 dBFS, 1-4 s) had no-speech ≥ 0.58 and log-prob ≤ -2.11, so 0.5 is
    used. ``min_logprob`` drops anything below it whatever the no-speech probability.
    ``max_chars_per_s`` bounds speaking rate in letters per second of audio (fast Korean
    speech is about 8-10 syllables per second)."""

    no_speech_prob: float = 0.5
    logprob_floor: float = -1.0
    min_logprob: float = -2.5
    max_compression: float = 2.4
    max_chars_per_s: float = 25.0
    stock_phrases: tuple[str, ...] = STOCK_PHRASES
    stock_slack: int = 4  # characters a stock segment may carry besides the phrase


@dataclass(frozen=True)
class GuardResult:
    """Accepted text (possibly empty) and, per dropped segment, why it was dropped."""

    text: str
    dropped: tuple[tuple[str, str], ...] = field(default=())  # (reason, segment text)

    @property
    def accepted(self) -> bool:
        return bool(self.text)

    @property
    def reason(self) -> str | None:
        """The first reason a segment was dropped, or "empty" when nothing was said."""
        if self.text:
            return None
        return self.dropped[0][0] if self.dropped else "empty"


def collapse_runs(text: str) -> str:
    """Say a unit repeated 5+ times once: "하하하하하하" → "하", "죽어 죽어 … 죽어" → "죽어".

    Whisper loops this way on noise, but callers also repeat themselves, so the words are
    kept once rather than dropped. Runs of digits (1,000,000 or 010-1111-1111) are left alone.
    """
    return _RUN.sub(lambda m: m.group(1) if _LETTER.search(m.group(1)) else m.group(0), text)


def _stock(segment: str, cfg: GuardConfig) -> bool:
    """True when the segment is made of stock phrases, give or take ``stock_slack`` letters
    (a name after a caption credit, say)."""
    flat = squash(segment)
    if not flat:
        return False
    rest, found = flat, False
    for phrase in sorted(cfg.stock_phrases, key=len, reverse=True):
        if phrase in rest:
            rest, found = rest.replace(phrase, ""), True
    return found and len(rest) <= cfg.stock_slack


def _segment(seg: SegmentInfo, cfg: GuardConfig) -> tuple[str, str | None]:
    """(text to keep, reason it was dropped or None)."""
    text = seg.text.strip()
    if not text:
        return "", "empty"
    if seg.no_speech_prob > cfg.no_speech_prob and seg.avg_logprob < cfg.logprob_floor:
        return "", "no_speech"
    if seg.avg_logprob < cfg.min_logprob:
        return "", "low_confidence"
    collapsed = collapse_runs(text)
    if collapsed != text and len(squash(collapsed)) <= 1:
        return "", "repetition"  # a one-syllable loop (하하하…, 아아아…) is not speech
    text = collapsed
    if compression_ratio(text) > cfg.max_compression:
        return "", "repetition"  # still a loop after collapsing: not speech
    if _stock(text, cfg):
        return "", "stock_phrase"
    return text, None


def judge(transcript: Transcript, cfg: GuardConfig = GuardConfig()) -> GuardResult:
    """Drop hallucinated segments of ``transcript``; return the text rules may see."""
    kept: list[str] = []
    dropped: list[tuple[str, str]] = []
    for seg in transcript.segments:
        text, reason = _segment(seg, cfg)
        if reason == "empty":
            continue
        if reason is None:
            kept.append(text)
        else:
            dropped.append((reason, seg.text.strip()))
    text = " ".join(kept)
    if text and transcript.duration_s > 0:
        letters = len(squash(text))
        # A short blip cannot carry a paragraph: Whisper made it up.
        if letters > cfg.max_chars_per_s * max(transcript.duration_s, 1.0):
            dropped.append(("too_fast", text))
            text = ""
    return GuardResult(text=text, dropped=tuple(dropped))
