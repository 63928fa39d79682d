"""Character error rate (CER) for judging Korean transcripts against references.

Both texts are normalised first (:func:`cer_normalize`): Unicode NFC (composed Hangul
syllables), lower-case, and every space, punctuation mark and symbol dropped, so spacing
(띄어쓰기) and punctuation differences — which Whisper and human transcribers disagree on
all the time and which rules do not depend on — are not counted. What is left is compared
character by character (Unicode code points; one Hangul syllable is one character).

Units: :func:`edit_distance` counts edits (substitutions + deletions + insertions, each 1);
:func:`cer` is edits divided by the normalised reference length (a ratio, 0 = perfect; it
can exceed 1 when the hypothesis has many insertions); :func:`corpus_cer` is total edits
over total reference characters, so long references weigh more than short ones (unlike a
mean of per-file CERs). Pure Python, no dependencies.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["CerScore", "cer", "cer_normalize", "corpus_cer", "edit_distance", "score"]


def _kept(ch: str) -> bool:
    # Drop separators (Z*), punctuation (P*), symbols (S*) and controls/format (C*).
    return unicodedata.category(ch)[0] not in "ZPSC"


def cer_normalize(text: str) -> str:
    """NFC, lower-case, without spaces, punctuation or symbols: the form CER compares.

    Letters (Hangul, Latin, ...) and digits are kept. Lower-casing happens after NFC and the
    result is NFC again (a few lower-case mappings decompose).
    """
    low = unicodedata.normalize("NFC", unicodedata.normalize("NFC", text).lower())
    return "".join(ch for ch in low if _kept(ch))


def edit_distance(ref: str, hyp: str) -> int:
    """Levenshtein distance in characters between two strings as given (not normalised).

    Substitution, deletion and insertion each cost 1. O(len(ref) * len(hyp)) time,
    O(min(len)) memory.
    """
    if len(ref) < len(hyp):
        ref, hyp = hyp, ref  # distance is symmetric; keep the row short
    if not hyp:
        return len(ref)
    prev = list(range(len(hyp) + 1))
    for i, rc in enumerate(ref, 1):
        cur = [i]
        for j, hc in enumerate(hyp, 1):
            cur.append(min(prev[j] + 1,  # delete rc
                           cur[j - 1] + 1,  # insert hc
                           prev[j - 1] + (rc != hc)))  # substitute (or match)
        prev = cur
    return prev[-1]


@dataclass(frozen=True)
class CerScore:
    """Edits and normalised reference length (both in characters) for one pair of texts."""

    edits: int
    ref_chars: int

    @property
    def cer(self) -> float:
        """Edits / reference characters; an empty reference gives 0.0 for an empty
        hypothesis and 1.0 otherwise (every inserted character is an error)."""
        if self.ref_chars:
            return self.edits / self.ref_chars
        return 0.0 if self.edits == 0 else 1.0


def score(reference: str, hypothesis: str) -> CerScore:
    """Normalise both texts and count the character edits from reference to hypothesis."""
    ref = cer_normalize(reference)
    hyp = cer_normalize(hypothesis)
    return CerScore(edit_distance(ref, hyp), len(ref))


def cer(reference: str, hypothesis: str) -> float:
    """Character error rate of ``hypothesis`` against ``reference`` (ratio, ≥ 0).

    Edits (after :func:`cer_normalize`) divided by the normalised reference length. An empty
    reference gives 0.0 when the hypothesis is empty too, else 1.0.
    """
    return score(reference, hypothesis).cer


def corpus_cer(pairs: Iterable[tuple[str, str]]) -> float:
    """Corpus CER over ``(reference, hypothesis)`` pairs: total edits / total reference chars.

    Returns 0.0 for no pairs (or only empty references with empty hypotheses).
    """
    edits = chars = 0
    for ref, hyp in pairs:
        s = score(ref, hyp)
        edits += s.edits
        chars += s.ref_chars
    if chars:
        return edits / chars
    return 0.0 if edits == 0 else 1.0
