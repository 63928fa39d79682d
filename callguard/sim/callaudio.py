"""Reading a call recording into the per-leg telephone audio a live call would deliver."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from callguard.audio.wavfile import TELEPHONE_RATE, AudioFileError, read_wav, to_telephone

__all__ = ["TELEPHONE_RATE", "AudioFileError", "CallAudio", "load_call", "read_wav",
           "to_telephone"]


@dataclass(frozen=True)
class CallAudio:
    """Both legs as int16 mono at ``rate`` Hz, equal length; ``counselor`` is silence for a
    mono file. ``source_rate``/``channels`` describe the file as read."""

    caller: np.ndarray
    counselor: np.ndarray
    rate: int
    source_rate: int
    channels: int

    @property
    def seconds(self) -> float:
        return self.caller.size / self.rate


def load_call(path: str | Path, *, codec: str | None = "ulaw") -> CallAudio:
    """Mono file = caller only; stereo = caller left, counselor right; any sample rate."""
    data, rate = read_wav(path)
    caller = to_telephone(data[:, 0], rate, codec=codec)
    if data.shape[1] == 2:
        counselor = to_telephone(data[:, 1], rate, codec=codec)
    else:
        counselor = np.zeros_like(caller)
    return CallAudio(caller, counselor, TELEPHONE_RATE, rate, data.shape[1])
