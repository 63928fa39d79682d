"""The desktop app on a real SIP line: kamailio as the office PBX and baresip as the caller
on 127.0.0.1, the real engine with the bundled Whisper model, the real store, and the windows
built as ``callguard gui`` builds them (:func:`callguard.gui.app.build_windows`). Only the
sound card is missing: the counselor's headset is the engine's silent device."""

from __future__ import annotations

import numpy as np
import pytest
from audiocheck import align, clip, silence
from officepbx import bob_calls_agent, pbx_fixture
from peers.baresip import read_wav, write_wav
from PySide6.QtCore import Qt
from test_live_calls import Harness, _rules

from callguard.gui.app import build_windows
from callguard.gui.bridge import EngineBridge, StoreClient

pytestmark = pytest.mark.slow
CLICK = Qt.MouseButton.LeftButton


pbx = pbx_fixture("kamailio", "baresip", shared=True)


def test_a_real_call_rings_is_answered_highlighted_and_protected_in_the_window(
        qtbot, pbx, tmp_path):
    h = Harness(pbx, tmp_path, _rules(), auto_answer=False, counselor="agent")  # as app.main
    bridge = EngineBridge(h.engine)  # before the engine starts: it chains the event hook
    store = StoreClient(h.db)
    window = build_windows(bridge, store, tmp_path / "rules.toml", "agent")
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    # The caller: "나도 몰라 ..." (the "insult" rule), then silence until the end.
    caller = np.concatenate([silence(1.0), clip("k009"), silence(40.0)])
    src = write_wav(tmp_path / "caller.wav", caller)
    h.engine.start()
    try:
        qtbot.waitUntil(lambda: window.line_label.text() == "● 회선 연결됨", timeout=10000)
        with bob_calls_agent(pbx, src) as bob:
            qtbot.waitUntil(lambda: window.call_state == "ringing", timeout=10000)
            assert "bob" in window.remote_label.text()
            qtbot.mouseClick(window.answer_button, CLICK)
            qtbot.waitUntil(lambda: window.call_state == "active", timeout=10000)
            bob.wait_event("CALL_ESTABLISHED", 10)
            # Whisper hears "몰라" in the real speech; the window highlights just that span.
            qtbot.waitUntil(lambda: any("몰" in t for t in window.highlighted_texts()),
                            timeout=30000)
            qtbot.mouseClick(window.protect_button, CLICK)
            closed = bob.wait_event("CALL_CLOSED", 20)
            received, _ = read_wav(bob.received_wav())
        qtbot.waitUntil(lambda: window.call_state == "idle", timeout=10000)
        assert "CALL_CLOSED" in closed["type"]
        ended = h.wait("ended", 10)
        assert ended.data["reason"] == "final_notice" and ended.data["protected"]
        # The final notice reached the caller whole before the BYE.
        pos, corr = align(received, h.final)
        assert corr > 0.9 and pos + h.final.size <= received.size, (pos, corr)
        # The rest the law asks for is offered after a protected call.
        qtbot.waitUntil(lambda: window.rest_dialog is not None, timeout=5000)
        window.rest_dialog.close()
    finally:
        h.engine.stop()
        store.close()
    rec = h.stored()
    assert rec.end_reason == "final_notice" and rec.hung_up_by == "agent"
    assert rec.counselor == "agent"
    assert any(hit.rule_id == "live.insult" for u in rec.utterances for hit in u.hits)
