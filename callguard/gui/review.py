"""The supervisor's review window: find calls, replay them against their timeline, record a
verdict, export evidence.

Left: the call list with its filters (dates, counselor, direction, rule category, action
taken, reviewed or not, flagged only). Remote numbers are personal data: the list shows
them masked (``010-****-5678``), the detail of the chosen call in full.

Right: the chosen call. :class:`~callguard.gui.waveform.WaveformView` shows both legs with
the rule hits and the agent's actions at their call times; a click seeks. Playback uses
QtMultimedia on a private temporary copy of the recording (mode 0600, deleted when another
call is chosen or the window closes). Without a multimedia backend the window works the
same, only silently: the playhead is the window's own state (:attr:`ReviewWindow.position_s`),
moved by seeking, and the transcript follows it. Below: the transcript (hits highlighted;
a click seeks to the utterance), the verdict form (abuse confirmed / wrongful cut-off /
note) and the append-only trail of past verdicts, the evidence export and, for
supervisors and admins only, deleting the recording (confirmed, audit-logged).

Above the call list: the notifications, newest first. They are the counselors' entries in
the audit log written by the rest offered after an abusive call (callguard.gui.rest):
``supervisor_notified`` and ``rest_started``/``rest_ended``/``rest_skipped`` with their
duration. They reload with :meth:`ReviewWindow.refresh` and every 30 s; a click on one that
names a call opens it. A counselor sees only their own. Supervisors and admins get a count of
unseen entries in the area's title (see :meth:`ReviewWindow.refresh_notifications`).

Every store access goes through :class:`~callguard.gui.bridge.StoreClient` callbacks: the
GUI thread never waits for the database, the disk or the exporter. Answers that arrive
for a call or a filter that is no longer current are dropped.

Units: ``*_s`` and :attr:`ReviewWindow.position_s` are seconds of call time (0 = answer);
``started_at`` and review times are unix epoch seconds, shown in local time.
"""

from __future__ import annotations

