"""The counselor's headset, behind a small interface: int16 mono at 8000 Hz both ways.

:class:`NullDevice` (silence in, nothing out) and :class:`FileDevice` (a WAV as microphone,
the speaker written to a WAV) serve tests and headless runs; :class:`SoundDevice` uses
PortAudio through ``sounddevice`` when that is installed.
"""

from __future__ import annotations

import threading
import wave
from pathlib import Path
from typing import Protocol

import numpy as np

from callguard.audio.resample import float_to_int16, resample

RATE = 8000


class AudioDevice(Protocol):
    def read(self, n: int) -> np.ndarray:
        """The next ``n`` microphone samples (int16, 8 kHz); zeros if none."""

    def write(self, pcm: np.ndarray) -> None:
        """Play int16 8 kHz samples on the speaker."""

    def close(self) -> None: ...


class NullDevice:
    def read(self, n: int) -> np.ndarray:
        return np.zeros(n, np.int16)

    def write(self, pcm: np.ndarray) -> None:
        pass

    def close(self) -> None:
        pass


def load_pcm8k(path: str | Path) -> np.ndarray:
    """A WAV file (any rate; stereo is mixed to mono) as int16 at 8 kHz."""
    from callguard.sim.callaudio import read_wav  # float32 frames × channels

    data, rate = read_wav(path)
    mono = data.mean(axis=1) if data.ndim == 2 else data
    return float_to_int16(resample(mono, rate, RATE) if rate != RATE else mono)


class FileDevice:
    """Microphone from ``mic`` (played once, then silence); speaker to ``speaker`` (a 16-bit
    8 kHz mono WAV, written as it plays)."""

    def __init__(self, mic: str | Path | None = None, speaker: str | Path | None = None) -> None:
        self._mic = load_pcm8k(mic) if mic else np.zeros(0, np.int16)
        self._pos = 0
        self._lock = threading.Lock()
        self._out: wave.Wave_write | None = None
        if speaker:
            self._out = wave.open(str(speaker), "wb")  # noqa: SIM115 - closed in close()
            self._out.setnchannels(1)
            self._out.setsampwidth(2)
            self._out.setframerate(RATE)

    def read(self, n: int) -> np.ndarray:
        out = np.zeros(n, np.int16)
        with self._lock:
            chunk = self._mic[self._pos:self._pos + n]
            out[:chunk.size] = chunk
            self._pos += chunk.size
        return out

    def write(self, pcm: np.ndarray) -> None:
        with self._lock:
            if self._out is not None:
                self._out.writeframes(np.asarray(pcm, "<i2").tobytes())

    def close(self) -> None:
        with self._lock:
            if self._out is not None:
                self._out.close()
                self._out = None


class SoundDevice:  # pragma: no cover - needs a sound card
    """The system's default input and output through PortAudio (``pip install
    sounddevice``; Debian: ``libportaudio2``). Blocking reads/writes of 20 ms blocks."""

    def __init__(self, input_device: str | int | None = None,
                 output_device: str | int | None = None) -> None:
        try:
            import sounddevice as sd
        except (ImportError, OSError) as exc:
            raise RuntimeError("a real headset needs the 'sounddevice' package and "
                               f"PortAudio (libportaudio2): {exc}") from None
        self._in = sd.InputStream(samplerate=RATE, channels=1, dtype="int16",
                                  device=input_device, blocksize=160)
        self._out = sd.OutputStream(samplerate=RATE, channels=1, dtype="int16",
                                    device=output_device, blocksize=160)
        self._in.start()
        self._out.start()

    def read(self, n: int) -> np.ndarray:
        avail = self._in.read_available
        if avail <= 0:
            return np.zeros(n, np.int16)
        data, _ = self._in.read(min(n, avail))
        out = np.zeros(n, np.int16)
        out[:len(data)] = data[:, 0]
        return out

    def write(self, pcm: np.ndarray) -> None:
        self._out.write(np.asarray(pcm, np.int16).reshape(-1, 1))

    def close(self) -> None:
        self._in.close()
        self._out.close()
