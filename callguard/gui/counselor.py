"""The counselor's window: the line, the dial pad, the live call with its transcript, and
the **Protect** button.

Everything the engine does arrives as :class:`~callguard.engine.engine.EngineEvent` through
:class:`~callguard.gui.bridge.EngineBridge` on the GUI thread; every button sends a command
that returns at once. The call time shown runs on a local 10 Hz timer from the last
``call_status`` (once a second), so the display keeps moving and the window keeps painting
even while the engine is busy or stuck.

The remote number and the transcript are personal data: they are shown here and never
logged (this module logs only states, reasons and ids).

Screenshot of "a call with a highlighted hit" (no running engine needed)::

    QT_QPA_PLATFORM=offscreen python - <<'EOF'
    from pathlib import Path
    from PySide6.QtWidgets import QApplication
    from callguard.asr.fake import ToneTranscriber
    from callguard.engine.engine import Engine
    from callguard.gui.bridge import EngineBridge
    from callguard.gui.counselor import CounselorWindow, stage_demo_call
    from callguard.telephony.fake import FakeLine
    app = QApplication([])
    engine = Engine(line=FakeLine("kim"), rules_path=Path("rules/default.toml"),
                    store_path=None, transcriber_factory=lambda: ToneTranscriber({}))
    window = CounselorWindow(EngineBridge(engine), counselor="kim")  # engine never started
    window.resize(1100, 760)
    window.show()
    stage_demo_call(window)        # ringing → answered → transcript, hit, warning playing
    app.processEvents()
    window.grab().save("counselor.png")
    EOF

(Under Xvfb drop ``QT_QPA_PLATFORM``; for English call ``set_language("en")`` first.)
"""

from __future__ import annotations

import html
import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QRectF, QRegularExpression, Qt, QTimer, Slot
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QColor,
    QFont,
    QKeySequence,
    QPainter,
    QPaintEvent,
    QRegularExpressionValidator,
    QShortcut,
)
from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMainWindow,
    QPushButton,
    QSizePolicy,
    QStyle,
    QSystemTrayIcon,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from callguard.engine.engine import EngineEvent
from callguard.gui.bridge import EngineBridge, StoreClient
from callguard.gui.desk import DeskSettings
from callguard.gui.fit import fit
from callguard.gui.hotkey import GlobalHotkey
from callguard.gui.i18n import language, plain, texts
from callguard.gui.minibar import PROTECT_STYLE, MiniBar
from callguard.gui.palette import CRISIS, CRISIS_HIGHLIGHT
from callguard.gui.rest import REST_S, RestDialog
from callguard.telephony.base import CallEnd, CallState, LineState, LineStatus
from callguard.text.spans import mark_spans, merge_spans
from callguard.vocabulary import (
    CallStatus,
    Cause,
    Direction,
    EndReason,
    EngineEventKind,
    HitSpan,
    Leg,
    PromptFailed,
    PromptStarted,
    Stage,
    Transcribed,
    UtteranceStatus,
    VerdictIssued,
    VerdictKind,
)

log = logging.getLogger(__name__)

TICK_MS = 100  # local refresh of the call time (10 Hz): smooth, and cheap
HIGHLIGHT = "#ff8a8a"  # background of rule-hit spans in the transcript
# End reasons after which the counselor is offered a rest (callguard ended the call for
# abuse). "duration_limit" is not abuse; a normal hangup is not either.
ABUSE_ENDS = frozenset({EndReason.FINAL_NOTICE})

#: The call store's kinds of fault (callguard.store.spool), each with its plain words below.
STORE_FAULTS = ("full", "readonly", "io", "unavailable", "corrupt", "deleted", "replaced",
                "lost", "error")

