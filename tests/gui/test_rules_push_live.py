"""Pushing rules with a new ``[dictionary]`` during a call: the engine builds another Kiwi
(over a second of work that holds the GIL), and neither the window nor the call stalls."""

from __future__ import annotations

import os
import time

from fakerig import fresh_word, rules_text
from PySide6.QtCore import QEvent, QObject

from callguard.telephony.base import CallState
from callguard.text.kiwiproc import KiwiProcess
from gui.test_counselor import PaintCounter, open_window, ring_and_answer


class PaintTimes(PaintCounter):
    """Paint events of the watched widgets, with their times (monotonic seconds)."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Paint:
            self.times.append(time.monotonic())
        return super().eventFilter(obj, event)


def test_a_push_that_builds_kiwi_neither_freezes_the_window_nor_the_call(qtbot, live):
    window = open_window(qtbot, live)
    call = ring_and_answer(qtbot, live, window)
    qtbot.waitUntil(lambda: window.elapsed_s() > 1.1, timeout=3000)
    painted = PaintTimes()
    window.elapsed_bar.installEventFilter(painted)
    window.elapsed_label.installEventFilter(painted)

    word = fresh_word()
    pushed = live.rules.parent / "pushed.toml"
    pushed.write_text(rules_text() + f"""
[[rule]]
id = "t.word"
category = "insult"
mode = "morpheme"
terms = ["{word}/NNG"]

[dictionary]
words = ["{word}/NNG"]
""", encoding="utf-8")
    began = time.monotonic()
    future = live.engine.push_rules(pushed)
    qtbot.waitUntil(future.done, timeout=30000)
    took = time.monotonic() - began
    assert future.result().ok, future.result().message

    # The push built a Kiwi for the new dictionary, in its own process.
    analyzer = live.engine.rules.matcher.analyzer
    assert isinstance(analyzer, KiwiProcess)
    assert analyzer.pid is not None and analyzer.pid != os.getpid()
    assert [m.form for m in analyzer.analyze(f"이 {word}야") if m.tag == "NNG"] == [word]
    assert took > 0.8, took  # building Kiwi takes over a second: the test really waited on one

    # The window painted all along (10 Hz clock); in-process Kiwi stops it for ~0.6 s twice.
    during = [t for t in painted.times if began <= t <= began + took]
    gaps = [b - a for a, b in zip([began, *during], [*during, began + took], strict=True)]
    assert max(gaps) < 0.4, (max(gaps), len(during), took)
    assert call.state is CallState.ACTIVE

    # The new rules are in force, matched through that process.
    assert live.engine.rules.version == future.result().version
    hits = live.engine.rules.match(f"이 {word}야").hits
    assert [h.rule_id for h in hits] == ["t.word"]
