"""Compressed call recordings: the sealed stereo WAV as Opus (small) or FLAC (lossless).

A call's evidence seal (``calls.recording_sha256``) is the SHA-256 of its stereo WAV:
PCM16 little-endian, left = caller, right = counselor, at the call's sample rate (8 kHz).
The desk keeps that WAV's samples; for the central server it encodes them:

- ``flac``: lossless. Decoding gives back the very same frames, so the server rebuilds the
  WAV and checks the desk's seal itself (end-to-end verification). About 6–12 kB/s for
  both legs of telephone speech (measured; the line noise in the pauses decides).
- ``opus``: lossy, in Ogg, 24 kbit/s for both legs (about 3 kB/s). The server can check
  only the file's own SHA-256 (its name in the blob store), which the desk computed from
  its sealed samples and sends beside the seal; the sealed original stays on the desk.

PyAV (installed with faster-whisper) does the encoding: FFmpeg's FLAC encoder and libopus.
"""

from __future__ import annotations

import hashlib
import io
import wave
from dataclasses import dataclass

import av
import numpy as np

from callguard.errors import InputError

CODECS = ("opus", "flac")
OPUS_BIT_RATE = 24_000  # bits/s, both legs together (narrowband speech, 8 kHz input)
_FORMAT = {"opus": ("ogg", "libopus"), "flac": ("flac", "flac")}


class AudioCodecError(InputError):
    """A compressed recording could not be decoded, or a codec name is unknown."""


@dataclass(frozen=True, slots=True)
class Encoded:
    """One compressed recording: its bytes, their SHA-256 (hex), the codec and the number
    of stereo frames (samples per leg) it was made from."""

    data: bytes
    sha256: str
    codec: str
    frames: int
    sample_rate: int


def wav_frames(wav_bytes: bytes) -> tuple[np.ndarray, int]:
    """A stereo PCM16 WAV's frames as an int16 array ``(frames, 2)``, and its rate (Hz)."""
    try:
        with wave.open(io.BytesIO(wav_bytes), "rb") as w:
            if w.getnchannels() != 2 or w.getsampwidth() != 2:
                raise AudioCodecError("a call recording is a 16-bit stereo WAV")
            rate, raw = w.getframerate(), w.readframes(w.getnframes())
    except (wave.Error, EOFError) as exc:
        raise AudioCodecError(f"not a WAV file: {exc}") from exc
    return np.frombuffer(raw, dtype="<i2").reshape(-1, 2), rate


def stereo_wav(frames: np.ndarray, sample_rate: int) -> bytes:
    """The stereo WAV file's bytes for int16 ``frames`` ``(n, 2)``: the byte layout the
    store seals (``wave`` module header, frames interleaved caller/counselor)."""
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(np.ascontiguousarray(frames, dtype="<i2").tobytes())
    return out.getvalue()


def encode(wav_bytes: bytes, codec: str = "opus") -> Encoded:
    """Compress a sealed stereo WAV (see the module docstring) with ``codec``."""
    if codec not in CODECS:
        raise AudioCodecError(f"unknown audio codec {codec!r}: use one of {', '.join(CODECS)}")
    frames, rate = wav_frames(wav_bytes)
    container, encoder = _FORMAT[codec]
    buf = io.BytesIO()
    # Bit-exact output (no random Ogg serial, no encoder version string): the same samples
    # always give the same file, so an upload interrupted by a crash resumes by its name.
    options = {"fflags": "+bitexact", **({"serial_offset": "0"} if container == "ogg" else {})}
    with av.open(buf, "w", format=container, options=options) as out:
        stream = out.add_stream(encoder, rate=rate, layout="stereo")
        if codec == "opus":
            stream.bit_rate = OPUS_BIT_RATE
        # Whole-second blocks keep memory flat on long calls.
        for start in range(0, len(frames), rate):
            block = np.ascontiguousarray(frames[start:start + rate]).reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(block, format="s16", layout="stereo")
            frame.sample_rate = rate
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    data = buf.getvalue()
    return Encoded(data, hashlib.sha256(data).hexdigest(), codec, len(frames), rate)


def decode(data: bytes, sample_rate: int = 8000) -> np.ndarray:
    """A compressed recording's frames as int16 ``(n, 2)`` at ``sample_rate`` Hz.

    FLAC gives back exactly the encoded frames; Opus about as many (whole 20 ms packets,
    the encoder's delay removed by the decoder)."""
    try:
        with av.open(io.BytesIO(data), "r") as src:
            stream = src.streams.audio[0]
            resampler = av.AudioResampler(format="s16", layout="stereo", rate=sample_rate)
            parts = []
            for frame in src.decode(stream):
                for out in resampler.resample(frame):
                    parts.append(out.to_ndarray().reshape(-1, 2))
            for out in resampler.resample(None):
                parts.append(out.to_ndarray().reshape(-1, 2))
    except (av.FFmpegError, IndexError, ValueError) as exc:
        raise AudioCodecError(f"the recording cannot be decoded: {exc}") from exc
    if not parts:
        return np.zeros((0, 2), dtype=np.int16)
    return np.concatenate(parts).astype(np.int16, copy=False)


def ogg_opus_frames(data: bytes, sample_rate: int = 8000) -> int:
    """Samples per leg of an Ogg Opus file, without decoding it: the last page's granule
    position (48 kHz) less the pre-skip in its OpusHead, at ``sample_rate``. Walks every
    page header (a file that is not whole Ogg pages is refused); about 0.2 ms a call-hour,
    where decoding takes some 18 CPU seconds."""
    import struct

    pos, granule, pre_skip = 0, -1, None
    try:
        while pos < len(data):
            if data[pos:pos + 4] != b"OggS" or data[pos + 4] != 0:
                raise AudioCodecError(f"not an Ogg page at byte {pos}")
            nseg = data[pos + 26]
            lacing = data[pos + 27:pos + 27 + nseg]
            if len(lacing) != nseg:
                raise AudioCodecError("a truncated Ogg page")
            body_at = pos + 27 + nseg
            end = body_at + sum(lacing)
            if end > len(data):
                raise AudioCodecError("a truncated Ogg page")
            if pre_skip is None:
                if data[body_at:body_at + 8] != b"OpusHead":
                    raise AudioCodecError("not an Ogg Opus stream (no OpusHead)")
                pre_skip = struct.unpack_from("<H", data, body_at + 10)[0]
            page_granule = struct.unpack_from("<q", data, pos + 6)[0]
            if page_granule != -1:
                granule = page_granule
            pos = end
    except (IndexError, struct.error) as exc:
        raise AudioCodecError(f"a truncated or broken Ogg stream ({exc})") from None
    if pre_skip is None or granule < pre_skip:
        raise AudioCodecError("an Ogg Opus stream with no audio")
    return (granule - pre_skip) * sample_rate // 48000


def seal_of(data: bytes, codec: str, sample_rate: int) -> str | None:
    """The SHA-256 (hex) of the stereo WAV a lossless recording decodes to: equal to the
    desk's seal when nothing was lost or changed. ``None`` for a lossy codec."""
    if codec != "flac":
        return None
    return hashlib.sha256(stereo_wav(decode(data, sample_rate), sample_rate)).hexdigest()