T = texts({
    "counselor.title": ("callguard 상담사", "callguard counselor"),
    "counselor.title_ringing": ("● 전화 수신 중 — callguard", "● Incoming call — callguard"),
    # line registration
    "counselor.line.registered": ("● 회선 연결됨", "● Line registered"),
    "counselor.line.registering": ("● 회선 연결 중…", "● Registering…"),
    "counselor.line.retrying": ("● 회선 재연결 중: {detail}", "● Reconnecting: {detail}"),
    "counselor.line.retry_in": ("{s}초 후 재시도", "retry in {s} s"),
    "counselor.line.failed": ("● 회선 연결 실패: {detail} — 시스템 관리자에게 문의하세요",
                              "● Registration failed: {detail} — call your administrator"),
    "counselor.line.offline": ("● 회선 꺼짐", "● Line offline"),
    # dial pad and call controls
    "counselor.dialpad": ("전화 걸기", "Dial"),
    "counselor.number": ("전화번호(&N)", "&Number"),
    "counselor.backspace": ("지우기(&E)", "&Erase"),
    "counselor.backspace_name": ("마지막 숫자 지우기", "Delete the last digit"),
    "counselor.digit": ("숫자 {d}", "Digit {d}"),
    "counselor.star": ("별표", "Star"),
    "counselor.hash": ("우물 정", "Hash"),
    "counselor.call": ("전화 걸기(&C)", "&Call"),
    "counselor.controls": ("통화 제어", "Call controls"),
    "counselor.answer": ("받기(&A)", "&Answer"),
    "counselor.decline": ("거절(&D)", "&Decline"),
    "counselor.hangup": ("끊기(&H)", "&Hang up"),
    "counselor.mute": ("음소거(&M)", "&Mute"),
    "counselor.unmute": ("음소거 해제(&M)", "Un&mute"),
    "counselor.protect": ("보호(&P)", "&Protect"),
    "counselor.availability": ("수신 상태 변경", "Changing availability"),
    "counselor.protect_hint": ("종료 안내를 재생하고 바로 통화를 끊습니다",
                               "Plays the final notice and ends the call at once"),
    "counselor.protect_key": ("단축키 {combo}: 다른 프로그램을 쓰는 중에도 작동합니다",
                              "Shortcut {combo}: works while another program is in front"),
    "counselor.protect_key_local": ("단축키 {combo}: 이 창이 앞에 있을 때만 작동합니다",
                                    "Shortcut {combo}: works only while this window is in "
                                    "front"),
    "counselor.hotkey_failed": ("어느 프로그램에서나 쓰는 보호 단축키 {combo}를 켜지 "
                                "못했습니다 ({error}). 이 창이 앞에 있을 때만 작동합니다.",
                                "The system-wide protect shortcut {combo} could not be set up "
                                "({error}); it works only while this window is in front."),
    "counselor.hold": ("보호: {s}초 동안 누르고 계세요", "Protect: hold for {s} s"),
    "counselor.holding": ("계속 누르고 계세요…", "Keep holding…"),
    "counselor.hold_short": ("보호하려면 버튼을 {s}초 동안 누르고 계세요 (단축키는 바로 "
                             "작동합니다)",
                             "To protect, hold the button for {s} s (the shortcut works at "
                             "once)"),
    "counselor.keys": ("F5 받기 · F6 거절 · F7 음소거 · F8 끊기",
                       "F5 answer · F6 decline · F7 mute · F8 hang up"),
    "counselor.menu.view": ("보기(&V)", "&View"),
    "counselor.menu.mini": ("작은 창 항상 위에 표시(&B)", "Always-on-top mini &bar"),
    "counselor.transcript_name": ("실시간 대화 내용", "Live transcript"),
    "counselor.state_name": ("통화 상태", "Call state"),
    "counselor.stage_name": ("보호 단계", "Protection stage"),
    "counselor.prompt_name": ("callguard 알림", "callguard message"),
    # the call
    "counselor.state.idle": ("대기 중", "Idle"),
    "counselor.state.ringing": ("전화 수신 중", "Incoming call"),
    "counselor.state.dialing": ("발신 중", "Calling"),
    "counselor.state.active": ("통화 중", "In call"),
    "counselor.dir.inbound": ("수신 전화", "Inbound call"),
    "counselor.dir.outbound": ("발신 전화", "Outbound call"),
    "counselor.elapsed": ("통화 시간 {elapsed} / 한도 {limit}",
                          "Call time {elapsed} / limit {limit}"),
    "counselor.elapsed_nolimit": ("통화 시간 {elapsed}", "Call time {elapsed}"),
    # the stage line: what has been played and what the next detection does
    "counselor.stage.played": ("경고 {given}/{total}회 안내됨", "Warnings played: {given} of "
                               "{total}"),
    "counselor.stage.next.notice": ("{when} 감지되면 주의로 기록",
                                    "after {when}: marked as a notice"),
    "counselor.stage.next.warn": ("{when} 감지되면 {n}차 경고 안내",
                                  "after {when}: warning {n}"),
    "counselor.stage.next.warn_only": ("{when} 감지되면 경고 안내", "after {when}: a warning"),
    "counselor.stage.next.final": ("{when} 감지되면 종료 안내 후 통화 종료",
                                   "after {when}: final notice, then the call ends"),
    "counselor.stage.ending": ("종료 안내 중 · 곧 통화가 끊깁니다",
                               "Final notice playing · the call will end"),
    "counselor.hits": ("감지된 폭언: {n}건", "Abusive utterances: {n}"),
    "counselor.crisis_hits": ("위기 발언: {n}건", "Crisis utterances: {n}"),
    "counselor.transcript": ("실시간 대화", "Live transcript"),
    "counselor.leg.caller": ("고객", "Caller"),
    "counselor.leg.counselor": ("상담사", "Counselor"),
    # what callguard is doing
    "counselor.say.notice": ("주의: 폭언이 감지되었습니다 (기록만 하고 고객에게는 아무것도 "
                             "재생하지 않습니다)",
                             "Notice: abuse detected (recorded; nothing is played to the "
                             "caller)"),
    "counselor.say.warn1": ("{n}차 경고 안내를 고객에게 재생하고 있습니다",
                            "Playing warning {n} to the caller"),
    "counselor.say.warn_only": ("경고 안내를 고객에게 재생하고 있습니다 — 한 번 더 감지되면 "
                                "종료 안내 후 통화가 끊깁니다",
                                "Playing the warning to the caller — one more detection "
                                "ends the call after the final notice"),
    "counselor.say.warn_done_only": ("경고 안내를 재생했습니다", "The warning was played"),
    "counselor.say.warn_last": ("마지막 경고({n}차) 안내를 고객에게 재생하고 있습니다 — "
                                "한 번 더 감지되면 종료 안내 후 통화가 끊깁니다",
                                "Playing the last warning ({n}) to the caller — one more "
                                "detection ends the call after the final notice"),
    "counselor.say.warn_done1": ("{n}차 경고 안내를 재생했습니다",
                                 "Warning {n} was played"),
    "counselor.say.warn_done_last": ("마지막 경고({n}차) 안내를 재생했습니다",
                                     "The last warning ({n}) was played"),
    "counselor.say.final": ("종료 안내를 재생하고 있습니다 — 곧 통화가 끊깁니다",
                            "Playing the final notice — the call will end"),
    "counselor.say.duration_notice": ("통화 시간 안내를 재생하고 있습니다",
                                      "Playing the call time notice"),
    "counselor.say.repeat": ("재통화 고객: 최근 {days}일 문제 통화 {n}건",
                             "Repeat caller: {n} flagged call(s) in the last {days} days"),
    "counselor.say.repeat_warning": ("재통화 고객 — 연결 안내 뒤 경고 안내를 재생합니다",
                                     "Repeat caller: the warning plays after the greeting"),
    "counselor.say.duration_final": ("통화 시간 한도 — 종료 안내 후 통화가 끊깁니다",
                                     "Call time limit — final notice, then the call ends"),
    "counselor.say.crisis": ("위기 신호: 자해·자살과 관련된 말이 감지되었습니다. 통화를 "
                             "끊지 말고 위기 대응 절차를 따르세요.",
                             "Crisis signal: words about self-harm or suicide were heard. "
                             "Stay on the call and follow the crisis procedure."),
    "counselor.crisis.nobody": ("자동으로 알림을 받은 사람은 없습니다 (중앙 서버가 연결되어 "
                                "있지 않습니다). 지금 상담 관리자에게 직접 알리세요. 급하면 "
                                "112·119에 신고하고, 고객에게 자살예방 상담전화 109를 "
                                "안내하세요.",
                                "Nobody was alerted automatically (no central server is "
                                "connected). Tell your supervisor yourself now. In an "
                                "emergency call 112 or 119, and give the caller the suicide "
                                "prevention line, 109."),
    "counselor.crisis.central": ("중앙 서버로 위기 알림을 보냈습니다: 검토 화면을 열어 둔 "
                                 "상담 관리자에게 바로 뜹니다. 답이 없으면 상담 관리자에게 직접 "
                                 "알리세요. 급하면 112·119, 고객에게는 자살예방 상담전화 "
                                 "109를 안내하세요.",
                                 "A crisis alert went to the central server: supervisors "
                                 "with the review open see it at once. If nobody answers, "
                                 "tell your supervisor yourself. In an emergency call 112 or "
                                 "119; give the caller the suicide prevention line, 109."),
    "counselor.crisis.received": ("위기 알림이 상담 관리자 {names}의 검토 화면에 떴습니다. "
                                  "통화를 이어 가며 위기 대응 절차를 따르세요. 급하면 "
                                  "112·119, 고객에게는 자살예방 상담전화 109를 안내하세요.",
                                  "The crisis alert is on the review screen of {names}. Stay "
                                  "on the call and follow the crisis procedure. In an "
                                  "emergency call 112 or 119; give the caller the suicide "
                                  "prevention line, 109."),
    "counselor.crisis.unwatched": ("위기 알림이 중앙 서버에 전달되었지만 지금 검토 화면을 연 "
                                   "상담 관리자가 없습니다. 상담 관리자에게 직접 알리세요. "
                                   "급하면 112·119, 고객에게는 자살예방 상담전화 109를 "
                                   "안내하세요.",
                                   "The crisis alert reached the central server, but no "
                                   "supervisor has the review open right now. Tell your "
                                   "supervisor yourself. In an emergency call 112 or 119; "
                                   "give the caller the suicide prevention line, 109."),
    "counselor.guarding": ("callguard 보호 중", "callguard is protecting this call"),
    "counselor.guard_name": ("보호 상태", "Protection state"),
    "counselor.crisis_name": ("위기 대응 안내", "Crisis guidance"),
    "counselor.say.protect": ("보호 요청됨: 종료 안내 후 통화를 끊습니다",
                              "Protection requested: final notice, then hang up"),
    "counselor.say.prompt_failed": ("안내 재생 실패: {detail}", "Prompt failed: {detail}"),
    "counselor.say.ended": ("통화가 종료되었습니다", "The call ended"),
    "counselor.say.ended_crisis": ("위기 통화가 끝났습니다. 상담 관리자에게 알렸는지 확인하세요.",
                                   "The crisis call is over. Make sure your supervisor knows."),
    "counselor.rest": ("휴식(&R)", "&Rest"),
    "counselor.rest_hint": ("지금 휴식을 시작합니다 (누구의 승인도 필요 없습니다)",
                            "Start a rest now (nobody needs to approve it)"),
    "counselor.folded": ("대화 내용을 접어 두었습니다 ({what}). 필요하면 펼쳐 보세요.",
                         "The transcript is folded away ({what}). Unfold it if you need it."),
    "counselor.unfold": ("대화 펼치기(&T)", "Unfold &transcript"),
    "counselor.fold": ("대화 접기(&T)", "Fold &transcript"),
    "counselor.mask": ("욕설 가리기(&K)", "Mas&k slurs"),
    "counselor.say.ended_abuse": ("폭언으로 통화가 종료되었습니다", "The call was ended for abuse"),
    "counselor.say.ended_limit": ("통화 시간 한도로 통화가 종료되었습니다",
                                  "The call reached its time limit and ended"),
    "counselor.say.missed": ("받지 않은 전화가 끊겼습니다",
                             "The caller hung up before you answered"),
    "counselor.say.declined": ("전화를 거절했습니다", "Call declined"),
    "counselor.say.busy": ("통화 중에 걸려온 전화를 거절했습니다 (통화 중 신호)",
                           "A second call was refused (busy)"),
    "counselor.say.unavailable": ("휴식 중에 걸려온 전화를 거절했습니다",
                                  "A call was declined while you rest"),
    # why an outbound call was not connected (``detail``: the SIP answer, e.g. "486 Busy Here")
    "counselor.say.not_connected": ("연결되지 않았습니다: {detail}", "Not connected: {detail}"),
    "counselor.say.cancelled": ("발신을 취소했습니다", "Call cancelled"),
    "counselor.say.far_busy": ("상대방이 통화 중입니다 ({detail})",
                               "The other party is busy ({detail})"),
    "counselor.say.far_declined": ("상대방이 전화를 거절했습니다 ({detail})",
                                   "The other party declined the call ({detail})"),
    "counselor.say.far_no_answer": ("상대방이 응답하지 않습니다 ({detail})",
                                    "No answer ({detail})"),
    "counselor.say.far_not_found": ("없는 번호입니다 ({detail})", "Number not found ({detail})"),
    "counselor.say.far_refused": ("상대방이 전화를 받을 수 없습니다 ({detail})",
                                  "The call was refused ({detail})"),
    "counselor.say.failed": ("{what} 실패: {error}", "{what} failed: {error}"),
    "counselor.resting": ("휴식 중 — 전화를 받지 않습니다", "Resting — calls are declined"),
    "counselor.say.rest_over": ("휴식이 끝났습니다", "Your rest is over"),
    "counselor.rules_ok": ("새 규칙이 적용되었습니다 ({version})",
                           "New rules in force ({version})"),
    "counselor.rules_refused": ("새 규칙을 적용하지 못했습니다: 기존 규칙이 유지됩니다",
                                "The new rules were refused; the rules in force stay"),
    # Plain words and what to do; the system's own error text (a PortAudio message, the
    # device's name) goes to the log only: it means nothing to a counselor.
    "counselor.headset": ("헤드셋을 쓸 수 없습니다. 통화는 계속 녹음·보호되지만 상담사는 "
                          "듣고 말할 수 없습니다. 헤드셋 연결을 확인하고(뺐다가 다시 꽂기) "
                          "헤드셋을 쓰는 다른 프로그램을 닫으세요. 다음 통화에서 다시 "
                          "연결합니다. 계속되면 상담 관리자에게 알리세요.",
                          "The headset is not working. The call is still recorded and "
                          "protected, but you cannot hear or speak. Check the headset "
                          "(unplug it and plug it in again) and close other programs that use "
                          "it; the next call connects it again. If it keeps happening, tell "
                          "your supervisor."),
    "counselor.tray.headset": ("헤드셋 오류", "Headset problem"),
    "counselor.store": ("통화 저장소에 문제가 있습니다({why}). 통화는 계속되며 녹음은 임시 "
                        "보관되었다가 저장소가 복구되면 저장됩니다. 계속되면 전산 담당자에게 "
                        "알려 주세요.",
                        "The call store has a problem ({why}). Calls go on; their recording "
                        "is kept aside and stored when the store is back. If it lasts, tell "
                        "IT."),
    # Why, in plain words, by the spool's kind of fault (callguard.store.spool); the
    # technical message (paths, errors) is the banner's tooltip, for IT.
    "counselor.store.full": ("디스크 공간 부족", "the disk is full"),
    "counselor.store.readonly": ("쓰기 금지됨", "it cannot be written"),
    "counselor.store.io": ("디스크 오류", "a disk error"),
    "counselor.store.unavailable": ("열 수 없음", "it cannot be opened"),
    "counselor.store.corrupt": ("파일 손상, 새 저장소로 교체됨",
                                "its file was damaged; a new store was started"),
    "counselor.store.deleted": ("파일 삭제됨, 새 저장소로 교체됨",
                                "its file was deleted; a new store was started"),
    "counselor.store.replaced": ("파일이 바뀜, 새 저장소로 교체됨",
                                 "its file was replaced; a new store was started"),
    "counselor.store.lost": ("임시 보관 공간 부족, 일부 녹음 유실",
                             "the spool was full and some audio was lost"),
    "counselor.store.error": ("쓰기 실패", "a write failed"),
    "counselor.tray.store": ("통화 저장소 오류", "Call store problem"),
    "counselor.tray.ringing": ("전화가 왔습니다", "Incoming call"),
    "counselor.tray.crisis": ("위기 신호", "Crisis signal"),
    "counselor.tray.abuse": ("폭언으로 통화가 종료되었습니다. 잠시 쉬어 가세요.",
                             "The call was ended for abuse. Take a break."),
})

