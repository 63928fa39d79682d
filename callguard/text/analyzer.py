"""Korean morphological analysis (Kiwi), loaded once and shared.

A :class:`Morph` carries character offsets into the string that was analysed
(half-open ``[start, end)``, code points). Kiwi's model loads in 1-2.5 s and takes a few
hundred MB, so one instance is built per distinct user dictionary and cached for the
life of the process (:func:`kiwi_analyzer`). Kiwi is not guaranteed to be thread-safe:
callers that share an analyzer across threads must serialise access (the speech worker
owns it on one thread).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

#: Part-of-speech tags Kiwi can produce (Sejong tag set plus Kiwi's extras). Rule files
#: may name these after a slash (``보지/NNG``). Irregular-conjugation suffixes (``VV-I``)
#: are accepted too and compare equal to the base tag.
KIWI_TAGS: frozenset[str] = frozenset({
    "NNG", "NNP", "NNB", "NR", "NP", "VV", "VA", "VX", "VCP", "VCN", "MM", "MAG", "MAJ", "IC",
    "JKS", "JKC", "JKG", "JKO", "JKB", "JKV", "JKQ", "JX", "JC", "EP", "EF", "EC", "ETN",
    "ETM", "XPN", "XSN", "XSV", "XSA", "XSM", "XR", "SF", "SP", "SS", "SSO", "SSC", "SE", "SO",
    "SW", "SL", "SH", "SN", "SB", "UN", "W_URL", "W_EMAIL", "W_HASHTAG", "W_MENTION",
    "W_SERIAL", "W_EMOJI", "Z_CODA", "Z_SIOT", "USER0", "USER1", "USER2", "USER3", "USER4",
})


def base_tag(tag: str) -> str:
    """``VV-I`` → ``VV``: drop Kiwi's regular/irregular suffix."""
    return tag.split("-", 1)[0]


# Kiwi writes the final consonant of an ending as a jongseong jamo (ᆫ, U+11AB); admins
# type the compatibility jamo (ㄴ, U+3134). Map the ones that occur as endings.
_COMPAT_TO_CODA = str.maketrans({
    "ㄱ": "\u11a8", "ㄴ": "\u11ab", "ㄹ": "\u11af", "ㅁ": "\u11b7", "ㅂ": "\u11b8",
    "ㅅ": "\u11ba", "ㅆ": "\u11bb", "ㅇ": "\u11bc",
})


def kiwi_form(form: str) -> str:
    """A morpheme form as Kiwi writes it: a lone compatibility jamo becomes a coda jamo."""
    return form.translate(_COMPAT_TO_CODA) if len(form) == 1 else form


def is_functional(tag: str) -> bool:
    """True for endings (E*), particles (J*), suffixes (XS*) and punctuation (S[FPSE...])."""
    t = base_tag(tag)
    return t[0] in ("E", "J") or t.startswith("XS") or t in ("SF", "SP", "SS", "SSO", "SSC",
                                                              "SE", "SO", "SW", "SB", "Z_CODA",
                                                              "Z_SIOT")


@dataclass(frozen=True, slots=True)
class Morph:
    """One morpheme: surface-normalised form, POS tag, and its span in the analysed text."""

    form: str
    tag: str
    start: int
    end: int

    def __str__(self) -> str:
        return f"{self.form}/{self.tag}"


class Analyzer(Protocol):
    """What the matcher needs from a morphological analyser."""

    def analyze(self, text: str) -> tuple[Morph, ...]:
        """Morphemes of ``text`` in order, with offsets into ``text``."""
        ...

    def analyze_many(self, texts: Sequence[str]) -> list[tuple[Morph, ...]]:
        """Same as :meth:`analyze` on each text; may be faster in bulk."""
        ...

    def with_dictionary(self, dictionary: Dictionary) -> Analyzer:
        """An analyser of the same kind that knows ``dictionary`` (a rules file's words)."""
        ...


@dataclass(frozen=True, slots=True)
class Dictionary:
    """User additions to Kiwi's dictionary, from a rules file's ``[dictionary]`` table.

    ``words``: new words as ``(form, tag)``, e.g. ``("씹선비", "NNG")``.
    ``aliases``: slang spellings read as other morphemes, e.g.
    ``("개색기", (("개새끼", "NNG"),))`` so that 개색기 analyses as 개새끼/NNG.
    """

    words: tuple[tuple[str, str], ...] = ()
    aliases: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()


class KiwiAnalyzer:
    """:class:`Analyzer` over kiwipiepy; build it with :func:`kiwi_analyzer`."""

    def __init__(self, dictionary: Dictionary = Dictionary()) -> None:
        from kiwipiepy import Kiwi  # imported here: it is slow and not needed by every user

        self.dictionary = dictionary
        # The multi-word dictionary (proper-noun phrases, ~180 MB and 2.5 s to load) and the
        # default noun dictionary (~60 MB) hold nothing abuse rules match on: without them
        # Kiwi needs ~270 MB instead of ~510 MB, and the default rules scored exactly the
        # same on the curse and K-MHaS dev sets (P/R/F1 to four places).
        self._kiwi = Kiwi(load_multi_dict=False, load_default_dict=False)
        self._lock = threading.Lock()
        for form, tag in dictionary.words:
            self._kiwi.add_user_word(form, tag, 0.0)
        for form, analysis in dictionary.aliases:
            self._kiwi.add_pre_analyzed_word(form, list(analysis), 0.0)

    @staticmethod
    def _convert(tokens: Iterable) -> tuple[Morph, ...]:
        return tuple(Morph(t.form, t.tag, t.start, t.start + t.len) for t in tokens)

    def analyze(self, text: str) -> tuple[Morph, ...]:
        with self._lock:
            return self._convert(self._kiwi.tokenize(text))

    def with_dictionary(self, dictionary: Dictionary) -> KiwiAnalyzer:
        if dictionary == self.dictionary:
            return self
        return kiwi_analyzer(dictionary)

    def analyze_many(self, texts: Sequence[str]) -> list[tuple[Morph, ...]]:
        if not texts:
            return []
        with self._lock:
            # Kiwi analyses an iterable of texts on its own worker threads.
            return [self._convert(toks) for toks in self._kiwi.tokenize(list(texts))]


def kiwi_analyzer(dictionary: Dictionary | None = None) -> KiwiAnalyzer:
    """The shared analyser for ``dictionary`` (default: none added; built on first use, then
    reused). ``kiwi_analyzer()`` and ``kiwi_analyzer(Dictionary())`` are the same instance."""
    return _kiwi_for(dictionary if dictionary is not None else Dictionary())


# Each Kiwi is ~270 MB: keep the rules in force and one edited dictionary, no more.
@functools.lru_cache(maxsize=2)
def _kiwi_for(dictionary: Dictionary) -> KiwiAnalyzer:
    return KiwiAnalyzer(dictionary)
