"""The counselor's window when recognition goes down mid-call (issue 13): the real engine on
the in-memory line with its recogniser in a child process (a tone recogniser there); the
child is killed during the call, and the window shows it in the red banner at once (the call
goes on, recorded), and takes the banner away when a new recogniser is ready."""

from __future__ import annotations

import contextlib
import os
import signal

import pytest
from fakerig import FakeRig

from callguard.asr.process import child_factory, tone_spec
from callguard.gui import i18n
from callguard.gui.bridge import EngineBridge
from callguard.gui.counselor import CounselorWindow


@pytest.fixture
def rig(tmp_path):
    rig = FakeRig(tmp_path, auto_answer=True)
    rig.engine.transcriber_factory = child_factory(tone_spec({1000.0: "이 새끼야"}))
    rig.engine.start()
    yield rig
    rig.stop()


@contextlib.contextmanager
def _window(qtbot, rig, lang: str):
    """The counselor's window on the rig's engine, shown, in ``lang`` ("ko" or "en")."""
    before = i18n.language()
    i18n.set_language(lang)
    try:
        window = CounselorWindow(EngineBridge(rig.engine), None, counselor="kim")
        qtbot.addWidget(window)
        window.show()
        qtbot.waitExposed(window)
        yield window
    finally:
        i18n.set_language(before)


def test_a_killed_recogniser_is_shown_in_the_banner_and_cleared_when_back(qtbot, rig):
    with _window(qtbot, rig, "en") as window:
        rig.line.ring("010-1234-5678")
        qtbot.waitUntil(lambda: window.call_state == "active", timeout=10000)
        assert not window.headset_label.isVisible()
        os.kill(rig.engine.worker.transcriber.pid, signal.SIGKILL)
        qtbot.waitUntil(window.headset_label.isVisible, timeout=5000)
        text = window.headset_label.text()
        # Plain words for the counselor; what exactly happened (the signal) for IT, in the
        # banner's tooltip only.
        assert "Recognition unavailable" in text and "restarts by itself" in text, text
        assert "SIGKILL" not in text and "SIGKILL" in window.headset_label.toolTip()
        assert window.call_state == "active"  # the call goes on
        qtbot.waitUntil(lambda: not window.headset_label.isVisible(), timeout=15000)
        assert ("Recognition unavailable", text) in window.notices


def test_a_store_fault_is_shown_in_plain_words_with_the_detail_for_it(qtbot, rig):
    # The spool reports a full disk (what it does on ENOSPC) on the engine's loop: the
    # window says what is wrong in the counselor's words, the path and error in the
    # tooltip, and takes the banner away when the store is written again.
    detail = "the disk holding the call store /data/calls.db is full [database or disk is full]"

    async def fault(ok: bool) -> None:
        if ok:
            rig.engine.spool._healthy()
        else:
            rig.engine.spool._report("full", detail)

    with _window(qtbot, rig, "ko") as window:
        rig.engine.submit(fault(False)).result(5)
        qtbot.waitUntil(window.store_label.isVisible, timeout=5000)
        text = window.store_label.text()
        assert "디스크 공간 부족" in text and "/data/calls.db" not in text, text
        assert window.store_label.toolTip() == detail
        assert rig.engine.store_health == {"ok": False, "problem": detail, "kind": "full"}
        rig.engine.submit(fault(True)).result(5)
        qtbot.waitUntil(lambda: not window.store_label.isVisible(), timeout=5000)
