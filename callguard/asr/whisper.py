"""Whisper (CTranslate2, loaded through faster-whisper) behind the
:class:`~callguard.asr.transcript.Transcriber` interface.

Decoding is tuned for live use on a CPU (measured in ../shared/DESIGN.md): greedy (beam 1),
temperature 0 only (the default fallback ladder once took 21 s on a 1 s chunk), no
timestamps, no conditioning on earlier text, ``no_repeat_ngram_size=3`` against loops, and
the output length capped by the utterance length. No VAD filter (our segmenter already cut
the audio), no prompt or hotwords (biasing with a profanity list made Whisper print it).

**Short encoder window.** faster-whisper always pads the log-mel input to Whisper's 30 s
window, so the encoder costs the same for a 2 s utterance as for a 30 s one. Utterances are
at most 15 s here, so by default the input is cut to ``max(10 s, duration + 4 s)`` and
handed to CTranslate2's ``generate`` directly. On the 40 speech-ko utterances at telephone
quality this was 3× faster than the full window at a corpus CER of 0.295 against 0.279
(windows of duration + 1-2 s were worse: 0.34-0.36, with a hallucinated word). ``window=
"full"`` keeps the 30 s window.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

from callguard.asr.guard import compression_ratio
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
    window: str = "fit"  # "fit": max(min_window_s, duration + window_pad_s); "full": 30 s
    min_window_s: float = 10.0
    window_pad_s: float = 4.0

    def window_frames(self, duration_s: float) -> int:
        """Encoder input length in 10 ms mel frames (Whisper's maximum is 3000 = 30 s)."""
        if self.window == "full":
            return 3000
        seconds = max(self.min_window_s, duration_s + self.window_pad_s)
        return min(3000, math.ceil(seconds) * 100)

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
        from faster_whisper.tokenizer import Tokenizer

        self._tokenizer = Tokenizer(self._model.hf_tokenizer, True, task="transcribe",
                                    language=self.options.language)
        # <|startoftranscript|><|ko|><|transcribe|><|notimestamps|>
        self._prompt = [*self._tokenizer.sot_sequence, self._tokenizer.no_timestamps]

    def transcribe(self, audio: Float32Array) -> Transcript:
        """``audio``: 16 kHz mono float32 in -1..1, at most 30 s (longer is cut). One
        decoding pass on this (the worker's) thread; no lazy generator is left behind."""
        import ctranslate2
        import numpy as np

        duration = len(audio) / ASR_RATE
        opts = self.options
        started = time.perf_counter()
        features = self._model.feature_extractor(audio, chunk_length=30)
        n = opts.window_frames(duration)
        features = features[:, :n]
        if features.shape[1] < n:
            # Zero padding in the normalised log-mel domain, as faster-whisper pads.
            features = np.pad(features, ((0, 0), (0, n - features.shape[1])))
        batch = ctranslate2.StorageView.from_array(np.ascontiguousarray(features[None]))
        result = self._model.model.generate(
            batch, [self._prompt], beam_size=opts.beam_size,
            no_repeat_ngram_size=opts.no_repeat_ngram_size,
            max_length=len(self._prompt) + opts.max_new_tokens(duration),
            return_scores=True, return_no_speech_prob=True,
            suppress_blank=True, suppress_tokens=[-1],
        )[0]
        tokens = [t for t in result.sequences_ids[0] if t < self._tokenizer.eot]
        text = self._tokenizer.decode(tokens)
        # faster-whisper's definition: the score is length-normalised (penalty 1).
        n_tok = len(result.sequences_ids[0])
        avg_logprob = result.scores[0] * n_tok / (n_tok + 1) if n_tok else 0.0
        seg = SegmentInfo(text=text, avg_logprob=avg_logprob,
                          no_speech_prob=result.no_speech_prob,
                          compression_ratio=compression_ratio(text.strip()))
        return Transcript(segments=(seg,) if text.strip() else (), duration_s=duration,
                          decode_s=time.perf_counter() - started)
