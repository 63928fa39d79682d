"""Audio helpers shared by the telephony tests: real speech at telephone rate, and ways to
find a known signal in what a peer heard (alignment, SNR, sample-exact search)."""

from __future__ import annotations

import numpy as np
from conftest import DATA
from peers.baresip import read_wav

from callguard.audio.resample import downsample_16k_to_8k, float_to_int16

RATE = 8000


def clip(name: str) -> np.ndarray:
    """speech-ko clip ``name`` (16 kHz) at 8 kHz int16, low-passed and decimated 2:1."""
    x, rate = read_wav(DATA / "speech-ko" / f"{name}.wav")
    assert rate == 16000
    return float_to_int16(downsample_16k_to_8k(x.astype(np.float64) / 32768.0))


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * RATE), np.int16)


def align(haystack: np.ndarray, needle: np.ndarray) -> tuple[int, float]:
    """Offset in samples of the best alignment of ``needle`` in ``haystack`` (FFT
    cross-correlation) and the normalised correlation there (0 if it runs off the end)."""
    h = haystack.astype(np.float64)
    n = needle.astype(np.float64)
    size = 1 << int(np.ceil(np.log2(h.size + n.size)))
    corr = np.fft.irfft(np.fft.rfft(h, size) * np.conj(np.fft.rfft(n, size)), size)[:h.size]
    pos = int(np.argmax(corr))
    seg = h[pos:pos + n.size]
    if seg.size < n.size:
        return pos, 0.0
    return pos, float(np.dot(seg, n) / (np.linalg.norm(seg) * np.linalg.norm(n) + 1e-9))


def snr_db(ref: np.ndarray, got: np.ndarray) -> float:
    """SNR in dB of ``got`` against ``ref`` at their best alignment."""
    pos, _ = align(got, ref)
    r = ref.astype(np.float64)
    seg = got[pos:pos + r.size].astype(np.float64)
    n = min(seg.size, r.size)
    err = seg[:n] - r[:n]
    return float(10 * np.log10(np.sum(r[:n] ** 2) / max(np.sum(err ** 2), 1e-9)))


def exact_offset(got: np.ndarray, want: np.ndarray, probe: int = 800) -> int | None:
    """Offset at which ``want`` starts in ``got`` judged sample-exact on ``probe`` samples
    from its first loud one (|x| > 256), or None. Callers compare the rest themselves."""
    first = int(np.flatnonzero(np.abs(want) > 256)[0])
    head = want[first:first + probe]
    for c in np.flatnonzero(got == want[first]):
        off = int(c) - first
        if off >= 0 and np.array_equal(got[off + first:off + first + head.size], head):
            return off
    return None