_LINE_STYLE = {  # (text colour, background) per registration state
    LineState.REGISTERED: ("#1b5e20", "#c8e6c9"),
    LineState.REGISTERING: ("#6d4c00", "#ffe082"),
    LineState.RETRYING: ("#6d4c00", "#ffe082"),
    LineState.FAILED: ("#ffffff", "#c62828"),
    LineState.OFFLINE: ("#424242", "#e0e0e0"),
}
_SAY_STYLE = {  # prompt/status line: (text colour, background) per level
    "info": ("#263238", "#eceff1"),
    "warn": ("#4e3400", "#ffd54f"),  # the first warning(s)
    "warn_last": ("#ffffff", "#bf360c"),  # the last warning: the next detection ends the call
    "danger": ("#ffffff", "#c62828"),
    "crisis": ("#ffffff", "#4527a0"),  # crisis: its own colour, not abuse's red
}
_GUARD_STYLE = ("QLabel { color:#ffffff; background:#1b5e20; border-radius:4px;"
                " padding:2px 8px; font-weight:bold }")
_CRISIS_STYLE = ("QLabel { color:#311b92; background:#ede7f6; border:2px solid #4527a0;"
                 " border-radius:4px; font-weight:bold }")
# SIP final answers to our INVITE, by status code, for the status line.
_REFUSALS = {486: "far_busy", 600: "far_busy", 603: "far_declined", 480: "far_no_answer",
             408: "far_no_answer", 404: "far_not_found", 484: "far_not_found",
             604: "far_not_found"}


def setup_end_text(line: str, detail: str) -> str:
    """Why an outbound call ended before it was answered, for the status line: ``line`` is
    the :class:`CallEnd` value, ``detail`` the line's detail (e.g. ``"486 Busy Here"``)."""
    detail = detail.strip()
    if line == str(CallEnd.CANCELLED):
        return T("counselor.say.cancelled")
    if line == str(CallEnd.REJECTED):
        m = re.match(r"(\d{3})\b", detail)
        key = _REFUSALS.get(int(m.group(1)), "far_refused") if m else "far_refused"
        return T(f"counselor.say.{key}", detail=detail or line)
    return T("counselor.say.not_connected", detail=detail or line)


_KO_COUNT = {1: "한 번", 2: "두 번", 3: "세 번", 4: "네 번"}
_EN_COUNT = {1: "one", 2: "two", 3: "three", 4: "four"}


def _when(n: int, more: bool) -> str:
    """``n`` detections in words: "폭언이 한 번", "두 번 더" / "one abusive remark", "two more
    abusive remarks" (abuse, named as such in both languages: the stage line is the abuse
    escalation, which crisis words never advance)."""
    if language() == "ko":
        count = _KO_COUNT.get(n, f"{n}번")
        return f"{count} 더" if more else f"폭언이 {count}"
    count = _EN_COUNT.get(n, str(n))
    return f"{count}{' more' if more else ''} abusive remark{'s' if n > 1 else ''}"


def stage_line(next_kind: str | None, strikes: int, needed: int, given: int, total: int,
               active: bool = True) -> str:
    """The plain stage line: how many warnings have played and what the next detection
    does, e.g. "경고 1/2회 안내됨 · 한 번 더 감지되면 2차 경고 안내"."""
    if next_kind is None:
        return T("counselor.stage.ending") if active else ""
    parts = [T("counselor.stage.played", given=given, total=total)] if total else []
    when = _when(max(1, needed - strikes), more=given > 0 or strikes > 0)
    key = str(next_kind)
    if key == "warn" and total <= 1:
        key = "warn_only"
    if key in ("notice", "warn", "warn_only", "final"):
        parts.append(T(f"counselor.stage.next.{key}", when=when, n=given + 1))
    line = " · ".join(parts)
    return line[:1].upper() + line[1:] if language() == "en" else line


