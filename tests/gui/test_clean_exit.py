"""A process that has used the windows exits cleanly: no "shared QObject was deleted
directly" from Qt, no crash at interpreter exit.

The scenario runs in a child process (this file run as a script), because what is tested
is the interpreter's exit: the counselor's window on the in-memory line takes and ends a
call, two review windows show it, two rules editors check their rules; all are closed the
way a user closes them (``close()``, nothing deleted by hand), the engine and the store are
stopped, and the script returns normally. Before the fix, PySide's own teardown at exit
deleted the still-living windows in no particular order and deleted some widgets twice
(see ``callguard.gui.bridge.release_windows``): the process printed the Qt warning and
died of SIGSEGV/SIGABRT/SIGBUS most of the time (several windows make it near certain).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def test_the_app_exits_cleanly_after_using_every_window(tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONFAULTHANDLER="1")
    out = subprocess.run([sys.executable, str(Path(__file__)), str(tmp_path)],
                         capture_output=True, text=True, timeout=240, env=env, check=False)
    assert "windows used" in out.stdout, out.stderr[-3000:]
    assert "shared QObject" not in out.stderr, out.stderr[-3000:]
    assert "deleted directly" not in out.stderr, out.stderr[-3000:]
    assert "Fatal Python error" not in out.stderr, out.stderr[-3000:]
    assert out.returncode == 0, (out.returncode, out.stderr[-3000:])


# -- the child process ------------------------------------------------------------------------

def _until(app, cond, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not happen within {timeout} s")
        app.processEvents()
        time.sleep(0.01)


def _use_every_window(tmp: Path) -> None:
    sys.path[:0] = [str(HERE.parent), str(HERE.parents[1])]  # tests/ (fakerig), the repo
    from fakerig import FakeRig
    from PySide6.QtWidgets import QApplication

    from callguard.gui.bridge import EngineBridge, StoreClient
    from callguard.gui.counselor import CounselorWindow
    from callguard.gui.review import ReviewWindow
    from callguard.gui.rules_editor import RulesEditorWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    rig = FakeRig(tmp)
    bridge = EngineBridge(rig.engine)
    store = StoreClient(rig.db)
    counselor = CounselorWindow(bridge, store, "kim")
    counselor.show()
    rig.engine.start()
    try:
        rig.line.ring("010-1234-5678")
        _until(app, counselor.answer_button.isEnabled, 10, "ringing")
        counselor.answer()
        _until(app, lambda: counselor.call_state == "active", 10, "the answer")
        counselor.hangup()
        _until(app, lambda: counselor.call_state == "idle", 10, "the hang-up")
        windows = []
        for i in range(2):
            review = ReviewWindow(store, "lee", key_path=tmp / "evidence.key",
                                  playback=i == 0, today=False)
            review.show()
            _until(app, lambda r=review: bool(r.listed_ids()), 10, "the call list")
            review.show_call(review.listed_ids()[0])
            _until(app, lambda r=review: r.call is not None, 10, "the call detail")
            editor = RulesEditorWindow(store, rig.rules, "admin", bridge)
            editor.show()
            _until(app, lambda e=editor: e.check is not None, 30, "the rules check")
            windows += [review, editor]
        for w in (counselor, *windows):
            w.close()
        app.processEvents()
    finally:
        rig.engine.stop()
        store.close()
    print("windows used", flush=True)


if __name__ == "__main__":
    _use_every_window(Path(sys.argv[1]))
    sys.exit(0)  # a normal exit: the interpreter and PySide tear down what is left
