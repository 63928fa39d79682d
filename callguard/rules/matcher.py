"""Find rule hits in a transcript: pure, synchronous, no I/O.

A :class:`Matcher` is compiled once from a :class:`~callguard.rules.model.RuleSet` and
reused for every utterance. Spans are half-open ``[start, end)`` code-point offsets into
the NFC-normalised text (``MatchResult.text``), so the UI can highlight them.

Exceptions (per rule and global) are matched space-insensitively; a hit whose span lies
inside an exception's span is suppressed and reported as such (시발점 suppresses 시발,
새끼발가락 suppresses 새끼, 수박씨 발라 suppresses 씨발).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from callguard.rules.model import Category, MatchMode, Rule, RuleSet
from callguard.rules.terms import parse_tagged
from callguard.text.analyzer import Analyzer, Morph, base_tag, is_functional, kiwi_form
from callguard.text.normalize import fold, nfc, squeeze, squeeze_term

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Hit:
    """A rule matched ``text[start:end]`` of the NFC-normalised utterance."""

    rule_id: str
    category: Category
    severity: int
    start: int
    end: int
    matched: str
    term: str
    mode: MatchMode


@dataclass(frozen=True, slots=True)
class Suppressed:
    """A hit that an exception (``exception``, at ``[start, end)``) cancelled."""

    hit: Hit
    exception: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class MatchResult:
    """Hits in one utterance. ``morphs`` is Kiwi's analysis when any rule needed it."""

    text: str
    hits: tuple[Hit, ...]
    suppressed: tuple[Suppressed, ...] = ()
    morphs: tuple[Morph, ...] | None = None

    @property
    def categories(self) -> set[Category]:
        return {h.category for h in self.hits}


class LiteralIndex(Generic[T]):
    """Finds every occurrence of many literal strings in a text.

    At each position it probes a dict only with the lengths of the terms that begin with
    that character: a few dozen probes for a transcript sentence, however many terms.
    """

    def __init__(self) -> None:
        self._terms: dict[str, list[T]] = defaultdict(list)
        self._lengths: dict[str, tuple[int, ...]] = {}

    def add(self, key: str, payload: T) -> None:
        if key:
            self._terms[key].append(payload)
            self._lengths[key[0]] = tuple(sorted({*self._lengths.get(key[0], ()), len(key)}))

    def __bool__(self) -> bool:
        return bool(self._terms)

    def find(self, text: str) -> Iterator[tuple[int, int, T]]:
        terms = self._terms
        lengths = self._lengths
        n = len(text)
        for i, ch in enumerate(text):
            for length in lengths.get(ch, ()):
                if i + length > n:
                    break
                payloads = terms.get(text[i:i + length])
                if payloads:
                    for payload in payloads:
                        yield i, i + length, payload


Pattern = tuple[tuple[str, str | None], ...]


def _pattern(term: str, analyzer: Analyzer | None, content_only: bool) -> Pattern:
    """The morpheme pattern for a term: pinned ``form/TAG`` pieces, or Kiwi's analysis."""
    pieces = parse_tagged(term)
    if pieces[0][1] is None:
        if analyzer is None:
            raise ValueError("an analyzer is needed for morpheme and phrase rules")
        morphs = analyzer.analyze(nfc(term))
        pieces = [(m.form, None) for m in morphs if not (content_only and is_functional(m.tag))]
    else:
        pieces = [(kiwi_form(f), t) for f, t in pieces
                  if not (content_only and t is not None and is_functional(t))]
    return tuple(pieces)


def _same(m: Morph, form: str, tag: str | None) -> bool:
    return m.form == form and (tag is None or base_tag(m.tag) == base_tag(tag))


