"""faster-whisper behind the :class:`~callguard.asr.transcript.Transcriber` interface.

Decoding is tuned for live use on a CPU (measured in ../shared/DESIGN.md): greedy (beam 1),
temperature 0 only (the default fallback ladder once took 21 s on a 1 s chunk), no
timestamps, no conditioning on earlier text, ``no_repeat_ngram_size=3`` against loops, and
``max_new_tokens`` capped by the utterance length. The built-in VAD filter is off: our own
segmenter already cut the audio, and the filter's default threshold cut telephone speech.
No prompt or hotwords: biasing with a profanity list made Whisper print the list.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

from callguard.asr.transcript import ASR_RATE, Float32Array, SegmentInfo, Transcript

#: Model sizes faster-whisper knows by name; usable only if already in the local HF cache.
SIZE_NAMES = ("tiny", "base", "small", "medium", "large-v1", "large-v2", "large-v3",
              "large-v3-turbo", "turbo", "distil-large-v3")


@dataclass(frozen=True)
class DecodeOptions:
    """Decoding settings; ``tokens_per_s`` and ``min_tokens`` bound ``max_new_tokens``
    (Korean Whisper tokens run 2-4 per second of speech)."""

    language: str = "ko"
    beam_size: int = 1
    no_repeat_ngram_size: int = 3
    tokens_per_s: float = 8.0
    min_tokens: int = 16

    def max_new_tokens(self, duration_s: float) -> int:
        # Whisper's decoder context is 448 tokens, about half for the output.
        return min(224, self.min_tokens + math.ceil(self.tokens_per_s * duration_s))


class WhisperTranscriber:
    """Owns one ``faster_whisper.WhisperModel``; use it from one thread only.

    Args:
        model: a CTranslate2 model folder (``model.bin`` + ``config.json`` + tokenizer), or a
            size name that is already in the local Hugging Face cache. Never downloads.
        compute_type: CTranslate2 quantisation; ``int8`` is twice as fast as float32 on
            CPU at the same accuracy.
        cpu_threads: intra-op threads (the desktop has 2 cores; leave one for audio and UI).
    """

    def __init__(self, model: str | Path, *, compute_type: str = "int8", cpu_threads: int = 2,
                 options: DecodeOptions | None = None) -> None:
        # No hub traffic ever: a size name resolves only from the local cache.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from faster_whisper import WhisperModel  # heavy import, kept off the core's path

        self.options = options or DecodeOptions()
        self.name = Path(model).name if Path(model).exists() else str(model)
        started = time.perf_counter()
        self._model = WhisperModel(str(model), device="cpu", compute_type=compute_type,
                                   cpu_threads=cpu_threads, local_files_only=True)
        self.load_s = time.perf_counter() - started

    def transcribe(self, audio: Float32Array) -> Transcript:
        """``audio``: 16 kHz mono float32 in -1..1. Consumes the lazy segment generator here,
        on the calling (worker) thread."""
        duration = len(audio) / ASR_RATE
        opts = self.options
        started = time.perf_counter()
        segments, _info = self._model.transcribe(
            audio,
            language=opts.language,
            beam_size=opts.beam_size,
            best_of=1,
            temperature=0.0,
            condition_on_previous_text=False,
            without_timestamps=True,
            no_repeat_ngram_size=opts.no_repeat_ngram_size,
            max_new_tokens=opts.max_new_tokens(duration),
            vad_filter=False,
            # The guard decides with these scores; don't let faster-whisper skip silently.
            no_speech_threshold=None,
            log_prob_threshold=None,
            compression_ratio_threshold=None,
        )
        out = tuple(
            SegmentInfo(text=s.text, avg_logprob=s.avg_logprob,
                        no_speech_prob=s.no_speech_prob, compression_ratio=s.compression_ratio)
            for s in segments
        )
        return Transcript(segments=out, duration_s=duration,
                          decode_s=time.perf_counter() - started)
