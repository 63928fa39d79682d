"""Compressed call recordings (callguard.audio.compress): FLAC gives back the sealed WAV
exactly, Opus is small and its length is read from its Ogg pages, both are bit-exact (a
retried upload resumes by the same name), broken files are refused with a clear error."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from callguard.audio.compress import (
    AudioCodecError,
    decode,
    encode,
    ogg_opus_frames,
    seal_of,
    stereo_wav,
    wav_frames,
)


def frames(seconds: float, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(seconds * 8000)
    env = (np.sin(np.arange(n) / 8000 * 2 * np.pi) > 0)[:, None]
    return (rng.standard_normal((n, 2)) * 3000 * env).astype(np.int16)


def test_flac_is_lossless_and_rebuilds_the_desks_seal():
    wav = stereo_wav(frames(7.3), 8000)
    enc = encode(wav, "flac")
    assert enc.frames == len(frames(7.3))
    assert seal_of(enc.data, "flac", 8000) == hashlib.sha256(wav).hexdigest()
    assert np.array_equal(decode(enc.data), wav_frames(wav)[0])


def test_opus_is_small_and_its_length_comes_from_its_pages():
    wav = stereo_wav(frames(30.0), 8000)
    enc = encode(wav, "opus")
    raw = len(wav) - 44
    assert len(enc.data) < raw / 6  # ~3 kB/s against 32 kB/s
    decoded = len(decode(enc.data))
    assert decoded == 30 * 8000
    assert abs(ogg_opus_frames(enc.data) - decoded) <= 160  # within one 20 ms packet
    assert seal_of(enc.data, "opus", 8000) is None  # lossy: cannot prove the seal


@pytest.mark.parametrize("codec", ["opus", "flac"])
def test_the_same_samples_always_make_the_same_file(codec):
    wav = stereo_wav(frames(3.0), 8000)
    assert encode(wav, codec).sha256 == encode(wav, codec).sha256


def test_broken_files_are_refused_clearly():
    opus = encode(stereo_wav(frames(3.0), 8000), "opus").data
    with pytest.raises(AudioCodecError, match="truncated"):
        ogg_opus_frames(opus[:-7])
    with pytest.raises(AudioCodecError, match="Ogg"):
        ogg_opus_frames(b"RIFF" + opus)
    with pytest.raises(AudioCodecError):
        decode(b"\x00" * 1000)
    with pytest.raises(AudioCodecError, match="unknown audio codec"):
        encode(stereo_wav(frames(1.0), 8000), "mp3")
