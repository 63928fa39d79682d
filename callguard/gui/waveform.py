"""Both legs of a recorded call as a waveform, with event markers and a playhead.

The audio arrives as :class:`Envelope` s: per-bucket minimum and maximum of the PCM16
samples, computed with numpy off the GUI thread (:func:`envelope`, called in the store
client's thread). Painting only re-bins those buckets to pixel columns, so a long call
repaints and resizes cheaply. Times are seconds of call time (0 = the call was answered).

Markers: rule hits (on the caller's lane, at the start of the utterance that holds them)
and the agent's actions (warning prompt, final notice, hang-up, others), each a vertical
line with a flag. A click seeks: to a marker when within a few pixels of one, else to the
time under the mouse; dragging scrubs. The view only asks (``seekRequested``); the owner
moves the playhead with :meth:`WaveformView.set_playhead`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QEvent, QLineF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QHelpEvent, QMouseEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QToolTip, QWidget

from callguard.gui.i18n import texts
from callguard.gui.palette import CRISIS_COLOUR
from callguard.vocabulary import Leg

T = texts({
    "review.wave.caller": ("고객", "Caller"),
    "review.wave.counselor": ("상담사", "Counselor"),
    "review.wave.no_audio": ("녹음 없음", "No recording"),
})

BUCKETS = 8192  # envelope resolution: finer than any screen, ~70 ms per bucket for 10 min

# Marker kinds, their colours and flag letters.
MARKER_STYLE: dict[str, tuple[str, str]] = {
    "hit": ("#d32f2f", "!"),
    "crisis": (CRISIS_COLOUR, "!"),  # crisis words: the crisis violet, not the slur red
    "warning": ("#ef8a00", "W"),
    "final": ("#7b1fa2", "F"),
    "hangup": ("#212121", "X"),
    "alert": ("#1565c0", "A"),
    "other": ("#607d8b", "•"),
}
_SAID = ("hit", "crisis")  # markers of what the caller said: in the caller's lane
# Legs in calm colours so that the markers (red, orange, purple, black) stand out on them.
LEG_COLOURS = {Leg.CALLER: "#5c6bc0", Leg.COUNSELOR: "#8d6e63"}
PLAYHEAD_COLOUR = "#00bfa5"
SNAP_PX = 6  # a click this close to a marker seeks to the marker


@dataclass(frozen=True, slots=True)
class Envelope:
    """Min and max of one leg's PCM16 samples per bucket of ``bucket_s`` seconds.

    ``mins``/``maxs`` are int16 arrays of equal length; bucket *i* covers call time
    ``[i * bucket_s, (i + 1) * bucket_s)``. ``seconds`` is the leg's audio length.
    """

    mins: np.ndarray
    maxs: np.ndarray
    bucket_s: float
    seconds: float

    @classmethod
    def empty(cls) -> Envelope:
        none = np.zeros(0, np.int16)
        return cls(none, none, 1.0, 0.0)


def envelope(pcm: bytes, sample_rate: int, bucket_s: float) -> Envelope:
    """The min/max envelope of ``pcm`` (PCM16 little-endian mono at ``sample_rate`` Hz,
    sample 0 = call time 0) over buckets of ``bucket_s`` seconds (at least one sample)."""
    samples = np.frombuffer(pcm, dtype="<i2")
    if samples.size == 0:
        return Envelope.empty()
    per = max(1, round(bucket_s * sample_rate))
    starts = np.arange(0, samples.size, per)
    return Envelope(np.minimum.reduceat(samples, starts), np.maximum.reduceat(samples, starts),
                    per / sample_rate, samples.size / sample_rate)


def bucket_for(duration_s: float, buckets: int = BUCKETS) -> float:
    """A bucket length (seconds) giving about ``buckets`` buckets over ``duration_s``."""
    return max(duration_s, 1e-3) / buckets


def columns(env: Envelope, width: int, duration_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Min and max per pixel column for a view ``width`` px wide showing ``duration_s``
    seconds; columns past the end of the leg's audio are left out (shorter arrays)."""
    n = env.mins.size
    if n == 0 or width <= 0 or duration_s <= 0:
        return np.zeros(0, np.int16), np.zeros(0, np.int16)
    first = np.floor(np.arange(width) * (duration_s / width) / env.bucket_s).astype(np.int64)
    first = first[first < n]
    # reduceat takes a[first[i]:first[i+1]], or just a[first[i]] where they are equal
    # (columns narrower than a bucket): exactly the per-column min/max we want.
    return np.minimum.reduceat(env.mins, first), np.maximum.reduceat(env.maxs, first)


