"""Sample-rate conversion: 8 kHz ↔ 16 kHz for telephony and any rate → 16 kHz for Whisper.

Formats:

* Input samples are mono 1-D arrays, either ``int16`` (full scale 32768) or floating point
  already scaled to -1..1. 2-D input is ``(frames, channels)`` and is mixed to mono by
  :func:`to_mono` where a function says so.
* Output is always ``float32`` scaled to -1..1 (int16 input is divided by 32768). The filter
  can overshoot full scale by a few per cent on clipped input: values are **not** clipped;
  use :func:`float_to_int16` (which clips) before G.711 encoding or writing PCM16.
* Time: output sample ``m`` at rate ``rate_out`` lies at the same instant as input sample
  ``m * rate_in / rate_out``; the filter's delay is compensated, so sample indices on the
  call timeline map exactly (``16k index = 2 * 8k index``). One-shot conversion of ``n``
  samples returns ``ceil(n * rate_out / rate_in)`` samples.

The filter is a Kaiser-windowed sinc low-pass applied in polyphase form (rational ratio
``up/down`` reduced by the gcd), computed with numpy only. The cut-off sits at the lower of
the two Nyquist frequencies, so 8 → 16 kHz keeps the whole telephone band and removes the
images above 4 kHz, and 16 → 8 kHz removes what would alias. Measured with the default
design for 8 ↔ 16 kHz: flat within 0.001 dB up to 3.6 kHz, -0.3 dB at 3.9 kHz, -6 dB at
the 4 kHz cut-off, -30 dB at 4.1 kHz and below -82 dB from 4.2 kHz up (so a 7 kHz tone does
not alias into the 8 kHz output). ``tests/test_audio_resample.py`` checks these bounds.

:class:`StreamResampler` (and its 8 → 16 kHz form :class:`Upsampler`) keeps the filter
history across chunks: pushing audio in any chunk sizes and then calling ``flush()`` gives
the same samples as one-shot conversion (to float rounding), so chunk boundaries cannot
click. Until ``flush()`` its output lags the input by :attr:`StreamResampler.delay` output
samples (the filter's look-ahead; about 8 ms at 8 → 16 kHz).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import numpy.typing as npt

__all__ = [
    "WHISPER_RATE",
    "StreamResampler",
    "Upsampler",
    "design_lowpass",
    "downsample_16k_to_8k",
    "float_to_int16",
    "int16_to_float",
    "resample",
    "split_channels",
    "to_16k",
    "to_mono",
    "upsample_8k_to_16k",
]

#: faster-whisper expects 16 kHz mono float32.
WHISPER_RATE = 16000

FloatArray = npt.NDArray[np.float32]

# Default design, measured at 8 -> 16 kHz (257 taps at 16 kHz, 8 ms delay): passband flat
# within 0.001 dB to 3.6 kHz, -0.3 dB at 3.9 kHz, -6 dB at 4 kHz, -30 dB at 4.1 kHz and
# below -82 dB from 4.2 kHz. 40 crossings only reached -1.2 / -18 dB at 3.9 / 4.1 kHz; 100
# reached -0.0 / -73 dB at 2.5x the cost. Cost here is ~128 MACs per 16 kHz output sample.
DEFAULT_ZERO_CROSSINGS = 64
DEFAULT_BETA = 8.0
# The cut-off as a fraction of the lower Nyquist frequency. 1.0 centres the transition band
# on Nyquist: the band edge (3.9 kHz at 8 kHz) passes, and aliasing is held to the narrow
# transition band just under Nyquist, where telephone speech has no energy anyway.
DEFAULT_CUTOFF = 1.0


def int16_to_float(samples: npt.ArrayLike) -> FloatArray:
    """int16 PCM → float32 in -1..1 (divides by 32768). Float input passes through as float32."""
    arr = np.asarray(samples)
    if arr.dtype.kind in "iu":
        return (arr.astype(np.float32) / np.float32(32768.0)).astype(np.float32, copy=False)
    if arr.dtype.kind == "f":
        return arr.astype(np.float32, copy=False)
    raise TypeError(f"expected int16 or float samples, got dtype {arr.dtype}")


def float_to_int16(samples: npt.ArrayLike) -> npt.NDArray[np.int16]:
    """float -1..1 → int16 PCM (× 32768, rounded to nearest, clipped to -32768..32767)."""
    arr = np.asarray(samples, dtype=np.float64) * 32768.0
    return np.clip(np.rint(arr), -32768, 32767).astype(np.int16)


def split_channels(interleaved: npt.ArrayLike, channels: int) -> list[np.ndarray]:
    """Split interleaved samples (L R L R … for 2 channels) into one array per channel.

    ``interleaved`` is 1-D with a length that is a multiple of ``channels`` (e.g. a stereo
    call recording with the caller on the left and the counselor on the right). The dtype is
    kept; each returned array is a contiguous copy.
    """
    arr = np.asarray(interleaved)
    if channels < 1:
        raise ValueError("channels must be >= 1")
    if arr.ndim != 1 or arr.size % channels:
        raise ValueError(f"need a 1-D array whose length is a multiple of {channels}")
    frames = arr.reshape(-1, channels)
    return [np.ascontiguousarray(frames[:, c]) for c in range(channels)]


def to_mono(samples: npt.ArrayLike) -> FloatArray:
    """Mix ``(frames, channels)`` to mono float32 -1..1 by averaging; 1-D input is only scaled."""
    arr = int16_to_float(samples)
    if arr.ndim == 1:
        return arr
    if arr.ndim == 2:
        return arr.mean(axis=1, dtype=np.float64).astype(np.float32)
    raise ValueError(f"expected 1-D or (frames, channels) samples, got shape {arr.shape}")


def design_lowpass(
    up: int,
    down: int,
    *,
    zero_crossings: int = DEFAULT_ZERO_CROSSINGS,
    beta: float = DEFAULT_BETA,
    cutoff: float = DEFAULT_CUTOFF,
) -> np.ndarray:
    """Kaiser-windowed sinc low-pass for resampling by ``up/down`` (float64 taps).

    The filter runs at the intermediate rate ``up * rate_in``. Its cut-off is ``cutoff`` times
    the lower of the input and output Nyquist frequencies; it spans ``zero_crossings`` zeros
    of that sinc on each side, has odd length (integer delay ``(len - 1) / 2`` samples at the
    intermediate rate) and a DC gain of ``up`` (the gain lost by zero-stuffing).
    """
    if up < 1 or down < 1:
        raise ValueError("up and down must be positive integers")
    # Cut-off in cycles per intermediate-rate sample.
    fc = 0.5 * cutoff / max(up, down)
    half = math.ceil(zero_crossings / (2.0 * fc))
    n = np.arange(-half, half + 1, dtype=np.float64)
    taps = 2.0 * fc * np.sinc(2.0 * fc * n) * np.kaiser(2 * half + 1, beta)
    return taps * (up / taps.sum())


@lru_cache(maxsize=32)
def _polyphase(up: int, down: int) -> tuple[np.ndarray, int, int]:
    """Polyphase table ``(up, K)``: row ``p`` holds taps ``h[p + k*up]``; plus K and delay."""
    taps = design_lowpass(up, down)
    delay = (len(taps) - 1) // 2
    k = -(-len(taps) // up)
    padded = np.zeros(k * up)
    padded[: len(taps)] = taps
    table = np.ascontiguousarray(padded.reshape(k, up).T)
    table.flags.writeable = False
    return table, k, delay


class StreamResampler:
    """Streaming rational-ratio resampler, mono, float32 -1..1 out.

    ``push(chunk)`` takes any number of samples (int16 or float -1..1) at ``rate_in`` and
    returns the output samples that are now fully determined; ``flush()`` ends the stream,
    returns the rest (the input is taken as zero after its end) and resets the resampler
    for a new stream. The concatenation of all returned arrays equals
    ``resample(whole_input, rate_in, rate_out)``. Not thread-safe; no clock: samples only.
    """

    # Outputs computed per vectorised block; bounds the temporary (block, K) matrices.
    _BLOCK = 4096

    def __init__(self, rate_in: int, rate_out: int) -> None:
        if rate_in <= 0 or rate_out <= 0:
            raise ValueError("sample rates must be positive")
        g = math.gcd(rate_in, rate_out)
        self.rate_in = rate_in
        self.rate_out = rate_out
        self._up = rate_out // g
        self._down = rate_in // g
        self._table, self._k, self._delay = _polyphase(self._up, self._down)
        # Convolution wastes (down - 1) of every down outputs but runs in C; the gather path
        # computes only what is needed and wins for ratios like 160/441 (44.1 kHz).
        self._use_convolve = self._up <= 8 and self._down <= 8
        self._reset()

    @property
    def delay(self) -> int:
        """Output samples held back before ``flush()`` (the filter look-ahead), at most."""
        # Output m needs input up to floor((m*down + D) / up).
        return -(-self._delay // self._down) + 1

    def _reset(self) -> None:
        # Input history with absolute input index of its first sample; K-1 zeros stand for
        # the silence before the stream so the first outputs need no special case.
        self._buf = np.zeros(self._k - 1, dtype=np.float64)
        self._buf_start = -(self._k - 1)
        self._received = 0  # input samples pushed so far
        self._next_out = 0  # index of the next output sample

    def push(self, samples: npt.ArrayLike) -> FloatArray:
        """Add input samples (1-D, int16 or float -1..1); return the output now available."""
        chunk = int16_to_float(samples)
        if chunk.ndim != 1:
            raise ValueError("StreamResampler takes mono 1-D samples; see to_mono()")
        if chunk.size:
            self._buf = np.concatenate([self._buf, chunk.astype(np.float64)])
            self._received += chunk.size
        # Output m is ready when its newest input index (m*down + D) // up < received.
        numerator = self._up * self._received - 1 - self._delay
        end = numerator // self._down + 1 if numerator >= 0 else 0
        return self._emit(end)

    def flush(self) -> FloatArray:
        """End of stream: return the remaining ``ceil(n * up / down)`` outputs, then reset."""
        total = -(-self._received * self._up // self._down)
        # Zeros after the end of the input, enough for the last output's look-ahead.
        pad = (total * self._down + self._delay) // self._up + 1 - self._received
        if pad > 0:
            self._buf = np.concatenate([self._buf, np.zeros(pad)])
        out = self._emit(total)
        self._reset()
        return out

    def _emit(self, end: int) -> FloatArray:
        start = self._next_out
        if end <= start:
            return np.zeros(0, dtype=np.float32)
        m = np.arange(start, end, dtype=np.int64)
        t = m * self._down + self._delay
        base = t // self._up - self._buf_start  # newest input used, as an index into _buf
        phase = t % self._up
        # y[m] = sum_k h[phase + k*up] * x[base - k]
        if self._use_convolve:
            # Few phases (8 <-> 16 kHz): one C-speed convolution per phase over the buffer.
            out = np.empty(m.size, dtype=np.float64)
            for p in np.unique(phase):
                sel = phase == p
                full = np.convolve(self._buf, self._table[p], mode="valid")
                out[sel] = full[base[sel] - (self._k - 1)]
        else:
            parts = []
            for lo in range(0, m.size, self._BLOCK):
                idx = base[lo : lo + self._BLOCK, None] - np.arange(self._k)[None, :]
                rows = self._table[phase[lo : lo + self._BLOCK]]
                parts.append(np.sum(rows * self._buf[idx], axis=1))
            out = np.concatenate(parts)
        self._next_out = end
        # Drop history the next output can no longer reach.
        next_base = (end * self._down + self._delay) // self._up
        keep_from = next_base - (self._k - 1)
        drop = keep_from - self._buf_start
        if drop > 0:
            self._buf = self._buf[drop:]
            self._buf_start = keep_from
        return out.astype(np.float32)


class Upsampler(StreamResampler):
    """Streaming 8 kHz → 16 kHz (telephone audio → Whisper), float32 -1..1 out.

    Each pushed 8 kHz sample yields two 16 kHz samples, delayed by :attr:`delay` output
    samples until ``flush()``. Chunked output equals :func:`upsample_8k_to_16k`.
    """

    def __init__(self) -> None:
        super().__init__(8000, 16000)


def resample(samples: npt.ArrayLike, rate_in: int, rate_out: int) -> FloatArray:
    """One-shot mono resampling; float32 -1..1 out, ``ceil(n * rate_out / rate_in)`` samples.

    ``samples`` is 1-D int16 or float -1..1 (use :func:`to_mono` first for multi-channel).
    Equal rates return the input converted to float32 (no filtering).
    """
    arr = int16_to_float(samples)
    if arr.ndim != 1:
        raise ValueError("resample takes mono 1-D samples; see to_mono()")
    if rate_in == rate_out:
        return arr.copy()
    stream = StreamResampler(rate_in, rate_out)
    head = stream.push(arr)
    return np.concatenate([head, stream.flush()])


def upsample_8k_to_16k(samples: npt.ArrayLike) -> FloatArray:
    """8 kHz mono (int16 or float -1..1) → 16 kHz float32 -1..1, exactly 2 × as many samples."""
    return resample(samples, 8000, 16000)


def downsample_16k_to_8k(samples: npt.ArrayLike) -> FloatArray:
    """16 kHz mono (int16 or float -1..1) → 8 kHz float32 -1..1 with anti-alias filtering.

    For playing 16 kHz prompts on the phone: pass the result through :func:`float_to_int16`
    and then a G.711 encoder.
    """
    return resample(samples, 16000, 8000)


def to_16k(samples: npt.ArrayLike, rate: int) -> FloatArray:
    """Any-rate audio → 16 kHz mono float32 -1..1, the input faster-whisper expects.

    ``samples`` is 1-D (mono) or ``(frames, channels)``, int16 or float -1..1; channels are
    averaged. ``rate`` is the input sample rate in Hz (any positive integer; 8000, 44100 and
    48000 are all exact rational ratios).
    """
    return resample(to_mono(samples), rate, WHISPER_RATE)
