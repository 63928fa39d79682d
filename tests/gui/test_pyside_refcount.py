"""The Qt binding must not leak or steal references on every call.

PySide6 6.12.0 on Python 3.11 took one reference from ``None`` on every call of a method
that returns nothing (``update()``, ``setText()``, ``processEvents()`` ...). The counselor's
window makes dozens of such calls a second, so within hours ``None`` reached zero
references and the interpreter aborted ("deallocating None"), mid-call. Measured: 1000
calls of ``QWidget.update`` lowered ``sys.getrefcount(None)`` by exactly 1000 on 6.12.0, by 0
on 6.11.3.
"""

from __future__ import annotations

import sys

from PySide6.QtWidgets import QApplication, QLabel


def test_void_qt_calls_keep_the_reference_counts_of_none_true_and_false(qtbot):
    label = QLabel()
    qtbot.addWidget(label)
    app = QApplication.instance()
    calls = (label.update, lambda: label.setText("x"), lambda: label.setVisible(False),
             app.processEvents)
    for call in calls:
        call()  # warm up: first calls may create lasting objects
    before = [sys.getrefcount(x) for x in (None, True, False)]
    for _ in range(1000):
        for call in calls:
            call()
    after = [sys.getrefcount(x) for x in (None, True, False)]
    # A few references may come and go (objects alive at either moment); a steal of one
    # per call would show as thousands.
    assert all(abs(a - b) < 100 for a, b in zip(after, before, strict=True)), (before, after)
