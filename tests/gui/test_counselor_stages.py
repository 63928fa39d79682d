"""The counselor's window in plain words (issue 15, items 2 and 4): the stage line says how
many warnings have played and what the next detection does, each warning has its own
banner, "callguard 보호 중" shows while callguard guards a call, and crisis words are a
crisis (their own colour and wording, no "폭언", the counselor told who was alerted) — on
the real engine (FakeLine, tone recogniser), real rules and the real store."""

from __future__ import annotations

import pytest
from fakerig import ABUSE_TEXT, FakeRig, abusive_call_audio, rules_text

from callguard.gui.bridge import EngineBridge
from callguard.gui.counselor import _SAY_STYLE, CRISIS_HIGHLIGHT, CounselorWindow
from tests.gui.test_counselor import ring_and_answer

pytestmark = pytest.mark.usefixtures("korean")  # tests/gui/conftest.py


def rig_with(tmp_path, rules: str):
    rig = FakeRig(tmp_path, rules, stepped=True)
    rig.engine.start()
    return rig


def window_on(qtbot, rig) -> CounselorWindow:
    window = CounselorWindow(EngineBridge(rig.engine), None, counselor="kim")
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    return window


TWO_WARNINGS = rules_text().replace("warnings = 1", "warnings = 2")


def test_two_warnings_each_have_their_banner_and_the_stage_line_says_what_comes(
        qtbot, tmp_path):
    rig = rig_with(tmp_path, TWO_WARNINGS)
    try:
        window = window_on(qtbot, rig)
        assert not window.guard_label.isVisible()
        bursts = ((0.3, 1.2), (4.0, 1.2), (8.0, 1.2))
        ring_and_answer(qtbot, rig, window, abusive_call_audio(14.0, bursts))
        assert window.guard_label.isVisible()
        assert window.guard_label.text() == "callguard 보호 중"
        rig.advance(1.0)
        qtbot.waitUntil(lambda: window.stage_label.text() ==
                        "경고 0/2회 안내됨 · 폭언이 한 번 감지되면 1차 경고 안내", timeout=3000)
        rig.advance(1.0)  # the first burst is heard and warned
        qtbot.waitUntil(lambda: window.prompt_label.text() ==
                        "1차 경고 안내를 고객에게 재생하고 있습니다", timeout=3000)
        first = window.prompt_label.styleSheet()
        assert _SAY_STYLE["warn"][1] in first
        qtbot.waitUntil(lambda: window.stage_label.text() ==
                        "경고 1/2회 안내됨 · 한 번 더 감지되면 2차 경고 안내", timeout=3000)
        rig.advance(4.0)  # the second burst (4.0-5.2 s): the last warning
        qtbot.waitUntil(lambda: window.prompt_label.text().startswith("마지막 경고(2차)"),
                        timeout=3000)
        second = window.prompt_label.styleSheet()
        assert second != first and _SAY_STYLE["warn_last"][1] in second
        assert "한 번 더 감지되면 종료 안내" in window.prompt_label.text()
        qtbot.waitUntil(lambda: window.stage_label.text() ==
                        "경고 2/2회 안내됨 · 한 번 더 감지되면 종료 안내 후 통화 종료",
                        timeout=3000)
        assert window.hits_label.text() == "감지된 폭언: 2건"
        rig.advance(8.0)  # the third burst (8.0-9.2 s): final notice, then BYE
        qtbot.waitUntil(lambda: window.call_state == "idle", timeout=5000)
        assert not window.guard_label.isVisible()
        assert rig.wait("ended").data["reason"] == "final_notice"
    finally:
        rig.stop()


CRISIS_RULES = rules_text().replace('category = "profanity"', 'category = "crisis"')


