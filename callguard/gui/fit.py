"""Windows fit a 1366×768 screen, the smallest common in call centres.

Every window opens at its preferred size clamped to :data:`SCREEN` less a taskbar and a
title bar (:func:`fit`), and on a screen smaller still, to that screen's free area; none
needs more than that to show all its controls (the tests check each window's minimum size
against :func:`budget`).
"""

from __future__ import annotations

from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QWidget

SCREEN = (1366, 768)
#: A 40 px taskbar and a title bar of about 32 px.
CHROME_H = 72
#: Window frame, left and right.
CHROME_W = 16


def budget() -> tuple[int, int]:
    """The largest client area a window may take on a 1366×768 screen."""
    return SCREEN[0] - CHROME_W, SCREEN[1] - CHROME_H


def fit(window: QWidget, width: int, height: int) -> None:
    """Resize ``window`` to ``width``×``height`` or less: within :func:`budget`, and within
    the free area of its screen when that is smaller (a real screen, not offscreen)."""
    bw, bh = budget()
    w, h = min(width, bw), min(height, bh)
    screen = window.screen() or QGuiApplication.primaryScreen()
    if screen is not None and QGuiApplication.platformName() not in ("offscreen", "minimal"):
        free = screen.availableGeometry()
        w, h = min(w, free.width() - CHROME_W), min(h, free.height() - 32)
    hint = window.minimumSizeHint()
    window.resize(max(w, hint.width()), max(h, hint.height()))
