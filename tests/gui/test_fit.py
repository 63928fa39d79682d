"""Every window fits a 1366×768 screen (issue 15, item 7): it opens within the budget of
callguard.gui.fit (the screen less a taskbar and title bar), and its minimum size — what
its controls need — is within it too, in Korean and English, also with every banner of the
counselor's window shown."""

from __future__ import annotations

from pathlib import Path

from fakerig import FakeRig

from callguard.config import CentralSettings
from callguard.gui.bridge import EngineBridge, StoreClient
from callguard.gui.counselor import CounselorWindow, stage_demo_call
from callguard.gui.fit import budget
from callguard.gui.i18n import tr as T
from callguard.gui.login import LoginDialog
from callguard.gui.rest import RestDialog
from callguard.gui.review import ReviewWindow
from callguard.gui.rules_editor import RulesEditorWindow

ROOT = Path(__file__).resolve().parents[2]


def fits(w) -> None:
    bw, bh = budget()
    assert budget() == (1350, 696)
    size, least = w.size(), w.minimumSizeHint()
    assert size.width() <= bw and size.height() <= bh, (type(w).__name__, size)
    assert least.width() <= bw and least.height() <= bh, (type(w).__name__, least)


def test_every_window_fits_1366x768(qtbot, tmp_path, lang):
    rig = FakeRig(tmp_path)
    store = StoreClient(rig.db)
    try:
        store.submit(lambda s: s.set_password("boss", "admin", "correct horse")).result(10)
        counselor = CounselorWindow(EngineBridge(rig.engine), store, "kim")
        qtbot.addWidget(counselor)
        counselor.show()
        fits(counselor)
        stage_demo_call(counselor)  # a call, a hit, a warning banner
        # Every banner at once, with its longest real text (wrapped at spaces).
        counselor.crisis_label.setText(T("counselor.crisis.central"))
        counselor.crisis_label.show()
        counselor.headset_label.setText(T("counselor.headset"))
        counselor.headset_label.show()
        counselor.store_label.setText(T("counselor.store", why=T("counselor.store.replaced")))
        counselor.store_label.show()
        counselor.show_mini_bar(True)
        fits(counselor)
        fits(counselor.mini_bar)
        rest = counselor.offer_rest(None, "crisis")
        fits(rest)
        rest.close()
        for w in (ReviewWindow(store, "boss", "admin"),
                  RulesEditorWindow(store, ROOT / "rules" / "default.toml", "boss"),
                  # on a desk with a central server: its note shown too
                  RulesEditorWindow(store, ROOT / "rules" / "default.toml", "boss",
                                    central=CentralSettings(
                                        url="https://callguard-central.example.co.kr:8443",
                                        token="t", fingerprint="SHA256:" + "AB:" * 31 + "CD")),
                  LoginDialog(store, "admin"), RestDialog(None, "kim")):
            qtbot.addWidget(w)
            w.show()
            fits(w)
        counselor.close()
    finally:
        store.close()
        rig.stop()
