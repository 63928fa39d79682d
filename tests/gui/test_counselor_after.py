"""After an incident (issue 15, item 3): the transcript folds away (slurs masked on
request), stale banners clear, a rest is offered after any flagged or crisis call whoever
ended it, with the length from the desk settings, and the rest button offers one at any
time — every step in the audit log. Real engine (FakeLine), real rules, real store."""

from __future__ import annotations

import pytest
from fakerig import ABUSE_TEXT, FakeRig, abusive_call_audio, rules_text
from PySide6.QtCore import Qt

from callguard.engine.engine import EngineEvent
from callguard.gui.bridge import EngineBridge, StoreClient
from callguard.gui.counselor import CounselorWindow
from callguard.gui.desk import DeskSettings
from callguard.vocabulary import EngineEventKind
from tests.gui.test_counselor import audit_kinds, ring_and_answer

CRISIS_RULES = rules_text().replace('category = "profanity"', 'category = "crisis"')


pytestmark = pytest.mark.usefixtures("korean")  # tests/gui/conftest.py


@pytest.fixture
def setup(qtbot, tmp_path):
    """(rig, window, store) for rules text given by indirect parametrisation or default."""
    made = []

    def make(rules: str):
        rig = FakeRig(tmp_path, rules, stepped=True)
        rig.engine.start()
        store = StoreClient(rig.db)
        window = CounselorWindow(EngineBridge(rig.engine), store, counselor="kim",
                                 desk=DeskSettings(rest_minutes=3))
        qtbot.addWidget(window)
        window.show()
        qtbot.waitExposed(window)
        made.append((rig, store))
        return rig, window, store

    yield make
    for rig, store in made:
        store.close()
        rig.stop()


def test_a_crisis_call_the_counselor_hangs_up_folds_and_offers_a_rest(qtbot, setup):
    rig, window, store = setup(CRISIS_RULES)
    ring_and_answer(qtbot, rig, window, abusive_call_audio(8.0, ((0.3, 1.2),)))
    rig.advance(2.0)
    qtbot.waitUntil(lambda: window.crisis_label.isVisible(), timeout=3000)
    # The headset failed during this call: its notice belongs to this call only.
    window.on_engine_event(EngineEvent(EngineEventKind.HEADSET, window.call_id,
                                       {"error": "PortAudioError: device unavailable"}))
    assert window.headset_label.isVisible()
    window.hangup_button.click()  # the counselor ends it: no final notice, no "abuse" end
    rig.advance(0.1)
    qtbot.waitUntil(lambda: window.call_state == "idle", timeout=3000)
    ended = rig.wait("ended")
    assert ended.data["reason"] != "final_notice" and not ended.data["protected"]
    store_id = ended.data["store_id"]
    assert not window.headset_label.isVisible()

    # A rest is offered anyway, for a crisis, as long as the desk settings say.
    dialog = window.rest_dialog
    assert dialog is not None and dialog.isVisible() and dialog.call_id == store_id
    assert dialog.panel.reason == "crisis" and dialog.panel.intro.text().startswith("위기 통화")
    assert dialog.panel.countdown.text() == "휴식 시간: 03:00"
    assert not window.rest_button.isEnabled()  # one rest at a time

    # The transcript is folded away; one click shows it again, slurs masked on request.
    text = window.transcript_text()
    assert "접어 두었습니다" in text and "위기 발언: 1건" in text and "새끼" not in text
    assert window.fold_button.isVisible()
    window.fold_button.click()
    assert ABUSE_TEXT in window.transcript_text() and "고객: " in window.transcript_text()
    window.fold_button.click()
    assert "새끼" not in window.transcript_text()

    # Deciding clears what the call left: banner, crisis box, the stopped call time.
    assert window.prompt_label.text() and window.crisis_label.isVisible()
    assert window.elapsed_label.text()
    qtbot.mouseClick(dialog.panel.start_button, Qt.MouseButton.LeftButton)
    assert window.prompt_label.text() == "" and not window.crisis_label.isVisible()
    assert window.elapsed_label.text() == ""
    assert window.resting
    qtbot.waitUntil(lambda: ("rest_started", "kim", "counselor", store_id, "180 s")
                    in audit_kinds(qtbot, store, store_id), timeout=5000)


def test_a_flagged_call_the_caller_ends_offers_a_rest(qtbot, setup):
    rig, window, _store = setup(rules_text())
    call = ring_and_answer(qtbot, rig, window, abusive_call_audio(8.0, ((0.3, 1.2),)))
    rig.advance(2.0)  # one burst: warned
    qtbot.waitUntil(lambda: window.highlighted_texts() == ["새끼"], timeout=3000)
    call.far_hangup()
    rig.advance(0.1)
    qtbot.waitUntil(lambda: window.call_state == "idle", timeout=3000)
    assert rig.wait("ended").data["reason"] == "caller_hangup"
    assert window.rest_dialog is not None and window.rest_dialog.panel.reason == "flagged"
    assert "감지된 폭언: 1건" in window.transcript_text()
    assert "새끼" not in window.transcript_text()
    window.fold_button.click()
    assert ABUSE_TEXT in window.transcript_text()
    window.mask_box.setChecked(True)  # slurs masked on request
    assert "새끼" not in window.transcript_text() and "이 ••야" in window.transcript_text()
    assert window.highlighted_texts() == ["••"]  # still marked where they were
    window.rest_dialog.panel.skip_button.click()
    assert window.prompt_label.text() == ""  # the banner cleared on deciding
    assert window.rest_button.isEnabled()


def test_the_rest_button_offers_a_rest_at_any_time_and_it_is_logged(qtbot, setup):
    rig, window, store = setup(rules_text())
    assert window.rest_button.isEnabled() and window.rest_dialog is None
    window.rest_button.click()
    dialog = window.rest_dialog
    assert dialog is not None and dialog.panel.reason == "manual" and dialog.call_id is None
    assert dialog.panel.intro.text().startswith("쉬어야 할 때는 언제든")
    dialog.panel.notify_box.setChecked(False)
    dialog.panel.start_button.click()
    assert window.resting and not window.rest_button.isEnabled()
    qtbot.waitUntil(lambda: not rig.engine.available, timeout=5000)  # calls declined
    dialog.panel.end_button.click()
    qtbot.waitUntil(lambda: rig.engine.available, timeout=5000)
    qtbot.waitUntil(lambda: [k for k, *_ in audit_kinds(qtbot, store)
                             if k.startswith("rest")] == ["rest_started", "rest_ended"],
                    timeout=5000)
    rows = [r for r in audit_kinds(qtbot, store) if r[0].startswith("rest")]
    assert rows[0] == ("rest_started", "kim", "counselor", None, "180 s")
    # During a call there is no rest button to press.
    ring_and_answer(qtbot, rig, window)
    assert not window.rest_button.isEnabled()


def test_a_call_without_incident_is_not_folded(qtbot, setup):
    rig, window, _store = setup(rules_text())
    call = ring_and_answer(qtbot, rig, window)
    rig.advance(0.5)
    call.far_hangup()
    rig.advance(0.1)
    qtbot.waitUntil(lambda: window.call_state == "idle", timeout=3000)
    assert window.rest_dialog is None and not window.fold_button.isVisible()
    assert "접어 두었습니다" not in window.transcript_text()
