"""Prompt audio for live calls: the rules' WAV files at 8 kHz. The engine queues them
(:class:`~callguard.audio.samplequeue.SampleQueue`) and mixes them into the outgoing audio
sample by sample, so it knows exactly when the last sample left.

A prompt without a recording plays a placeholder (three soft chimes) and says so in the
log: announcements are recorded by each call centre; the rules file points at them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
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
    """Each prompt's audio by file path, decoded when the rules go into force
    (:meth:`preload`) so what ``rules check`` decoded is what plays, even if the file changes
    afterwards; a prompt without a recording, or one that cannot be decoded, plays the
    placeholder chime, and :meth:`chime_reason` says why, so the store can record that the
    caller heard the chime rather than the announcement."""

    def __init__(self) -> None:
        # path (None: no recording) -> (audio, why the chime plays instead, or None)
        self._cache: dict[Path | None, tuple[np.ndarray, str | None]] = {}

    def preload(self, prompts: Iterable[Prompt]) -> None:
        """Decode ``prompts`` now (the rules just went into force), replacing what was
        cached for earlier rules. Seconds of disk and CPU at most: call it off the loop."""
        cache: dict[Path | None, tuple[np.ndarray, str | None]] = {}
        for prompt in prompts:
            if prompt.file not in cache:
                cache[prompt.file] = self._load(prompt.file)
        self._cache = cache

    def audio(self, prompt: Prompt) -> np.ndarray:
        return self._entry(prompt)[0]

    def chime_reason(self, prompt: Prompt) -> str | None:
        """``None`` if ``prompt`` plays its recording, else why the chime plays instead."""
        return self._entry(prompt)[1]

    def _entry(self, prompt: Prompt) -> tuple[np.ndarray, str | None]:
        key = prompt.file
        if key not in self._cache:
            self._cache[key] = self._load(key)
        return self._cache[key]

    @staticmethod
    def _load(file: Path | None) -> tuple[np.ndarray, str | None]:
        if file is None:
            log.warning("prompt has no recording; playing the placeholder chime")
            return placeholder(), "no recording"
        try:
            pcm = load_pcm8k(file)
        except Exception as exc:
            log.error("cannot read prompt %s (%s); playing the placeholder", file, exc)
            return placeholder(), f"{file.name}: {str(exc).removeprefix(f'{file}: ')}"
        if pcm.size == 0:
            log.error("prompt %s holds no audio; playing the placeholder", file)
            return placeholder(), f"{file.name}: no audio"
        return pcm, None
