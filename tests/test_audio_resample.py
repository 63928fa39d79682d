"""Resampling: lengths, alignment, pass band, image and alias rejection, streaming."""

from __future__ import annotations

import numpy as np
import pytest

from callguard.audio import resample as rs


def _tone(freq: float, rate: int, n: int, amp: float = 0.5) -> np.ndarray:
    return amp * np.sin(2 * np.pi * freq * np.arange(n) / rate)


def _amplitude(y: np.ndarray, freq: float, rate: int) -> float:
    """Amplitude of ``freq`` in the middle half of ``y`` (edges hold the filter's ramps)."""
    mid = np.asarray(y[len(y) // 4 : -len(y) // 4], dtype=np.float64)
    n = np.arange(mid.size)
    return 2 * abs(np.dot(mid, np.exp(-2j * np.pi * freq * n / rate))) / mid.size


def _db(ratio: float) -> float:
    return 20 * np.log10(ratio)


@pytest.mark.parametrize(
    ("rate_in", "rate_out", "n", "expected"),
    [
        (8000, 16000, 801, 1602),
        (16000, 8000, 801, 401),
        (44100, 16000, 4410, 1600),
        (44100, 16000, 1001, 364),  # ceil(1001 * 160 / 441)
        (48000, 16000, 4801, 1601),
        (22050, 16000, 3, 3),
        (8000, 16000, 0, 0),
    ],
)
def test_output_length(rate_in, rate_out, n, expected):
    out = rs.resample(np.zeros(n, dtype=np.int16), rate_in, rate_out)
    assert out.dtype == np.float32 and out.shape == (expected,)


def test_1khz_keeps_frequency_amplitude_and_timeline():
    x = _tone(1000, 8000, 8000)
    y = rs.upsample_8k_to_16k(x)
    ideal = _tone(1000, 16000, 16000)
    # Delay compensated: 16 kHz sample 2n is 8 kHz sample n; away from the stream edges the
    # result is the ideal 16 kHz sine.
    np.testing.assert_allclose(y[400:-400], ideal[400:-400], atol=1e-4)
    assert abs(_db(_amplitude(y, 1000, 16000) / 0.5)) < 0.01


@pytest.mark.parametrize("freq", [300, 1000, 2000, 3000, 3400, 3600])
def test_telephone_band_is_flat_at_8_to_16(freq):
    y = rs.upsample_8k_to_16k(_tone(freq, 8000, 8000))
    assert abs(_db(_amplitude(y, freq, 16000) / 0.5)) < 0.01


def test_3900hz_survives_8_to_16_and_its_image_is_removed():
    y = rs.upsample_8k_to_16k(_tone(3900, 8000, 8000))
    kept = _amplitude(y, 3900, 16000)
    image = _amplitude(y, 4100, 16000)  # where zero-stuffing puts the mirror of 3.9 kHz
    assert _db(kept / 0.5) > -0.5  # measured -0.28 dB
    assert _db(image / 0.5) < -25  # measured -30 dB; >= 4.2 kHz is below -82 dB
    assert _db(_amplitude(rs.upsample_8k_to_16k(_tone(3000, 8000, 8000)), 5000, 16000)) < -70


def test_7khz_is_removed_going_16_to_8():
    # Without the low-pass, 7 kHz would fold to 1 kHz at 8 kHz.
    y = rs.downsample_16k_to_8k(_tone(7000, 16000, 16000))
    assert _db(_amplitude(y, 1000, 8000) / 0.5) < -70
    assert np.abs(y[200:-200]).max() < 1e-3
    kept = rs.downsample_16k_to_8k(_tone(1000, 16000, 16000))
    assert abs(_db(_amplitude(kept, 1000, 8000) / 0.5)) < 0.01


def test_44100_to_16k_keeps_speech_band_and_drops_aliases():
    x = _tone(1000, 44100, 44100) + _tone(12000, 44100, 44100)  # 12 kHz would fold to 4 kHz
    y = rs.to_16k(x, 44100)
    assert y.size == 16000
    assert abs(_db(_amplitude(y, 1000, 16000) / 0.5)) < 0.05
    assert _db(_amplitude(y, 4000, 16000) / 0.5) < -70


def _chunks(x: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    cuts, pos = [], 0
    while pos < x.size:
        step = int(rng.choice([0, 1, 2, 7, 80, 160, 333, 1000]))
        cuts.append(x[pos : pos + step])
        pos += step
    return cuts


@pytest.mark.parametrize(("rate_in", "rate_out"), [(8000, 16000), (16000, 8000), (44100, 16000)])
def test_chunked_equals_one_shot(rate_in, rate_out):
    rng = np.random.default_rng(7)
    x = (rng.standard_normal(rate_in // 2) * 4000).astype(np.int16)
    one_shot = rs.resample(x, rate_in, rate_out)
    stream = rs.StreamResampler(rate_in, rate_out)
    pieces = [stream.push(c) for c in _chunks(x, rng)]
    chunked = np.concatenate([*pieces, stream.flush()])
    assert chunked.shape == one_shot.shape
    np.testing.assert_allclose(chunked, one_shot, rtol=0, atol=1e-6)


def test_upsampler_lag_and_reuse_after_flush():
    up = rs.Upsampler()
    x = _tone(440, 8000, 4000)
    out = up.push(x)
    assert 2 * x.size - up.delay <= out.size <= 2 * x.size
    rest = up.flush()
    assert out.size + rest.size == 2 * x.size
    np.testing.assert_allclose(np.concatenate([out, rest]), rs.upsample_8k_to_16k(x), atol=1e-6)
    # flush() resets: a second stream starts from silence again.
    again = np.concatenate([up.push(x), up.flush()])
    np.testing.assert_allclose(again, rs.upsample_8k_to_16k(x), atol=1e-6)


def test_sample_formats_and_helpers():
    pcm = np.array([0, 16384, -32768], dtype=np.int16)
    np.testing.assert_array_equal(rs.int16_to_float(pcm), [0.0, 0.5, -1.0])
    np.testing.assert_array_equal(rs.float_to_int16([0.0, 0.5, -1.0, 1.0, 2.0, -2.0]),
                                  [0, 16384, -32768, 32767, 32767, -32768])
    assert rs.resample(pcm, 16000, 16000).dtype == np.float32
    left, right = rs.split_channels(np.array([1, 2, 3, 4, 5, 6], dtype=np.int16), 2)
    np.testing.assert_array_equal(left, [1, 3, 5])
    np.testing.assert_array_equal(right, [2, 4, 6])
    with pytest.raises(ValueError):
        rs.split_channels(np.arange(5), 2)
    stereo = np.stack([np.full(100, 16384, np.int16), np.zeros(100, np.int16)], axis=1)
    np.testing.assert_allclose(rs.to_mono(stereo), 0.25)
    y = rs.to_16k(stereo, 8000)
    assert y.shape == (200,) and abs(y[100] - 0.25) < 1e-3
    with pytest.raises(TypeError):
        rs.int16_to_float(np.array(["a"]))


def test_design_has_unit_dc_gain_per_phase():
    taps = rs.design_lowpass(2, 1)
    assert taps.size % 2 == 1
    # Each polyphase branch has gain 1 at DC, so constant input stays constant.
    y = rs.upsample_8k_to_16k(np.full(2000, 0.5))
    np.testing.assert_allclose(y[300:-300], 0.5, atol=1e-5)
