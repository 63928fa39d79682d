"""The rest offered to a counselor after a call that callguard ended for abuse, after any
flagged or crisis call, and whenever the counselor asks for one (the rest button).

Korean law asks the employer to let a counselor rest after an abusive call; callguard makes
that a single click that needs nobody's approval. :class:`RestPanel` holds the offer and the
countdown; :class:`RestDialog` shows it as a non-modal window (the counselor's main window
stays usable). Each decision is written to the audit log through a
:class:`~callguard.gui.bridge.StoreClient`::

    store.audit(counselor, "counselor", kind, detail="<seconds> s", call_id=<store id>)

with ``kind`` one of ``rest_started`` (detail: the rest offered), ``rest_ended`` (the rest
actually taken), ``rest_skipped`` (the rest offered) and ``supervisor_notified`` (the rest
offered; written when the counselor decides with the box ticked). Never a transcript or a
phone number. Without a store nothing is logged and the rest works the same.
"""

from __future__ import annotations

import logging
import time

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QFont
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from callguard.gui.bridge import StoreClient
from callguard.gui.i18n import texts
from callguard.vocabulary import Role

log = logging.getLogger(__name__)

REST_S = 600.0  # default rest: 10 minutes
TICK_MS = 250  # countdown refresh; the deadline itself runs on time.monotonic()

T = texts({
    "rest.title": ("휴식", "Rest"),
    "rest.intro": ("폭언 통화가 종료되었습니다. 잠시 쉬어 가세요.\n"
                   "휴식은 누구의 승인도 없이 바로 시작할 수 있습니다.",
                   "An abusive call was ended. Take a break.\n"
                   "You can start it right away; nobody needs to approve it."),
    "rest.intro.crisis": ("위기 통화가 끝났습니다. 무거운 통화였습니다. 잠시 쉬어 가세요.\n"
                          "휴식은 누구의 승인도 없이 바로 시작할 수 있습니다.",
                          "A crisis call is over. It was a heavy call: take a break.\n"
                          "You can start it right away; nobody needs to approve it."),
    "rest.intro.flagged": ("폭언이 감지된 통화가 끝났습니다. 잠시 쉬어 가세요.\n"
                           "휴식은 누구의 승인도 없이 바로 시작할 수 있습니다.",
                           "A call with abuse detected is over. Take a break.\n"
                           "You can start it right away; nobody needs to approve it."),
    "rest.intro.manual": ("쉬어야 할 때는 언제든 쉴 수 있습니다.\n"
                          "휴식은 누구의 승인도 없이 바로 시작할 수 있습니다.",
                          "You may rest whenever you need to.\n"
                          "You can start it right away; nobody needs to approve it."),
    "rest.offer": ("휴식 시간: {time}", "Rest: {time}"),
    "rest.left": ("남은 휴식 시간: {time}", "Rest left: {time}"),
    "rest.start": ("휴식 시작(&S)", "&Start rest"),
    "rest.skip": ("건너뛰기(&K)", "S&kip"),
    "rest.end": ("휴식 끝내기(&E)", "&End rest"),
    "rest.notify": ("상담 관리자에게 알리기(&N)", "&Notify supervisor"),
    "rest.over": ("휴식이 끝났습니다.", "Your rest is over."),
})


