"""Marking rule-hit spans in a transcript line: one rule for every view of a hit.

Spans are ``(start, end)`` character offsets into the text (code points, end exclusive), as
:class:`~callguard.rules.matcher.Hit` and the store keep them. Overlapping or touching
spans become one mark (개새 + 새끼 → 개새끼), spans are clipped to the text, and empty
ones are dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable


def merge_spans(spans: Iterable[tuple[int, int]], size: int) -> list[tuple[int, int]]:
    """``spans`` clipped to ``[0, size)``, empty ones dropped, overlapping or touching ones
    merged; in order."""
    out: list[tuple[int, int]] = []
    for a, b in sorted((max(0, a), min(size, b)) for a, b in spans):
        if b <= a:
            continue
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def mark_spans(text: str, spans: Iterable[tuple[int, int]], opening: str, closing: str,
               escape: Callable[[str], str] = lambda s: s) -> str:
    """``text`` with each merged span wrapped in ``opening`` … ``closing``; ``escape`` (e.g.
    ``html.escape``) is applied to the pieces of text, not to the marks."""
    out, pos = [], 0
    for a, b in merge_spans(spans, len(text)):
        out += [escape(text[pos:a]), opening, escape(text[a:b]), closing]
        pos = b
    out.append(escape(text[pos:]))
    return "".join(out)
