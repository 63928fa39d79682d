"""The counselor's headset, behind a small interface: int16 mono at 8000 Hz both ways.

:class:`NullDevice` (silence in, nothing out) and :class:`FileDevice` (a WAV as microphone,
the speaker written to a WAV) serve tests and headless runs; :class:`SoundDevice` is the
sound card, through PortAudio (``sounddevice``).
"""

from __future__ import annotations

import logging
import threading
import wave
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from callguard.audio.pcmfifo import PcmFifo
from callguard.audio.resample import float_to_int16, resample

log = logging.getLogger(__name__)

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
    from callguard.audio.wavfile import read_wav  # float32 frames × channels

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


#: Headset buffering, in samples at 8 kHz: gather 40 ms before playing (absorbs the sound
#: card's callback blocks and the call loop's jitter), keep at most 200 ms (then drop back
#: to 40 ms, so clock drift never builds up delay).
HEADSET_PRIME = 320
HEADSET_LIMIT = 1600


class SoundDevice:
    """The counselor's headset through PortAudio (the ``sounddevice`` package; on Linux it
    needs ``libportaudio2``). int16 mono at 8000 Hz both ways.

    The sound card runs on its own real-time thread (PortAudio's callbacks) and clock;
    :meth:`read` and :meth:`write` only touch two bounded FIFOs
    (:class:`~callguard.audio.pcmfifo.PcmFifo`), so the call loop never blocks on the card
    and drift between the two clocks never builds up delay. ``input_device`` and
    ``output_device`` are PortAudio device indexes or name substrings (``None``: the
    system's default). Raises ``RuntimeError`` naming the device if it cannot be opened.
    """

    def __init__(self, input_device: str | int | None = None,
                 output_device: str | int | None = None) -> None:
        try:
            import sounddevice as sd
        except (ImportError, OSError) as exc:
            raise RuntimeError("a headset needs the 'sounddevice' package and PortAudio "
                               f"(Debian: libportaudio2): {exc}") from None
        self.mic = PcmFifo(HEADSET_PRIME, HEADSET_LIMIT)
        self.speaker = PcmFifo(HEADSET_PRIME, HEADSET_LIMIT)
        self.card_problems = 0  # callbacks PortAudio flagged (over/underflow in the card)
        self.last_problem = ""  # the last such flag, as PortAudio words it
        streams = []
        try:
            for kind, device, cls, callback in (
                    ("microphone", input_device, sd.InputStream, self._on_input),
                    ("speaker", output_device, sd.OutputStream, self._on_output)):
                try:
                    stream = cls(samplerate=RATE, channels=1, dtype="int16", device=device,
                                 latency="low", callback=callback)
                except (sd.PortAudioError, ValueError) as exc:
                    shown = "the default device" if device is None else repr(device)
                    raise RuntimeError(f"cannot open the headset {kind} ({shown}, "
                                       f"{RATE} Hz mono): {exc}") from None
                streams.append(stream)
            for stream in streams:
                stream.start()
        except BaseException:
            for stream in streams:
                stream.close()
            raise
        self._in, self._out = streams

    # PortAudio's thread: copy and return at once.
    def _on_input(self, indata: np.ndarray, frames: int, time: object, status: Any) -> None:
        if status:
            self._problem(status)
        self.mic.push(indata[:, 0])

    def _on_output(self, outdata: np.ndarray, frames: int, time: object, status: Any) -> None:
        if status:
            self._problem(status)
        outdata[:, 0] = self.speaker.pull(frames)

    def _problem(self, status: Any) -> None:
        self.card_problems += 1
        self.last_problem = str(status)

    def read(self, n: int) -> np.ndarray:
        return self.mic.pull(n)

    def write(self, pcm: np.ndarray) -> None:
        self.speaker.push(pcm)

    def close(self) -> None:
        for stream in (self._in, self._out):
            stream.stop()
            stream.close()
        log.info("headset closed: microphone dropped %d / padded %d samples, speaker "
                 "dropped %d / padded %d; the card flagged %d callbacks (last: %s)",
                 self.mic.dropped, self.mic.padded, self.speaker.dropped,
                 self.speaker.padded, self.card_problems, self.last_problem or "none")
