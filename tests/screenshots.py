"""Render each window of the app to PNG so a person can look at them.

    bash installer/screenshots.sh [OUTDIR]     # under Xvfb (default OUTDIR: screenshots/)
    QT_QPA_PLATFORM=offscreen python tests/screenshots.py OUTDIR   # without X

Everything shown is real except the far end and the recogniser: the engine runs on the
in-memory line (callguard.telephony.fake) with a recogniser that hears marker tones as a
scripted abusive sentence, so the screens show a real call going through the real session,
policy, prompts and SQLite store. The call runs on a stepped clock (no waiting for it to
play out). Every window is rendered at the size it takes on a 1366×768 screen
(callguard.gui.fit: the screen less taskbar and title bar). Written, per language (ko, en):

- ``counselor-<lang>.png``: the counselor's window during a warning, a rule hit highlighted;
- ``counselor-after-<lang>.png``: after that call (callguard ended it): the transcript
  folded, the rest offered (the rest window drawn where it opens, over the main window);
- ``counselor-crisis-<lang>.png``: a call with crisis words (no central server);
- ``review-<lang>.png``: the supervisor's review of the flagged call, markers visible;
- ``review-protect-<lang>.png``: the review of a call the counselor protected;
- ``review-crisis-<lang>.png``: the review of the crisis call;
- ``rules-<lang>.png``: the admin's rules editor showing a validation error;
- ``rules-broad-<lang>.png``: the editor refusing "다" (the broad-term guard).

Prints the written paths as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parent))
# A real X display (Xvfb) when there is one, else offscreen.
os.environ.setdefault("QT_QPA_PLATFORM", "xcb" if os.environ.get("DISPLAY") else "offscreen")

from fakerig import GUI_RULES, FakeRig, abusive_call_audio, rules_text, write_tone_wav
from PySide6.QtCore import QPoint
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import QApplication, QWidget

from callguard.gui.bridge import EngineBridge, StoreClient, release_windows
from callguard.gui.fit import budget
from callguard.gui.i18n import set_language

if TYPE_CHECKING:  # for the annotations: the functions import the windows they make
    from callguard.gui.counselor import CounselorWindow
    from callguard.gui.review import ReviewWindow
    from callguard.gui.rules_editor import RulesEditorWindow
    from callguard.telephony.fake import FakeCall

SIZE = budget()  # a window maximised on a 1366×768 screen


def _until(app: QApplication, cond: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError(f"screenshots: {what} did not happen within {timeout} s")
        app.processEvents()
        time.sleep(0.02)


def _save(app: QApplication, w: QWidget, path: Path, over: QWidget | None = None) -> Path:
    """Grab ``w`` (with ``over``, a dialog, drawn centred on it as it opens) to ``path``."""
    for _ in range(10):  # let layouts settle and paint
        app.processEvents()
        time.sleep(0.02)
    shot = w.grab()
    if over is not None:
        top = over.grab()
        painter = QPainter(shot)
        painter.drawPixmap(QPoint((shot.width() - top.width()) // 2,
                                  (shot.height() - top.height()) // 2), top)
        painter.end()
    if not shot.save(str(path)):
        raise RuntimeError(f"could not write {path}")
    return path


@contextmanager
def _counselor_window(rig: FakeRig) -> Iterator[CounselorWindow]:
    """The counselor's window on ``rig``'s engine, shown at :data:`SIZE`, the engine
    started; the rig stopped and the window closed after."""
    from callguard.gui.counselor import CounselorWindow

    window = CounselorWindow(EngineBridge(rig.engine), counselor="kim")
    window.resize(*SIZE)
    window.show()
    rig.engine.start()
    try:
        yield window
    finally:
        rig.stop()
        window.close()


def _answered(app: QApplication, rig: FakeRig, window: CounselorWindow,
              number: str) -> FakeCall:
    """``number`` calls and the counselor answers; returns the far end of the active call."""
    call = rig.line.ring(number)
    _until(app, lambda: window.answer_button.isEnabled(), 10, "ringing")
    window.answer()
    _until(app, lambda: window.call_state == "active", 10, "answer")
    return call


def _ended(app: QApplication, window: CounselorWindow, what: str) -> None:
    """Wait for the call's end (``what``, for the timeout's message); close the rest
    offered after it, if any."""
    _until(app, lambda: window.call_state == "idle", 10, what)
    if window.rest_dialog is not None:
        window.rest_dialog.close()


@contextmanager
def _review_window(rig: FakeRig, tmp: Path) -> Iterator[ReviewWindow]:
    """The supervisor's review of ``rig``'s store, shown at :data:`SIZE`; closed after, and
    its store client too."""
    from callguard.gui.review import ReviewWindow

    client = StoreClient(rig.db)
    try:
        review = ReviewWindow(client, "lee", key_path=tmp / "evidence.key", playback=False,
                              today=False)  # the stepped calls are not dated today
        review.resize(*SIZE)
        review.show()
        yield review
        review.close()
    finally:
        client.close()


@contextmanager
def _rules_editor(tmp: Path) -> Iterator[RulesEditorWindow]:
    """The admin's rules editor on GUI_RULES in ``tmp`` (with its two prompt recordings),
    shown at :data:`SIZE`; its store client closed after."""
    from callguard.gui.rules_editor import RulesEditorWindow

    write_tone_wav(tmp / "warning.wav", 500, 1.0)
    write_tone_wav(tmp / "final.wav", 700, 1.2)
    rules = tmp / "rules.toml"
    rules.write_text(GUI_RULES, encoding="utf-8")
    client = StoreClient(tmp / "calls.db")
    try:
        editor = RulesEditorWindow(client, rules, "admin")
        editor.resize(*SIZE)
        editor.show()
        yield editor
    finally:
        client.close()


def counselor_and_review(app: QApplication, tmp: Path, out: Path, lang: str) -> list[Path]:
    rig = FakeRig(tmp, stepped=True)
    written = []
    with _counselor_window(rig) as window:
        call = _answered(app, rig, window, "010-1234-5678")
        # One abusive sentence: the hit is highlighted and the warning plays.
        call.far_play(abusive_call_audio(8.0, bursts=((0.3, 1.2),)), at_s=0.0)
        rig.advance(4.0)
        _until(app, lambda: bool(window.highlighted_texts()), 10, "a highlighted hit")
        _until(app, lambda: window.elapsed_s() > 3.0, 10, "the call running")
        written.append(_save(app, window, out / f"counselor-{lang}.png"))
        # The caller goes on: the final notice ends the call; the call is stored.
        call.far_play(abusive_call_audio(4.0, bursts=((0.5, 1.2),)))
        rig.advance(6.0)
        _until(app, lambda: window.call_state == "idle", 10, "the final notice and hangup")
        _until(app, lambda: window.rest_dialog is not None, 10, "the rest offered")
        written.append(_save(app, window, out / f"counselor-after-{lang}.png",
                             over=window.rest_dialog))
        window.rest_dialog.close()
        # A second call: the counselor protects.
        _answered(app, rig, window, "010-9876-5432")
        rig.advance(2.0)
        window.protect()
        rig.advance(3.0)
        _ended(app, window, "the protected call's end")

    with _review_window(rig, tmp) as review:
        review.set_filters(flagged=True)
        _until(app, lambda: len(review.listed_ids()) >= 2, 10, "the call list")
        first, protected = sorted(review.listed_ids())[:2]
        review.show_call(first)
        _until(app, lambda: review.call is not None and review.call.id == first, 10,
               "the call detail")
        review.seek(4.3)
        written.append(_save(app, review, out / f"review-{lang}.png"))
        review.show_call(protected)
        _until(app, lambda: review.call is not None and review.call.id == protected, 10,
               "the protected call's detail")
        written.append(_save(app, review, out / f"review-protect-{lang}.png"))
    return written


def crisis(app: QApplication, tmp: Path, out: Path, lang: str) -> list[Path]:
    """A call with crisis words (the marker sentence is a crisis phrase under these rules),
    then its review."""
    rules = rules_text().replace('category = "profanity"', 'category = "crisis"')
    rig = FakeRig(tmp, rules, stepped=True)
    written = []
    with _counselor_window(rig) as window:
        call = _answered(app, rig, window, "010-5555-0109")
        call.far_play(abusive_call_audio(8.0, bursts=((0.3, 1.2),)), at_s=0.0)
        rig.advance(4.0)
        _until(app, lambda: window.crisis_label.isVisible(), 10, "the crisis banner")
        written.append(_save(app, window, out / f"counselor-crisis-{lang}.png"))
        window.hangup()
        rig.advance(0.5)
        _ended(app, window, "the crisis call's end")
    with _review_window(rig, tmp) as review:
        _until(app, lambda: bool(review.listed_ids()), 10, "the call list")
        review.show_call(review.listed_ids()[0])
        _until(app, lambda: review.call is not None, 10, "the call detail")
        box = review.verdict_box
        box.setCurrentIndex(box.findData("crisis_response"))
        written.append(_save(app, review, out / f"review-crisis-{lang}.png"))
    return written


def rules_broad(app: QApplication, tmp: Path, out: Path, lang: str) -> list[Path]:
    """The editor with "다" added to a rule in the form: the broad-term error."""
    with _rules_editor(tmp) as editor:
        _until(app, lambda: editor.check is not None, 30, "the first check")
        editor.tabs.setCurrentIndex(editor._tab_index["rules"])  # the form, where it is typed
        editor.rule_list.setCurrentRow(0)
        editor.rule_terms.appendPlainText("다")
        editor.validate_now()
        _until(app, lambda: editor.check is not None and editor.check.text == editor.text()
               and not editor.check.ok, 30, "the broad-term error")
        return [_save(app, editor, out / f"rules-broad-{lang}.png")]


def rules_editor(app: QApplication, tmp: Path, out: Path, lang: str) -> list[Path]:
    from callguard.gui.rules_editor import stage_validation_error

    with _rules_editor(tmp) as editor:
        stage_validation_error(editor, app)
        return [_save(app, editor, out / f"rules-{lang}.png")]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("outdir", nargs="?", type=Path, default=Path("screenshots"))
    ap.add_argument("--lang", choices=("ko", "en", "both"), default="both")
    args = ap.parse_args(argv)
    args.outdir.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    written: list[Path] = []
    for lang in ("ko", "en") if args.lang == "both" else (args.lang,):
        set_language(lang)
        with tempfile.TemporaryDirectory(prefix="callguard-shots-") as d:
            tmp = Path(d)
            for sub in "abcd":
                (tmp / sub).mkdir()
            written += counselor_and_review(app, tmp / "a", args.outdir, lang)
            written += crisis(app, tmp / "c", args.outdir, lang)
            written += rules_editor(app, tmp / "b", args.outdir, lang)
            written += rules_broad(app, tmp / "d", args.outdir, lang)
    set_language("ko")
    print(json.dumps({"screenshots": [str(p) for p in written]}, ensure_ascii=False),
          flush=True)
    release_windows()  # the windows go now, on this thread, before Qt's own teardown
    return 0


if __name__ == "__main__":
    sys.exit(main())