@dataclass(frozen=True, slots=True)
class Marker:
    """An event on the call's timeline: ``t_s`` seconds of call time; ``kind`` one of
    ``hit``, ``crisis`` (crisis words), ``warning``, ``final``, ``hangup``, ``alert``,
    ``other``; ``label`` for the
    tooltip."""

    t_s: float
    kind: str
    label: str = ""


class WaveformView(QWidget):
    """Caller (top) and counselor (bottom) envelopes, markers, playhead and time axis."""

    seekRequested = Signal(float)  # seconds of call time the user clicked or dragged to

    FLAG_H = 14  # px: the marker flag strip at the top
    AXIS_H = 14  # px: the time axis at the bottom

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._caller = Envelope.empty()
        self._counselor = Envelope.empty()
        self._duration_s = 0.0
        self._markers: list[Marker] = []
        self._playhead_s = 0.0
        self.setMinimumHeight(120)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.setMouseTracking(False)
        self.setCursor(Qt.CursorShape.PointingHandCursor)

    # -- data --------------------------------------------------------------------------------
    def set_audio(self, caller: Envelope, counselor: Envelope, duration_s: float) -> None:
        """Show these legs over ``duration_s`` seconds (at least the longer leg)."""
        self._caller, self._counselor = caller, counselor
        self._duration_s = max(duration_s, caller.seconds, counselor.seconds, 0.0)
        self.update()

    def set_markers(self, markers: list[Marker]) -> None:
        self._markers = sorted(markers, key=lambda m: m.t_s)
        self.update()

    def set_playhead(self, t_s: float) -> None:
        self._playhead_s = min(max(0.0, t_s), self._duration_s)
        self.update()

    def clear(self) -> None:
        self.set_audio(Envelope.empty(), Envelope.empty(), 0.0)
        self.set_markers([])
        self._playhead_s = 0.0

    @property
    def duration_s(self) -> float:
        return self._duration_s

    @property
    def playhead_s(self) -> float:
        return self._playhead_s

    def markers(self) -> list[Marker]:
        return list(self._markers)

    # -- geometry ----------------------------------------------------------------------------
    def x_of(self, t_s: float) -> float:
        """The x pixel of call time ``t_s``."""
        if self._duration_s <= 0:
            return 0.0
        return t_s / self._duration_s * self.width()

    def t_of(self, x: float) -> float:
        """The call time (seconds) at x pixel ``x``, clamped to the call."""
        if self.width() <= 0:
            return 0.0
        return min(max(0.0, x / self.width() * self._duration_s), self._duration_s)

    def marker_at(self, x: float) -> Marker | None:
        """The marker nearest to ``x`` within :data:`SNAP_PX` pixels, if any."""
        best, dist = None, SNAP_PX + 0.5
        for m in self._markers:
            d = abs(self.x_of(m.t_s) - x)
            if d < dist:
                best, dist = m, d
        return best

    def _lanes(self) -> tuple[QRectF, QRectF]:
        top = float(self.FLAG_H)
        h = max(2.0, (self.height() - self.FLAG_H - self.AXIS_H) / 2)
        w = float(self.width())
        return QRectF(0, top, w, h), QRectF(0, top + h, w, h)

    def sizeHint(self) -> QSize:
        return QSize(800, 180)

    # -- painting ----------------------------------------------------------------------------
    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        pal = self.palette()
        p.fillRect(self.rect(), pal.base())
        caller_lane, counselor_lane = self._lanes()
        font = QFont(self.font())
        font.setPointSizeF(max(6.0, font.pointSizeF() * 0.85))
        p.setFont(font)
        for lane, env, colour, name in ((caller_lane, self._caller,
                                         LEG_COLOURS[Leg.CALLER], Leg.CALLER),
                                        (counselor_lane, self._counselor,
                                         LEG_COLOURS[Leg.COUNSELOR], Leg.COUNSELOR)):
            p.setPen(QPen(QColor("#d0d0d0"), 1))
            p.drawLine(QLineF(0, lane.center().y(), lane.right(), lane.center().y()))
            self._paint_leg(p, lane, env, QColor(colour))
            p.setPen(pal.text().color())
            p.drawText(lane.adjusted(4, 2, 0, 0), Qt.AlignmentFlag.AlignLeft
                       | Qt.AlignmentFlag.AlignTop, T(f"review.wave.{name}"))
        if self._duration_s <= 0:
            p.setPen(pal.placeholderText().color())
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, T("review.wave.no_audio"))
            return
        self._paint_axis(p)
        self._paint_markers(p, caller_lane)
        x = self.x_of(self._playhead_s)
        p.setPen(QPen(QColor(PLAYHEAD_COLOUR), 2))
        p.drawLine(QLineF(x, 0, x, self.height() - self.AXIS_H))

    def _paint_leg(self, p: QPainter, lane: QRectF, env: Envelope, colour: QColor) -> None:
        mins, maxs = columns(env, self.width(), self._duration_s)
        if mins.size == 0:
            return
        # Each leg scaled to its own peak (phone levels differ a lot between legs), with a
        # floor so that line noise in a silent leg is not blown up to full height.
        peak = max(int(np.abs(mins.astype(np.int32)).max()), int(maxs.max()), 2000)
        mid, half = lane.center().y(), lane.height() / 2 - 1
        tops = mid - maxs.astype(np.float64) / peak * half
        bottoms = mid - mins.astype(np.float64) / peak * half
        p.setPen(QPen(colour, 1))
        p.drawLines([QLineF(x + 0.5, t, x + 0.5, b + 0.5)
                     for x, (t, b) in enumerate(zip(tops.tolist(), bottoms.tolist(),
                                                    strict=True))])

    def _paint_axis(self, p: QPainter) -> None:
        y = self.height() - self.AXIS_H
        p.setPen(QPen(QColor("#9e9e9e"), 1))
        p.drawLine(QLineF(0, y, self.width(), y))
        step = _tick_step(self._duration_s, self.width())
        t = 0.0
        while t <= self._duration_s + 1e-9:
            x = self.x_of(t)
            p.drawLine(QLineF(x, y, x, y + 3))
            m, s = divmod(round(t), 60)
            p.drawText(QRectF(x + 2, y, 60, self.AXIS_H), Qt.AlignmentFlag.AlignLeft
                       | Qt.AlignmentFlag.AlignVCenter, f"{m}:{s:02d}")
            t += step

    def _paint_markers(self, p: QPainter, caller_lane: QRectF) -> None:
        bottom = self.height() - self.AXIS_H
        for m in self._markers:
            colour, letter = MARKER_STYLE.get(m.kind, MARKER_STYLE["other"])
            x = self.x_of(m.t_s)
            # A hit is something the caller said: its line stays in the caller's lane.
            end = caller_lane.bottom() if m.kind in _SAID else bottom
            pen = QPen(QColor(colour), 1.5,
                       Qt.PenStyle.DashLine if m.kind in _SAID else Qt.PenStyle.SolidLine)
            p.setPen(pen)
            p.drawLine(QLineF(x, self.FLAG_H - 2, x, end))
            # The flag stays whole at the edges (a hit at 0 s, the hang-up at the very end).
            flag = QRectF(min(max(0.0, x - 6), self.width() - 12.0), 0, 12, self.FLAG_H - 2)
            p.fillRect(flag, QColor(colour))
            p.setPen(QColor("white"))
            p.drawText(flag, Qt.AlignmentFlag.AlignCenter, letter)

    # -- interaction ---------------------------------------------------------------------------
    def _seek_to(self, x: float, snap: bool) -> None:
        if self._duration_s <= 0:
            return
        marker = self.marker_at(x) if snap else None
        self.seekRequested.emit(marker.t_s if marker is not None else self.t_of(x))

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self._seek_to(event.position().x(), snap=True)
            event.accept()
        else:
            super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if event.buttons() & Qt.MouseButton.LeftButton:  # dragging: scrub, no snapping
            self._seek_to(event.position().x(), snap=False)
            event.accept()
        else:
            super().mouseMoveEvent(event)

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ToolTip and isinstance(event, QHelpEvent):
            marker = self.marker_at(event.pos().x())
            if marker is not None and marker.label:
                QToolTip.showText(event.globalPos(), f"{_clock(marker.t_s)}  {marker.label}",
                                  self)
            else:
                QToolTip.hideText()
                event.ignore()
            return True
        return super().event(event)


def _tick_step(duration_s: float, width: int) -> float:
    """A round tick interval (s) leaving at least ~70 px between labels."""
    if duration_s <= 0 or width <= 0:
        return 1.0
    raw = duration_s / max(1, width / 70)
    for step in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600):
        if step >= raw:
            return float(step)
    return float(math.ceil(raw / 3600) * 3600)


def _clock(t_s: float) -> str:
    m, s = divmod(max(0.0, t_s), 60)
    return f"{int(m):02d}:{s:04.1f}"


__all__ = ["BUCKETS", "Envelope", "Marker", "WaveformView", "bucket_for", "columns", "envelope"]
