"""A crisis call in the supervisor's review has its own verdict, 위기 대응 (issue 15, item
4): recorded through the window into the real store's append-only trail."""

from __future__ import annotations

import time

from PySide6.QtCore import Qt

from callguard.gui.review import T
from callguard.store import Store
from tests.gui.test_review import _call, client_for, open_window, read, show  # noqa: F401


async def _crisis_call(store: Store, started_at: float) -> int:
    cid = await _call(store, started_at=started_at, hits=[("crisis", "죽고 싶다")],
                      flagged=True)
    await store.add_verdict(cid, 3.2, "alert", "crisis", False, "crisis words")
    await store.add_action(cid, 3.2, "alert", "crisis.suicide")
    return cid


def test_a_crisis_call_gets_the_crisis_verdict(qtbot, client_for, tmp_path):  # noqa: F811
    db = tmp_path / "calls.db"
    cid = read(db, lambda s: _crisis_call(s, time.time() - 600))
    window = open_window(qtbot, client_for(db), tmp_path, reviewer="park")
    show(qtbot, window, cid)
    box = window.verdict_box
    choices = [box.itemData(i) for i in range(box.count())]
    assert "crisis_response" in choices
    assert box.itemText(box.findData("crisis_response")) == "위기 대응"
    box.setCurrentIndex(box.findData("crisis_response"))
    window.note_edit.setPlainText("109 안내, 관리자 연결")
    with qtbot.waitSignal(window.reviewSaved, timeout=10_000):
        qtbot.mouseClick(window.save_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.trail.count() == 1, timeout=5_000)
    assert T("review.verdict.crisis_response") in window.trail.item(0).text()
    reviews = read(db, lambda s: s.reviews(cid))
    assert [(r.reviewer, r.verdict, r.note) for r in reviews] == [
        ("park", "crisis_response", "109 안내, 관리자 연결")]


def _colour_pixels(image, colour: str) -> int:
    """How many pixels of ``image`` are exactly ``colour``."""
    from PySide6.QtGui import QColor

    want = QColor(colour).rgb()
    return sum(1 for y in range(image.height()) for x in range(0, image.width(), 2)
               if image.pixel(x, y) == want)


def test_crisis_words_are_marked_as_crisis_not_as_abuse(
        qtbot, client_for, tmp_path):  # noqa: F811
    """In the review's transcript crisis words have the crisis colour of the counselor's
    window (not the slur red), their waveform marker is a crisis marker, and the steps call
    them crisis words, not a hit of abuse."""
    from callguard.gui.palette import CRISIS_COLOUR, CRISIS_HIGHLIGHT
    from callguard.gui.review import HTML_ROLE, end_story
    from callguard.gui.waveform import MARKER_STYLE

    db = tmp_path / "calls.db"

    async def both(store: Store) -> int:
        return await _call(store, started_at=time.time() - 600, flagged=True,
                           hits=[("profanity", "새끼"), ("crisis", "죽고 싶다")])

    cid = read(db, both)
    window = open_window(qtbot, client_for(db), tmp_path, reviewer="park")
    show(qtbot, window, cid)
    rows = {window.transcript.item(i).text(): window.transcript.item(i).data(HTML_ROLE)
            for i in range(window.transcript.count())}
    abuse = next(h for t, h in rows.items() if "새끼" in t)
    crisis = next(h for t, h in rows.items() if "죽고 싶다" in t)
    assert "#ffcdd2" in abuse and CRISIS_HIGHLIGHT not in abuse
    assert CRISIS_HIGHLIGHT in crisis and "#ffcdd2" not in crisis
    assert "죽고 싶다</span>" in crisis  # the words themselves are marked
    # Drawn so: the crisis line shows the lavender ground, and no slur red.
    view = window.transcript
    row = next(i for i in range(view.count()) if "죽고 싶다" in view.item(i).text())
    view.clearSelection()
    view.setCurrentRow(-1)
    image = view.viewport().grab(view.visualItemRect(view.item(row))).toImage()
    assert _colour_pixels(image, CRISIS_HIGHLIGHT) > 50
    assert _colour_pixels(image, "#ffcdd2") == 0
    # The waveform: a crisis marker (violet), the abuse one stays a hit (red).
    kinds = sorted(m.kind for m in window.waveform.markers() if m.kind in ("hit", "crisis"))
    assert kinds == ["crisis", "hit"]
    assert MARKER_STYLE["crisis"][0] == CRISIS_COLOUR != MARKER_STYLE["hit"][0]
    crisis_marker = next(m for m in window.waveform.markers() if m.kind == "crisis")
    assert crisis_marker.label.startswith(T("review.marker.crisis")) and "위기" in \
        crisis_marker.label
    # The steps name crisis words as such.
    story = end_story(window.call)
    assert "위기 발언 '죽고 싶다'" in story and "감지 '죽고 싶다'" not in story
    assert "감지 '새끼' (욕설)" in story
