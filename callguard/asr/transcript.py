"""What a recogniser returns, and the small interface every recogniser implements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

#: Recognisers take 16 kHz mono float32 samples in -1.0..1.0 (what Whisper's encoder eats).
ASR_RATE = 16_000
Float32Array = npt.NDArray[np.float32]


@dataclass(frozen=True)
class SegmentInfo:
    """One decoded segment with the scores Whisper reports for it.

    ``avg_logprob`` is the mean token log-probability (natural log, ≤ 0); ``no_speech_prob``
    the probability of the no-speech token at the first step (0..1); ``compression_ratio``
    the text's UTF-8 length over its zlib-compressed length (high means repetitive).
    """

    text: str
    avg_logprob: float = 0.0
    no_speech_prob: float = 0.0
    compression_ratio: float = 1.0


@dataclass(frozen=True)
class Transcript:
    """Raw recogniser output for one utterance, before the hallucination guard.

    ``duration_s`` is the audio length in seconds; ``decode_s`` the wall time spent.
    """

    segments: tuple[SegmentInfo, ...]
    duration_s: float
    decode_s: float = 0.0

    @property
    def text(self) -> str:
        return " ".join(s.text.strip() for s in self.segments if s.text.strip())


class Transcriber(Protocol):
    """Turns one utterance into text. Called only from the recognition worker's thread."""

    name: str

    def transcribe(self, audio: Float32Array) -> Transcript:
        """``audio``: 16 kHz mono float32, -1..1."""
        ...
