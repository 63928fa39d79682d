"""A repeat caller (flagged on some desk; known through the central link's caller list) is
named on the counselor's window while it rings, before the answer, by count only."""

from __future__ import annotations

import time

from fakerig import FakeRig

from callguard.central.callers import caller_key
from callguard.central.fake import FakeCentral
from callguard.central.link import CentralLink
from callguard.gui import i18n
from callguard.gui.bridge import EngineBridge
from callguard.gui.counselor import CounselorWindow


def test_a_ringing_repeat_caller_is_named_before_the_answer(qtbot, tmp_path):
    i18n.set_language("ko")
    central = FakeCentral()
    central.callers = [{"key": caller_key(central.repeat_key, "010-5555-1234"),
                        "flagged": 2, "last_at": time.time()}]
    link = CentralLink(tmp_path / "calls.db", lambda: central, rules_target=None,
                       rules_base=tmp_path, poll_s=1.0, idle_s=0.1)
    rig = FakeRig(tmp_path, central=link)
    rig.engine.start()
    try:
        window = CounselorWindow(EngineBridge(rig.engine), None, counselor="kim")
        qtbot.addWidget(window)
        window.show()
        qtbot.waitUntil(lambda: link.callers.lookup("01055551234") is not None, timeout=10_000)
        rig.line.ring("010-9999-8888")  # not a repeat caller: nothing said
        qtbot.waitUntil(lambda: window.call_state == "ringing", timeout=5000)
        assert "재통화" not in window.prompt_label.text()
        rig.engine.decline(window.call_id).result(5)
        qtbot.waitUntil(lambda: window.call_state == "idle", timeout=5000)
        rig.line.ring("sip:010-5555-1234@pbx.local")
        qtbot.waitUntil(lambda: window.call_state == "ringing", timeout=5000)
        qtbot.waitUntil(lambda: "재통화 고객: 최근 30일 문제 통화 2건"
                        in window.prompt_label.text(), timeout=5000)
        assert "5555" not in window.prompt_label.text()
    finally:
        rig.stop()
