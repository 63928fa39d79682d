"""WAV files in and out of callguard's audio: any PCM WAV read as float frames, and telephone
audio made from it as a phone line would deliver it (8 kHz through a G.711 round trip)."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from callguard.audio import g711
from callguard.audio.resample import float_to_int16, resample
from callguard.errors import InputError

TELEPHONE_RATE = 8000


class AudioFileError(InputError, ValueError):
    """The file is not a WAV we can read; the message names it."""


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """PCM WAV (8/16/24/32-bit integer) → float32 ``(frames, channels)`` in -1..1, rate."""
    path = Path(path)
    try:
        with wave.open(str(path), "rb") as w:
            rate, channels, width = w.getframerate(), w.getnchannels(), w.getsampwidth()
            raw = w.readframes(w.getnframes())
    except (OSError, EOFError, wave.Error) as exc:
        raise AudioFileError(f"{path}: cannot read as PCM WAV ({exc})") from exc
    if width == 1:
        data = (np.frombuffer(raw, np.uint8).astype(np.float64) - 128) / 128
    elif width == 2:
        data = np.frombuffer(raw, "<i2") / 32768.0
    elif width == 3:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        v = (b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16))
        v = np.where(v & 0x800000, v - 0x1000000, v)
        data = v / 8388608.0
    elif width == 4:
        data = np.frombuffer(raw, "<i4") / 2147483648.0
    else:
        raise AudioFileError(f"{path}: {8 * width}-bit samples are not supported")
    if channels < 1 or channels > 2:
        raise AudioFileError(f"{path}: {channels} channels; expected mono (caller) or "
                             "stereo (caller left, counselor right)")
    return data.astype(np.float32).reshape(-1, channels), rate


def to_telephone(x: np.ndarray, rate: int, *, codec: str | None = "ulaw") -> np.ndarray:
    """Mono float -1..1 at ``rate`` → int16 at 8 kHz, through a G.711 round trip
    (``codec`` ``ulaw``/``alaw``; None skips it) as a phone line would deliver it."""
    pcm = float_to_int16(resample(np.asarray(x, dtype=np.float64), rate, TELEPHONE_RATE))
    pcm = g711.round_trip(pcm, codec)
    return np.asarray(pcm, dtype=np.int16)


def write_wav(out: Path, frames: np.ndarray, rate: int) -> None:
    """Write float ``frames`` (-1..1; ``(n,)`` mono or ``(n, channels)``) to ``out`` as a
    16-bit PCM WAV at ``rate`` Hz. Written beside it and renamed: a reader never sees half a
    file."""
    x = np.asarray(frames, dtype=np.float64)
    channels = 1 if x.ndim == 1 else x.shape[1]
    pcm = np.clip(np.rint(x * 32767), -32768, 32767).astype("<i2")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp.wav")
    with wave.open(str(tmp), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    tmp.replace(out)
