"""Pushing rules with a new ``[dictionary]`` during a call: the engine builds another Kiwi
(over a second of work that holds the GIL), and neither the window nor the call stalls."""

from __future__ import annotations

import os
import time

from fakerig import fresh_word, kiwi_build_in_this_process, rules_text
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


def longest_gap(times: list[float], began: float, ended: float) -> float:
    """The longest time from ``began`` to ``ended`` without one of ``times``, seconds."""
    during = [t for t in times if began <= t <= ended]
    return max(b - a for a, b in zip([began, *during], [*during, ended], strict=True))


def test_a_push_that_builds_kiwi_neither_freezes_the_window_nor_the_call(qtbot, live):
    window = open_window(qtbot, live)
    call = ring_and_answer(qtbot, live, window)
    qtbot.waitUntil(lambda: window.elapsed_s() > 1.1, timeout=3000)
    painted = PaintTimes()
    window.elapsed_bar.installEventFilter(painted)
    window.elapsed_label.installEventFilter(painted)

    # Control, just before and on the same paints: a Kiwi built in this process (as the engine
    # did before Kiwi had its own process) stops the window for as long as it holds the GIL,
    # which depends on the CPU; so the push is judged against it, not against seconds.
    began = time.monotonic()
    builder = kiwi_build_in_this_process()
    qtbot.waitUntil(lambda: not builder.is_alive(), timeout=30000)
    built = time.monotonic() - began  # what building a Kiwi takes on this machine
    control = longest_gap(painted.times, began, began + built)

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
    # The push really waited on a Kiwi being built: about as long as the control's build
    # (a push that builds none is done far sooner)...
    assert took > built / 2, (took, built)
    # ...and the window painted all along (10 Hz clock), where in-process Kiwi would stop it
    # about as long as the control did (ratio ~1). Measured here: longest gap 0.10 s against
    # a control of 0.6-1.4 s.
    assert control > 2 * 0.1, control  # the control really stopped the clock
    gap = longest_gap(painted.times, began, began + took)
    assert gap < control / 2, (gap, control, took)
    assert call.state is CallState.ACTIVE

    # The new rules are in force, matched through that process.
    assert live.engine.rules.version == future.result().version
    hits = live.engine.rules.match(f"이 {word}야").hits
    assert [h.rule_id for h in hits] == ["t.word"]
