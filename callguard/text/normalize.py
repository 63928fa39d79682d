"""Length-preserving text normalisation with offset maps.

All offsets in callguard's text layer are indices into the *NFC-normalised* input string
(Python ``str`` indices, i.e. Unicode code points). ``fold`` keeps the length unchanged, so
an index into the folded text is also an index into the NFC text. ``squeeze`` removes
characters and returns a map from each kept character back to its NFC index.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

_FULLWIDTH_START = 0xFF01
_FULLWIDTH_END = 0xFF5E
_FULLWIDTH_OFFSET = 0xFEE0


def nfc(text: str) -> str:
    """Return ``text`` in Unicode NFC (composed Hangul syllables)."""
    return unicodedata.normalize("NFC", text)


def _fold_char(ch: str) -> str:
    code = ord(ch)
    if _FULLWIDTH_START <= code <= _FULLWIDTH_END:
        ch = chr(code - _FULLWIDTH_OFFSET)
    low = ch.lower()
    # Some characters lower-case to two code points (e.g. 'İ'); keep the length fixed.
    return low if len(low) == 1 else ch


def fold(text: str) -> str:
    """Case-fold Latin letters and map full-width ASCII to ASCII, one char per char.

    The result has exactly ``len(text)`` characters, so offsets carry over unchanged.
    Hangul and compatibility jamo (ㅅㅂ) are left as they are.
    """
    return "".join(_fold_char(ch) for ch in text)


def is_gap_char(ch: str) -> bool:
    """True for characters that space-insensitive matching skips.

    White space, punctuation and symbols are skipped (씨 발, 씨.발, 씨-발 all read as 씨발);
    letters, Hangul, jamo and digits are kept (digits carry meaning in slang such as 18놈).
    """
    if ch.isspace():
        return True
    cat = unicodedata.category(ch)
    return cat[0] in ("P", "S", "Z", "C")


@dataclass(frozen=True, slots=True)
class Squeezed:
    """Text with gap characters removed.

    ``text[i]`` came from index ``origin[i]`` of the string that was squeezed.
    """

    text: str
    origin: tuple[int, ...]

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Map a half-open span ``[start, end)`` of the squeezed text back to the source."""
        return self.origin[start], self.origin[end - 1] + 1


def squeeze(text: str) -> Squeezed:
    """Remove gap characters (see :func:`is_gap_char`), keeping an offset map."""
    kept: list[str] = []
    origin: list[int] = []
    for i, ch in enumerate(text):
        if not is_gap_char(ch):
            kept.append(ch)
            origin.append(i)
    return Squeezed("".join(kept), tuple(origin))


def squeeze_term(term: str) -> str:
    """The squeezed, folded form of a keyword (what space-insensitive matching looks for)."""
    return squeeze(fold(nfc(term))).text
