"""One rule for marking hit spans (evidence text, review, counselor window, rules editor)."""

from __future__ import annotations

import html

from callguard.text.spans import mark_spans, merge_spans


def test_overlapping_and_touching_spans_merge_and_are_clipped():
    assert merge_spans([(4, 6), (2, 4), (3, 5), (8, 9)], 10) == [(2, 6), (8, 9)]
    assert merge_spans([(-3, 1), (9, 20), (5, 5), (7, 6)], 10) == [(0, 1), (9, 10)]
    assert merge_spans([], 10) == []


def test_marks_wrap_the_merged_spans_and_escape_only_the_text():
    text = "아 <진짜> 이 개새끼야"
    at = text.index("개새")
    assert mark_spans(text, [(at, at + 2), (at + 1, at + 3)], "【", "】") \
        == "아 <진짜> 이 【개새끼】야"
    assert mark_spans(text, [(at, at + 3)], "<b>", "</b>", html.escape) \
        == "아 &lt;진짜&gt; 이 <b>개새끼</b>야"
    assert mark_spans(text, [], "<b>", "</b>") == text
