"""The supervisor's review, in plain words (issue 15, item 5): how a call ended (상담사가
보호 버튼을 누름 / 규칙 위반 n회 후 종료 안내 / 통화 시간 한도) with the hits and verdicts that
led there, "callguard" (not "자동 종료") as who hung up, no verdict pre-set, and a note
required for 부당한 종료 — on the real store."""

from __future__ import annotations

import time

import pytest
from PySide6.QtCore import Qt

from callguard.gui.review import T
from callguard.store import Store
from tests.gui.test_review import _call, client_for, open_window, read, show  # noqa: F401

pytestmark = pytest.mark.usefixtures("korean")  # tests/gui/conftest.py


async def _protected(store: Store, started_at: float) -> int:
    cid = await _call(store, started_at=started_at, flagged=True, hangup_by="agent",
                      end_reason="final_notice")
    await store.add_verdict(cid, 2.0, "final", "final", True, "protect pressed", "protect")
    await store.add_action(cid, 2.0, "play_prompt", "final (1.2 s)")
    await store.add_action(cid, 3.3, "hangup", "final")
    await store.update_call(cid, stage="final")
    return cid


async def _made(store: Store) -> dict[str, int]:
    now = time.time()
    return {
        "protected": await _protected(store, now - 600),
        "rules": await _call(store, started_at=now - 1200, flagged=True, stage="final",
                             hits=[("profanity", "새끼"), ("profanity", "새끼")],
                             hangup_by="agent", end_reason="final_notice"),
    }


def test_how_a_call_ended_is_said_in_plain_words(qtbot, client_for, tmp_path):  # noqa: F811
    db = tmp_path / "calls.db"
    ids = read(db, _made)
    window = open_window(qtbot, client_for(db), tmp_path, reviewer="park")
    show(qtbot, window, ids["protected"])
    why = window.why_label.text()
    assert why.startswith("종료 경위: 상담사가 보호 버튼을 누름")
    assert why.split("\n")[1] == "이어진 과정: 0:02.0 상담사가 보호 버튼을 누름"
    header = window.header_label.text()
    assert "끊은 쪽: callguard" in header and "자동 종료" not in header

    show(qtbot, window, ids["rules"])
    why = window.why_label.text()
    assert why.startswith("종료 경위: 규칙 위반 2회 후 종료 안내")
    steps = why.split("\n")[1]
    assert steps.startswith("이어진 과정: ") and "감지 '새끼' (욕설)" in steps
    assert steps.index("경고 안내") < steps.index("종료 안내")


def test_no_verdict_is_preset_and_a_wrongful_cutoff_needs_a_reason(qtbot, client_for,  # noqa: F811
                                                                    tmp_path):
    db = tmp_path / "calls.db"
    ids = read(db, _made)
    window = open_window(qtbot, client_for(db), tmp_path, reviewer="park")
    show(qtbot, window, ids["rules"])
    assert window.verdict_box.currentData() is None
    assert window.verdict_box.currentText() == "검토 결과를 고르세요"
    errors: list = []
    window.save_review(done=lambda r, e: errors.append(e))
    assert str(errors[-1]) == T("review.verdict.need_choice")
    window.verdict_box.setCurrentIndex(window.verdict_box.findData("wrongful_cutoff"))
    window.save_review(done=lambda r, e: errors.append(e))
    assert str(errors[-1]) == T("review.verdict.need_reason")
    assert read(db, lambda s: s.reviews(ids["rules"])) == []
    window.note_edit.setPlainText("고객이 욕한 게 아니라 상품명이었음")
    with qtbot.waitSignal(window.reviewSaved, timeout=10_000):
        qtbot.mouseClick(window.save_button, Qt.MouseButton.LeftButton)
    assert [(r.verdict, r.note) for r in read(db, lambda s: s.reviews(ids["rules"]))] == [
        ("wrongful_cutoff", "고객이 욕한 게 아니라 상품명이었음")]
    # Another call: the choice starts empty again.
    show(qtbot, window, ids["protected"])
    assert window.verdict_box.currentData() is None