def test_crisis_words_are_a_crisis_and_the_counselor_is_told_nobody_was_alerted(
        qtbot, tmp_path):
    rig = rig_with(tmp_path, CRISIS_RULES)  # the sentence heard is a crisis phrase here
    try:
        window = window_on(qtbot, rig)
        assert rig.engine.central is None  # no central server
        ring_and_answer(qtbot, rig, window, abusive_call_audio(8.0, ((0.3, 1.2),)))
        rig.advance(2.0)
        qtbot.waitUntil(lambda: window.crisis_label.isVisible(), timeout=3000)
        prompt = window.prompt_label.text()
        assert prompt.startswith("위기 신호") and "폭언" not in prompt
        assert _SAY_STYLE["crisis"][1] in window.prompt_label.styleSheet()
        assert _SAY_STYLE["crisis"][1] not in (_SAY_STYLE["danger"][1], _SAY_STYLE["warn"][1])
        told = window.crisis_label.text()
        assert told.startswith("자동으로 알림을 받은 사람은 없습니다")
        assert "관리자에게 직접" in told and "109" in told
        # The words are marked in the crisis colour, not the slur red, and not counted as
        # abuse.
        assert window.highlighted_texts(CRISIS_HIGHLIGHT) == ["새끼"]
        assert window.highlighted_texts() == []
        assert ABUSE_TEXT in window.transcript_text()
        assert window.hits_label.text() == "위기 발언: 1건"
        assert "폭언" not in window.hits_label.text()
        assert any(title == "위기 신호" for title, _ in window.notices)
        # Never a warning or a hangup: the call goes on.
        rig.advance(4.0)
        assert window.call_state == "active" and window.protect_button.isEnabled()
        assert not any(ev.kind == "ended" for ev in rig.events)
    finally:
        rig.stop()


class LinkedDesk:
    """Stands in for the desk's CentralLink: the engine kicks it to deliver the alert."""

    def __init__(self) -> None:
        self.kicked = 0

    def kick(self) -> None:
        self.kicked += 1


def test_with_a_central_server_the_counselor_is_told_it_went_there(qtbot, tmp_path):
    rig = rig_with(tmp_path, CRISIS_RULES)
    try:
        window = window_on(qtbot, rig)
        ring_and_answer(qtbot, rig, window, abusive_call_audio(8.0, ((0.3, 1.2),)))
        rig.engine.central = LinkedDesk()  # the desk is linked to a central server
        try:
            rig.advance(2.0)
            qtbot.waitUntil(lambda: window.crisis_label.isVisible(), timeout=3000)
            kicked = rig.engine.central.kicked
        finally:
            rig.engine.central = None
        assert kicked >= 1  # the alert went to the link
        assert window.crisis_label.text().startswith("중앙 서버로 위기 알림을 보냈습니다")
    finally:
        rig.stop()


@pytest.mark.parametrize(("recipients", "told"), [
    (["박 팀장", "lee"], "위기 알림이 상담 관리자 박 팀장, lee의 검토 화면에 떴습니다"),
    ([], "지금 검토 화면을 연 상담 관리자가 없습니다")])
def test_the_counselor_is_told_exactly_who_received_the_crisis_alert(
        qtbot, tmp_path, recipients, told):
    from callguard.central.fake import FakeCentral
    from callguard.central.link import CentralLink

    central = FakeCentral()
    central.recipients = recipients  # the supervisors with the review open on the server
    link = CentralLink(tmp_path / "calls.db", lambda: central, rules_target=None,
                       rules_base=tmp_path, poll_s=60.0, idle_s=0.1)
    rig = FakeRig(tmp_path, CRISIS_RULES, stepped=True, central=link)
    rig.engine.start()
    try:
        window = window_on(qtbot, rig)
        ring_and_answer(qtbot, rig, window, abusive_call_audio(8.0, ((0.3, 1.2),)))
        rig.advance(2.0)
        qtbot.waitUntil(lambda: window.crisis_label.isVisible(), timeout=3000)
        qtbot.waitUntil(lambda: told in window.crisis_label.text(), timeout=10_000)
        assert [a["kind"] for a in central.alerts.values()] == ["crisis"]
    finally:
        rig.stop()