class Matcher:
    """Compiled rules: ``match(text)`` returns every hit with its span.

    ``analyzer`` is only used when an enabled rule has mode ``morpheme`` or ``phrase``;
    it is extended with the rule set's ``[dictionary]``. By default the shared Kiwi
    analyser is used.
    """

    def __init__(self, ruleset: RuleSet, analyzer: Analyzer | None = None) -> None:
        self.ruleset = ruleset
        self.rules: tuple[Rule, ...] = ruleset.enabled_rules
        self.needs_analyzer = any(r.mode.needs_analyzer for r in self.rules)
        if not self.needs_analyzer:
            analyzer = None
        elif analyzer is None:
            from callguard.text.analyzer import kiwi_analyzer

            analyzer = kiwi_analyzer(ruleset.dictionary)
        else:
            analyzer = analyzer.with_dictionary(ruleset.dictionary)
        self.analyzer = analyzer
        self._surface: LiteralIndex[tuple[int, str]] = LiteralIndex()
        self._nospace: LiteralIndex[tuple[int, str]] = LiteralIndex()
        self._morpheme: dict[str, list[tuple[int, str, Pattern]]] = defaultdict(list)
        self._phrase: dict[str, list[tuple[int, str, Pattern]]] = defaultdict(list)
        # Exceptions: payload is the rule index they belong to, or -1 for global ones.
        self._exceptions: LiteralIndex[tuple[int, str]] = LiteralIndex()
        for term in ruleset.global_exceptions:
            self._exceptions.add(squeeze_term(term), (-1, term))
        for index, rule in enumerate(self.rules):
            for term in rule.exceptions:
                self._exceptions.add(squeeze_term(term), (index, term))
            for term in rule.terms:
                if rule.mode is MatchMode.SURFACE:
                    self._surface.add(fold(nfc(term)), (index, term))
                elif rule.mode is MatchMode.NOSPACE:
                    self._nospace.add(squeeze_term(term), (index, term))
                else:
                    phrase = rule.mode is MatchMode.PHRASE
                    pattern = _pattern(term, analyzer, content_only=phrase)
                    if pattern:
                        table = self._phrase if phrase else self._morpheme
                        table[pattern[0][0]].append((index, term, pattern))
        if analyzer is not None:
            # Kiwi finishes building on its first analysis (~0.5 s): pay that here, where
            # rules are loaded, rather than on the first utterance of the next call.
            analyzer.analyze("가")

    def pattern_of(self, rule: Rule, term: str) -> Pattern:
        """The morpheme pattern a morpheme/phrase term compiles to (for display)."""
        return _pattern(term, self.analyzer, content_only=rule.mode is MatchMode.PHRASE)

    def match(self, text: str) -> MatchResult:
        """Hits in one utterance (see the module docstring for spans and exceptions)."""
        text = nfc(text)
        morphs = self.analyzer.analyze(text) if self.needs_analyzer and self.analyzer else None
        return self._match(text, morphs)

    def match_many(self, texts: Sequence[str]) -> list[MatchResult]:
        """:meth:`match` on each text, analysing them with Kiwi in one batch."""
        norm = [nfc(t) for t in texts]
        if self.needs_analyzer and self.analyzer:
            return [self._match(t, m) for t, m in zip(norm, self.analyzer.analyze_many(norm),
                                                         strict=True)]
        return [self._match(t, None) for t in norm]

    def _match(self, text: str, morphs: tuple[Morph, ...] | None) -> MatchResult:
        found: list[tuple[int, int, int, str]] = []  # (start, end, rule index, term)
        folded = fold(text)
        if self._surface:
            found.extend((s, e, i, t) for s, e, (i, t) in self._surface.find(folded))
        squeezed = squeeze(folded)
        if self._nospace:
            for s, e, (i, t) in self._nospace.find(squeezed.text):
                start, end = squeezed.span(s, e)
                found.append((start, end, i, t))
        if morphs:
            found.extend(self._find_morphemes(morphs))
            found.extend(self._find_phrases(morphs))
        if not found:
            return MatchResult(text, (), (), morphs)

        exceptions = [(*squeezed.span(s, e), i, t)
                      for s, e, (i, t) in self._exceptions.find(squeezed.text)]
        # Exceptions judge each raw hit; surviving hits of one rule that overlap are then
        # merged into one span (개새 + 새끼 → 개새끼), so one word is one hit.
        kept: list[list] = []  # [start, end, rule index, term]
        suppressed: list[Suppressed] = []
        for start, end, index, term in sorted(found, key=lambda f: (f[0], f[0] - f[1])):
            cancel = next(((es, ee, et) for es, ee, ei, et in exceptions
                           if ei in (-1, index) and es <= start and end <= ee), None)
            if cancel:
                if not any(x.hit.rule_id == self.rules[index].id and x.hit.start <= start
                           and end <= x.hit.end for x in suppressed):
                    suppressed.append(Suppressed(self._hit(text, start, end, index, term),
                                                 cancel[2], cancel[0], cancel[1]))
                continue
            same = next((k for k in kept if k[2] == index and start < k[1] and k[0] < end),
                        None)
            if same:
                same[1] = max(same[1], end)
            else:
                kept.append([start, end, index, term])
        hits = [self._hit(text, s, e, i, t) for s, e, i, t in kept]
        return MatchResult(text, tuple(hits), tuple(suppressed), morphs)

    def _hit(self, text: str, start: int, end: int, index: int, term: str) -> Hit:
        rule = self.rules[index]
        return Hit(rule.id, rule.category, rule.severity, start, end, text[start:end], term,
                   rule.mode)

    def _find_morphemes(self, morphs: tuple[Morph, ...]) -> Iterator[tuple[int, int, int, str]]:
        n = len(morphs)
        for i, m in enumerate(morphs):
            for index, term, pattern in self._morpheme.get(m.form, ()):
                if i + len(pattern) <= n and all(
                        _same(morphs[i + k], f, t) for k, (f, t) in enumerate(pattern)):
                    yield m.start, morphs[i + len(pattern) - 1].end, index, term

    def _find_phrases(self, morphs: tuple[Morph, ...]) -> Iterator[tuple[int, int, int, str]]:
        if not self._phrase:
            return
        content = [m for m in morphs if not is_functional(m.tag)]
        n = len(content)
        for i, m in enumerate(content):
            for index, term, pattern in self._phrase.get(m.form, ()):
                if not _same(m, *pattern[0]):
                    continue
                gap = self.rules[index].gap
                pos = i
                for form, tag in pattern[1:]:
                    nxt = next((j for j in range(pos + 1, min(n, pos + 2 + gap))
                                if _same(content[j], form, tag)), None)
                    if nxt is None:
                        break
                    pos = nxt
                else:
                    yield m.start, content[pos].end, index, term