import asyncio
import bisect
import hashlib
import html
import logging
import os
import re
import tempfile
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QDate,
    QDateTime,
    QEvent,
    QModelIndex,
    QObject,
    QSize,
    Qt,
    QTime,
    QTimer,
    QUrl,
    Signal,
)
from PySide6.QtGui import (
    QAbstractTextDocumentLayout,
    QCloseEvent,
    QColor,
    QPalette,
    QShowEvent,
    QTextDocument,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QCheckBox,
    QComboBox,
    QDateEdit,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from callguard.evidence import (
    DEFAULT_KEY_NAME,
    EvidenceError,
    export_package,
    load_or_create_key,
    verify_package,
)
from callguard.gui.bridge import StoreClient
from callguard.gui.fit import fit
from callguard.gui.i18n import texts
from callguard.gui.palette import CRISIS, CRISIS_HIGHLIGHT, CRISIS_TEXT
from callguard.gui.waveform import (
    LEG_COLOURS,
    Envelope,
    Marker,
    WaveformView,
    bucket_for,
    envelope,
)
from callguard.services import review_access
from callguard.services.accounts import Actor

# The notification filter is the service's (a counselor sees only their own); kept
# importable here, where it was.
from callguard.store import (
    ActionRecord,
    AuditRecord,
    CallRecord,
    CallSummary,
    ReviewRecord,
    Store,
)
from callguard.store.records import HitRecord, UtteranceRecord
from callguard.text.spans import merge_spans
from callguard.vocabulary import (
    ActionKind,
    Direction,
    Leg,
    ReviewVerdict,
    Role,
    Stage,
    VerdictKind,
)

log = logging.getLogger(__name__)

T = texts({
    "review.title": ("통화 검토", "Call review"),
    "review.filter.period": ("기간", "Dates"),
    "review.filter.counselor": ("상담사", "Counselor"),
    "review.filter.direction": ("방향", "Direction"),
    "review.filter.category": ("유형", "Category"),
    "review.filter.action": ("조치", "Action taken"),
    "review.filter.reviewed": ("검토 여부", "Reviewed"),
    "review.filter.flagged": ("검토 대상 통화만", "Flagged calls only"),
    "review.any": ("전체", "All"),
    "review.refresh": ("새로 고침", "Refresh"),
    "review.count": ("통화 {n}건", "{n} call(s)"),
    "review.dir.inbound": ("수신", "Inbound"),
    "review.dir.outbound": ("발신", "Outbound"),
    "review.action.warned": ("경고함", "Warned"),
    "review.action.cut_off": ("통화 끊음", "Cut off"),
    "review.action.none": ("조치 없음", "No action"),
    "review.reviewed.yes": ("검토됨", "Reviewed"),
    "review.today": ("오늘 검토할 통화", "Today's calls to review"),
    "review.all": ("모든 통화", "All calls"),
    "review.today.none": ("오늘 검토할 통화가 없어 모든 통화를 보여 줍니다.",
                          "Nothing to review today: showing every call."),
    "review.reviewed.no": ("미검토", "Not reviewed"),
    "review.col.time": ("시각", "Time"),
    "review.col.counselor": ("상담사", "Counselor"),
    "review.col.direction": ("방향", "Direction"),
    "review.col.number": ("번호", "Number"),
    "review.col.duration": ("통화 시간", "Duration"),
    "review.col.end": ("종료 사유", "End reason"),
    "review.col.stage": ("단계", "Stage"),
    "review.col.reviewed": ("검토", "Reviewed"),
    "review.col.category": ("유형", "Category"),
    "review.stage.none": ("없음", "None"),
    "review.stage.notice": ("안내", "Notice"),
    "review.stage.warned": ("경고", "Warned"),
    "review.stage.final": ("종료 안내", "Final notice"),
    "review.end.caller_hangup": ("고객이 끊음", "Caller hung up"),
    "review.end.counselor_hangup": ("상담사가 끊음", "Counselor hung up"),
    "review.end.final_notice": ("종료 안내 후 종료", "After the final notice"),
    "review.end.duration_limit": ("통화 시간 제한", "Duration limit"),
    "review.end.interrupted": ("중단됨", "Interrupted"),
    "review.end.end_of_audio": ("음성 파일 끝", "End of audio"),
    "review.end.ongoing": ("통화 중", "In progress"),
    "review.who.remote": ("고객", "the caller"),
    "review.who.counselor": ("상담사", "the counselor"),
    "review.who.agent": ("callguard", "callguard"),
    # why the call ended, in plain words, and what led there
    "review.why.protect": ("상담사가 보호 버튼을 누름 → 종료 안내 후 통화 종료",
                           "The counselor pressed Protect → final notice, then hang-up"),
    "review.why.rules": ("규칙 위반 {n}회 후 종료 안내 → 통화 종료",
                         "{n} rule violation(s), then the final notice → hang-up"),
    "review.why.duration": ("통화 시간 한도 → 종료 안내 후 통화 종료",
                            "Call time limit → final notice, then hang-up"),
    "review.why.crisis": ("위기 발언 {n}회 감지 (경고·종료 없음, 알림만)",
                          "Crisis words heard {n} time(s) (an alert only, no warning or "
                          "hang-up)"),
    "review.why.title": ("종료 경위: {why}", "How it ended: {why}"),
    "review.why.steps": ("이어진 과정: {steps}", "What led there: {steps}"),
    "review.step.hit": ("{t} 감지 '{term}' ({category})", "{t} heard '{term}' ({category})"),
    "review.step.crisis": ("{t} 위기 발언 '{term}'", "{t} crisis words '{term}'"),
    "review.step.notice": ("{t} 주의 기록", "{t} notice"),
    "review.step.warn": ("{t} 경고 안내", "{t} warning played"),
    "review.step.final": ("{t} 종료 안내", "{t} final notice"),
    "review.step.alert": ("{t} 위기 알림", "{t} crisis alert"),
    "review.step.duration_notice": ("{t} 통화 시간 안내", "{t} call time notice"),
    "review.step.duration_final": ("{t} 통화 시간 종료 안내", "{t} call time final notice"),
    "review.filter.desk": ("상담석", "Desk"),
    "review.filter.team": ("팀", "Team"),
    "review.step.repeat_warning": ("{t} 재통화 고객에게 경고 안내",
                                   "{t} warning played to a repeat caller"),
    "review.step.protect": ("{t} 상담사가 보호 버튼을 누름", "{t} the counselor pressed Protect"),
    "review.verdict.choose": ("검토 결과를 고르세요", "Choose a verdict"),
    "review.verdict.need_choice": ("검토 결과를 먼저 고르세요", "Choose a verdict first"),
    "review.verdict.need_reason": ("'부당한 종료'에는 이유를 메모로 남기세요",
                                   "Say why in the note: a wrongful cut-off needs a reason"),
    "review.detail.none": ("목록에서 통화를 고르세요", "Choose a call in the list"),
    "review.detail.loading": ("불러오는 중…", "Loading…"),
    "review.detail.header": (
        "통화 #{id} · {direction} · {number} · 상담사 {counselor} · {time} · {duration} · {end}",
        "Call #{id} · {direction} · {number} · counselor {counselor} · {time} · {duration} "
        "· {end}"),
    "review.detail.hung_up_by": ("끊은 쪽: {who}", "hung up by {who}"),
    "review.seal.intact": ("녹음 무결성 확인: 통화 종료 때 봉인한 SHA-256과 일치합니다",
                           "Recording intact: it matches the SHA-256 sealed when the call ended"),
    "review.seal.altered": ("경고: 봉인 후 녹음이 변경되었거나 삭제되었습니다",
                            "Warning: the recording was altered or deleted after it was sealed"),
    "review.seal.open": ("통화가 끝나지 않아 녹음이 아직 봉인되지 않았습니다",
                         "The call has not ended: its recording is not sealed yet"),
    "review.play": ("재생", "Play"),
    "review.pause": ("일시 정지", "Pause"),
    "review.no_playback": ("소리 재생을 쓸 수 없습니다 (위치 이동은 됩니다)",
                           "Audio playback is not available (seeking still works)"),
    "review.leg.caller": ("고객", "Caller"),
    "review.leg.counselor": ("상담사", "Counselor"),
    "review.utt.empty": ("(텍스트 없음)", "(no text)"),
    "review.utt.rejected": ("인식 결과 제외", "rejected"),
    "review.utt.deferred": ("보류", "deferred"),
    "review.utt.failed": ("인식 실패", "failed"),
    "review.marker.hit": ("규칙 감지", "Rule hit"),
    "review.marker.crisis": ("위기 발언", "Crisis words"),
    "review.marker.warning": ("경고 안내", "Warning"),
    "review.marker.final": ("종료 안내", "Final notice"),
    "review.marker.hangup": ("통화 종료", "Hang-up"),
    "review.marker.alert": ("위기 알림", "Crisis alert"),
    "review.marker.other": ("기타", "Other"),
    "review.marker.failed": ("실패", "failed"),
    "review.transcript": ("녹취록", "Transcript"),
    "review.verdict": ("검토 결과", "Verdict"),
    "review.verdict.abuse_confirmed": ("폭언 확인", "Abuse confirmed"),
    "review.verdict.wrongful_cutoff": ("부당한 종료", "Wrongful cut-off"),
    "review.verdict.crisis_response": ("위기 대응", "Crisis response"),
    "review.verdict.note": ("메모", "Note"),
    "review.verdict.placeholder": ("메모 ('메모'를 고르면 필수)",
                                   "Note (required for 'Note')"),
    "review.verdict.save": ("결과 기록", "Record verdict"),
    "review.verdict.need_note": ("메모 내용을 입력하세요", "Write the note first"),
    "review.verdict.saved": ("검토 결과를 기록했습니다", "Verdict recorded"),
    "review.verdict.supervisors": ("검토 결과는 상담 관리자만 기록합니다",
                                   "Only supervisors record verdicts"),
    "review.trail": ("검토 기록 (수정·삭제 불가)", "Verdict trail (cannot be changed)"),
    "review.trail.empty": ("아직 검토 기록이 없습니다", "No verdict yet"),
    "review.delete": ("녹음 삭제…", "Delete recording…"),
    "review.delete.title": ("녹음 삭제", "Delete recording"),
    "review.delete.confirm": (
        "통화 #{id}의 녹음을 삭제할까요?\n녹취록과 기록은 남고, 삭제는 감사 로그에 "
        "남습니다. 되돌릴 수 없습니다.",
        "Delete the recording of call #{id}?\nThe transcript and the records stay; the "
        "deletion is written to the audit log. It cannot be undone."),
    "review.delete.done": ("녹음을 삭제했습니다", "Recording deleted"),
    "review.error": ("오류: {error}", "Error: {error}"),
    "review.note.title": ("알림", "Notifications"),
    "review.note.unseen": ("알림 (새 알림 {n}건)", "Notifications ({n} new)"),
    "review.note.empty": ("알림이 없습니다", "No notifications"),
    "review.note.supervisor_notified": ("상담 관리자에게 알림", "Supervisor notified"),
    "review.note.rest_started": ("휴식 시작", "Rest started"),
    "review.note.rest_ended": ("휴식 끝", "Rest ended"),
    "review.note.rest_skipped": ("휴식 건너뜀", "Rest skipped"),
    "review.note.call": ("통화 #{id}", "call #{id}"),
    "review.note.open": ("눌러서 통화 #{id} 열기", "Click to open call #{id}"),
    "evidence.export": ("증거 내보내기…", "Export evidence…"),
    "evidence.dialog": ("증거 패키지 저장", "Save the evidence package"),
    "evidence.filter": ("증거 패키지 (*.zip)", "Evidence package (*.zip)"),
    "evidence.exporting": ("증거 패키지를 만드는 중…", "Writing the evidence package…"),
    "evidence.done": ("증거 패키지를 저장하고 검증했습니다: {path}",
                      "Evidence package written and verified: {path}"),
    "evidence.failed": ("증거 내보내기 실패: {error}", "Evidence export failed: {error}"),
    "evidence.no_call": ("내보낼 통화를 먼저 고르세요", "Choose a call to export first"),
})

Done = Callable[[Any, BaseException | None], None]
HTML_ROLE = Qt.ItemDataRole.UserRole + 1  # transcript item: rich text with hits highlighted
START_ROLE = Qt.ItemDataRole.UserRole  # transcript item: start_s; table item: call id
LIST_LIMIT = 500  # calls in the list at once; narrow the filters for older ones
NUMBER_COLUMN = 3  # the call list's column of the caller's (masked) number
NOTE_ROLE = Qt.ItemDataRole.UserRole + 2  # notification item: the audit entry's id
NOTE_REFRESH_MS = 30_000  # the notifications reload this often (ms), shown or not


# -- pure helpers ------------------------------------------------------------------------------

def mask_number(remote: str) -> str:
    """A phone number or SIP URI with its middle digits hidden, for lists.

    ``010-1234-5678`` → ``010-****-5678``; ``02-123-4567`` → ``02-***-4567``;
    ``sip:01012345678@pbx`` → ``sip:010****5678@pbx`` (the host is the PBX, not personal).
    """
    m = _URI.fullmatch(remote or "")
    if not remote or m is None:
        return remote
    return (m.group(1) or "") + _mask_digits(m.group(2)) + (m.group(3) or "")


def list_number(remote: str) -> str:
    """The caller as the call list shows it: :func:`mask_number` without a SIP URI's scheme
    and host (``sip:01012345678@pbx`` → ``010****5678``): the host is the office PBX, the
    same on every row, and would widen the column past a 1366-pixel screen."""
    m = _URI.fullmatch(remote or "")
    return _mask_digits(m.group(2)) if m is not None and m.group(2) else mask_number(remote)


#: A number or SIP URI: (scheme, user part, @host), scheme and host optional.
_URI = re.compile(r"(sips?:)?([^@]*)(@.*)?")


def _mask_digits(user: str) -> str:
    """``user`` with its middle letters and digits as ``*`` (see :func:`mask_number`)."""
    idx = [i for i, ch in enumerate(user) if ch.isalnum()]
    n = len(idx)
    head, tail = (3, 4) if n >= 10 else (2, 4) if n >= 8 else (1, 2) if n >= 5 else (0, 1)
    hidden = set(idx[head : n - tail])
    return "".join("*" if i in hidden else ch for i, ch in enumerate(user))


def action_marker_kind(action: ActionRecord) -> str:
    """The marker kind of an agent action: warning, final, hangup, alert or other."""
    if action.kind == ActionKind.PLAY_PROMPT:
        if action.prompt == VerdictKind.WARN.prompt:
            return "warning"
        if action.prompt in (VerdictKind.FINAL.prompt, VerdictKind.DURATION_FINAL.prompt):
            return "final"
        return "other"
    return action.kind if action.kind in (ActionKind.HANGUP, ActionKind.ALERT) else "other"


def markers_for(call: CallRecord) -> list[Marker]:
    """Waveform markers: each utterance with rule hits at its start, each action at its
    ``t_s`` (seconds of call time)."""
    out = []
    for u in call.utterances:
        for kind, hits in (("hit", [h for h in u.hits if h.category != CRISIS]),
                           ("crisis", [h for h in u.hits if h.category == CRISIS])):
            if hits:
                rules = ", ".join(sorted({f"{_category(h.category)}/{h.rule_id}"
                                          for h in hits}))
                out.append(Marker(u.start_s, kind, f"{T('review.marker.' + kind)}: {rules}"))
    for a in call.actions:
        kind = action_marker_kind(a)
        failed = "" if a.ok else f" ({T('review.marker.failed')})"
        out.append(Marker(a.t_s, kind, f"{T('review.marker.' + kind)}: {a.detail}{failed}"))
    return out


def _label(prefix: str, value: str | None) -> str:
    """The interface text for an enumerated value, the value itself if it has none."""
    if value is None:
        return ""
    key = f"{prefix}.{value}"
    text = T(key)
    return value if text == key else text


def clock(t_s: float) -> str:
    """Seconds of call time as ``m:ss.s``."""
    m, s = divmod(max(0.0, t_s), 60)
    return f"{int(m)}:{s:04.1f}"


def _local(t: float, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    return datetime.fromtimestamp(t).strftime(fmt)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    m, s = divmod(round(seconds), 60)
    return f"{m}:{s:02d}"


def rest_seconds(detail: str) -> float | None:
    """The seconds in a rest entry's detail (``"600 s"``), ``None`` if it holds none."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*s\s*", detail or "")
    return float(m.group(1)) if m else None


def notification_text(r: AuditRecord) -> str:
    """One line: time · counselor · what (with the rest's length) · call."""
    what = _label("review.note", r.kind)
    seconds = rest_seconds(r.detail)
    if seconds is not None:
        what += f" {_duration(seconds)}"
    parts = [_local(r.at, "%Y-%m-%d %H:%M"), r.actor or "-", what]
    if r.call_id is not None:
        parts.append(T("review.note.call", id=r.call_id))
    return " · ".join(parts)


#: How a hit is marked in the review's transcript: abuse in the slur red, crisis words in
#: the crisis lavender the counselor's window uses (crisis is not abuse).
ABUSE_MARK = "background-color:#ffcdd2; color:#b71c1c; font-weight:bold"
CRISIS_MARK = f"background-color:{CRISIS_HIGHLIGHT}; color:{CRISIS_TEXT}; font-weight:bold"


def _highlighted(text: str, hits: Sequence[HitRecord]) -> str:
    """``text`` as HTML with each hit span (character offsets) highlighted: abuse in red,
    crisis words in the crisis colour (an abuse mark wins where both overlap)."""
    abuse = merge_spans(((h.start, h.end) for h in hits if h.category != CRISIS), len(text))
    marks = [(a, b, ABUSE_MARK) for a, b in abuse]
    marks += [(a, b, CRISIS_MARK) for a, b in merge_spans(
        ((h.start, h.end) for h in hits if h.category == CRISIS), len(text))
        if not any(a < y and x < b for x, y in abuse)]
    out, pos = [], 0
    for a, b, style in sorted(marks):
        out += [html.escape(text[pos:a]), f'<span style="{style}">', html.escape(text[a:b]),
                "</span>"]
        pos = b
    out.append(html.escape(text[pos:]))
    return "".join(out)


def utterance_html(u: UtteranceRecord) -> str:
    colour = LEG_COLOURS.get(u.leg, "#000000")
    body = _highlighted(u.text, u.hits) if u.text else f"<i>{T('review.utt.empty')}</i>"
    if u.status != "ok":
        body = (f'<span style="color:#757575">{body} '
                f"[{html.escape(_label('review.utt', u.status))}]</span>")
    return (f'<span style="color:#616161">{clock(u.start_s)}</span>&nbsp; '
            f'<b style="color:{colour}">{html.escape(_label("review.leg", u.leg))}</b>&nbsp; '
            f"{body}")


def utterance_plain(u: UtteranceRecord) -> str:
    text = u.text or T("review.utt.empty")
    status = "" if u.status == "ok" else f" [{_label('review.utt', u.status)}]"
    return f"{clock(u.start_s)}  {_label('review.leg', u.leg)}  {text}{status}"


@dataclass(frozen=True, slots=True)
class _Detail:
    """What the background load of one call hands to the GUI thread."""

    call: CallRecord
    reviews: list[ReviewRecord]
    caller: Envelope
    counselor: Envelope
    duration_s: float  # seconds of call time shown: the call or the longer leg
    seal: str  # intact, altered, open
    wav_path: Path | None  # private temporary copy for playback; the receiver deletes it


def _private_wav(data: bytes) -> Path:
    """Write the recording to a temporary file only its owner can read (mkstemp: 0600)."""
    fd, name = tempfile.mkstemp(prefix="callguard-review-", suffix=".wav")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return Path(name)


def _prepare(call: CallRecord, reviews: list[ReviewRecord], caller: bytes, counselor: bytes,
             wav: bytes, temp_copy: bool) -> _Detail:
    """Envelopes, seal check and playback copy: numpy and disk work, off the GUI thread."""
    rate = call.sample_rate
    duration = max(call.duration_s or 0.0, len(caller) / 2 / rate, len(counselor) / 2 / rate)
    bucket = bucket_for(duration)
    digest = hashlib.sha256(wav).hexdigest()
    seal = ("open" if call.recording_sha256 is None else
            "intact" if digest == call.recording_sha256 else "altered")
    has_audio = bool(caller or counselor)
    return _Detail(call, reviews, envelope(caller, rate, bucket), envelope(counselor, rate, bucket),
                   duration, seal, _private_wav(wav) if temp_copy and has_audio else None)


def _unlink_all(paths: set[Path]) -> None:
    for p in list(paths):
        p.unlink(missing_ok=True)
        paths.discard(p)


class _HtmlDelegate(QStyledItemDelegate):
    """Paints a list item's :data:`HTML_ROLE` rich text (hit spans highlighted)."""

    def _doc(self, option: QStyleOptionViewItem, index: QModelIndex) -> QTextDocument:
        doc = QTextDocument()
        doc.setDocumentMargin(3)
        doc.setDefaultFont(option.font)
        doc.setHtml(index.data(HTML_ROLE) or html.escape(index.data() or ""))
        return doc

    def paint(self, painter: Any, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        doc = self._doc(opt, index)
        opt.text = ""
        widget = opt.widget
        style = widget.style() if widget is not None else QApplication.style()
        style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, widget)
        ctx = QAbstractTextDocumentLayout.PaintContext()
        if opt.state & QStyle.StateFlag.State_Selected:
            ctx.palette.setColor(QPalette.ColorRole.Text,
                                 opt.palette.color(QPalette.ColorRole.HighlightedText))
        painter.save()
        painter.translate(opt.rect.topLeft())
        painter.setClipRect(opt.rect.translated(-opt.rect.topLeft()))
        doc.documentLayout().draw(painter, ctx)
        painter.restore()

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex) -> QSize:
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        doc = self._doc(opt, index)
        return QSize(int(doc.idealWidth()) + 4, int(doc.size().height()))


# -- the window -----------------------------------------------------------------------------------

class ReviewWindow(QWidget):
    """The review window. ``store`` is the GUI's :class:`StoreClient`; ``reviewer`` the
    signed-in user (written into verdicts, exports and the audit log); ``role`` one of
    ``counselor``, ``supervisor``, ``admin``. A counselor sees only their own calls (the
    counselor filter is fixed to ``reviewer``), records no verdicts and cannot delete;
    supervisors and admins can do all three. ``key_path`` is the site key that signs
    evidence packages (default: ``evidence.key`` beside the store file; created on first
    export). ``playback=False`` skips QtMultimedia altogether.

    The notifications (rests and "notify supervisor") reload every :data:`NOTE_REFRESH_MS`
    ms by :attr:`notes_timer` and with :meth:`refresh`; a counselor sees only their own.
    """

    callsLoaded = Signal(int)  # the list was (re)filled: number of rows
    callLoaded = Signal(int)  # the detail now shows this call (store id)
    positionChanged = Signal(float)  # the playhead moved: seconds of call time
    reviewSaved = Signal(int)  # a verdict was stored: its review id
    exported = Signal(object)  # an evidence package was written and verified: its Path
    failed = Signal(str)  # a background operation failed: the message shown
    notificationsLoaded = Signal(int)  # the notifications were reloaded: entries shown

    def __init__(self, store: StoreClient, reviewer: str, role: str = Role.SUPERVISOR,
                 parent: QWidget | None = None, *, key_path: Path | None = None,
                 playback: bool = True, today: bool = True) -> None:
        """``today``: open on today's flagged calls not yet reviewed (the work to do);
        ``False``: on every call."""
        super().__init__(parent)
        if role not in tuple(Role):
            raise ValueError(f"role must be one of {', '.join(Role)}, not {role!r}")
        self.store = store
        #: Reviewing the central server (every desk): also filter by desk and team.
        self.central = bool(getattr(store, "central", False))
        self.reviewer = reviewer
        self.role = role
        self.actor = Actor(reviewer, role)  # what it may see and do: review_access
        self.key_path = Path(key_path) if key_path else store.path.parent / DEFAULT_KEY_NAME
        self._call: CallRecord | None = None
        self._starts: list[float] = []  # utterance start times, for following the playhead
        self._duration_s = 0.0
        self._pos_s = 0.0
        self._list_gen = 0  # answers for older requests are dropped
        self._detail_gen = 0
        self._notes_gen = 0
        self._notes_pending = 0  # loads under way (a timer tick waits for them)
        self._notes_failing = False  # the last load failed (reported once, not every tick)
        self._notes: list[AuditRecord] = []  # shown, newest first
        self._notes_shown: tuple[Any, ...] | None = None  # what the list was built from
        # The newest entry (at, id) a load put on screen while the window was visible:
        # it and older ones are seen. Kept per account in the store (users.notes_seen_*),
        # so a reopened window, or another PC, does not show them as new again.
        self._notes_seen: tuple[float, int] | None = None
        self._unseen = 0
        self._closed = False
        self._wav: Path | None = None
        self._temp_files: set[Path] = set()
        # Whatever happens to the window, its temporary recordings go at exit at the latest.
        weakref.finalize(self, _unlink_all, self._temp_files)
        self.setWindowTitle(T("review.title"))
        self._build()
        self._player, self._audio_out = self._make_player() if playback else (None, None)
        if self._player is None:
            self.play_button.setEnabled(False)
            self.play_button.setToolTip(T("review.no_playback"))
        self._show_empty()
        self.notes_timer = QTimer(self)
        self.notes_timer.setInterval(NOTE_REFRESH_MS)
        self.notes_timer.timeout.connect(self._notes_tick)
        self.notes_timer.start()
        # Nothing to review today: the first list falls back to every call, saying so.
        self._today_fallback = today
        if today:
            self.show_today()
        else:
            self.refresh()

    # -- public API ------------------------------------------------------------------------
    @property
    def can_delete(self) -> bool:
        """Whether this user may delete recordings (supervisors and admins)."""
        return review_access.may_delete_recording(self.actor)

    @property
    def can_review(self) -> bool:
        return review_access.may_record_verdict(self.actor)

    @property
    def call(self) -> CallRecord | None:
        """The call in the detail pane."""
        return self._call

    @property
    def position_s(self) -> float:
        """The playhead: seconds of call time."""
        return self._pos_s

    @property
    def playback_available(self) -> bool:
        return self._player is not None

    def filters(self) -> dict[str, Any]:
        """The current filters as :meth:`Store.list_calls` keyword arguments."""
        kw: dict[str, Any] = {"flagged_only": self.flagged_check.isChecked()}
        if self.date_check.isChecked():
            since = QDateTime(self.date_from.date(), QTime(0, 0))
            until = QDateTime(self.date_to.date().addDays(1), QTime(0, 0))
            kw["since"], kw["until"] = since.toSecsSinceEpoch(), until.toSecsSinceEpoch()
        boxes = [("counselor", self.counselor_box), ("direction", self.direction_box),
                 ("category", self.category_box), ("action", self.action_box),
                 ("reviewed", self.reviewed_box)]
        if self.central:  # the central server also lists by desk and team
            boxes += [("desk", self.desk_box), ("team", self.team_box)]
        for name, box in boxes:
            value = box.currentData()
            if value is not None:
                kw[name] = value
        return kw

    def set_filters(self, *, flagged: bool | None = None, since: QDate | None = None,
                    until: QDate | None = None, counselor: str | None = None,
                    direction: str | None = None, category: str | None = None,
                    action: str | None = None, reviewed: bool | None = None,
                    clear: bool = False) -> None:
        """Set filters (``clear`` first resets all to "all") and reload the list once.
        ``since``/``until`` are inclusive local dates; ``reviewed`` True/False."""
        boxes = (self.counselor_box, self.direction_box, self.category_box, self.action_box,
                 self.reviewed_box)
        widgets = (*boxes, self.flagged_check, self.date_check, self.date_from, self.date_to)
        for w in widgets:
            w.blockSignals(True)
        try:
            if clear:
                self.flagged_check.setChecked(False)
                self.date_check.setChecked(False)
                for box in boxes:
                    if box.isEnabled():
                        box.setCurrentIndex(0)
            if flagged is not None:
                self.flagged_check.setChecked(flagged)
            if since is not None or until is not None:
                self.date_check.setChecked(True)
                self.date_from.setDate(since or self.date_from.date())
                self.date_to.setDate(until or self.date_to.date())
            for box, value in ((self.counselor_box, counselor), (self.direction_box, direction),
                               (self.category_box, category), (self.action_box, action),
                               (self.reviewed_box, reviewed)):
                if value is not None and box.isEnabled():
                    _select_data(box, value, str(value))
        finally:
            for w in widgets:
                w.blockSignals(False)
        self._dates_enabled()
        self.refresh()

    def show_today(self) -> None:
        """Today's flagged calls that nobody has reviewed yet (the "오늘 검토할 통화" button,
        and where the window opens)."""
        today = QDate.currentDate()
        self.set_filters(clear=True, flagged=True, since=today, until=today,
                         reviewed=False if self.reviewed_box.isEnabled() else None)

    def listed_ids(self) -> list[int]:
        """Store ids of the calls in the list, top to bottom."""
        return [self.table.item(r, 0).data(START_ROLE) for r in range(self.table.rowCount())]

    def notifications(self) -> list[AuditRecord]:
        """The audit entries in the notifications area, top (newest) to bottom."""
        return list(self._notes)

    @property
    def unseen_notifications(self) -> int:
        """The count in the notifications title (always 0 for a counselor)."""
        return self._unseen

    def refresh_notifications(self) -> None:
        """Reload the notifications; :attr:`notificationsLoaded` when they are shown.

        Seen and unseen (supervisors and admins): an entry is unseen if it is newer than
        the newest entry a previous load showed while the window was visible (not hidden,
        not minimised). Each load counts the unseen ones into the title and shows them in
        bold; if the window is visible it then marks everything it shows as seen, so the
        count lasts until the next load (the next tick, a refresh, showing the window).
        """
        self._notes_gen += 1
        gen = self._notes_gen
        actor = self.actor
        user = self.reviewer if self.can_review else None

        async def job(store: Store) -> tuple[list[AuditRecord], tuple[float, int] | None]:
            notes = await review_access.notifications(store, actor)
            seen = await store.notes_seen(user) if user else None
            return notes, seen

        self._notes_pending += 1
        self.store.call(job, lambda result, error: self._notes_loaded(gen, result, error))

    def refresh(self) -> None:
        """Reload the call list (and the filter choices) with the current filters, and the
        notifications."""
        self.refresh_notifications()
        self._list_gen += 1
        gen = self._list_gen
        kw = self.filters()

        actor = self.actor

        async def job(store: Store) -> tuple[list[CallSummary], list[str], list[str],
                                             dict[int, list[str]]]:
            calls = await review_access.list_calls(store, actor, limit=LIST_LIMIT, **kw)
            categories = await store.categories()
            # Each listed call's categories (the list's 유형 column): one filtered query per
            # category, as the category filter runs it.
            of: dict[int, list[str]] = {}
            wanted = [kw["category"]] if kw.get("category") else categories
            for category in wanted:
                ckw = {**kw, "category": category}
                for c in await review_access.list_calls(store, actor, limit=LIST_LIMIT, **ckw):
                    of.setdefault(c.id, []).append(category)
            places = (await store.desks(), await store.teams()) if central else None
            return calls, await store.counselors(), categories, of, places

        central = self.central
        self.store.call(job, lambda result, error: self._list_loaded(gen, result, error))

    def show_call(self, call_id: int) -> None:
        """Show call ``call_id`` in the detail pane (selected in the list if it is there);
        :attr:`callLoaded` fires when it is on screen."""
        self._select_row_of(call_id)
        self._load_detail(call_id)

    def seek(self, t_s: float) -> None:
        """Move the playhead to ``t_s`` seconds of call time (and the player, if any)."""
        self._set_position(t_s)
        if self._player is not None and self._wav is not None:
            self._player.setPosition(round(self._pos_s * 1000))

    def play(self) -> None:
        if self._player is None or self._wav is None:
            return
        from PySide6.QtMultimedia import QMediaPlayer

        if self._player.playbackState() == QMediaPlayer.PlaybackState.PlayingState:
            self._player.pause()
            return
        if self._pos_s >= self._duration_s - 0.05:
            self._set_position(0.0)
        self._player.setPosition(round(self._pos_s * 1000))
        self._player.play()

    def save_review(self, verdict: str | None = None, note: str | None = None,
                    done: Done | None = None) -> None:
        """Append a verdict (``abuse_confirmed``, ``wrongful_cutoff``, ``note``; default:
        the form's) with ``note`` (default: the form's text) to the shown call's trail.
        ``done(review_id, error)`` on the GUI thread."""
        verdict = verdict or self.verdict_box.currentData()
        note = self.note_edit.toPlainText().strip() if note is None else note.strip()
        error: Exception | None = None
        if not self.can_review:
            error = PermissionError(T("review.verdict.supervisors"))
        elif self._call is None:
            error = ValueError(T("review.detail.none"))
        elif not verdict:
            error = ValueError(T("review.verdict.need_choice"))
        elif review_access.needs_note(verdict, note):
            error = ValueError(T("review.verdict.need_note"))
        elif verdict == ReviewVerdict.WRONGFUL_CUTOFF and not note:
            error = ValueError(T("review.verdict.need_reason"))
        if error is not None:
            self._status(str(error))
            if done is not None:
                done(None, error)
            return
        assert self._call is not None
        call_id, actor = self._call.id, self.actor
        self.save_button.setEnabled(False)

        async def job(store: Store) -> tuple[int, list[ReviewRecord]]:
            review_id = await review_access.record_verdict(store, actor, call_id, verdict, note)
            return review_id, await store.reviews(call_id)

        def finished(result: Any, error: BaseException | None) -> None:
            if self._closed:
                return
            self.save_button.setEnabled(True)
            if error is not None:
                self._fail(error)
            else:
                review_id, reviews = result
                if self._call is not None and self._call.id == call_id:
                    self.note_edit.clear()
                    self._fill_trail(reviews)
                self._status(T("review.verdict.saved"))
                self.refresh()  # the list's "reviewed" column
                self.reviewSaved.emit(review_id)
            if done is not None:
                done(None if error else result[0], error)

        self.store.call(job, finished)

    def export_to(self, path: str | os.PathLike[str], done: Done | None = None) -> None:
        """Export the shown call as an evidence package to ``path``, signed with the site
        key, then verify it. ``done(path, error)`` on the GUI thread; :attr:`exported`."""
        if self._call is None:
            err = ValueError(T("evidence.no_call"))
            self._status(str(err))
            if done is not None:
                done(None, err)
            return
        call_id, dest = self._call.id, Path(path)
        key_path, reviewer, role = self.key_path, self.reviewer, self.role
        self.export_button.setEnabled(False)
        self._status(T("evidence.exporting"))

        actor = self.actor

        async def job(store: Store) -> Path:
            await review_access.open_call(store, actor, call_id)
            key = await asyncio.to_thread(load_or_create_key, key_path)
            out = await export_package(store, call_id, dest, reviewer, key, role=role)
            report = await asyncio.to_thread(verify_package, out, key)
            if not report.ok:  # e.g. the disk returned something else than was written
                raise EvidenceError(report.summary)
            return out

        def finished(result: Any, error: BaseException | None) -> None:
            if not self._closed:
                self.export_button.setEnabled(self._call is not None)
                if error is not None:
                    self._fail(error, T("evidence.failed", error=error))
                else:
                    self._status(T("evidence.done", path=result))
                    self.exported.emit(result)
            if done is not None:
                done(result, error)

        self.store.call(job, finished)

    def request_delete(self) -> bool:
        """Delete the shown call's recording after confirmation (supervisors and admins).
        Returns whether the deletion was started."""
        if not self.can_delete or self._call is None:
            return False
        call_id = self._call.id
        if not self._confirm(T("review.delete.confirm", id=call_id)):
            return False
        actor = self.actor

        def finished(result: Any, error: BaseException | None) -> None:
            if self._closed:
                return
            if error is not None:
                self._fail(error)
                return
            self._status(T("review.delete.done"))
            if self._call is not None and self._call.id == call_id:
                self._load_detail(call_id)

        self.store.call(lambda store: review_access.delete_recording(store, actor, call_id),
                        finished)
        return True

    # -- building ----------------------------------------------------------------------------
    def _build(self) -> None:
        self.flagged_check = QCheckBox(T("review.filter.flagged"))
        self.date_check = QCheckBox(T("review.filter.period"))
        today = QDate.currentDate()
        self.date_from = QDateEdit(today.addDays(-30))
        self.date_to = QDateEdit(today)
        for d in (self.date_from, self.date_to):
            d.setCalendarPopup(True)
            d.setDisplayFormat("yyyy-MM-dd")
        self.counselor_box = QComboBox()
        self.direction_box = _combo([(T("review.dir.inbound"), Direction.INBOUND),
                                     (T("review.dir.outbound"), Direction.OUTBOUND)])
        self.category_box = QComboBox()
        self.desk_box = QComboBox()  # with the central server: every desk, every team
        self.team_box = QComboBox()
        for box in (self.desk_box, self.team_box):
            box.addItem(T("review.any"), None)
        self.action_box = _combo([(T("review.action.warned"), Stage.WARNED),
                                  (T("review.action.cut_off"), "cut_off"),
                                  (T("review.action.none"), Stage.NONE)])
        self.reviewed_box = _combo([(T("review.reviewed.yes"), True),
                                    (T("review.reviewed.no"), False)])
        for box in (self.counselor_box, self.category_box):
            box.addItem(T("review.any"), None)
        own = review_access.own_calls_only(self.actor)
        if own is not None:  # a counselor's own calls only
            _select_data(self.counselor_box, own, own)
            self.counselor_box.setEnabled(False)
        self.refresh_button = QPushButton(T("review.refresh"))
        self.today_button = QPushButton(T("review.today"))
        self.today_button.clicked.connect(self.show_today)
        self.all_button = QPushButton(T("review.all"))
        self.all_button.clicked.connect(lambda: self.set_filters(clear=True))
        self.count_label = QLabel()

        form = QFormLayout()
        quick = QHBoxLayout()
        quick.addWidget(self.today_button)
        quick.addWidget(self.all_button)
        quick.addStretch(1)
        form.addRow(quick)
        dates = QHBoxLayout()
        dates.addWidget(self.date_check)
        dates.addWidget(self.date_from)
        dates.addWidget(QLabel("~"))
        dates.addWidget(self.date_to)
        form.addRow(dates)
        if self.central:
            form.addRow(T("review.filter.desk"), self.desk_box)
            form.addRow(T("review.filter.team"), self.team_box)
        form.addRow(T("review.filter.counselor"), self.counselor_box)
        form.addRow(T("review.filter.direction"), self.direction_box)
        form.addRow(T("review.filter.category"), self.category_box)
        form.addRow(T("review.filter.action"), self.action_box)
        form.addRow(T("review.filter.reviewed"), self.reviewed_box)
        bottom = QHBoxLayout()
        bottom.addWidget(self.flagged_check)
        bottom.addStretch(1)
        bottom.addWidget(self.count_label)
        bottom.addWidget(self.refresh_button)
        form.addRow(bottom)

        self.table = QTableWidget(0, 9)
        self.table.setHorizontalHeaderLabels([T(f"review.col.{c}") for c in (
            "time", "counselor", "direction", "number", "duration", "end", "stage", "category",
            "reviewed")])
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        # Columns as wide as their contents (_fit_list); the end reason gives way (elided,
        # whole in its tooltip) when the list pane cannot show them all.
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.table.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.table.setWordWrap(False)

        calls = QWidget()
        cv = QVBoxLayout(calls)
        cv.setContentsMargins(0, 0, 0, 0)
        cv.addLayout(form)
        cv.addWidget(self.table, 1)

        # Notifications: a short list above the calls (the splitter lets it grow).
        self.notes_box = QGroupBox(T("review.note.title"))
        self.notes_list = QListWidget()
        self.notes_list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.notes_list.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.notes_list.setMinimumHeight(60)
        nv = QVBoxLayout(self.notes_box)
        nv.setContentsMargins(4, 4, 4, 4)
        nv.addWidget(self.notes_list)
        left = QSplitter(Qt.Orientation.Vertical)
        left.addWidget(self.notes_box)
        left.addWidget(calls)
        left.setStretchFactor(0, 0)
        left.setStretchFactor(1, 1)
        left.setSizes([150, 650])

        # Detail pane.
        self.header_label = QLabel()
        self.header_label.setWordWrap(True)
        self.header_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.why_label = QLabel()  # how the call ended, and the steps that led there
        self.why_label.setWordWrap(True)
        self.why_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.seal_label = QLabel()
        self.waveform = WaveformView()
        self.play_button = QPushButton(T("review.play"))
        self.position_label = QLabel()
        self.export_button = QPushButton(T("evidence.export"))
        self.delete_button: QPushButton | None = None
        transport = QHBoxLayout()
        transport.addWidget(self.play_button)
        transport.addWidget(self.position_label)
        transport.addStretch(1)
        transport.addWidget(self.export_button)
        # Destructive, so apart from the others: its own row at the bottom, in red.
        danger = QHBoxLayout()
        if self.can_delete:
            self.delete_button = QPushButton(T("review.delete"))
            self.delete_button.setStyleSheet(
                "QPushButton:enabled { color:#b71c1c; font-weight:bold }")
            danger.addStretch(1)
            danger.addWidget(self.delete_button)

        self.transcript = QListWidget()
        self.transcript.setItemDelegate(_HtmlDelegate(self.transcript))
        self.transcript.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.transcript.setUniformItemSizes(False)
        # A light highlight for the current line: the legs' colours and the hit spans stay
        # readable on it (the platform's dark highlight would swallow them).
        pal = self.transcript.palette()
        for group in (QPalette.ColorGroup.Active, QPalette.ColorGroup.Inactive):
            pal.setColor(group, QPalette.ColorRole.Highlight, QColor("#fff3b0"))
            pal.setColor(group, QPalette.ColorRole.HighlightedText, QColor("#000000"))
        self.transcript.setPalette(pal)

        # No verdict is pre-set: the first item asks for a choice.
        self.verdict_box = _combo([(T("review.verdict.choose"), None)] + [
            (T(f"review.verdict.{v}"), v) for v in (
                ReviewVerdict.ABUSE_CONFIRMED, ReviewVerdict.WRONGFUL_CUTOFF,
                ReviewVerdict.CRISIS_RESPONSE, ReviewVerdict.NOTE)], any_item=False)
        self.note_edit = QPlainTextEdit()
        self.note_edit.setPlaceholderText(T("review.verdict.placeholder"))
        self.note_edit.setFixedHeight(60)
        self.save_button = QPushButton(T("review.verdict.save"))
        self.trail = QListWidget()
        self.trail.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        verdict = QGroupBox(T("review.verdict"))
        vv = QVBoxLayout(verdict)
        row = QHBoxLayout()
        row.addWidget(self.verdict_box, 1)
        row.addWidget(self.save_button)
        vv.addLayout(row)
        vv.addWidget(self.note_edit)
        vv.addWidget(QLabel(T("review.trail")))
        vv.addWidget(self.trail)
        if not self.can_review:
            for w in (self.verdict_box, self.note_edit, self.save_button):
                w.setEnabled(False)
            self.save_button.setToolTip(T("review.verdict.supervisors"))

        right = QWidget()
        rv = QVBoxLayout(right)
        rv.setContentsMargins(0, 0, 0, 0)
        rv.addWidget(self.header_label)
        rv.addWidget(self.why_label)
        rv.addWidget(self.seal_label)
        rv.addWidget(self.waveform, 2)
        rv.addLayout(transport)
        rv.addWidget(QLabel(T("review.transcript")))
        rv.addWidget(self.transcript, 3)
        rv.addWidget(verdict, 2)
        rv.addLayout(danger)

        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(0, 2)
        split.setStretchFactor(1, 3)
        split.setSizes([560, 840])  # widened to its columns when calls are listed
        self.split = split
        self.status_label = QLabel()
        self.status_label.setWordWrap(True)
        outer = QVBoxLayout(self)
        outer.addWidget(split, 1)
        outer.addWidget(self.status_label)
        fit(self, 1280, 800)

        for box in (self.counselor_box, self.direction_box, self.category_box,
                    self.action_box, self.reviewed_box, self.desk_box, self.team_box):
            box.currentIndexChanged.connect(self.refresh)
        self.flagged_check.toggled.connect(self.refresh)
        self.date_check.toggled.connect(self._dates_enabled)
        self.date_check.toggled.connect(self.refresh)
        self.date_from.dateChanged.connect(self._dates_changed)
        self.date_to.dateChanged.connect(self._dates_changed)
        self.refresh_button.clicked.connect(self.refresh)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        self.notes_list.itemClicked.connect(self._note_clicked)
        self.notes_list.itemActivated.connect(self._note_clicked)
        self.waveform.seekRequested.connect(self.seek)
        # Only the user's clicks seek: following the playhead selects rows without seeking.
        self.transcript.itemClicked.connect(self._transcript_clicked)
        self.transcript.itemActivated.connect(self._transcript_clicked)
        self.play_button.clicked.connect(self.play)
        self.save_button.clicked.connect(lambda: self.save_review())
        self.export_button.clicked.connect(self._choose_export_path)
        if self.delete_button is not None:
            self.delete_button.clicked.connect(self.request_delete)
        self._dates_enabled()

    def _make_player(self) -> tuple[QObject | None, QObject | None]:
        """A QMediaPlayer with an audio output, or ``(None, None)`` without a backend."""
        try:
            from PySide6.QtMultimedia import QAudioOutput, QMediaPlayer
        except ImportError:  # PySide6-Addons not installed
            return None, None
        player = QMediaPlayer(self)
        if not player.isAvailable():
            player.deleteLater()
            return None, None
        out = QAudioOutput(self)
        player.setAudioOutput(out)
        player.positionChanged.connect(self._player_position)
        player.playbackStateChanged.connect(self._playback_state)
        player.mediaStatusChanged.connect(self._media_status)
        player.errorOccurred.connect(lambda _err, text: self._status(T("review.error",
                                                                       error=text)))
        return player, out

    # -- list ----------------------------------------------------------------------------------
    def _dates_enabled(self) -> None:
        on = self.date_check.isChecked()
        self.date_from.setEnabled(on)
        self.date_to.setEnabled(on)

    def _dates_changed(self) -> None:
        if self.date_check.isChecked():
            self.refresh()

    def _list_loaded(self, gen: int, result: Any, error: BaseException | None) -> None:
        if self._closed or gen != self._list_gen:
            return
        if error is not None:
            self._fail(error)
            return
        calls, counselors, categories, of, places = result
        if places is not None:
            self._set_choices(self.desk_box, places[0])
            self._set_choices(self.team_box, places[1])
        if self._today_fallback:
            self._today_fallback = False
            if not calls:
                self.set_filters(clear=True)
                self._status(T("review.today.none"))
                return
        self._set_choices(self.counselor_box, counselors)
        self._set_choices(self.category_box, categories)
        shown = self._call.id if self._call is not None else None
        self.table.blockSignals(True)
        try:
            self.table.clearSelection()
            self.table.setRowCount(len(calls))
            for row, c in enumerate(calls):
                cells = [
                    _local(c.started_at, "%Y-%m-%d %H:%M"), c.counselor,
                    _label("review.dir", c.direction),
                    list_number(c.remote), _duration(c.duration_s),
                    _label("review.end", c.end_reason) if c.end_reason
                    else T("review.end.ongoing"),
                    _label("review.stage", c.stage),
                    ", ".join(_category(x) for x in of.get(c.id, [])),
                    "✓" if c.reviewed else ""]
                for col, text in enumerate(cells):
                    item = QTableWidgetItem(text)
                    # Whole, also where the column is elided; the number with its host.
                    item.setToolTip(mask_number(c.remote) if col == NUMBER_COLUMN else text)
                    if col == 0:
                        item.setData(START_ROLE, c.id)
                        item.setToolTip(_local(c.started_at))
                    if c.flagged:
                        item.setForeground(Qt.GlobalColor.darkRed)
                    self.table.setItem(row, col, item)
            if shown is not None:
                self._select_row_of(shown)
        finally:
            self.table.blockSignals(False)
        self.count_label.setText(T("review.count", n=len(calls)))
        self._fit_list()
        self.callsLoaded.emit(len(calls))

    #: The list columns that give way, in this order, when the pane is too narrow for all
    #: of them: the end reason (the detail says how the call ended in full), then the
    #: categories (a call with several). Elided, whole in their tooltips.
    ELIDED_COLUMNS = (5, 7)
    ELIDED_MIN = 72  # px: a word and "…"

    def _fit_list(self) -> None:
        """Widen the list pane so that every column shows whole (at most 55% of the
        window; the detail pane keeps the rest); if that is not enough (English at
        1366×768), the end-reason and then the category column are narrowed, elided with
        their text in the tooltip, so no column is cut at the pane's edge and no horizontal
        scrolling is needed."""
        table, header = self.table, self.table.horizontalHeader()
        table.resizeColumnsToContents()
        for col in range(table.columnCount()):  # the headers' own widths count too
            header.resizeSection(col, max(header.sectionSize(col),
                                          header.sectionSizeHint(col)))
        sizes = self.split.sizes()
        if sum(sizes) <= 0:
            return
        # What the pane needs besides the columns: the table's frame, a vertical scroll
        # bar (counted whether shown or not) and the margins around the table.
        pane = self.split.widget(0)
        around = max(0, pane.width() - table.width()) if pane.width() > 0 else 0
        extra = around + table.verticalScrollBar().sizeHint().width() \
            + 2 * table.frameWidth() + 2
        need = header.length() + extra
        have = sizes[0]
        if need > have:
            left = min(need, int(sum(sizes) * 0.55))
            if left > have:
                self.split.setSizes([left, sum(sizes) - left])
                have = self.split.sizes()[0]
        short = need - have
        for col in self.ELIDED_COLUMNS:
            if short <= 0:
                break
            width = header.sectionSize(col)
            narrower = max(self.ELIDED_MIN, width - short)
            header.resizeSection(col, narrower)
            short -= width - narrower

    def list_fits(self) -> bool:
        """Whether every column of the call list is inside the list's view (no horizontal
        scrolling, nothing cut at the right edge)."""
        header = self.table.horizontalHeader()
        return header.length() <= self.table.viewport().width() + 1

    def resizeEvent(self, event: Any) -> None:  # Qt override
        super().resizeEvent(event)
        if getattr(self, "table", None) is not None and self.table.rowCount():
            self._fit_list()

    def _set_choices(self, box: QComboBox, values: list[str]) -> None:
        """Refill a filter combo keeping its selection (even if no call has it any more)."""
        current = box.currentData()
        box.blockSignals(True)
        try:
            box.clear()
            box.addItem(T("review.any"), None)
            for v in values:
                if v:
                    box.addItem(v, v)
            if current is not None:
                _select_data(box, current, str(current))
        finally:
            box.blockSignals(False)

    def _select_row_of(self, call_id: int) -> None:
        for row in range(self.table.rowCount()):
            if self.table.item(row, 0).data(START_ROLE) == call_id:
                self.table.blockSignals(True)
                self.table.selectRow(row)
                self.table.blockSignals(False)
                return

    def _selection_changed(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return
        call_id = self.table.item(rows[0].row(), 0).data(START_ROLE)
        if self._call is None or self._call.id != call_id:
            self._load_detail(call_id)

    # -- notifications -------------------------------------------------------------------------
    def _notes_tick(self) -> None:
        if self._notes_pending == 0:  # a slow store gets no pile of loads
            self.refresh_notifications()

    def _watching(self) -> bool:
        """Whether the user can see the window (shown and not minimised)."""
        return self.isVisible() and not self.isMinimized()

    def _notes_loaded(self, gen: int, result: Any, error: BaseException | None) -> None:
        self._notes_pending -= 1
        if self._closed or gen != self._notes_gen:
            return
        if error is not None:
            if not self._notes_failing:  # once, not every 30 s
                self._fail(error)
            self._notes_failing = True
            return
        self._notes_failing = False
        notes: list[AuditRecord] = result[0]
        stored: tuple[float, int] | None = result[1]
        seen = max(filter(None, (self._notes_seen, stored)), default=None)
        unseen = ({n.id for n in notes if seen is None or (n.at, n.id) > seen}
                  if self.can_review else set())
        self._notes = notes
        self._unseen = len(unseen)
        shown = (tuple(n.id for n in notes), frozenset(unseen), self.can_review)
        if shown != self._notes_shown:
            self._fill_notes(notes, unseen)
            self._notes_shown = shown
        self.notes_box.setTitle(T("review.note.unseen", n=self._unseen) if self._unseen
                                else T("review.note.title"))
        if notes and self._watching():
            newest = (notes[0].at, notes[0].id)
            self._notes_seen = newest if seen is None else max(seen, newest)
            if self.can_review and (stored is None or self._notes_seen > stored):
                at, entry = self._notes_seen
                user = self.reviewer
                self.store.call(lambda st: st.set_notes_seen(user, at, entry),
                                lambda _r, err: err is not None and log.warning(
                                    "could not keep what was seen: %s", err))
        else:
            self._notes_seen = seen
        self.notificationsLoaded.emit(len(notes))

    def _fill_notes(self, notes: list[AuditRecord], unseen: set[int]) -> None:
        """Refill the list keeping its scroll position and the chosen entry."""
        view = self.notes_list
        current = view.currentItem()
        chosen = current.data(NOTE_ROLE) if current is not None else None
        scroll = view.verticalScrollBar().value()
        view.blockSignals(True)
        try:
            view.clear()
            if not notes:
                empty = QListWidgetItem(T("review.note.empty"))
                empty.setFlags(Qt.ItemFlag.NoItemFlags)
                view.addItem(empty)
            for n in notes:
                item = QListWidgetItem(notification_text(n))
                item.setData(NOTE_ROLE, n.id)
                item.setData(START_ROLE, n.call_id)
                if n.call_id is not None:
                    item.setToolTip(T("review.note.open", id=n.call_id))
                if n.id in unseen:
                    font = item.font()
                    font.setBold(True)
                    item.setFont(font)
                if n.kind == "supervisor_notified":
                    item.setForeground(Qt.GlobalColor.darkRed)
                view.addItem(item)
                if n.id == chosen:
                    view.setCurrentItem(item)
            view.verticalScrollBar().setValue(scroll)
        finally:
            view.blockSignals(False)

    def _note_clicked(self, item: QListWidgetItem) -> None:
        call_id = item.data(START_ROLE)
        if call_id is not None and item.data(NOTE_ROLE) is not None:
            self.show_call(int(call_id))

    # -- detail ------------------------------------------------------------------------------------
    def _load_detail(self, call_id: int) -> None:
        self._detail_gen += 1
        gen = self._detail_gen
        temp_copy = self._player is not None
        self.header_label.setText(T("review.detail.loading"))

        actor = self.actor

        async def job(store: Store) -> _Detail:
            call = await review_access.open_call(store, actor, call_id)
            reviews = await store.reviews(call_id)
            caller = await store.read_audio(call_id, Leg.CALLER)
            counselor = await store.read_audio(call_id, Leg.COUNSELOR)
            wav = await store.wav_bytes(call_id)
            return await asyncio.to_thread(_prepare, call, reviews, caller, counselor, wav,
                                           temp_copy)

        self.store.call(job, lambda result, error: self._detail_loaded(gen, result, error))

    def _detail_loaded(self, gen: int, result: Any, error: BaseException | None) -> None:
        if self._closed or gen != self._detail_gen:
            if isinstance(result, _Detail) and result.wav_path is not None:
                result.wav_path.unlink(missing_ok=True)  # nobody will play it
            return
        if error is not None:
            self._fail(error)
            return
        d: _Detail = result
        if d.wav_path is not None:
            self._temp_files.add(d.wav_path)
        self._drop_recording()
        call = d.call
        self._call = call
        self._duration_s = d.duration_s
        who = (" · " + T("review.detail.hung_up_by", who=_label("review.who", call.hung_up_by))
               if call.hung_up_by else "")
        self.header_label.setText(T(
            "review.detail.header", id=call.id, direction=_label("review.dir", call.direction),
            number=call.remote, counselor=call.counselor or "-", time=_local(call.started_at),
            duration=_duration(call.duration_s) or "-",
            end=_label("review.end", call.end_reason) if call.end_reason
            else T("review.end.ongoing")) + who)
        self.why_label.setText(end_story(call))
        self.verdict_box.setCurrentIndex(0)  # no verdict chosen for the supervisor
        self.seal_label.setText(T(f"review.seal.{d.seal}"))
        self.seal_label.setStyleSheet("" if d.seal == "intact" else "color: #b71c1c;")
        self.waveform.set_audio(d.caller, d.counselor, d.duration_s)
        self.waveform.set_markers(markers_for(call))
        self.transcript.clear()
        self._starts = []
        for u in call.utterances:
            item = QListWidgetItem(utterance_plain(u))
            item.setData(HTML_ROLE, utterance_html(u))
            item.setData(START_ROLE, u.start_s)
            item.setToolTip(f"{clock(u.start_s)}–{clock(u.end_s)}")
            self.transcript.addItem(item)
            self._starts.append(u.start_s)
        self._fill_trail(d.reviews)
        self.export_button.setEnabled(True)
        if self.delete_button is not None:
            self.delete_button.setEnabled(d.caller.seconds > 0 or d.counselor.seconds > 0)
        if self._player is not None and d.wav_path is not None:
            self._wav = d.wav_path
            self._player.setSource(QUrl.fromLocalFile(str(d.wav_path)))
        self.play_button.setEnabled(self._wav is not None)
        self._set_position(0.0)
        self.callLoaded.emit(call.id)

    def _fill_trail(self, reviews: list[ReviewRecord]) -> None:
        self.trail.clear()
        if not reviews:
            self.trail.addItem(T("review.trail.empty"))
            return
        for r in reviews:
            line = f"{_local(r.at, '%Y-%m-%d %H:%M')} · {r.reviewer} · " \
                   f"{_label('review.verdict', r.verdict)}"
            self.trail.addItem(line + (f"\n    {r.note}" if r.note else ""))

    def _show_empty(self) -> None:
        self.header_label.setText(T("review.detail.none"))
        self.seal_label.setText("")
        self.waveform.clear()
        self.transcript.clear()
        self.trail.clear()
        self.export_button.setEnabled(False)
        self.play_button.setEnabled(False)
        if self.delete_button is not None:
            self.delete_button.setEnabled(False)
        self._set_position(0.0)

    def _drop_recording(self) -> None:
        """Detach the player from the current temporary recording and delete the file."""
        if self._player is not None:
            self._player.stop()
            self._player.setSource(QUrl())
        if self._wav is not None:
            self._wav.unlink(missing_ok=True)
            self._temp_files.discard(self._wav)
            self._wav = None

    # -- playhead ------------------------------------------------------------------------------
    def _set_position(self, t_s: float) -> None:
        self._pos_s = min(max(0.0, t_s), self._duration_s)
        self.waveform.set_playhead(self._pos_s)
        self.position_label.setText(f"{clock(self._pos_s)} / {clock(self._duration_s)}")
        # The current utterance: the last one started at or before the playhead.
        row = bisect.bisect_right(self._starts, self._pos_s + 1e-6) - 1
        if row != self.transcript.currentRow():
            if row < 0:
                self.transcript.setCurrentRow(-1)
                self.transcript.clearSelection()
            else:
                self.transcript.setCurrentRow(row)
                self.transcript.scrollToItem(self.transcript.item(row))
        self.positionChanged.emit(self._pos_s)

    def _transcript_clicked(self, item: QListWidgetItem) -> None:
        start = item.data(START_ROLE)
        if start is not None:
            self.seek(float(start))

    def _player_position(self, ms: int) -> None:
        from PySide6.QtMultimedia import QMediaPlayer

        # Only a playing player moves the playhead: a paused or loading one reports stale
        # positions (e.g. 0 once the file is opened) that would undo the user's seek.
        if self._player is not None and (self._player.playbackState()
                                         == QMediaPlayer.PlaybackState.PlayingState):
            self._set_position(ms / 1000)

    def _playback_state(self, state: Any) -> None:
        from PySide6.QtMultimedia import QMediaPlayer

        playing = state == QMediaPlayer.PlaybackState.PlayingState
        self.play_button.setText(T("review.pause") if playing else T("review.play"))

    def _media_status(self, status: Any) -> None:
        from PySide6.QtMultimedia import QMediaPlayer

        if status == QMediaPlayer.MediaStatus.LoadedMedia and self._player is not None:
            self._player.setPosition(round(self._pos_s * 1000))  # a seek made while loading
        elif status == QMediaPlayer.MediaStatus.EndOfMedia:
            self._set_position(self._duration_s)

    # -- misc ------------------------------------------------------------------------------------
    def _choose_export_path(self) -> None:
        if self._call is None:
            return
        path, _ = QFileDialog.getSaveFileName(
            self, T("evidence.dialog"), str(Path.home() / f"callguard-call-{self._call.id}.zip"),
            T("evidence.filter"))
        if path:
            self.export_to(path)

    def _confirm(self, text: str) -> bool:
        answer = QMessageBox.question(
            self, T("review.delete.title"), text,
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No)
        return answer == QMessageBox.StandardButton.Yes

    def _status(self, text: str) -> None:
        self.status_label.setText(text)

    def _fail(self, error: BaseException, text: str | None = None) -> None:
        message = text or T("review.error", error=error)
        log.warning("review window: %s", type(error).__name__)  # the text may name a call
        self._status(message)
        self.failed.emit(message)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if not event.spontaneous():  # shown by the program, not restored by the window system
            self.refresh_notifications()

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if (event.type() == QEvent.Type.WindowStateChange and not self._closed
                and self._watching()):
            self.refresh_notifications()  # restored from minimised: what is new now

    def closeEvent(self, event: QCloseEvent) -> None:
        self._closed = True
        self.notes_timer.stop()
        self._drop_recording()
        _unlink_all(self._temp_files)
        super().closeEvent(event)


_CATEGORY_KO = {"profanity": ("욕설", "profanity"), "insult": ("모욕", "insult"),
                "threat": ("위협", "threat"), "harassment": ("성희롱", "harassment"),
                "crisis": ("위기", "crisis")}


def _category(category: str) -> str:
    pair = _CATEGORY_KO.get(category)
    if pair is None:
        return category
    from callguard.gui.i18n import language

    return pair[0] if language() == "ko" else pair[1]


def end_story(call: CallRecord) -> str:
    """How ``call`` ended, in plain words, and the hits and verdicts that led there, in
    call-time order (two lines; empty for a call nothing happened in)."""
    hits = [(u.start_s, h) for u in call.utterances if u.leg == Leg.CALLER for h in u.hits]
    abuse = sum(1 for u in call.utterances if u.leg == Leg.CALLER
                and any(h.category != CRISIS for h in u.hits))
    crisis = sum(1 for u in call.utterances if u.leg == Leg.CALLER
                 and any(h.category == CRISIS for h in u.hits))
    final = next((v for v in call.verdicts if v.hangup), None)
    why = None
    if final is not None and final.cause == "protect":
        why = T("review.why.protect")
    elif final is not None and final.cause == "duration":
        why = T("review.why.duration")
    elif final is not None:
        why = T("review.why.rules", n=abuse)
    elif call.end_reason:
        why = _label("review.end", call.end_reason)
        if crisis:
            why += " · " + T("review.why.crisis", n=crisis)
    steps: list[tuple[float, str]] = [
        (t, T("review.step.crisis", t=clock(t), term=h.term) if h.category == CRISIS
         else T("review.step.hit", t=clock(t), term=h.term, category=_category(h.category)))
        for t, h in hits]
    for v in call.verdicts:
        key = "protect" if v.cause == "protect" and v.hangup else v.kind
        steps.append((v.t_s, T(f"review.step.{key}", t=clock(v.t_s))
                      if f"review.step.{key}" in _STEP_KEYS else f"{clock(v.t_s)} {v.kind}"))
    lines = [T("review.why.title", why=why)] if why else []
    if steps:
        lines.append(T("review.why.steps",
                       steps=" → ".join(text for _, text in sorted(steps, key=lambda s: s[0]))))
    return "\n".join(lines)


_STEP_KEYS = {f"review.step.{k}" for k in ("notice", "warn", "final", "alert",
                                            "duration_notice", "duration_final", "protect")}


def _combo(items: list[tuple[str, Any]], any_item: bool = True) -> QComboBox:
    box = QComboBox()
    if any_item:
        box.addItem(T("review.any"), None)
    for text, data in items:
        box.addItem(text, data)
    return box


def _select_data(box: QComboBox, value: Any, text: str) -> None:
    """Select the item holding ``value``, adding it (shown as ``text``) if missing."""
    for i in range(box.count()):
        if box.itemData(i) == value and box.itemData(i) is not None:
            box.setCurrentIndex(i)
            return
    box.addItem(text, value)
    box.setCurrentIndex(box.count() - 1)
