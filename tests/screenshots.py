"""Render each window of the app to PNG so a person can look at them.

    bash installer/screenshots.sh [OUTDIR]     # under Xvfb (default OUTDIR: screenshots/)
    QT_QPA_PLATFORM=offscreen python tests/screenshots.py OUTDIR   # without X

Everything shown is real except the far end and the recogniser: the engine runs on the
in-memory line (callguard.telephony.fake) with a recogniser that hears marker tones as a
scripted abusive sentence, so the screens show a real call going through the real session,
policy, prompts and SQLite store. The call runs on a stepped clock (no waiting for it to
play out). Written, per language (ko, en):

- ``counselor-<lang>.png``: the counselor's window during a call, a rule hit highlighted;
- ``review-<lang>.png``: the supervisor's review of that flagged call, markers visible;
- ``rules-<lang>.png``: the admin's rules editor showing a validation error.

Prints the written paths as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
# A real X display (Xvfb) when there is one, else offscreen.
os.environ.setdefault("QT_QPA_PLATFORM", "xcb" if os.environ.get("DISPLAY") else "offscreen")

from fakerig import GUI_RULES, FakeRig, abusive_call_audio, write_tone_wav
from PySide6.QtWidgets import QApplication, QWidget

from callguard.gui.bridge import EngineBridge, StoreClient, release_windows
from callguard.gui.i18n import set_language


def _until(app: QApplication, cond: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError(f"screenshots: {what} did not happen within {timeout} s")
        app.processEvents()
        time.sleep(0.02)


def _save(app: QApplication, w: QWidget, path: Path) -> Path:
    for _ in range(10):  # let layouts settle and paint
        app.processEvents()
        time.sleep(0.02)
    if not w.grab().save(str(path)):
        raise RuntimeError(f"could not write {path}")
    return path


def counselor_and_review(app: QApplication, tmp: Path, out: Path, lang: str) -> list[Path]:
    from callguard.gui.counselor import CounselorWindow
    from callguard.gui.review import ReviewWindow

    rig = FakeRig(tmp, stepped=True)
    bridge = EngineBridge(rig.engine)
    window = CounselorWindow(bridge, counselor="kim")
    window.resize(1100, 760)
    window.show()
    rig.engine.start()
    written = []
    try:
        call = rig.line.ring("010-1234-5678")
        _until(app, lambda: window.answer_button.isEnabled(), 10, "ringing")
        window.answer()
        _until(app, lambda: window.call_state == "active", 10, "answer")
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
    finally:
        rig.stop()
        window.close()

    client = StoreClient(rig.db)
    try:
        review = ReviewWindow(client, "lee", key_path=tmp / "evidence.key", playback=False)
        review.resize(1400, 850)
        review.show()
        review.set_filters(flagged=True)
        _until(app, lambda: bool(review.listed_ids()), 10, "the call list")
        review.show_call(review.listed_ids()[0])
        _until(app, lambda: review.call is not None, 10, "the call detail")
        review.seek(4.3)
        written.append(_save(app, review, out / f"review-{lang}.png"))
        review.close()
    finally:
        client.close()
    return written


def rules_editor(app: QApplication, tmp: Path, out: Path, lang: str) -> list[Path]:
    from callguard.gui.rules_editor import RulesEditorWindow, stage_validation_error

    write_tone_wav(tmp / "warning.wav", 500, 1.0)
    write_tone_wav(tmp / "final.wav", 700, 1.2)
    rules = tmp / "rules.toml"
    rules.write_text(GUI_RULES, encoding="utf-8")
    client = StoreClient(tmp / "calls.db")
    try:
        editor = RulesEditorWindow(client, rules, "admin")
        editor.resize(1300, 850)
        editor.show()
        stage_validation_error(editor, app)
        return [_save(app, editor, out / f"rules-{lang}.png")]
    finally:
        client.close()


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
            (tmp / "a").mkdir()
            (tmp / "b").mkdir()
            written += counselor_and_review(app, tmp / "a", args.outdir, lang)
            written += rules_editor(app, tmp / "b", args.outdir, lang)
    set_language("ko")
    print(json.dumps({"screenshots": [str(p) for p in written]}, ensure_ascii=False),
          flush=True)
    release_windows()  # the windows go now, on this thread, before Qt's own teardown
    return 0


if __name__ == "__main__":
    sys.exit(main())
