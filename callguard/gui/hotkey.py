"""The system-wide protect hotkey (pynput): protect works while the CRM is in front.

pynput listens on its own thread (X11: the RECORD extension, nothing is grabbed, so the
CRM still sees the keys; Windows: a low-level keyboard hook). Its callback only emits a Qt
signal; the protect itself runs on the GUI thread, as a click would. Where pynput cannot
listen (no X server, Wayland without XWayland focus, a locked-down PC) :meth:`start`
returns the reason and the window falls back to a shortcut that works while it has focus.
"""

from __future__ import annotations

import logging
import os
import sys
import time

from PySide6.QtCore import QObject, Signal

from callguard.gui.desk import hotkey_to_pynput

log = logging.getLogger(__name__)

READY_S = 3.0  # a listener not ready by then is given up (never block the window's start)


def _ready(listener, timeout_s: float) -> bool:
    """Wait until ``listener`` is listening, it died, or ``timeout_s`` passed (pynput's own
    ``wait()`` waits forever when the listener fails to start)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if getattr(listener, "_ready", False):
            return True
        if not listener.is_alive():
            return False
        time.sleep(0.01)
    return False


class GlobalHotkey(QObject):
    """``pressed`` is emitted (on the GUI thread) each time ``combo`` (Qt notation, e.g.
    ``"Ctrl+Alt+P"``) is pressed anywhere on the desktop."""

    pressed = Signal()

    def __init__(self, combo: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.combo = combo
        self._listener = None
        self.error: str | None = None

    @property
    def active(self) -> bool:
        return self._listener is not None

    def start(self) -> str | None:
        """Start listening; ``None`` when listening, else why not (also in :attr:`error`)."""
        if self._listener is not None:
            return None
        try:
            spec = hotkey_to_pynput(self.combo)
            if sys.platform.startswith("linux") and not os.environ.get("DISPLAY"):
                raise RuntimeError("no X display ($DISPLAY is not set)")
            from pynput import keyboard  # needs a display (X11) at import time

            listener = keyboard.GlobalHotKeys({spec: self.pressed.emit})
            listener.daemon = True
            listener.start()
            if not _ready(listener, READY_S):
                listener.stop()
                raise RuntimeError("the keyboard listener did not start")
        except Exception as exc:  # ImportError without a display, Xlib errors, ValueError
            self.error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            log.warning("system-wide protect hotkey %s unavailable: %s", self.combo,
                        self.error)
            return self.error
        self._listener = listener
        self.error = None
        log.info("system-wide protect hotkey: %s", self.combo)
        return None

    def stop(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            # pynput's X11 listener notices the stop only at its next key event: its
            # (daemon) thread may outlive this call by that long; it calls nothing then.
            listener.stop()
            listener.join(0.2)
