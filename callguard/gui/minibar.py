"""The always-on-top mini bar: the call's state and the Protect button in a small window
that stays above the CRM, for counselors who keep the CRM in front.

Optional: the counselor's window shows it from 보기 > 작은 창 (or at start with
``mini_bar = true`` in the desk settings, :mod:`callguard.gui.desk`). It has no call
controls of its own beyond Protect; its button does exactly what the big one does (the
same hold-to-confirm, when that is on).
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QCloseEvent, QFont
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from callguard.gui.i18n import plain, texts

T = texts({
    "mini.title": ("callguard 작은 창", "callguard mini bar"),
    "mini.protect": ("보호(&P)", "&Protect"),
})

PROTECT_STYLE = (
    "QPushButton:enabled { background:#c62828; color:#ffffff; border-radius:6px;"
    " padding:4px 14px }"
    "QPushButton:enabled:hover { background:#b71c1c }"
    "QPushButton:disabled { background:#e0e0e0; color:#616161; border-radius:6px;"
    " padding:4px 14px }")


class MiniBar(QWidget):
    """A small frameless-looking tool window that stays on top: ``status_label`` (the call
    state and the stage line) and ``protect_button``. Closing it only hides it; the
    counselor's window decides (``closed`` callback) what that means."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Tool | Qt.WindowType.WindowStaysOnTopHint)
        self.setWindowTitle(T("mini.title"))
        self.setAccessibleName(T("mini.title"))
        self.on_closed = None
        self.state_label = QLabel()
        self.state_label.setAccessibleName(T("mini.title"))
        bold = QFont(self.state_label.font())
        bold.setBold(True)
        self.state_label.setFont(bold)
        self.stage_label = QLabel()
        self.stage_label.setWordWrap(True)
        self.protect_button = QPushButton(T("mini.protect"))
        self.protect_button.setAccessibleName(plain(T("mini.protect")))
        self.protect_button.setMinimumHeight(44)
        pf = QFont(self.protect_button.font())
        pf.setPointSizeF(pf.pointSizeF() * 1.4)
        pf.setBold(True)
        self.protect_button.setFont(pf)
        self.protect_button.setStyleSheet(PROTECT_STYLE)
        text = QVBoxLayout()
        text.addWidget(self.state_label)
        text.addWidget(self.stage_label)
        row = QHBoxLayout(self)
        row.setContentsMargins(8, 6, 8, 6)
        row.addLayout(text, 1)
        row.addWidget(self.protect_button)
        self.resize(360, 70)

    def show_state(self, state: str, stage: str, protect_enabled: bool, tip: str) -> None:
        self.state_label.setText(state)
        self.stage_label.setText(stage)
        self.stage_label.setVisible(bool(stage))
        self.protect_button.setEnabled(protect_enabled)
        self.protect_button.setToolTip(tip)

    def closeEvent(self, event: QCloseEvent) -> None:
        super().closeEvent(event)
        if self.on_closed is not None:
            self.on_closed()
