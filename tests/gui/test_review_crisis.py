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
