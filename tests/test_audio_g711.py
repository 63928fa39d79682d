"""G.711 codecs against the ITU-T G.191 reference algorithm, value by value."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from callguard.audio import g711

# --- a literal scalar port of the G.191 STL g711.c, the oracle for the numpy tables -------


def _ref_ulaw_compress(x: int) -> int:
    absno = ((~x) >> 2) + 33 if x < 0 else (x >> 2) + 33
    absno = min(absno, 0x1FFF)
    i = absno >> 6
    segno = 1
    while i != 0:
        segno += 1
        i >>= 1
    high_nibble = 0x0008 - segno
    low_nibble = 0x000F - ((absno >> segno) & 0x000F)
    out = (high_nibble << 4) | low_nibble
    return out | 0x0080 if x >= 0 else out


def _ref_ulaw_expand(code: int) -> int:
    sign = -1 if code < 0x80 else 1
    mantissa = ~code
    exponent = (mantissa >> 4) & 0x0007
    segment = exponent + 1
    mantissa &= 0x000F
    step = 4 << segment
    return sign * ((0x0080 << exponent) + step * mantissa + step // 2 - 4 * 33)


def _ref_alaw_compress(x: int) -> int:
    ix = (~x) >> 4 if x < 0 else x >> 4
    if ix > 15:
        iexp = 1
        while ix > 16 + 15:
            ix >>= 1
            iexp += 1
        ix -= 16
        ix += iexp << 4
    if x >= 0:
        ix |= 0x0080
    return ix ^ 0x0055


def _ref_alaw_expand(code: int) -> int:
    ix = (code ^ 0x0055) & 0x007F
    iexp = ix >> 4
    mant = ix & 0x000F
    if iexp > 0:
        mant += 16
    mant = (mant << 4) + 0x0008
    if iexp > 1:
        mant <<= iexp - 1
    return mant if code > 127 else -mant


ALL_PCM = np.arange(-32768, 32768, dtype=np.int32).astype(np.int16)
ALL_CODES = np.arange(256, dtype=np.uint8)


@pytest.mark.parametrize(
    ("code", "value"),
    [(0xFF, 0), (0x7F, 0), (0x00, -32124), (0x80, 32124), (0xFE, 8), (0x7E, -8)],
)
def test_ulaw_known_values(code, value):
    assert g711.ulaw_decode(bytes([code]))[0] == value
    assert _ref_ulaw_expand(code) == value
    if code != 0x7F:  # 0x7F is µ-law's second zero; the encoder always picks 0xFF
        assert g711.ulaw_encode(np.array([value], dtype=np.int16)) == bytes([code])


@pytest.mark.parametrize(
    ("code", "value"), [(0xD5, 8), (0x55, -8), (0x2A, -32256), (0xAA, 32256)]
)
def test_alaw_known_values(code, value):
    assert g711.alaw_decode(bytes([code]))[0] == value
    assert _ref_alaw_expand(code) == value
    assert g711.alaw_encode(np.array([value], dtype=np.int16)) == bytes([code])


def test_full_scale_and_silence_encode():
    pcm = np.array([0, -1, 32767, -32768], dtype=np.int16)
    assert list(g711.ulaw_encode(pcm)) == [0xFF, 0x7F, 0x80, 0x00]
    assert list(g711.alaw_encode(pcm)) == [0xD5, 0x55, 0xAA, 0x2A]


def test_tables_match_g191_reference_for_every_input():
    ref_ulaw = np.array([_ref_ulaw_compress(int(x)) for x in ALL_PCM], dtype=np.uint8)
    ref_alaw = np.array([_ref_alaw_compress(int(x)) for x in ALL_PCM], dtype=np.uint8)
    np.testing.assert_array_equal(g711.pcm16_to_ulaw(ALL_PCM), ref_ulaw)
    np.testing.assert_array_equal(g711.pcm16_to_alaw(ALL_PCM), ref_alaw)
    np.testing.assert_array_equal(g711.ulaw_to_pcm16(ALL_CODES),
                                  [_ref_ulaw_expand(int(c)) for c in ALL_CODES])
    np.testing.assert_array_equal(g711.alaw_to_pcm16(ALL_CODES),
                                  [_ref_alaw_expand(int(c)) for c in ALL_CODES])


def test_every_code_round_trips_except_ulaw_negative_zero():
    ulaw_back = g711.pcm16_to_ulaw(g711.ulaw_to_pcm16(ALL_CODES))
    mismatched = np.nonzero(ulaw_back != ALL_CODES)[0]
    assert list(mismatched) == [0x7F]
    assert ulaw_back[0x7F] == 0xFF
    np.testing.assert_array_equal(g711.pcm16_to_alaw(g711.alaw_to_pcm16(ALL_CODES)), ALL_CODES)


def test_decode_is_monotonic_in_code_order():
    # µ-law: 0x00..0x7F run from -32124 up to 0, 0x80..0xFF from 32124 down to 0.
    ulaw = g711.ULAW_DECODE_TABLE.astype(np.int32)
    assert np.all(np.diff(ulaw[:0x80]) > 0)
    assert np.all(np.diff(ulaw[0x80:]) < 0)
    # A-law: after undoing the 0x55 toggling, magnitude grows with the 7 low bits.
    k = np.arange(128)
    positive = g711.ALAW_DECODE_TABLE[(0x80 | k) ^ 0x55].astype(np.int32)
    negative = g711.ALAW_DECODE_TABLE[k ^ 0x55].astype(np.int32)
    assert np.all(np.diff(positive) > 0) and positive[0] == 8
    np.testing.assert_array_equal(negative, -positive)


@pytest.mark.parametrize("law", ["ulaw", "alaw"])
def test_quantiser_is_monotonic_and_bounded(law):
    encode = g711.pcm16_to_ulaw if law == "ulaw" else g711.pcm16_to_alaw
    decode = g711.ulaw_to_pcm16 if law == "ulaw" else g711.alaw_to_pcm16
    out = decode(encode(ALL_PCM)).astype(np.int32)
    assert np.all(np.diff(out) >= 0)
    err = np.abs(out - ALL_PCM.astype(np.int32))
    # The largest step is 1024 (µ-law) / 1024 (A-law): error at most half a step, plus the
    # clipping beyond the last decision level.
    assert err[np.abs(ALL_PCM.astype(np.int32)) < 30000].max() <= 512


@pytest.mark.parametrize("law", ["ulaw", "alaw"])
@pytest.mark.parametrize("level_db", [-3.0, -10.0, -20.0])
def test_sine_snr_at_least_35_db(law, level_db):
    encode = g711.ulaw_encode if law == "ulaw" else g711.alaw_encode
    decode = g711.ulaw_decode if law == "ulaw" else g711.alaw_decode
    n = np.arange(8000)
    x = 32767 * 10 ** (level_db / 20) * np.sin(2 * np.pi * 1013 * n / 8000)
    pcm = np.rint(x).astype(np.int16)
    y = decode(encode(pcm)).astype(np.float64)
    snr = 10 * np.log10(np.sum(pcm.astype(np.float64) ** 2) / np.sum((y - pcm) ** 2))
    assert snr >= 35.0, snr


def test_bytes_helpers_formats():
    pcm = np.array([0, 1, -2, 32767, -32768], dtype=np.int16)
    raw = g711.pcm16_to_bytes(pcm)
    assert raw == b"\x00\x00\x01\x00\xfe\xff\xff\x7f\x00\x80"  # little-endian int16
    np.testing.assert_array_equal(g711.pcm16_from_bytes(raw), pcm)
    with pytest.raises(ValueError):
        g711.pcm16_from_bytes(b"\x00")
    payload = g711.ulaw_encode(pcm)
    assert isinstance(payload, bytes) and len(payload) == pcm.size
    decoded = g711.alaw_decode(bytearray(g711.alaw_encode(pcm)))
    assert decoded.dtype == np.int16 and decoded.size == pcm.size
    assert g711.ulaw_decode(b"").size == 0
    # Python ints are accepted when they fit; floats are refused rather than guessed at.
    assert g711.ulaw_encode([0, 8]) == bytes([0xFF, 0xFE])
    with pytest.raises(TypeError):
        g711.ulaw_encode(np.zeros(4))
    with pytest.raises(ValueError):
        g711.alaw_encode([40000])


def test_tables_are_read_only():
    with pytest.raises(ValueError):
        g711.ULAW_DECODE_TABLE[0] = 1


def test_agrees_with_audioop_where_audioop_follows_g191():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        audioop = pytest.importorskip("audioop")  # removed in Python 3.13
    codes = bytes(range(256))
    np.testing.assert_array_equal(np.frombuffer(audioop.ulaw2lin(codes, 2), "<i2"),
                                  g711.ulaw_decode(codes))
    np.testing.assert_array_equal(np.frombuffer(audioop.alaw2lin(codes, 2), "<i2"),
                                  g711.alaw_decode(codes))
    raw = ALL_PCM.astype("<i2").tobytes()
    assert audioop.lin2alaw(raw, 2) == g711.alaw_encode(ALL_PCM)
    # audioop's µ-law encoder negates (two's complement) where G.191 takes ~x, so the two
    # only agree on non-negative samples.
    positive = ALL_PCM[ALL_PCM >= 0]
    assert audioop.lin2ulaw(positive.astype("<i2").tobytes(), 2) == g711.ulaw_encode(positive)
