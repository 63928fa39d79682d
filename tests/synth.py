"""Synthetic call audio for session tests: vowel-like bursts webrtcvad calls speech, each
carrying a marker tone that :class:`callguard.asr.fake.ToneTranscriber` maps to a sentence."""

from __future__ import annotations

import numpy as np

FS = 8000


def voiced(n: int, fs: int = FS, marker_hz: float | None = None) -> np.ndarray:
    """Vowel-like signal in -1..1: a glottal-ish harmonic series with pitch gliding
    140 → 260 Hz, shaped by three formants (700, 1200, 2500 Hz), amplitude-modulated at a
    4 Hz syllable rate. ``marker_hz`` adds a steady tone that dominates the spectrum."""
    t = np.arange(n) / fs
    f0 = np.linspace(140, 260, n)
    phase = 2 * np.pi * np.cumsum(f0) / fs
    sig = np.zeros(n)
    for k in range(1, 25):
        fk = f0 * k
        env = 0.05 + sum(np.exp(-(((fk - c) / b) ** 2))
                         for c, b in ((700, 250), (1200, 300), (2500, 400)))
        sig += np.where(fk < 0.475 * fs, env / np.sqrt(k), 0.0) * np.sin(k * phase)
    sig /= np.abs(sig).max()
    if marker_hz is not None:
        sig = 0.5 * sig + 0.5 * np.sin(2 * np.pi * marker_hz * t)
    sig *= 0.6 + 0.4 * np.sin(2 * np.pi * 4 * t)
    return sig / np.abs(sig).max()


def call_audio(spans: list[tuple[float, float, float | None]], seconds: float,
               fs: int = FS, seed: int = 1) -> np.ndarray:
    """int16 stream of ``seconds`` with low noise (RMS 100) and, for each
    ``(start_s, duration_s, marker_hz)``, a burst at -12 dBFS peak."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(int(seconds * fs)) * 100
    for start, dur, hz in spans:
        s, n = int(start * fs), int(dur * fs)
        x[s:s + n] += 8000 * voiced(n, fs, hz)
    return np.clip(np.rint(x), -32768, 32767).astype(np.int16)