def clock(seconds: float) -> str:
    """``seconds`` (≥ 0) as ``mm:ss``, rounded up so a countdown shows 00:01 until it ends."""
    whole = max(0, int(-(-seconds // 1)))
    return f"{whole // 60:02d}:{whole % 60:02d}"


class RestPanel(QWidget):
    """The offer (``Start rest`` / ``Skip`` / ``Notify supervisor``) and then the countdown.

    ``rest_s``: the rest offered, in seconds of wall time. Signals carry seconds too:
    ``started(offered_s)``, ``skipped(offered_s)``, ``finished(taken_s)`` (countdown over or
    ended early) and ``decided(notify_supervisor)`` right before ``started``/``skipped``.
    """

    started = Signal(float)
    skipped = Signal(float)
    finished = Signal(float)
    decided = Signal(bool)

    def __init__(self, rest_s: float = REST_S, notify_default: bool = True,
                 parent: QWidget | None = None, reason: str = "abuse") -> None:
        super().__init__(parent)
        self.rest_s = float(rest_s)
        self.state = "offered"  # offered | resting | done | skipped
        self._began: float | None = None  # time.monotonic() at "Start rest"

        # Why the rest is offered: "abuse" (callguard ended the call), "crisis", "flagged"
        # (abuse was detected; the call ended otherwise) or "manual" (the rest button).
        self.reason = reason
        self.intro = QLabel(T("rest.intro" if reason == "abuse" else f"rest.intro.{reason}"))
        self.intro.setWordWrap(True)
        self.countdown = QLabel(T("rest.offer", time=clock(self.rest_s)))
        big = QFont(self.countdown.font())
        big.setPointSizeF(big.pointSizeF() * 2)
        big.setBold(True)
        self.countdown.setFont(big)
        self.countdown.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.notify_box = QCheckBox(T("rest.notify"))
        self.notify_box.setChecked(notify_default)
        self.start_button = QPushButton(T("rest.start"))
        self.start_button.setDefault(True)
        self.start_button.setMinimumHeight(48)
        self.skip_button = QPushButton(T("rest.skip"))
        self.end_button = QPushButton(T("rest.end"))
        self.end_button.hide()

        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button, 2)
        buttons.addWidget(self.skip_button, 1)
        buttons.addWidget(self.end_button, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.intro)
        layout.addWidget(self.countdown)
        layout.addWidget(self.notify_box)
        layout.addLayout(buttons)

        self._timer = QTimer(self)
        self._timer.setInterval(TICK_MS)
        self._timer.timeout.connect(self._tick)
        self.start_button.clicked.connect(self.start)
        self.skip_button.clicked.connect(self.skip)
        self.end_button.clicked.connect(self.end)

    def left_s(self) -> float:
        """Seconds of rest left (the whole rest before it starts, 0 once over)."""
        if self.state == "offered":
            return self.rest_s
        if self.state != "resting" or self._began is None:
            return 0.0
        return max(0.0, self.rest_s - (time.monotonic() - self._began))

    def start(self) -> None:
        if self.state != "offered":
            return
        self.decided.emit(self.notify_box.isChecked())
        self.state = "resting"
        self._began = time.monotonic()
        self.notify_box.setEnabled(False)
        self.start_button.hide()
        self.skip_button.hide()
        self.end_button.show()
        self._timer.start()
        self._tick()
        self.started.emit(self.rest_s)

    def skip(self) -> None:
        if self.state != "offered":
            return
        self.decided.emit(self.notify_box.isChecked())
        self.state = "skipped"
        self.skipped.emit(self.rest_s)

    def end(self) -> None:
        """End the rest now (countdown over, or the counselor comes back early)."""
        if self.state != "resting" or self._began is None:
            return
        taken = min(self.rest_s, time.monotonic() - self._began)
        self.state = "done"
        self._timer.stop()
        self.countdown.setText(T("rest.over"))
        self.end_button.setEnabled(False)
        self.finished.emit(taken)

    def _tick(self) -> None:
        left = self.left_s()
        if left <= 0:
            self.end()
            return
        self.countdown.setText(T("rest.left", time=clock(left)))


class RestDialog(QDialog):
    """A non-modal window around a :class:`RestPanel` that writes the audit log.

    ``store`` may be ``None`` (no logging). ``call_id`` is the store id of the call that
    led to the rest (``None`` if unknown). Closing the window before deciding counts as
    *skip*; closing it while resting ends the rest (both are logged). The window closes
    itself a moment after the rest is over or skipped.
    """

    def __init__(self, store: StoreClient | None = None, counselor: str = "",
                 call_id: int | None = None, rest_s: float = REST_S,
                 notify_default: bool = True, parent: QWidget | None = None,
                 reason: str = "abuse") -> None:
        super().__init__(parent)
        self.store = store
        self.counselor = counselor
        self.call_id = call_id
        self.logged: list[tuple[str, str]] = []  # (kind, detail) handed to the store
        self._closing = False
        self.setWindowTitle(T("rest.title"))
        self.setModal(False)  # the counselor's window must stay usable
        self.setMinimumWidth(380)
        self.panel = RestPanel(rest_s, notify_default, self, reason)
        layout = QVBoxLayout(self)
        layout.addWidget(self.panel)
        self.panel.decided.connect(self._decided)
        self.panel.started.connect(lambda s: self._audit("rest_started", s))
        self.panel.skipped.connect(self._skipped)
        self.panel.finished.connect(self._finished)

    def _decided(self, notify: bool) -> None:
        if notify:
            self._audit("supervisor_notified", self.panel.rest_s)

    def _skipped(self, offered_s: float) -> None:
        self._audit("rest_skipped", offered_s)
        if not self._closing:
            self.close()

    def _finished(self, taken_s: float) -> None:
        self._audit("rest_ended", taken_s)
        # Leave "rest is over" readable for a moment; a closed dialog ignores the timer.
        QTimer.singleShot(3000, self, self.close)

    def _audit(self, kind: str, seconds: float) -> None:
        detail = f"{round(seconds)} s"
        self.logged.append((kind, detail))
        log.info("counselor %s (%s)", kind, detail)  # no number, no transcript
        if self.store is None:
            return
        counselor, call_id = self.counselor, self.call_id

        def done(_result: object, error: BaseException | None) -> None:
            if error is not None:
                log.error("could not write %s to the audit log: %s", kind, error)

        self.store.call(lambda store: store.audit(counselor, Role.COUNSELOR, kind, detail,
                                                  call_id), done)

    def closeEvent(self, event: QCloseEvent) -> None:
        self._closing = True  # skip() below must not close() again from inside close()
        try:
            if self.panel.state == "offered":
                self.panel.skip()
            elif self.panel.state == "resting":
                self.panel.end()
        finally:
            self._closing = False
        super().closeEvent(event)