def test_the_review_opens_on_todays_flagged_unreviewed_calls(qtbot, client_for,  # noqa: F811
                                                             tmp_path):
    db = tmp_path / "calls.db"
    now = time.time()

    async def make(store: Store) -> dict[str, int]:
        from datetime import datetime

        midnight = datetime.now().replace(hour=0, minute=0, second=0).timestamp()
        start = max(midnight + 1, now - 60)  # today, whatever the hour
        return {
            "todo": await _call(store, started_at=start, flagged=True, stage="warned",
                                hits=[("insult", "바보")]),
            "done": await _call(store, started_at=start, flagged=True, stage="warned",
                                hits=[("insult", "바보")], review="abuse_confirmed"),
            "quiet": await _call(store, started_at=start),
            "old": await _call(store, started_at=now - 3 * 86400, flagged=True,
                               stage="warned", hits=[("insult", "바보")]),
        }

    ids = read(db, make)
    from callguard.gui.review import ReviewWindow

    window = ReviewWindow(client_for(db), "park", key_path=tmp_path / "site.key")
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.listed_ids() == [ids["todo"]], timeout=10_000)
    assert window.flagged_check.isChecked() and window.date_check.isChecked()
    window.all_button.click()
    qtbot.waitUntil(lambda: len(window.listed_ids()) == 4, timeout=10_000)
    window.today_button.click()
    qtbot.waitUntil(lambda: window.listed_ids() == [ids["todo"]], timeout=10_000)


def test_deleting_a_recording_sits_apart_from_the_export(qtbot, client_for,  # noqa: F811
                                                         tmp_path):
    db = tmp_path / "calls.db"
    ids = read(db, _made)
    window = open_window(qtbot, client_for(db), tmp_path, reviewer="park")
    show(qtbot, window, ids["rules"])
    export, delete = window.export_button, window.delete_button
    assert delete is not None and delete.isEnabled()
    assert export.parentWidget() is delete.parentWidget()  # same pane ...
    e = export.mapTo(window, export.rect().center())
    d = delete.mapTo(window, delete.rect().center())
    # ... but not side by side: the delete button is below the verdict box, far away.
    assert d.y() - e.y() > 200, (e, d)
    verdict_box = window.verdict_box.mapTo(window, window.verdict_box.rect().center())
    assert d.y() > verdict_box.y()


def test_the_list_has_a_category_column(qtbot, client_for, tmp_path):  # noqa: F811
    db = tmp_path / "calls.db"
    ids = read(db, _made)
    read(db, lambda s: _call(s, started_at=time.time() - 300, flagged=True,
                             hits=[("insult", "바보"), ("profanity", "새끼")]))
    window = open_window(qtbot, client_for(db), tmp_path, reviewer="park")
    headers = [window.table.horizontalHeaderItem(i).text()
               for i in range(window.table.columnCount())]
    col = headers.index("유형")
    qtbot.waitUntil(lambda: len(window.listed_ids()) == 3, timeout=10_000)
    shown = {window.listed_ids()[r]: window.table.item(r, col).text()
             for r in range(window.table.rowCount())}
    assert shown[ids["rules"]] == "욕설" and shown[ids["protected"]] == ""
    mixed = next(i for i in shown if i not in ids.values())
    assert sorted(shown[mixed].split(", ")) == ["모욕", "욕설"]


def test_the_list_shows_every_column_whole_at_1366x768(qtbot, client_for, tmp_path):  # noqa: F811
    from callguard.gui.fit import budget

    db = tmp_path / "calls.db"
    read(db, _made)
    window = open_window(qtbot, client_for(db), tmp_path, reviewer="park")
    window.resize(*budget())
    window.refresh()
    qtbot.waitUntil(lambda: window.table.rowCount() == 2, timeout=10_000)
    qtbot.wait(100)
    header = window.table.horizontalHeader()
    qtbot.waitUntil(lambda: header.length() <= window.table.viewport().width(), timeout=5000)


def test_with_nothing_to_review_today_it_shows_every_call_and_says_so(qtbot, client_for,  # noqa: F811
                                                                      tmp_path):
    from callguard.gui.review import ReviewWindow

    db = tmp_path / "calls.db"
    old = read(db, lambda s: _call(s, started_at=time.time() - 3 * 86400, flagged=True))
    window = ReviewWindow(client_for(db), "park", key_path=tmp_path / "site.key")
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.listed_ids() == [old], timeout=10_000)
    assert window.status_label.text() == T("review.today.none")
    assert not window.flagged_check.isChecked() and not window.date_check.isChecked()