def mmss(seconds: float) -> str:
    """``seconds`` (call time, ≥ 0) as ``mm:ss`` (``h:mm:ss`` from an hour), rounded down."""
    whole = max(0, int(seconds))
    h, rest = divmod(whole, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def marked_html(text: str, spans: list[tuple[int, int]],
                crisis: list[tuple[int, int]] = ()) -> str:
    """``text`` as HTML with each span (character offsets, end exclusive) on a red ground,
    and each ``crisis`` span (crisis words) on a lavender one."""
    if not crisis:
        return mark_spans(text, spans, f'<span style="background-color:{HIGHLIGHT}; '
                          'color:#000000; font-weight:bold">', "</span>", html.escape)
    marks = [(a, b, HIGHLIGHT) for a, b in merge_spans(spans, len(text))]
    marks += [(a, b, CRISIS_HIGHLIGHT) for a, b in merge_spans(crisis, len(text))
              if not any(a < y and x < b for x, y, _ in marks)]
    out, pos = [], 0
    for a, b, colour in sorted(marks):
        out += [html.escape(text[pos:a]), f'<span style="background-color:{colour}; '
                'color:#000000; font-weight:bold">', html.escape(text[a:b]), "</span>"]
        pos = b
    out.append(html.escape(text[pos:]))
    return "".join(out)


MASK = "•"  # in every font callguard's windows use


def masked(text: str, spans: list[tuple[int, int]]) -> str:
    """``text`` with each hit span's characters replaced by :data:`MASK` (same length, so
    the spans still fit; spaces inside a span are kept)."""
    chars = list(text)
    for a, b in spans:
        for i in range(max(0, a), min(len(chars), b)):
            if not chars[i].isspace():
                chars[i] = MASK
    return "".join(chars)


@dataclass
class _Utterance:
    """One line of the transcript. ``t``/``start``: call time in seconds."""

    leg: str
    start: float
    text: str
    spans: list[tuple[int, int]] = field(default_factory=list)
    provisional: bool = False  # an early look; the final transcript replaces it
    crisis: list[tuple[int, int]] = field(default_factory=list)  # crisis words


class CallTimeBar(QWidget):
    """Call time against the duration limit, drawn with sub-pixel precision.

    A QProgressBar skips repaints smaller than a pixel, so a 10-minute bar would move in
    visible jumps; this one paints the exact fraction (and the notice mark) on every
    change. Times are seconds of call time; ``limit_s`` ``None`` means no limit.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.elapsed_s = 0.0
        self.limit_s: float | None = None
        self.notice_s: float | None = None
        self.setMinimumHeight(14)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def set_time(self, elapsed_s: float, limit_s: float | None,
                 notice_s: float | None = None) -> None:
        if (elapsed_s, limit_s, notice_s) != (self.elapsed_s, self.limit_s, self.notice_s):
            self.elapsed_s, self.limit_s, self.notice_s = elapsed_s, limit_s, notice_s
            self.update()

    def fraction(self) -> float:
        if not self.limit_s:
            return 0.0
        return min(1.0, max(0.0, self.elapsed_s / self.limit_s))

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        r = QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5)
        p.setPen(QColor("#90a4ae"))
        p.setBrush(QColor("#eceff1"))
        p.drawRoundedRect(r, 4, 4)
        f = self.fraction()
        if f > 0:
            late = self.notice_s is not None and self.elapsed_s >= self.notice_s
            colour = "#c62828" if f >= 0.9 else "#f9a825" if late else "#43a047"
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(QColor(colour))
            p.drawRoundedRect(QRectF(r.x(), r.y(), r.width() * f, r.height()), 4, 4)
        if self.limit_s and self.notice_s:
            x = r.x() + r.width() * min(1.0, self.notice_s / self.limit_s)
            p.setPen(QColor("#37474f"))
            p.drawLine(int(x), int(r.top()), int(x), int(r.bottom()))
        p.end()


class CounselorWindow(QMainWindow):
    """The counselor's softphone window (Korean by default; see :mod:`callguard.gui.i18n`).

    ``store`` (optional) is only used to log rests to the audit log; ``counselor`` is the
    name written there. ``rest_s`` (attribute, seconds, default 600) is the rest offered
    after a call ended for abuse; ``notify_default`` whether "notify supervisor" starts
    ticked.

    For tests and scripts: :attr:`call_state` (``idle``/``ringing``/``dialing``/``active``),
    :attr:`call_id`, :meth:`elapsed_s`, :meth:`transcript_text`, :meth:`highlighted_texts`,
    :attr:`rest_dialog`, :attr:`resting` (the engine declines inbound calls while the
    counselor rests; ``rest_label`` says so), :attr:`notices` (alerts raised:
    ``(title, message)``) and the widgets as attributes (``answer_button``,
    ``protect_button``, ``elapsed_bar``, ...).

    Outbound calls: ``dialing`` from the engine's ``dialing`` event (or the dial callback),
    Hang up cancels the set-up through the engine, and an ``ended`` before the answer puts
    the reason on the status line (:func:`setup_end_text`).
    """

    def __init__(self, bridge: EngineBridge, store: StoreClient | None = None,
                 counselor: str = "", parent: QWidget | None = None,
                 desk: DeskSettings | None = None, global_hotkey: bool = False) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.store = store
        # The desk's settings (hotkey, mini bar, hold-to-confirm, rest length); the
        # system-wide hotkey only with ``global_hotkey`` (the app; tests ask for it).
        self.desk = desk or DeskSettings()
        self.shortcuts: dict[str, QShortcut] = {}
        self.hotkey: GlobalHotkey | None = None
        self.mini_bar: MiniBar | None = None
        # The name written to the audit log; the engine knows it when the caller does not.
        self.counselor = counselor or str(getattr(bridge.engine, "counselor", "") or "")
        self.rest_s = self.desk.rest_s if desk is not None else REST_S
        self.notify_default = True
        self.rest_dialog: RestDialog | None = None
        self.notices: list[tuple[str, str]] = []

        # The call (one at a time, as in the engine).
        self.call_state = "idle"
        self.call_id: str | None = None
        self._remote = ""
        self._direction = ""
        self._store_id: int | None = None
        self._protected = False  # Protect was pressed for this call
        self._final = False  # the final notice is under way: protecting again is moot
        self._answering = False
        self._resting = False  # the engine was told to decline inbound calls
        self._mute_pending = 0  # set_muted commands not yet done: ignore stale status
        # Call time: the last call_status ``t`` (seconds) and time.monotonic() when it came.
        self._t_base = 0.0
        self._mono_base = time.monotonic()
        self._shown_s = 0.0  # never show time running backwards
        self._frozen_s: float | None = None  # call time at the end
        self._limit_s: float | None = None
        self._notice_s: float | None = None
        self._next: str | None = None
        self._strikes = 0
        self._needed = 0
        self._given = 0  # warnings played (the engine's count)
        self._total = 0  # warnings the rules give before the final notice
        self._warns = 0  # warning verdicts seen on this call (which banner to show)
        self._crisis = False  # crisis words were heard on this call
        self._flagged = False  # abuse detected or Protect pressed: rest offered at the end
        self._collapsed = False  # the transcript is folded away (after an incident)
        self._prompt_until: float | None = None  # call time the playing warning ends
        self._utterances: dict[tuple[str, float], _Utterance] = {}
        self._ticks = 0
        self._line = LineStatus(LineState.OFFLINE)

        self._title = T("counselor.title") + (f" — {self.counselor}" if self.counselor else "")
        self.setWindowTitle(self._title)
        self._build()
        self._hold_timer = QTimer(self)
        self._hold_timer.setSingleShot(True)
        self._hold_timer.timeout.connect(self._held)
        self._wire_protect(self.protect_button)
        self._setup_hotkey(global_hotkey)
        self._build_view_menu()
        self.tray = self._make_tray()
        if self.desk.mini_bar:
            self.show_mini_bar(True)

        self._timer = QTimer(self)
        self._timer.setInterval(TICK_MS)
        self._timer.timeout.connect(self._tick)

        bridge.event.connect(self.on_engine_event)
        # The line may have registered before this window existed: read its last status
        # (a plain attribute, no waiting) rather than show "offline" until the next change.
        status = getattr(getattr(bridge.engine, "line", None), "status", None)
        if isinstance(status, LineStatus):
            self._show_line(status)
        self._refresh()

    # --- building -------------------------------------------------------------------------

    def _build(self) -> None:
        self.line_label = QLabel()
        self.line_label.setMargin(4)
        who = QLabel(self.counselor)
        top = QHBoxLayout()
        top.addWidget(self.line_label, 1)
        top.addWidget(who)
        # Shown while the counselor rests: the engine declines inbound calls meanwhile.
        self.rest_label = QLabel(T("counselor.resting"))
        self.rest_label.setMargin(6)
        self.rest_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.rest_label.setStyleSheet("QLabel { color:#0d47a1; background:#bbdefb;"
                                      " border-radius:4px; font-weight:bold }")
        self.rest_label.hide()
        # Shown when the engine could not open (or lost) the headset for this call.
        self.headset_label = QLabel()
        self.headset_label.setWordWrap(True)
        self.headset_label.setMargin(6)
        self.headset_label.setStyleSheet("QLabel { color:#b71c1c; background:#ffcdd2;"
                                         " border-radius:4px; font-weight:bold }")
        self.headset_label.hide()
        # Shown while the call store fails (disk full, read-only, deleted, damaged).
        self.store_label = QLabel()
        self.store_label.setWordWrap(True)
        self.store_label.setMargin(6)
        self.store_label.setStyleSheet("QLabel { color:#7a3300; background:#ffe0b2;"
                                       " border-radius:4px; font-weight:bold }")
        self.store_label.hide()

        # Dial pad.
        self.number_edit = QLineEdit()
        self.number_edit.setPlaceholderText(plain(T("counselor.number")))
        self.number_edit.setAccessibleName(plain(T("counselor.number")))
        number_label = QLabel(T("counselor.number"))
        number_label.setBuddy(self.number_edit)
        self.number_edit.setValidator(QRegularExpressionValidator(
            QRegularExpression(r"[0-9*#+\- ]{0,32}"), self.number_edit))
        self.number_edit.textChanged.connect(self._refresh)
        self.number_edit.returnPressed.connect(self.dial)
        back = QPushButton(T("counselor.backspace"))
        back.setAccessibleName(T("counselor.backspace_name"))
        back.setToolTip(T("counselor.backspace_name"))
        back.clicked.connect(self.number_edit.backspace)
        self.backspace_button = back
        number_row = QHBoxLayout()
        number_row.addWidget(number_label)
        number_row.addWidget(self.number_edit, 1)
        number_row.addWidget(back)
        grid = QGridLayout()
        self.digit_buttons: dict[str, QPushButton] = {}
        for i, key in enumerate("123456789*0#"):
            b = QPushButton(key)
            b.setAccessibleName({"*": T("counselor.star"), "#": T("counselor.hash")}.get(
                key, T("counselor.digit", d=key)))
            b.setFocusPolicy(Qt.FocusPolicy.TabFocus)  # digits are typed in the number field
            b.setMinimumHeight(36)
            b.clicked.connect(lambda _=False, k=key: self.number_edit.insert(k))
            grid.addWidget(b, i // 3, i % 3)
            self.digit_buttons[key] = b
        self.call_button = QPushButton(T("counselor.call"))
        self.call_button.setMinimumHeight(36)
        self.call_button.clicked.connect(self.dial)
        pad = QGroupBox(T("counselor.dialpad"))
        pad_layout = QVBoxLayout(pad)
        pad_layout.addLayout(number_row)
        pad_layout.addLayout(grid)
        pad_layout.addWidget(self.call_button)

        # Call controls.
        self.answer_button = QPushButton(T("counselor.answer"))
        self.answer_button.setStyleSheet("QPushButton:enabled { background:#2e7d32;"
                                         " color:#ffffff; font-weight:bold }")
        self.decline_button = QPushButton(T("counselor.decline"))
        self.hangup_button = QPushButton(T("counselor.hangup"))
        self.mute_button = QPushButton(T("counselor.mute"))
        self.mute_button.setCheckable(True)
        self.keys_label = QLabel(T("counselor.keys"))
        self.keys_label.setWordWrap(True)
        for b, key, what in ((self.answer_button, "F5", "counselor.answer"),
                             (self.decline_button, "F6", "counselor.decline"),
                             (self.mute_button, "F7", "counselor.mute"),
                             (self.hangup_button, "F8", "counselor.hangup")):
            b.setMinimumHeight(36)
            b.setAccessibleName(plain(T(what)))
            b.setToolTip(f"{plain(T(what))} ({key})")
            # Window-wide: works wherever the focus is in this window (the number field too).
            shortcut = QShortcut(QKeySequence(key), self)
            shortcut.activated.connect(b.click)  # nothing when the button is disabled
            self.shortcuts[key] = shortcut
        self.call_button.setAccessibleName(plain(T("counselor.call")))
        self.rest_button = QPushButton(T("counselor.rest"))
        self.rest_button.setMinimumHeight(36)
        self.rest_button.setAccessibleName(plain(T("counselor.rest")))
        self.rest_button.setToolTip(T("counselor.rest_hint"))
        self.rest_button.clicked.connect(self.rest_now)
        self.answer_button.clicked.connect(self.answer)
        self.decline_button.clicked.connect(self.decline)
        self.hangup_button.clicked.connect(self.hangup)
        self.mute_button.toggled.connect(self.set_muted)
        controls = QGroupBox(T("counselor.controls"))
        c = QGridLayout(controls)
        c.addWidget(self.answer_button, 0, 0)
        c.addWidget(self.decline_button, 0, 1)
        c.addWidget(self.hangup_button, 1, 0)
        c.addWidget(self.mute_button, 1, 1)
        c.addWidget(self.rest_button, 2, 0, 1, 2)
        c.addWidget(self.keys_label, 3, 0, 1, 2)

        left = QVBoxLayout()
        left.addWidget(pad)
        left.addWidget(controls)
        left.addStretch(1)

        # The call.
        self.state_label = QLabel()
        self.state_label.setAccessibleName(T("counselor.state_name"))
        big = QFont(self.state_label.font())
        big.setPointSizeF(big.pointSizeF() * 1.6)
        big.setBold(True)
        self.state_label.setFont(big)
        self.remote_label = QLabel()
        self.remote_label.setFont(big)
        self.remote_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.direction_label = QLabel()
        self.guard_label = QLabel(T("counselor.guarding"))
        self.guard_label.setAccessibleName(T("counselor.guard_name"))
        self.guard_label.setStyleSheet(_GUARD_STYLE)
        self.guard_label.hide()
        head = QHBoxLayout()
        head.addWidget(self.state_label)
        head.addWidget(self.guard_label)
        head.addStretch(1)
        head.addWidget(self.direction_label)
        head.addWidget(self.remote_label)
        self.elapsed_label = QLabel()
        self.elapsed_bar = CallTimeBar()
        self.stage_label = QLabel()
        self.stage_label.setAccessibleName(T("counselor.stage_name"))
        self.hits_label = QLabel()
        stage_row = QHBoxLayout()
        stage_row.addWidget(self.stage_label, 1)
        stage_row.addWidget(self.hits_label)
        self.prompt_label = QLabel()
        self.prompt_label.setWordWrap(True)
        self.prompt_label.setMargin(6)
        self.prompt_label.setMinimumHeight(32)
        self.prompt_label.setAccessibleName(T("counselor.prompt_name"))
        # Crisis: who was alerted and what to do; stays until the next call.
        self.crisis_label = QLabel()
        self.crisis_label.setWordWrap(True)
        self.crisis_label.setMargin(6)
        self.crisis_label.setStyleSheet(_CRISIS_STYLE)
        self.crisis_label.setAccessibleName(T("counselor.crisis_name"))
        self.crisis_label.hide()
        self.transcript = QTextBrowser()
        self.transcript.setOpenLinks(False)
        self.transcript.setPlaceholderText(T("counselor.transcript"))
        self.transcript.setAccessibleName(T("counselor.transcript_name"))
        self.fold_button = QPushButton(T("counselor.unfold"))
        self.fold_button.setAccessibleName(plain(T("counselor.unfold")))
        self.fold_button.clicked.connect(self.toggle_transcript)
        self.fold_button.hide()
        self.mask_box = QCheckBox(T("counselor.mask"))
        self.mask_box.setAccessibleName(plain(T("counselor.mask")))
        self.mask_box.toggled.connect(lambda _on: self._render_transcript())
        tf = QFont(self.transcript.font())
        tf.setPointSizeF(tf.pointSizeF() * 1.2)  # read at a glance, mid-call
        self.transcript.setFont(tf)

        self.protect_button = QPushButton(T("counselor.protect"))
        self.protect_button.setToolTip(T("counselor.protect_hint"))
        self.protect_button.setAccessibleName(plain(T("counselor.protect")))
        self.protect_button.setAccessibleDescription(T("counselor.protect_hint"))
        self.protect_button.setMinimumHeight(90)
        pf = QFont(self.protect_button.font())
        pf.setPointSizeF(pf.pointSizeF() * 2.2)
        pf.setBold(True)
        self.protect_button.setFont(pf)
        self.protect_button.setStyleSheet(PROTECT_STYLE)
        self.protect_hint = QLabel(T("counselor.protect_hint"))
        self.protect_hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.protect_hint.setWordWrap(True)

        right = QVBoxLayout()
        right.addLayout(head)
        right.addWidget(self.elapsed_label)
        right.addWidget(self.elapsed_bar)
        right.addLayout(stage_row)
        right.addWidget(self.prompt_label)
        right.addWidget(self.crisis_label)
        transcript_head = QHBoxLayout()
        transcript_head.addWidget(QLabel(T("counselor.transcript")))
        transcript_head.addStretch(1)
        transcript_head.addWidget(self.mask_box)
        transcript_head.addWidget(self.fold_button)
        right.addLayout(transcript_head)
        right.addWidget(self.transcript, 1)
        right.addWidget(self.protect_button)
        right.addWidget(self.protect_hint)

        body = QHBoxLayout()
        body.addLayout(left)
        body.addLayout(right, 1)
        central = QWidget()
        outer = QVBoxLayout(central)
        outer.addLayout(top)
        outer.addWidget(self.rest_label)
        outer.addWidget(self.headset_label)
        outer.addWidget(self.store_label)
        outer.addLayout(body, 1)
        self.setCentralWidget(central)
        fit(self, 980, 690)
        self._say("", "info")

    def _wire_protect(self, button: QPushButton) -> None:
        """Protect on a click, or (``hold_to_confirm_s`` > 0) only after the button was
        held that long: released earlier, nothing happens and the window says why."""
        if self.desk.hold_to_confirm_s <= 0:
            button.clicked.connect(self.protect)
            return
        button.pressed.connect(self._hold_started)
        button.released.connect(self._hold_released)

    def _hold_started(self) -> None:
        if self.call_state == "active" and not self._protected:
            self._hold_timer.start(int(self.desk.hold_to_confirm_s * 1000))
            self.statusBar().showMessage(T("counselor.holding"))

    def _hold_released(self) -> None:
        if self._hold_timer.isActive():
            self._hold_timer.stop()
            self.statusBar().showMessage(T("counselor.hold_short",
                                           s=f"{self.desk.hold_to_confirm_s:g}"), 5000)

    def _held(self) -> None:
        self.statusBar().clearMessage()
        self.protect()

    def _setup_hotkey(self, global_hotkey: bool) -> None:
        """The protect shortcut: system-wide through pynput when asked for and possible,
        else a shortcut of this window (same keys)."""
        combo = self.desk.protect_hotkey
        if not combo:
            return
        error = None
        if global_hotkey:
            self.hotkey = GlobalHotkey(combo, self)
            error = self.hotkey.start()
            if error is None:
                self.hotkey.pressed.connect(self._protect_by_hotkey)
                self.protect_hint.setText(T("counselor.protect_key", combo=combo))
                self.protect_button.setToolTip(T("counselor.protect_key", combo=combo))
                return
            self.hotkey = None
        shortcut = QShortcut(QKeySequence(combo), self)
        shortcut.activated.connect(self._protect_by_hotkey)
        self.shortcuts[combo] = shortcut
        self.protect_hint.setText(T("counselor.protect_key_local", combo=combo))
        self.protect_button.setToolTip(T("counselor.protect_key_local", combo=combo))
        if error is not None:
            self.statusBar().showMessage(T("counselor.hotkey_failed", combo=combo, error=error),
                                         30_000)

    @Slot()
    def _protect_by_hotkey(self) -> None:
        if self.call_state == "active":
            log.info("protect hotkey pressed")
        self.protect()

    def _build_view_menu(self) -> None:
        menu = self.menuBar().addMenu(T("counselor.menu.view"))
        self.mini_action = QAction(T("counselor.menu.mini"), self)
        self.mini_action.setCheckable(True)
        self.mini_action.toggled.connect(self.show_mini_bar)
        menu.addAction(self.mini_action)

    @Slot(bool)
    def show_mini_bar(self, shown: bool) -> None:
        """Show (or hide) the always-on-top mini bar: state and Protect above the CRM."""
        if shown and self.mini_bar is None:
            self.mini_bar = MiniBar(None)
            self._wire_protect(self.mini_bar.protect_button)
            self.mini_bar.on_closed = lambda: self.mini_action.setChecked(False)
        if self.mini_bar is not None:
            self.mini_bar.setVisible(shown)
            if shown:
                self._update_mini_bar()
        self.mini_action.blockSignals(True)
        self.mini_action.setChecked(shown)
        self.mini_action.blockSignals(False)

    def _update_mini_bar(self) -> None:
        bar = self.mini_bar
        if bar is None or not bar.isVisible():
            return
        bar.show_state(self.state_label.text(), self.stage_label.text(),
                       self.protect_button.isEnabled(), self.protect_hint.text())

    def _make_tray(self) -> QSystemTrayIcon | None:
        # No tray on the offscreen platform or on some desktops: alerts still reach the
        # window title, the taskbar flash and ``notices``.
        if not QSystemTrayIcon.isSystemTrayAvailable():
            return None
        tray = QSystemTrayIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_ComputerIcon),
                               self)
        tray.setToolTip(T("counselor.title"))
        tray.activated.connect(lambda _reason: (self.showNormal(), self.raise_(),
                                                self.activateWindow()))
        tray.show()
        return tray

    # --- commands (return at once; outcomes come back as callbacks or events) -------------

    @Slot()
    def dial(self) -> None:
        number = self.number_edit.text().strip()
        if self.call_state != "idle" or not number or \
                self._line.state is not LineState.REGISTERED:
            return
        self._new_call(direction=Direction.OUTBOUND, remote=number)
        self._set_state("dialing")
        log.info("dialling (number not logged)")
        self.bridge.dial(number, self._dialled)

    def _dialled(self, call: Any, error: BaseException | None) -> None:
        if error is not None:
            if self.call_state == "dialing" and self.call_id is None:
                self._set_state("idle")
            self._failed("counselor.call", error)
            return
        if self.call_state != "dialing" or self.call_id not in (None, call.call_id):
            return
        self.call_id = call.call_id  # usually known already from the ``dialing`` event
        if call.state is CallState.ENDED:
            # Refused before the engine tracked it: no ``ended`` event will come.
            self._set_state("idle")
            self._say(setup_end_text(str(call.end_reason or CallEnd.FAILED), call.end_detail),
                      "info")
            return
        self._refresh()

    @Slot()
    def answer(self) -> None:
        if self.call_state != "ringing" or self.call_id is None:
            return
        self._answering = True  # no second click while the answer is on its way
        self._refresh()
        self.bridge.answer(self.call_id, self._done("counselor.answer"))

    @Slot()
    def decline(self) -> None:
        if self.call_state != "ringing" or self.call_id is None:
            return
        self._answering = True
        self._refresh()
        self.bridge.decline(self.call_id, self._done("counselor.decline"))

    @Slot()
    def hangup(self) -> None:
        """End the call; while dialing, cancel its set-up (the engine sends CANCEL)."""
        if self.call_state in ("dialing", "active") and self.call_id is not None:
            self.bridge.hangup(self.call_id, self._done("counselor.hangup"))

    @Slot()
    def protect(self) -> None:
        """Final notice, then hang up: at once, no confirmation (the counselor is under
        stress and the engine plays the notice to its last sample anyway)."""
        if self.call_state != "active" or self._protected:
            return
        self._protected = True
        self._flagged = True
        log.info("counselor pressed protect on %s", self.call_id)
        self._say(T("counselor.say.protect"), "danger")
        self._refresh()
        self.bridge.protect(self.call_id, self._done("counselor.protect"))

    @Slot(bool)
    def set_muted(self, muted: bool) -> None:
        self.mute_button.setText(T("counselor.unmute" if muted else "counselor.mute"))
        if self.call_state != "active":
            return
        self._mute_pending += 1

        def done(_result: object, error: BaseException | None) -> None:
            self._mute_pending -= 1
            if error is not None:
                self._failed("counselor.mute", error)

        self.bridge.set_muted(muted, done)

    def _done(self, what: str) -> Any:
        def done(_result: object, error: BaseException | None) -> None:
            if error is not None:
                if what in ("counselor.answer", "counselor.decline"):
                    self._answering = False
                if what == "counselor.protect":
                    self._protected = False
                self._failed(what, error)
                self._refresh()
        return done

    def _failed(self, what: str, error: BaseException) -> None:
        # A line's error text may carry the dialled URI: its type only above DEBUG.
        log.warning("%s failed: %s", what, type(error).__name__)
        log.debug("%s failed: %s", what, error)
        self._say(T("counselor.say.failed", what=T(what), error=error), "danger")

    # --- engine events --------------------------------------------------------------------

    @Slot(object)
    def on_engine_event(self, ev: EngineEvent) -> None:
        """Everything from the engine, on the GUI thread."""
        kind = EngineEventKind
        handler = {kind.STATUS: self._on_status, kind.RINGING: self._on_ringing,
                   kind.DIALING: self._on_dialing, kind.ANSWERED: self._on_answered,
                   kind.ENDED: self._on_ended, kind.DECLINED: self._on_declined,
                   kind.CALL_STATUS: self._on_call_status, kind.TIMELINE: self._on_timeline,
                   kind.RULES: self._on_rules, kind.HEADSET: self._on_headset,
                   kind.STORE: self._on_store,
                   kind.RECOGNITION: self._on_recognition,
                   kind.ALERT_DELIVERED: self._on_alert_delivered}.get(ev.kind)
        if handler is not None:
            handler(ev)

    def _mine(self, ev: EngineEvent) -> bool:
        return ev.call_id is not None and ev.call_id == self.call_id

    def _on_status(self, ev: EngineEvent) -> None:
        if isinstance(ev.data, LineStatus):
            self._show_line(ev.data)

    def _on_ringing(self, ev: EngineEvent) -> None:
        if self.call_state != "idle":
            return  # the engine refuses a second call itself
        self._new_call(direction=Direction.INBOUND,
                       remote=str((ev.data or {}).get("remote", "")))
        self.call_id = ev.call_id
        self._set_state("ringing")
        log.info("incoming call %s", ev.call_id)
        repeat = (ev.data or {}).get("repeat")
        if repeat:  # known from every desk's flagged calls, before the answer
            self._say(T("counselor.say.repeat", n=repeat["flagged"], days=repeat["days"]),
                      "warn")
        self._alert(T("counselor.tray.ringing"), T("counselor.state.ringing"))
        QApplication.alert(self)  # flashes the taskbar entry until the window is active

    def _on_dialing(self, ev: EngineEvent) -> None:
        if self.call_state == "idle":  # dialled elsewhere (a script on the same engine)
            self._new_call(direction=Direction.OUTBOUND,
                           remote=str((ev.data or {}).get("remote", "")))
            self._set_state("dialing")
        elif self.call_state != "dialing" or self.call_id not in (None, ev.call_id):
            return
        self.call_id = ev.call_id
        log.info("dialing %s", ev.call_id)
        self._refresh()

    def _on_answered(self, ev: EngineEvent) -> None:
        if self.call_state == "active" and not self._mine(ev):
            return
        if self.call_state == "idle":  # answered elsewhere (auto-answer) or before we knew
            self._new_call(direction=str((ev.data or {}).get("direction", "")), remote="")
        self.call_id = ev.call_id
        self._direction = str((ev.data or {}).get("direction", self._direction))
        self._sync_time(0.0)
        self._set_state("active")
        log.info("call %s active", ev.call_id)

    def _on_declined(self, ev: EngineEvent) -> None:
        if ev.data == "busy":
            self.statusBar().showMessage(T("counselor.say.busy"), 10_000)
        elif ev.data == "unavailable":
            self.statusBar().showMessage(T("counselor.say.unavailable"), 10_000)

    def _on_rules(self, ev: EngineEvent) -> None:
        result = ev.data
        if getattr(result, "ok", False):
            version = str(getattr(result, "version", ""))[:12]
            self.statusBar().showMessage(T("counselor.rules_ok", version=version), 10_000)
        else:
            self.statusBar().showMessage(T("counselor.rules_refused"), 10_000)

    def _on_headset(self, ev: EngineEvent) -> None:
        """The sound card failed for this call: the call goes on (recorded, protected), but
        the counselor must know at once why they hear nothing."""
        # The engine logged the error at WARNING; the window shows plain words only.
        log.debug("headset notice shown for call %s: %s", ev.call_id,
                  (ev.data or {}).get("error", ""))
        self.headset_label.setText(T("counselor.headset"))
        self.headset_label.setToolTip("")
        self.headset_label.show()
        self._alert(T("counselor.tray.headset"), T("counselor.headset"))

    def _on_store(self, ev: EngineEvent) -> None:
        """The call store failed (the banner stays until it is written again) or is back."""
        data = ev.data or {}
        if data.get("ok"):
            self.store_label.hide()
            return
        kind = str(data.get("kind") or "error")
        if kind not in STORE_FAULTS:
            kind = "error"
        text = T("counselor.store", why=T(f"counselor.store.{kind}"))
        self.store_label.setText(text)
        self.store_label.setToolTip(str(data.get("problem") or ""))
        self.store_label.show()
        self._alert(T("counselor.tray.store"), text)

    def _on_recognition(self, ev: EngineEvent) -> None:
        """The recogniser is down (its process crashed and restarts, or cannot start) or
        back: shown in the red banner the headset uses; the call goes on, recorded."""
        t = texts({"counselor.recognition": (
            "음성 인식을 쓸 수 없습니다. 통화는 계속 녹음되고 시간 제한도 지켜지지만 발언은 "
            "인식되지 않습니다. 인식은 스스로 다시 시작합니다. 계속되면 상담 관리자에게 "
            "알려 주세요.",
            "Recognition unavailable. The call is still recorded and its time limits hold, "
            "but what is said is not recognised. Recognition restarts by itself; if it "
            "lasts, tell your supervisor."),
            "counselor.tray.recognition": ("음성 인식 중단", "Recognition unavailable")})
        if (ev.data or {}).get("ok"):
            if self.headset_label.text() == getattr(self, "_recognition_text", None):
                self.headset_label.hide()
                self.headset_label.setToolTip("")
            return
        self._recognition_text = t("counselor.recognition")
        self.headset_label.setText(self._recognition_text)
        # What exactly failed (a signal, an exit code), for IT; not the counselor's words.
        self.headset_label.setToolTip(str(ev.data.get("problem") or ""))
        self.headset_label.show()
        self._alert(t("counselor.tray.recognition"), self._recognition_text)

    def _on_ended(self, ev: EngineEvent) -> None:
        if not self._mine(ev):
            return
        data = ev.data or {}
        reason = str(data.get("reason") or "")
        line = str(data.get("line") or reason)
        store_id = data.get("store_id", self._store_id)
        was = self.call_state
        log.info("call %s ended: %s", ev.call_id, reason)
        # The engine's word on Protect (this window's own flag only for an older engine).
        protected = bool(data.get("protected", self._protected))
        abuse = was == "active" and (reason in ABUSE_ENDS or protected)
        if was == "active":
            self._frozen_s = self.elapsed_s()
        self._set_state("idle")
        sid = store_id if isinstance(store_id, int) else None
        if was == "active":
            self.headset_label.hide()  # that call's headset: stale now
            if abuse or self._flagged or self._crisis:
                # An incident: the transcript folds away (one click from view again), and
                # a rest is offered whoever ended the call.
                self._collapsed = True
                self._render_transcript()
                self._update_transcript_controls()
        if was == "ringing":
            self._say(T("counselor.say.declined" if line == str(CallEnd.DECLINED)
                        else "counselor.say.missed"), "info")
        elif was == "dialing":
            self._say(setup_end_text(line, str(data.get("detail") or "")), "info")
        elif abuse:
            self._say(T("counselor.say.ended_abuse"), "danger")
            self._alert(T("counselor.say.ended_abuse"), T("counselor.tray.abuse"))
        elif self._crisis:
            self._say(T("counselor.say.ended_crisis"), "crisis")
        elif reason == EndReason.DURATION_LIMIT:
            self._say(T("counselor.say.ended_limit"), "info")
        else:
            self._say(T("counselor.say.ended"), "info")
        if was == "active" and (abuse or self._flagged or self._crisis):
            self.offer_rest(sid, "crisis" if self._crisis else "abuse" if abuse else "flagged")

    def _on_call_status(self, ev: EngineEvent) -> None:
        if not self._mine(ev) or self.call_state != "active":
            return
        st = ev.data
        if not isinstance(st, CallStatus):
            return
        self._sync_time(st.at_s)
        self._limit_s = st.limit_s
        self._notice_s = st.notice_s
        self._next = st.next
        self._strikes = st.strikes
        self._needed = st.needed
        self._given, self._total = st.warnings_given, st.warnings
        if st.store_id is not None:
            self._store_id = st.store_id
        if self._mute_pending == 0 and st.muted != self.mute_button.isChecked():
            self.mute_button.blockSignals(True)  # the engine's state, not a new command
            self.mute_button.setChecked(st.muted)
            self.mute_button.setText(T("counselor.unmute" if st.muted
                                       else "counselor.mute"))
            self.mute_button.blockSignals(False)
        self._show_stage()
        self._show_time()

    def _on_timeline(self, ev: EngineEvent) -> None:
        if not self._mine(ev):
            return
        match ev.data:
            case Transcribed(status=UtteranceStatus.OK) as te:
                self._add_speech(te)
            case VerdictIssued() as verdict:
                self._verdict(verdict)
            case PromptStarted(key=VerdictKind.WARN.prompt) as prompt:
                self._prompt_until = prompt.ends_at
            case PromptFailed() as failed:
                self._say(T("counselor.say.prompt_failed", detail=failed.key), "danger")

    def _warn_key(self, done: bool) -> tuple[str, str]:
        """The banner of the warning now playing (or just played): its number, and whether
        it is the last before the final notice (then in a deeper colour)."""
        last = self._total > 0 and self._warns >= self._total
        stem = "warn_done" if done else "warn"
        if self._total <= 1:  # the only warning: no number, the warning's colour
            return f"counselor.say.{stem}_only", "warn"
        return (f"counselor.say.{stem}_last" if last else f"counselor.say.{stem}1",
                "warn_last" if last else "warn")

    def _verdict(self, v: VerdictIssued) -> None:
        kind = v.kind
        if kind.flags:
            self._flagged = True
        if kind.hangup:
            self._final = True
            self._prompt_until = None
            self._say(T(f"counselor.say.{kind}"), "danger")
        elif kind is VerdictKind.WARN:
            self._warns += 1
            self._total = max(self._total, self._warns)  # before the next status says
            key, level = self._warn_key(done=False)
            self._say(T(key, n=self._warns), level)
        elif kind is VerdictKind.ALERT:
            self._on_crisis()
        elif self._prompt_until is None and not self._final:
            # A notice is only news when nothing more pressing is on the line.
            self._say(T(f"counselor.say.{kind}"),
                      "warn" if kind is VerdictKind.NOTICE else "info")
        self._refresh()

    def _on_crisis(self) -> None:
        """Crisis words: never a warning or a hangup. The counselor is told so in the
        crisis colour, and who was alerted: with a central server, the supervisors
        watching it; without one, nobody, and what to do instead."""
        first = not self._crisis
        self._crisis = True
        if not self._final:
            self._say(T("counselor.say.crisis"), "crisis")
        central = getattr(self.bridge.engine, "central", None) is not None
        self.crisis_label.setText(T("counselor.crisis.central" if central
                                    else "counselor.crisis.nobody"))
        self.crisis_label.show()
        if first:
            log.info("crisis words on %s (central server: %s)", self.call_id, central)
            self._alert(T("counselor.tray.crisis"), T("counselor.say.crisis"))
            QApplication.alert(self)

    def _on_alert_delivered(self, ev: EngineEvent) -> None:
        """The central server has this desk's crisis alert: say exactly who has it on
        screen, or that nobody watching got it (then the counselor must tell someone)."""
        alert = ev.data or {}
        if alert.get("kind") != "crisis" or not self._crisis:
            return
        names = [str(n) for n in alert.get("recipients") or []]
        self.crisis_label.setText(
            T("counselor.crisis.received", names=", ".join(names)) if names
            else T("counselor.crisis.unwatched"))

    # --- the transcript -------------------------------------------------------------------

    def _add_speech(self, te: Transcribed) -> None:
        if not te.text.strip():
            return
        start = te.start_s
        caller = te.leg is Leg.CALLER  # only the caller's words count
        spans = [(h.start, h.end) for h in te.hits if caller and h.category != CRISIS]
        crisis = [(h.start, h.end) for h in te.hits if caller and h.category == CRISIS]
        key = (te.leg, round(start, 1))
        if not te.early:
            # The final transcript of an utterance replaces its early look: same leg, and
            # the same start give or take the segmenter's frame rounding.
            for k, u in list(self._utterances.items()):
                if u.provisional and u.leg == te.leg and abs(u.start - start) < 0.5:
                    del self._utterances[k]
        self._utterances[key] = _Utterance(te.leg, start, te.text.strip(), spans,
                                           provisional=te.early, crisis=crisis)
        self._render_transcript()
        self._show_hits()

    def _show_hits(self) -> None:
        abuse = sum(1 for u in self._utterances.values() if u.spans)
        crisis = sum(1 for u in self._utterances.values() if u.crisis)
        parts = ([T("counselor.hits", n=abuse)] if abuse else []) + (
            [T("counselor.crisis_hits", n=crisis)] if crisis else [])
        self.hits_label.setText(" · ".join(parts))

    def _render_transcript(self) -> None:
        bar = self.transcript.verticalScrollBar()
        at_end = bar.value() >= bar.maximum() - 4
        if self._collapsed:
            abuse = sum(1 for u in self._utterances.values() if u.spans)
            crisis = sum(1 for u in self._utterances.values() if u.crisis)
            what = " · ".join(([T("counselor.hits", n=abuse)] if abuse else [])
                              + ([T("counselor.crisis_hits", n=crisis)] if crisis else []))
            self.transcript.setHtml('<p style="color:#37474f">'
                                    + html.escape(T("counselor.folded", what=what or "-"))
                                    + "</p>")
            return
        mask = self.mask_box.isChecked()
        lines = []
        for u in sorted(self._utterances.values(), key=lambda u: (u.start, u.leg)):
            caller = u.leg is Leg.CALLER
            who = T("counselor.leg.caller" if caller else "counselor.leg.counselor")
            colour = "#b71c1c" if caller else "#0d47a1"  # ≥ 4.5:1 on white (tested)
            text = masked(u.text, u.spans) if mask else u.text
            body = marked_html(text, u.spans, u.crisis)
            if u.provisional:
                body = f'<span style="color:#757575"><i>{body} …</i></span>'
            # "고객: 이 새끼야", with the colon: "고객 이 새끼야" reads as "고객이 새끼야".
            lines.append(f'<p style="margin:3px 0"><span style="color:#546e7a">'
                         f'[{mmss(u.start)}]</span> <b style="color:{colour}">{who}:</b> '
                         f'{body}</p>')
        self.transcript.setHtml("".join(lines))
        if at_end:
            bar.setValue(bar.maximum())

    @Slot()
    def toggle_transcript(self) -> None:
        """Unfold (or fold again) the transcript of the call that just ended."""
        self._collapsed = not self._collapsed
        self._render_transcript()
        self._update_transcript_controls()

    def _update_transcript_controls(self) -> None:
        incident = self.call_state == "idle" and (self._flagged or self._crisis) \
            and bool(self._utterances)
        self.fold_button.setVisible(incident)
        self.fold_button.setText(T("counselor.unfold" if self._collapsed else "counselor.fold"))

    def transcript_text(self) -> str:
        """The transcript as shown (plain text, one utterance a line)."""
        return self.transcript.toPlainText()

    def highlighted_texts(self, colour: str = HIGHLIGHT) -> list[str]:
        """The fragments of the shown transcript on the rule-hit background (or
        ``colour``: :data:`CRISIS_HIGHLIGHT` for crisis words), in order."""
        want = QColor(colour).name()
        found: list[str] = []
        block = self.transcript.document().begin()
        while block.isValid():
            it = block.begin()
            while not it.atEnd():
                frag = it.fragment()
                brush = frag.charFormat().background()
                if frag.isValid() and brush.style() != Qt.BrushStyle.NoBrush \
                        and brush.color().name() == want:
                    found.append(frag.text())
                it += 1
            block = block.next()
        return found

    # --- time, state, display -------------------------------------------------------------

    def elapsed_s(self) -> float:
        """Call time shown, in seconds: the last ``call_status`` time plus the local
        monotonic time since it arrived; frozen when the call ends; 0 with no call."""
        if self._frozen_s is not None:
            return self._frozen_s
        if self.call_state != "active":
            return 0.0
        return max(self._shown_s, self._t_base + time.monotonic() - self._mono_base)

    def _sync_time(self, t: float) -> None:
        self._t_base, self._mono_base = t, time.monotonic()

    def _tick(self) -> None:
        """10 Hz while a call rings or runs: advance the time, blink the title."""
        self._ticks += 1
        if self.call_state == "ringing":
            # Blink the title twice a second: visible in the taskbar of a busy desktop.
            blink = (self._ticks // 5) % 2 == 0
            self.setWindowTitle(T("counselor.title_ringing") if blink else self._title)
        elif self.call_state == "active":
            self._show_time()
            if self._prompt_until is not None and self.elapsed_s() >= self._prompt_until:
                self._prompt_until = None
                if not self._final and not self._protected and not self._crisis:
                    key, level = self._warn_key(done=True)
                    self._say(T(key, n=self._warns), level)

    def _show_time(self) -> None:
        if self.call_state == "idle" and self._frozen_s is None:
            self.elapsed_label.setText("")
            self.elapsed_bar.set_time(0.0, None, None)
            return
        now = self.elapsed_s()
        self._shown_s = now if self.call_state == "active" else self._shown_s
        if self._limit_s:
            self.elapsed_label.setText(T("counselor.elapsed", elapsed=mmss(now),
                                         limit=mmss(self._limit_s)))
        else:
            self.elapsed_label.setText(T("counselor.elapsed_nolimit", elapsed=mmss(now)))
        self.elapsed_bar.set_time(now, self._limit_s, self._notice_s)

    def _show_stage(self) -> None:
        self._stage_text()
        self._update_mini_bar()

    def _stage_text(self) -> None:
        if self.call_state != "active" or (self._next is None and not self._final):
            self.stage_label.setText("")  # no call, or no status from the engine yet
        elif self._next is None or self._final:
            self.stage_label.setText(T("counselor.stage.ending"))
        else:
            self.stage_label.setText(stage_line(self._next, self._strikes, self._needed,
                                                self._given, self._total))

    def _show_line(self, status: LineStatus) -> None:
        self._line = status
        detail = status.detail or str(status.state)
        if status.retry_in_s is not None:
            detail += f" ({T('counselor.line.retry_in', s=round(status.retry_in_s))})"
        key = f"counselor.line.{status.state}"
        text = T(key, detail=detail) if status.state in (LineState.RETRYING,
                                                          LineState.FAILED) else T(key)
        fg, bg = _LINE_STYLE.get(status.state, _LINE_STYLE[LineState.OFFLINE])
        self.line_label.setText(text)
        self.line_label.setStyleSheet(f"QLabel {{ color:{fg}; background:{bg};"
                                      " border-radius:4px; font-weight:bold }")
        self._refresh()

    def _say(self, text: str, level: str) -> None:
        """The status line under the call time: what callguard is doing on this call."""
        fg, bg = _SAY_STYLE[level]
        self.prompt_label.setText(text)
        self.prompt_label.setStyleSheet(
            f"QLabel {{ color:{fg}; background:{bg}; border-radius:4px; font-weight:bold }}"
            if text else "")

    def _alert(self, title: str, message: str) -> None:
        """A desktop notification (tray, when there is one). Never carries the number:
        notification centres keep a history."""
        self.notices.append((title, message))
        if self.tray is not None:
            self.tray.showMessage(title, message, QSystemTrayIcon.MessageIcon.Warning, 10_000)

    def _new_call(self, direction: str, remote: str) -> None:
        self._remote, self._direction = remote, direction
        self.headset_label.hide()  # a new call opens the headset afresh
        self.call_id = None
        self._store_id = None
        self._protected = self._final = self._answering = False
        self._mute_pending = 0
        self._t_base, self._mono_base, self._shown_s = 0.0, time.monotonic(), 0.0
        self._frozen_s = None
        self._limit_s = self._notice_s = None
        self._next, self._strikes, self._needed = None, 0, 0
        self._given = self._total = self._warns = 0
        self._crisis = self._flagged = self._collapsed = False
        self.crisis_label.hide()
        self._update_transcript_controls()
        self._prompt_until = None
        self._utterances.clear()
        self.transcript.clear()
        self.hits_label.setText("")
        self.mute_button.blockSignals(True)
        self.mute_button.setChecked(False)
        self.mute_button.setText(T("counselor.mute"))
        self.mute_button.blockSignals(False)
        self._say("", "info")

    def _set_state(self, state: str) -> None:
        self.call_state = state
        if state == "idle":
            self._timer.stop()
            self.call_id = None
            self._remote = ""  # personal data: not left on screen after the call
            self._prompt_until = None
            self._next = None
        elif not self._timer.isActive():
            self._timer.start()
        if state != "ringing":
            self.setWindowTitle(self._title)  # stop the ringing blink
        self._refresh()

    @Slot()
    def _refresh(self) -> None:
        """Labels and which buttons make sense now."""
        s = self.call_state
        idle, ringing, active = s == "idle", s == "ringing", s == "active"
        registered = self._line.state is LineState.REGISTERED
        self.call_button.setEnabled(idle and registered and bool(self.number_edit.text().strip()))
        self.number_edit.setEnabled(idle)
        self.backspace_button.setEnabled(idle)
        for b in self.digit_buttons.values():
            b.setEnabled(idle)
        self.answer_button.setEnabled(ringing and not self._answering)
        self.decline_button.setEnabled(ringing and not self._answering)
        self.hangup_button.setEnabled(active or (s == "dialing" and self.call_id is not None))
        self.mute_button.setEnabled(active)
        self.protect_button.setEnabled(active and not self._protected and not self._final)
        self.rest_button.setEnabled(idle and not self._resting and not (
            self.rest_dialog is not None and self.rest_dialog.isVisible()))
        self.state_label.setText(T(f"counselor.state.{s}"))
        self.guard_label.setVisible(active)
        self.state_label.setStyleSheet("QLabel { color:#c62828 }" if ringing else "")
        self.remote_label.setText(self._remote if not idle else "")
        self.direction_label.setText(T(f"counselor.dir.{self._direction}")
                                     if not idle and self._direction in tuple(Direction)
                                     else "")
        self._show_time()
        self._show_stage()
        self._update_mini_bar()

    # --- rest -----------------------------------------------------------------------------

    def offer_rest(self, store_id: int | None = None, reason: str = "abuse") -> RestDialog:
        """Offer a rest (``store_id``: the call that led to it, for the audit log;
        ``reason``: ``abuse``, ``crisis``, ``flagged`` or ``manual``). A rest already on
        screen is kept, not doubled. Deciding (start or skip) clears what the incident
        left on screen."""
        if self.rest_dialog is not None and self.rest_dialog.isVisible():
            return self.rest_dialog
        dialog = RestDialog(self.store, self.counselor, store_id, self.rest_s,
                            self.notify_default, self, reason)
        dialog.panel.started.connect(lambda _s: self._set_resting(True))
        dialog.panel.finished.connect(lambda _s: self._set_resting(False))
        dialog.panel.decided.connect(lambda _n: self.clear_incident())
        dialog.finished.connect(lambda _r: self._refresh())
        self.rest_dialog = dialog
        dialog.show()
        dialog.raise_()
        self._refresh()
        return dialog

    @Slot()
    def rest_now(self) -> None:
        """The rest button: a rest whenever the counselor wants one (not during a call)."""
        if self.call_state == "idle":
            self.offer_rest(None, "manual")

    def clear_incident(self) -> None:
        """Take down what the last call left on screen: its banner, the crisis box, the
        headset notice and the stopped call time. The folded transcript stays folded."""
        if self.call_state != "idle":
            return
        self._say("", "info")
        self.crisis_label.hide()
        self.headset_label.hide()
        self._frozen_s = None
        self._refresh()

    def _set_resting(self, resting: bool) -> None:
        """The rest started (``True``) or ended: the engine declines inbound calls (486)
        meanwhile, so the call distributor routes them to someone else."""
        if resting == self._resting:
            return
        self._resting = resting
        self.rest_label.setVisible(resting)
        if not resting:
            self._say(T("counselor.say.rest_over"), "info")
        log.info("rest %s: inbound calls %s", "started" if resting else "ended",
                 "declined" if resting else "accepted again")

        def done(_result: object, error: BaseException | None) -> None:
            if error is not None:
                self._failed("counselor.availability", error)

        try:
            self.bridge.run(self.bridge.engine.set_available(not resting), done)
        except Exception as exc:  # the engine is not running (e.g. a screenshot)
            done(None, exc)

    @property
    def resting(self) -> bool:
        """The counselor is resting: the engine was asked to decline inbound calls."""
        return self._resting

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.rest_dialog is not None and self.rest_dialog.panel.state == "resting":
            self.rest_dialog.close()  # ends the rest (logged): calls are accepted again
        self._timer.stop()
        if self.hotkey is not None:
            self.hotkey.stop()
        if self.mini_bar is not None:
            self.mini_bar.on_closed = None
            self.mini_bar.close()
            self.mini_bar.deleteLater()
            self.mini_bar = None
        if self.tray is not None:
            self.tray.hide()
        super().closeEvent(event)


def stage_demo_call(window: CounselorWindow, remote: str = "010-1234-5678",
                    t: float = 42.0) -> None:
    """Put ``window`` into "during a call, a rule hit highlighted, the warning playing"
    for a screenshot, by feeding it the events an engine would send (no engine needed; the
    commands of the window are not usable afterwards). ``t``: call time in seconds."""
    cid = "demo@callguard.invalid"

    def ev(kind: EngineEventKind, data: Any, call_id: str | None = cid) -> None:
        window.on_engine_event(EngineEvent(kind, call_id, data))

    def say(at: float, leg: Leg, text: str, start: float,
            hits: tuple[HitSpan, ...] = ()) -> None:
        ev(EngineEventKind.TIMELINE, Transcribed(at, leg, text, start, at - 0.3, UtteranceStatus.OK,
                                   hits=hits))

    ev(EngineEventKind.STATUS, LineStatus(LineState.REGISTERED, "as kim"), None)
    ev(EngineEventKind.RINGING, {"remote": remote})
    ev(EngineEventKind.ANSWERED, {"direction": Direction.INBOUND})
    say(3.4, Leg.COUNSELOR, "안녕하세요, 고객센터 상담사 김민지입니다. 무엇을 도와드릴까요?", 0.8)
    say(9.6, Leg.CALLER, "지난주에 주문한 거 환불이 왜 아직도 안 되는 건데요?", 5.1)
    say(16.2, Leg.COUNSELOR, "불편을 드려 죄송합니다. 주문 번호 확인해 드리겠습니다.", 11.0)
    abuse = "아 진짜 이 새끼야 빨리 해"
    at = abuse.index("새끼")
    say(t - 2.0, Leg.CALLER, abuse, t - 5.0, (HitSpan(at, at + 2, "t.saekki", "profanity"),))
    ev(EngineEventKind.TIMELINE, VerdictIssued(t - 1.8, VerdictKind.WARN, Cause.RULES,
                                 "warning 1/1: 1 strike(s)", 1, ("t.saekki",)))
    ev(EngineEventKind.TIMELINE, PromptStarted("warning", t - 1.8, 6.0))
    ev(EngineEventKind.CALL_STATUS, CallStatus(at_s=t, next=VerdictKind.FINAL, strikes=0, needed=1,
                                 notice_s=480.0, limit_s=600.0, stage=Stage.WARNED, ended=False,
                                 warnings_given=1, warnings=1))
