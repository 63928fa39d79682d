"""Prompt audio for live calls: the rules' WAV files at 8 kHz. The engine queues them
(:class:`~callguard.audio.samplequeue.SampleQueue`) and mixes them into the outgoing audio
sample by sample, so it knows exactly when the last sample left.

A prompt without a recording plays a placeholder (three soft chimes) and says so in the
log: announcements are recorded by each call centre; the rules file points at them.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from callguard.audio.devices import RATE, load_pcm8k
from callguard.rules.model import Prompt

log = logging.getLogger(__name__)


def placeholder() -> np.ndarray:
    """1.5 s: three 880/660 Hz chimes at -12 dBFS with 150 ms gaps (int16, 8 kHz)."""
    t = np.arange(int(0.35 * RATE)) / RATE
    env = np.minimum(1, t / 0.01) * np.exp(-t * 6)
    tone = 0.25 * env * (np.sin(2 * np.pi * 880 * t) + 0.5 * np.sin(2 * np.pi * 660 * t))
    gap = np.zeros(int(0.15 * RATE))
    x = np.concatenate([tone, gap, tone, gap, tone, gap])
    return np.rint(x * 32767).astype(np.int16)


class PromptLibrary:
    """Loads each prompt once (by file path); a missing or broken file → placeholder."""

    def __init__(self) -> None:
        self._cache: dict[Path | None, np.ndarray] = {}

    def audio(self, prompt: Prompt) -> np.ndarray:
        key = prompt.file
        if key not in self._cache:
            if key is None:
                log.warning("prompt has no recording; playing the placeholder chime")
                self._cache[key] = placeholder()
            else:
                try:
                    self._cache[key] = load_pcm8k(key)
                except Exception as exc:
                    log.error("cannot read prompt %s (%s); playing the placeholder", key, exc)
                    return placeholder()
        return self._cache[key]
