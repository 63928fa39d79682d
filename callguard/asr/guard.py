"""Hallucination guard: what Whisper prints for silence and noise must never become a hit.

Whisper was trained on subtitled video, so on silence, breath or line noise it tends to
write a video's closing line ("시청해주셔서 감사합니다", "구독과 좋아요"), a caption credit,
or one syllable over and over. The guard drops such segments using Whisper's own scores (the
same no-speech rule Whisper uses, and a compression-ratio test for loops), a list of known
stock phrases, and a speaking-rate bound; what is left is the text that rules may match.

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
    "mbc뉴스",
    "kbs뉴스",
    "sbs뉴스",
    "ytn뉴스",
    "뉴스를전해드렸습니다",
    "이덕영입니다",
)

_DROP = re.compile(r"[\s\W_]+", re.UNICODE)
_SYLLABLE_RUN = re.compile(r"(.{1,3}?)\1{5,}")


def squash(text: str) -> str:
    """Lower-case, NFC, without spaces or punctuation: the form stock phrases are kept in."""
    return _DROP.sub("", nfc(text).lower())


def compression_ratio(text: str) -> float:
    """UTF-8 length over zlib-compressed length (Whisper's repetition measure)."""
    raw = text.encode("utf-8")
    return len(raw) / len(zlib.compress(raw)) if raw else 0.0


@dataclass(frozen=True)
class GuardConfig:
    """Thresholds. Defaults are Whisper's own (no-speech 0.6 with log-prob -1.0,
    compression 2.4); ``max_chars_per_s`` bounds speaking rate in Hangul syllables and other
    letters per second of audio (fast Korean speech is about 8-10)."""

    no_speech_prob: float = 0.6
    logprob_floor: float = -1.0
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


def _stock(segment: str, cfg: GuardConfig) -> bool:
    flat = squash(segment)
    if not flat:
        return False
    return any(p in flat and len(flat) - len(p) <= cfg.stock_slack for p in cfg.stock_phrases)


def _segment_reason(seg: SegmentInfo, cfg: GuardConfig) -> str | None:
    text = seg.text.strip()
    if not text:
        return "empty"
    if seg.no_speech_prob > cfg.no_speech_prob and seg.avg_logprob < cfg.logprob_floor:
        return "no_speech"
    if seg.compression_ratio > cfg.max_compression or compression_ratio(text) > (
        cfg.max_compression
    ):
        return "repetition"
    if _SYLLABLE_RUN.search(squash(text)):
        return "repetition"
    if _stock(text, cfg):
        return "stock_phrase"
    return None


def judge(transcript: Transcript, cfg: GuardConfig = GuardConfig()) -> GuardResult:
    """Drop hallucinated segments of ``transcript``; return the text rules may see."""
    kept: list[str] = []
    dropped: list[tuple[str, str]] = []
    for seg in transcript.segments:
        reason = _segment_reason(seg, cfg)
        if reason == "empty":
            continue
        if reason is None:
            kept.append(seg.text.strip())
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
