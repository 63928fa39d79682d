"""G.711 µ-law (PCMU, RTP payload type 0) and A-law (PCMA, payload type 8) codecs.

Formats:

* **G.711 codes**: 8 kHz, mono, one byte per sample (``bytes`` or a ``uint8`` array), exactly
  as carried in an RTP payload. Codes are the on-the-wire values (µ-law bits inverted, A-law
  even bits toggled with 0x55), not the raw segment/mantissa numbers.
* **Linear PCM**: signed 16-bit (``int16`` arrays), full scale ±32768. As ``bytes``
  ("PCM16 bytes") it is little-endian int16, 2 bytes per sample, mono.

The tables follow the ITU-T G.191 Software Tool Library reference implementation of G.711
(``ulaw_compress``/``ulaw_expand``, ``alaw_compress``/``alaw_expand``), bit for bit:

* µ-law looks at the 14 most significant bits, A-law at the 13 most significant bits.
* A negative sample ``x`` is quantised by its one's complement ``~x`` (= ``-x - 1``), so the
  quantiser is symmetric around -0.5 LSB. (Python's deprecated ``audioop.lin2ulaw`` uses the
  two's complement for µ-law and so differs from G.191 by one step for some negative inputs;
  its A-law encoder and both decoders agree with G.191.)
* Decoded values sit in the middle of each quantisation interval; µ-law decodes
  0xFF and 0x7F both to 0, so 0x7F is never produced by the encoder.

Everything is table lookup: a 256-entry decode table and a 65536-entry encode table per law,
built once with numpy at import (about 1 ms). No state, no I/O.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = [
    "ALAW_DECODE_TABLE",
    "ALAW_ENCODE_TABLE",
    "SAMPLE_RATE",
    "ULAW_DECODE_TABLE",
    "ULAW_ENCODE_TABLE",
    "alaw_decode",
    "alaw_encode",
    "alaw_to_pcm16",
    "pcm16_from_bytes",
    "pcm16_to_alaw",
    "pcm16_to_bytes",
    "pcm16_to_ulaw",
    "ulaw_decode",
    "ulaw_encode",
    "ulaw_to_pcm16",
]

#: G.711 is defined at 8 kHz, one code per sample.
SAMPLE_RATE = 8000

Int16Array = npt.NDArray[np.int16]
UInt8Array = npt.NDArray[np.uint8]


def _bit_length(values: npt.NDArray[np.int32]) -> npt.NDArray[np.int32]:
    """``int.bit_length`` for small non-negative integers (exact: frexp of an integer)."""
    return np.frexp(values.astype(np.float64))[1].astype(np.int32)


def _build_ulaw_decode() -> Int16Array:
    # G.191 ulaw_expand: the code is stored inverted; sign bit set means positive.
    code = np.arange(256, dtype=np.int32)
    sign = np.where(code < 0x80, -1, 1)
    inv = ~code & 0xFF
    exponent = (inv >> 4) & 0x07
    mantissa = inv & 0x0F
    step = 4 << (exponent + 1)
    magnitude = (0x80 << exponent) + step * mantissa + step // 2 - 4 * 33
    return (sign * magnitude).astype(np.int16)


def _build_ulaw_encode() -> UInt8Array:
    # Index = the int16 sample reinterpreted as uint16, so encoding is table[pcm.view(uint16)].
    x = np.arange(65536, dtype=np.uint16).view(np.int16).astype(np.int32)
    # G.191 ulaw_compress: 14-bit magnitude (one's complement for negatives) plus the bias 33.
    absno = np.where(x < 0, (~x) >> 2, x >> 2) + 33
    absno = np.minimum(absno, 0x1FFF)
    segno = 1 + _bit_length(absno >> 6)
    high = 8 - segno
    low = 0x0F - ((absno >> segno) & 0x0F)
    out = (high << 4) | low
    out = np.where(x >= 0, out | 0x80, out)
    return out.astype(np.uint8)


def _build_alaw_decode() -> Int16Array:
    # G.191 alaw_expand.
    code = np.arange(256, dtype=np.int32)
    ix = (code ^ 0x55) & 0x7F
    iexp = ix >> 4
    mant = ix & 0x0F
    mant = np.where(iexp > 0, mant + 16, mant)
    mant = (mant << 4) + 0x08
    mant = np.where(iexp > 1, mant << np.maximum(iexp - 1, 0), mant)
    return np.where(code > 127, mant, -mant).astype(np.int16)


def _build_alaw_encode() -> UInt8Array:
    x = np.arange(65536, dtype=np.uint16).view(np.int16).astype(np.int32)
    # G.191 alaw_compress: 12-bit magnitude (one's complement for negatives), 0..2047.
    ix = np.where(x < 0, (~x) >> 4, x >> 4)
    # Segment 0 and 1 share a step; above 15 the exponent is the position of the top bit.
    iexp = np.maximum(_bit_length(ix) - 4, 1)
    seg_code = (iexp << 4) + (ix >> (iexp - 1)) - 16
    out = np.where(ix > 15, seg_code, ix)
    out = np.where(x >= 0, out | 0x80, out) ^ 0x55
    return out.astype(np.uint8)


#: Code (0..255) → linear PCM16 sample.
ULAW_DECODE_TABLE: Int16Array = _build_ulaw_decode()
ALAW_DECODE_TABLE: Int16Array = _build_alaw_decode()
#: PCM16 sample reinterpreted as uint16 (``pcm.view(np.uint16)``) → code.
ULAW_ENCODE_TABLE: UInt8Array = _build_ulaw_encode()
ALAW_ENCODE_TABLE: UInt8Array = _build_alaw_encode()
for _table in (ULAW_DECODE_TABLE, ALAW_DECODE_TABLE, ULAW_ENCODE_TABLE, ALAW_ENCODE_TABLE):
    _table.flags.writeable = False  # shared module state: nobody may patch a codec by accident
del _table


def _as_int16(pcm: npt.ArrayLike) -> Int16Array:
    """Return ``pcm`` as a C-contiguous int16 array; integer input must fit in int16."""
    arr = np.asarray(pcm)
    if arr.dtype == np.int16:
        return np.ascontiguousarray(arr)
    if arr.dtype.kind in "iu" or arr.size == 0:
        if arr.size and (arr.min() < -32768 or arr.max() > 32767):
            raise ValueError("PCM16 samples must lie in -32768..32767")
        return np.ascontiguousarray(arr, dtype=np.int16)
    # Floats are refused rather than guessed at: is 0.5 half scale or half an LSB?
    raise TypeError(f"expected int16 PCM samples, got dtype {arr.dtype}")


def _as_codes(codes: bytes | bytearray | memoryview | npt.ArrayLike) -> UInt8Array:
    if isinstance(codes, bytes | bytearray | memoryview):
        return np.frombuffer(codes, dtype=np.uint8)
    arr = np.asarray(codes)
    if arr.dtype != np.uint8:
        if arr.dtype.kind not in "iu" or (arr.size and (arr.min() < 0 or arr.max() > 255)):
            raise TypeError(f"expected G.711 codes as uint8/bytes, got dtype {arr.dtype}")
        arr = arr.astype(np.uint8)
    return arr


# --- array API ---------------------------------------------------------------------------


def ulaw_to_pcm16(codes: bytes | npt.ArrayLike) -> Int16Array:
    """Decode µ-law codes (8 kHz, 1 byte per sample) to an int16 PCM array (new array)."""
    return ULAW_DECODE_TABLE[_as_codes(codes)]


def alaw_to_pcm16(codes: bytes | npt.ArrayLike) -> Int16Array:
    """Decode A-law codes (8 kHz, 1 byte per sample) to an int16 PCM array (new array)."""
    return ALAW_DECODE_TABLE[_as_codes(codes)]


def pcm16_to_ulaw(pcm: npt.ArrayLike) -> UInt8Array:
    """Encode int16 PCM samples (8 kHz mono) to a uint8 array of µ-law codes."""
    return ULAW_ENCODE_TABLE[_as_int16(pcm).view(np.uint16)]


def pcm16_to_alaw(pcm: npt.ArrayLike) -> UInt8Array:
    """Encode int16 PCM samples (8 kHz mono) to a uint8 array of A-law codes."""
    return ALAW_ENCODE_TABLE[_as_int16(pcm).view(np.uint16)]


# --- bytes API (RTP payloads in, PCM arrays out, and back) ------------------------------


def ulaw_decode(data: bytes | bytearray | memoryview) -> Int16Array:
    """Decode a µ-law payload (1 byte per sample, 8 kHz) to int16 PCM samples."""
    return ulaw_to_pcm16(data)


def alaw_decode(data: bytes | bytearray | memoryview) -> Int16Array:
    """Decode an A-law payload (1 byte per sample, 8 kHz) to int16 PCM samples."""
    return alaw_to_pcm16(data)


def ulaw_encode(pcm: npt.ArrayLike) -> bytes:
    """Encode int16 PCM samples (8 kHz mono) to a µ-law payload, 1 byte per sample."""
    return pcm16_to_ulaw(pcm).tobytes()


def alaw_encode(pcm: npt.ArrayLike) -> bytes:
    """Encode int16 PCM samples (8 kHz mono) to an A-law payload, 1 byte per sample."""
    return pcm16_to_alaw(pcm).tobytes()


def pcm16_from_bytes(data: bytes | bytearray | memoryview) -> Int16Array:
    """Little-endian signed 16-bit PCM bytes (2 bytes per sample) → int16 array (a copy)."""
    if len(data) % 2:
        raise ValueError(f"PCM16 byte string has odd length {len(data)}")
    return np.frombuffer(data, dtype="<i2").astype(np.int16)


def pcm16_to_bytes(pcm: npt.ArrayLike) -> bytes:
    """int16 samples → little-endian signed 16-bit PCM bytes, 2 bytes per sample."""
    return _as_int16(pcm).astype("<i2", copy=False).tobytes()


def round_trip(pcm: np.ndarray, codec: str | None) -> np.ndarray:
    """int16 ``pcm`` encoded and decoded as a phone line would carry it: ``codec``
    ``"ulaw"`` or ``"alaw"``; ``None`` returns it unchanged."""
    if codec == "ulaw":
        return ulaw_to_pcm16(pcm16_to_ulaw(pcm))
    if codec == "alaw":
        return alaw_to_pcm16(pcm16_to_alaw(pcm))
    if codec is not None:
        raise ValueError(f"unknown codec {codec!r}")
    return pcm
