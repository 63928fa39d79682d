"""The supervisor's review, in plain words (issue 15, item 5): how a call ended (상담사가
보호 버튼을 누름 / 규칙 위반 n회 후 종료 안내 / 통화 시간 한도) with the hits and verdicts that
led there, "callguard" (not "자동 종료") as who hung up, no verdict pre-set, and a note
required for 부당한 종료 — on the real store."""

from __future__ import annotations

import time

import pytest
from PySide6.QtCore import Qt

from callguard.gui import i18n
from callguard.gui.review import T
from callguard.store import Store
from tests.gui.test_review import _call, client_for, open_window, read, show  # noqa: F401


@pytest.fixture(autouse=True)
def korean():
    before = i18n.language()
    i18n.set_language("ko")
    yield
    i18n.set_language(before)


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
