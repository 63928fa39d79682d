"""TEST ONLY (copied into the wine prefix, never into the installer). Run by the installed
CPython (``python.exe gui_smoke.py``): start the installed callguard GUI exactly as
callguard-gui.exe does (``callguard.gui.app.main``) on an in-memory line, check after a few
seconds that the counselor window is up and drawn, then close it the way a user does and
exit with the GUI's own exit code."""

import sys

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

app = QApplication(sys.argv[:1])
seen: list[str] = []


def check_and_close() -> None:
    for w in app.topLevelWidgets():
        if w.isVisible():
            seen.append(type(w).__name__)
            image = w.grab()  # really drawn (offscreen platform)
            print(f"gui: {type(w).__name__} {image.width()}x{image.height()} "
                  f"'{w.windowTitle()}'", flush=True)
    for w in app.topLevelWidgets():
        if type(w).__name__ == "CounselorWindow":
            w.close()
    QTimer.singleShot(3000, app.quit)  # in case closing the window does not end the app


QTimer.singleShot(int(float(sys.argv[1]) * 1000) if len(sys.argv) > 1 else 6000,
                  check_and_close)

from callguard.gui.app import main  # noqa: E402  (after the QApplication, as the app does)

code = main(["--fake-line"])
print(f"gui: exit {code}; windows seen: {', '.join(seen) or 'none'}", flush=True)
sys.exit(code if "CounselorWindow" in seen else 3)
