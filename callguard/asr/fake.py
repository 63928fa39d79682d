"""Fake recognisers for fast tests and for runs without the model. Never the default.

:class:`ToneTranscriber` "hears" a pure tone as a scripted sentence: test calls are built
from tones of distinct frequencies, so a test can say which words the caller spoke when,
while the audio still runs through the real VAD, resampler, queue and session.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

import numpy as np

from callguard.asr.transcript import ASR_RATE, Float32Array, SegmentInfo, Transcript


def dominant_hz(audio: Float32Array, rate: int = ASR_RATE) -> float:
    """Frequency in Hz of the strongest FFT bin (Hann window); 0.0 for silence."""
    if audio.size == 0 or not np.any(audio):
        return 0.0
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(audio.size)))
    return float(np.argmax(spectrum) * rate / audio.size)


class ToneTranscriber:
    """Maps the dominant tone of an utterance to text: ``{440.0: "안녕하세요", ...}``.

    The nearest listed frequency within ``tolerance_hz`` wins; anything else (noise,
    silence) yields no segments. ``delay_s`` sleeps to imitate recognition time.
    """

    name = "tones"

    def __init__(self, script: Mapping[float, str], *, tolerance_hz: float = 25.0,
                 delay_s: float = 0.0) -> None:
        self.script = dict(script)
        self.tolerance_hz = tolerance_hz
        self.delay_s = delay_s
        self.calls = 0

    def transcribe(self, audio: Float32Array) -> Transcript:
        self.calls += 1
        started = time.perf_counter()
        if self.delay_s:
            time.sleep(self.delay_s)
        hz = dominant_hz(audio)
        best = min(self.script, key=lambda f: abs(f - hz), default=None)
        segs: tuple[SegmentInfo, ...] = ()
        if best is not None and abs(best - hz) <= self.tolerance_hz:
            segs = (SegmentInfo(text=" " + self.script[best], avg_logprob=-0.2,
                                no_speech_prob=0.01, compression_ratio=1.0),)
        return Transcript(segments=segs, duration_s=audio.size / ASR_RATE,
                          decode_s=time.perf_counter() - started)


class ScriptedTranscriber:
    """Returns the given transcripts in order, one per call (then empty ones)."""

    name = "scripted"

    def __init__(self, transcripts: Iterable[Transcript | str]) -> None:
        self._items = list(transcripts)
        self.calls = 0

    def transcribe(self, audio: Float32Array) -> Transcript:
        self.calls += 1
        item = self._items.pop(0) if self._items else ""
        if isinstance(item, Transcript):
            return item
        segs = (SegmentInfo(text=item),) if item else ()
        return Transcript(segments=segs, duration_s=audio.size / ASR_RATE)
