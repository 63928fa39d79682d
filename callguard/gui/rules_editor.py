"""The admin's rules editor: a form and the raw TOML kept in sync, checked as you type.

What it does (see :class:`RulesEditorWindow`):

- **Form and raw TOML.** The form covers the common fields: name, ``[escalation]``,
  ``[duration]`` limits, ``[prompts]`` and each ``[[rule]]``'s id, category, severity,
  mode, terms and enabled flag. A form edit rewrites only the value it changes in the TOML
  (:class:`callguard.rules.toml_edit.TomlText`): comments, key order and every field the
  form does not show stay as the admin wrote them. A raw edit re-fills the form once the
  text parses as TOML.
- **Validation as you type**, 300 ms after the last keystroke, on a worker thread (the
  loader runs Kiwi checks, and a changed ``[dictionary]`` loads another Kiwi: seconds).
  The messages are exactly the lines ``callguard rules check <file>`` prints for the same
  text (:class:`callguard.services.rules_admin.RulesChecker`); offending lines are marked
  in the raw editor.
- **Test a sentence** under the edited rules: hits with rule, category and the matched span
  highlighted.
- **Dry run** of the edited rules on the last N stored calls
  (:func:`callguard.services.dryrun.dry_run`): would warn / would cut off / changed, and the
  calls that change.
- **Save** (refused while the rules have errors: the file on disk is untouched), atomically
  (temporary file + rename), kept in the store's version history and audited
  (``rules_saved``): :func:`callguard.services.rules_admin.save_rules`, as ``callguard rules
  save`` does. The history lists versions to view or restore into the editor.
- **Push** the saved file to the running engine (:meth:`EngineBridge.push_rules`): it takes
  the file for new calls, or refuses it and keeps the rules in force.

Units: durations are **seconds** in the widgets and in Python; the TOML writes them as
strings like ``"2m"`` or ``"1m30s"`` (:func:`format_duration`,
:func:`callguard.rules.loader.parse_duration`).

Nothing slow runs on the GUI thread: parsing, Kiwi and dry runs run on one worker thread
(results come back by a queued Qt signal), the store on the :class:`StoreClient` thread.
Only the form's text patch runs on the GUI thread (a few milliseconds: the worker has
parsed the checked text for it, :func:`callguard.rules.toml_edit.prepare`).
"""

from __future__ import annotations

import concurrent.futures
import copy
import html
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QColor, QFont, QTextCursor, QTextFormat, QValidator
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QCheckBox,
    QComboBox,
    QDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QTextBrowser,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from callguard.config import CentralSettings
from callguard.gui.bridge import EngineBridge, Poster, StoreClient
from callguard.gui.check_ko import field_name, korean, shown, summary
from callguard.gui.fit import fit
from callguard.gui.i18n import language, texts
from callguard.gui.login import request_role
from callguard.rules import toml_edit
from callguard.rules.active import ReloadResult
from callguard.rules.loader import parse_duration
from callguard.rules.matcher import MatchResult
from callguard.rules.model import PROMPT_KEYS, Category, EscalationPolicy, MatchMode
from callguard.rules.problems import Problem, Severity
from callguard.rules.toml_edit import NotEditable, TomlPath, TomlText, format_duration
from callguard.services import rules_admin
from callguard.services.accounts import PermissionDenied
from callguard.services.dryrun import DryRunReport, dry_run
from callguard.services.rules_admin import Check, RulesChecker
from callguard.store.records import CallRecord, RulesVersion
from callguard.text.kiwiproc import kiwi_process
from callguard.text.spans import mark_spans
from callguard.vocabulary import Direction, EngineEventKind, Role, VerdictKind

log = logging.getLogger(__name__)

#: Quiet time after the last keystroke before the text is checked (milliseconds).
DEBOUNCE_MS = 300
CLI_LINE_ROLE = Qt.ItemDataRole.UserRole + 1  # problem item: the check's own line (the CLI's)
#: Calls a dry run replays unless the admin picks another number.
DEFAULT_DRY_RUN_CALLS = 100

#: What a new (missing) rules file starts as.
NEW_RULES = """\
format = 1
name = ""

[escalation]
window = "2m"
cooldown = "5s"
notice_at = 1
warn_at = 2
warnings = 2
final_at = 2
"""

T = texts({
    "rules.title": ("규칙 편집기 — {file}", "Rules editor — {file}"),
    "rules.tab.settings": ("설정", "Settings"),
    "rules.tab.rules": ("규칙 목록", "Rules"),
    "rules.tab.toml": ("TOML 원문", "Raw TOML"),
    "rules.tab.test": ("예문 확인", "Test a sentence"),
    "rules.tab.dryrun": ("지난 통화로 시험", "Dry run"),
    "rules.tab.history": ("저장 기록", "History"),
    "rules.general": ("일반", "General"),
    "rules.name": ("규칙 이름", "Name"),
    "rules.escalation": ("단계별 대응 (경고 점수)", "Escalation (strikes)"),
    "rules.esc.window": ("점수 유지 시간", "Window"),
    "rules.esc.cooldown": ("경고 후 유예 시간", "Cooldown after a warning"),
    "rules.esc.notice_at": ("상담사 알림 점수", "Notice at (strikes)"),
    "rules.esc.warn_at": ("경고 방송 점수", "Warn at (strikes)"),
    "rules.esc.warnings": ("종료 전 경고 횟수", "Warnings before the final stage"),
    "rules.esc.final_at": ("종료 점수 (마지막 경고 후)",
                           "Final at (strikes after the last warning)"),
    "rules.duration": ("통화 시간 제한", "Call-duration limits"),
    "rules.dur.inbound": ("수신 통화", "Inbound calls"),
    "rules.dur.outbound": ("발신 통화", "Outbound calls"),
    "rules.dur.notice_at": ("안내 시각", "Notice at"),
    "rules.dur.final_at": ("종료 시각", "End at"),
    "rules.off": ("없음", "off"),
    "rules.prompts": ("안내 멘트", "Prompts"),
    "rules.prompt.file": ("음성 파일 (WAV, 규칙 파일 기준 경로)",
                          "File (WAV, relative to the rules file)"),
    "rules.prompt.text": ("문구", "Text"),
    "rules.prompt.pre_call": ("통화 전 안내", "Before the call"),
    "rules.prompt.warning": ("경고", "Warning"),
    "rules.prompt.final": ("종료 안내", "Final notice"),
    "rules.prompt.duration_notice": ("통화 시간 안내", "Duration notice"),
    "rules.prompt.duration_final": ("통화 시간 종료", "Duration limit"),
    "rules.rule.add": ("규칙 추가", "Add rule"),
    "rules.rule.remove": ("규칙 삭제", "Remove rule"),
    "rules.rule.id": ("ID", "ID"),
    "rules.rule.category": ("유형", "Category"),
    "rules.rule.severity": ("심각도 (감지 1건당 점수)", "Severity (strikes per hit)"),
    "rules.rule.mode": ("매칭 방식", "Match mode"),
    "rules.rule.enabled": ("사용", "Enabled"),
    "rules.rule.terms": ("단어 (한 줄에 하나)", "Terms (one per line)"),
    "rules.rule.off": ("{id} (꺼짐)", "{id} (off)"),
    "rules.rule.more": ("gap(구절 사이 간격)은 TOML 원문에서 고치세요.",
                        "gap (the distance within a phrase): edit it in the Raw TOML tab."),
    "rules.rule.exceptions": ("예외 (한 줄에 하나)", "Exceptions (one per line)"),
    "rules.rule.exceptions_hint": ("예: 시발점 — 이 안에서는 감지하지 않습니다",
                                   "e.g. 시발점 — no hit inside these"),
    "rules.rule.description": ("설명", "Description"),
    "rules.rule.broad": ("넓은 단어 허용 (한 글자이거나 일상 문장에도 걸리는 단어)",
                         "Allow broad terms (one syllable, or matching ordinary talk)"),
    "rules.mode.surface": ("글자 그대로 — 예: '바보'는 '바보야'에서 감지",
                           "As written — e.g. '바보' in '바보야'"),
    "rules.mode.nospace": ("띄어쓰기·기호 무시 — 예: '씨발'은 '씨 발', '씨.발'도 감지",
                           "Ignoring spaces and symbols — e.g. '씨발' also in '씨 발', '씨.발'"),
    "rules.mode.morpheme": ("형태소 단위 — 예: '보지/NNG'는 명사만, '보지 마'는 제외",
                            "Whole morphemes — e.g. '보지/NNG' the noun only, not '보지 마'"),
    "rules.mode.phrase": ("활용형 포함 구절 — 예: '죽이다'는 '죽여 버린다', '죽일 거야'도 "
                          "감지",
                          "Phrase in any inflection — e.g. '죽이다' also '죽여 버린다'"),
    "rules.form.unavailable": ("TOML 문법 오류가 있어 양식을 쓸 수 없습니다. TOML 원문 탭에서 "
                               "고치세요.",
                               "The TOML has a syntax error: fix it in the Raw TOML tab to use "
                               "the form."),
    "rules.form.not_editable": ("{key} 항목은 양식으로 바꿀 수 없는 형태로 적혀 있습니다. TOML "
                                "원문에서 고치세요.",
                                "{key} is written in a way the form cannot change: edit it in "
                                "the Raw TOML tab."),
    "rules.check.title": ("검사 결과 (callguard rules check)", "Check (callguard rules check)"),
    "rules.check.running": ("검사하는 중…", "Checking…"),
    "rules.check.ok": ("오류 없음", "No errors"),
    "rules.check.errors": ("오류 {n}건", "{n} error(s)"),
    "rules.check.crashed": ("검사하지 못했습니다: {error}", "Could not check: {error}"),
    "rules.test.placeholder": ("시험할 문장을 입력하세요", "Type a sentence to test"),
    "rules.test.run": ("시험", "Test"),
    "rules.test.running": ("시험하는 중…", "Testing…"),
    "rules.test.no_hits": ("감지 없음", "No hits"),
    "rules.test.hits": ("감지 {n}건", "{n} hit(s)"),
    "rules.test.invalid": ("규칙에 오류가 있어 시험할 수 없습니다. 먼저 고치세요.",
                           "The rules have errors: fix them first."),
    "rules.test.suppressed": ("예외로 무시: {rule} ‘{matched}’ (예외 ‘{exception}’)",
                              "Suppressed: {rule} ‘{matched}’ (exception ‘{exception}’)"),
    "rules.col.rule": ("규칙", "Rule"),
    "rules.col.category": ("유형", "Category"),
    "rules.col.severity": ("점수", "Strikes"),
    "rules.col.matched": ("감지된 부분", "Matched"),
    "rules.col.term": ("단어", "Term"),
    "rules.col.span": ("위치", "Span"),
    "rules.dry.limit": ("최근 통화", "Last calls"),
    "rules.dry.run": ("지난 통화에 적용해 보기", "Run on stored calls"),
    "rules.dry.running": ("지난 통화를 다시 보는 중…", "Replaying stored calls…"),
    "rules.dry.summary": ("통화 {calls}건 (규칙 {version}): 경고 {warned}건 (기록 "
                          "{rec_warned}건), 통화 종료 {cut}건 (기록 {rec_cut}건), 달라짐 "
                          "{changed}건",
                          "{calls} call(s) (rules {version}): would warn {warned} (recorded "
                          "{rec_warned}), would cut off {cut} (recorded {rec_cut}), changed "
                          "{changed}"),
    "rules.dry.none": ("끝난 통화가 저장소에 없습니다.", "No finished calls in the store."),
    "rules.dry.invalid": ("규칙에 오류가 있어 실행할 수 없습니다. 먼저 고치세요.",
                          "The rules have errors: fix them first."),
    "rules.dry.failed": ("실행하지 못했습니다: {error}", "Dry run failed: {error}"),
    "rules.col.call": ("통화", "Call"),
    "rules.col.direction": ("방향", "Direction"),
    "rules.col.recorded": ("기록된 결과", "Recorded"),
    "rules.col.replay": ("새 규칙 결과", "With these rules"),
    "rules.col.hits": ("감지", "Hits"),
    "rules.col.rules": ("감지한 규칙", "Rules hit"),
    "rules.cut": ("{outcome}, 종료: {reason} ({at:.1f}초)", "{outcome}, cut off: {reason} at "
                  "{at:.1f} s"),
    "rules.note": ("변경 메모 (선택)", "Change note (optional)"),
    "rules.save": ("저장(&S)", "&Save"),
    "rules.save_apply": ("저장 후 적용(&S)", "&Save and apply"),
    "rules.unsaved_title": ("저장하지 않은 편집", "Unsaved edits"),
    "rules.unsaved_text": ("저장하지 않은 편집이 있습니다. 닫으면 사라집니다.",
                           "There are unsaved edits. Closing drops them."),
    "rules.discard": ("버리고 닫기", "Discard and close"),
    "rules.keep_editing": ("계속 편집", "Keep editing"),
    "rules.saving": ("저장하는 중…", "Saving…"),
    "rules.saved": ("버전 {version} 저장됨", "Saved version {version}"),
    "rules.save_refused": ("저장하지 않았습니다: 오류 {n}건 — {first}  디스크의 파일은 바뀌지 "
                           "않았습니다.",
                           "Not saved: {n} error(s) — {first}  The file on disk is unchanged."),
    "rules.save_failed": ("저장하지 못했습니다: {error}", "Saving failed: {error}"),
    "rules.not_admin": ("시스템 관리자 계정만 규칙을 저장할 수 있습니다 ({user}).",
                        "Only an admin account can save rules ({user})."),
    "rules.push": ("엔진에 적용", "Push to engine"),
    "rules.pushing": ("엔진에 적용하는 중…", "Pushing to the engine…"),
    "rules.pushed": ("엔진이 규칙 {version}을(를) 새 통화부터 사용합니다.",
                     "The engine uses rules {version} from the next call."),
    "rules.push_refused": ("엔진이 파일을 거부했습니다. 기존 규칙 {version}이(가) 계속 "
                           "적용됩니다.",
                           "The engine refused the file: the rules in force ({version}) stay."),
    "rules.push_failed": ("적용하지 못했습니다: {error}", "Push failed: {error}"),
    "rules.push_unsaved": ("저장하지 않은 편집은 적용되지 않습니다 (디스크의 파일을 적용).",
                           "Unsaved edits are not pushed (the file on disk is)."),
    "rules.engine": ("엔진 규칙: {version}", "Engine rules: {version}"),
    # A desk linked to a central server ([central]): the editor applies to this PC only.
    "rules.save_apply_here": ("저장 후 이 PC에 적용(&S)", "&Save and apply on this PC"),
    "rules.central.notice": (
        "이 상담석은 중앙 서버({url})에 게시된 규칙을 받습니다. 여기서 '저장 후 이 PC에 적용'"
        "하면 이 PC에만 적용되고, 중앙 서버에 새 규칙이 게시되면 그 규칙으로 바뀝니다. 모든 "
        "상담석에 적용하려면 이 파일을 중앙 서버의 시스템 관리자 계정으로 게시하세요:",
        "This desk takes the rules published on the central server ({url}). 'Save and apply "
        "on this PC' applies them to this PC only, until the central server publishes new "
        "rules. To put them in force on every desk, publish this file with an admin account "
        "of the central server:"),
    "rules.central.command": (
        'callguard central publish "{file}" --note "메모" --user 계정 --url {url} '
        "--fingerprint {fingerprint}",
        'callguard central publish "{file}" --note "note" --user ACCOUNT --url {url} '
        "--fingerprint {fingerprint}"),
    "rules.central.server": ("설정된 서버", "the configured server"),
    "rules.pushed_here": ("이 PC에만 적용되었습니다. 중앙 서버의 규칙은 바뀌지 않았습니다.",
                          "Applied on this PC only; the central server's rules are unchanged."),
    "rules.no_engine": ("실행 중인 엔진 없음", "No running engine"),
    "rules.col.version": ("버전", "Version"),
    "rules.col.who": ("저장한 사람", "Saved by"),
    "rules.col.when": ("시각", "When"),
    "rules.col.note": ("메모", "Note"),
    "rules.history.view": ("보기", "View"),
    "rules.history.restore": ("이 버전으로 되돌리기(&R)…", "&Restore this version…"),
    "rules.history.restore_title": ("이전 버전으로 되돌리기", "Restore an earlier version"),
    "rules.history.restore_apply": (
        "규칙을 이 버전으로 되돌립니다:\n{version}\n\n규칙 파일에 저장하고(새 버전으로 기록) "
        "실행 중인 엔진에 바로 적용합니다. 새 통화부터 이 규칙을 씁니다.",
        "The rules go back to this version:\n{version}\n\nIt is saved to the rules file (as "
        "a new entry in the history) and applied to the running engine at once, from the "
        "next call."),
    "rules.history.restore_save": (
        "규칙을 이 버전으로 되돌립니다:\n{version}\n\n규칙 파일에 저장합니다(새 버전으로 "
        "기록).",
        "The rules go back to this version:\n{version}\n\nIt is saved to the rules file (as "
        "a new entry in the history)."),
    "rules.history.restore_here": ("이 PC에만 적용되며, 중앙 서버의 규칙은 바뀌지 않습니다.",
                                   "This PC only: the central server's rules do not change."),
    "rules.history.restore_unsaved": ("저장하지 않은 지금의 편집은 사라집니다.",
                                      "Your unsaved edits are dropped."),
    "rules.history.restore_go_apply": ("되돌리고 적용", "Restore and apply"),
    "rules.history.restore_go_save": ("되돌리고 저장", "Restore and save"),
    "rules.history.cancel": ("취소", "Cancel"),
    "rules.history.restoring": ("버전 {version}(으)로 되돌리는 중…",
                                "Restoring version {version}…"),
    "rules.history.restored": ("버전 {version}(으)로 되돌렸습니다.",
                               "Restored version {version}."),
    "rules.history.restore_note": ("버전 {version}(으)로 되돌림", "restored version {version}"),
    "rules.history.view_title": ("규칙 버전 {version}", "Rules version {version}"),
    "rules.history.failed": ("기록을 읽지 못했습니다: {error}", "Could not read the history: "
                             "{error}"),
})

_MISSING: Any = object()


# -- the form's model: the TOML as last parsed ------------------------------------------------
def _get_in(data: Any, path: TomlPath, default: Any = _MISSING) -> Any:
    for part in path:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return default
    return data


def _set_in(data: dict, path: TomlPath, value: Any) -> None:
    for part in path[:-1]:
        data = data[part] if isinstance(part, int) else data.setdefault(part, {})
    data[path[-1]] = value


def _del_in(data: dict, path: TomlPath) -> None:
    parent = _get_in(data, path[:-1], None)
    if isinstance(parent, dict):
        parent.pop(path[-1], None)


# -- dry run ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class DryRunView:
    """A dry run and, for comparison, what the store recorded for the same calls."""

    report: DryRunReport
    recorded_warned: int  # calls in which a warning verdict was recorded
    recorded_cut_off: int  # calls the recorded verdicts cut off

    @property
    def changed_rows(self):
        return [r for r in self.report.rows if r.changed]


def _dry_run(check: Check, records: Sequence[CallRecord]) -> DryRunView:
    assert check.compiled is not None
    report = dry_run(records, check.compiled.ruleset, check.compiled.matcher)
    warned = sum(1 for rec in records
                 if any(v.kind == VerdictKind.WARN for v in rec.verdicts))
    cut = sum(1 for r in report.rows if r.actual_cut_reason is not None)
    return DryRunView(report, warned, cut)


# -- Qt pieces ---------------------------------------------------------------------------------
class _StatusLabel(QLabel):
    """A message line that takes no room while it has nothing to say."""

    def __init__(self) -> None:
        super().__init__()
        self.setWordWrap(True)
        self.hide()

    def setText(self, text: str) -> None:  # Qt override
        super().setText(text)
        self.setVisible(bool(text))

    def clear(self) -> None:  # Qt override
        super().clear()
        self.hide()


_KO_UNITS = (("시간", 3600), ("분", 60), ("초", 1))
_KO_DURATION = re.compile(r"^\s*(?:(\d+)\s*시간)?\s*(?:(\d+)\s*분)?\s*(?:(\d+)\s*초)?\s*$")


def readable_duration(seconds: int) -> str:
    """``seconds`` as people read it in the interface language: "2분", "1분 30초", "1시간"
    (Korean) or "2 min", "1 min 30 s", "1 h" (English)."""
    seconds = int(seconds)
    parts = []
    for (ko, unit), en in zip(_KO_UNITS, ("h", "min", "s"), strict=True):
        n, seconds = divmod(seconds, unit)
        if n:
            parts.append(f"{n}{ko}" if language() == "ko" else f"{n} {en}")
    return " ".join(parts) or ("0초" if language() == "ko" else "0 s")


def parse_readable_duration(text: str) -> float:
    """Seconds from "2분", "1분 30초", "1 h", "2 min" or the TOML's "2m"/"90"."""
    text = text.strip()
    m = _KO_DURATION.match(text)
    if text and m and any(m.groups()):
        h, mi, se = (int(g) if g else 0 for g in m.groups())
        return float(h * 3600 + mi * 60 + se)
    en = text.replace(" ", "").replace("min", "m")
    return parse_duration(en)


class DurationSpinBox(QSpinBox):
    """A duration in whole **seconds**, shown as people read it ("2분", "1분 30초") and typed
    that way or as the TOML writes it (``"2m"``, ``"1m30s"``, ``"90"``); the file keeps the
    TOML form. With ``optional``, 0 shows as "off" (no limit)."""

    def __init__(self, minimum: int, maximum: int, step: int = 1, optional: bool = False,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setRange(0 if optional else minimum, maximum)
        self.setSingleStep(step)
        if optional:
            self.setSpecialValueText(T("rules.off"))
        # Typing "15m" passes through "1" and "15": commit on Enter or focus-out only.
        self.setKeyboardTracking(False)

    def textFromValue(self, value: int) -> str:  # Qt override
        return readable_duration(value)

    def valueFromText(self, text: str) -> int:  # Qt override
        if self.specialValueText() and text.strip() == self.specialValueText():
            return self.minimum()
        try:
            return round(parse_readable_duration(text))
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int) -> object:
        stripped = text.strip()
        if self.specialValueText() and stripped == self.specialValueText():
            return QValidator.State.Acceptable, text, pos
        try:
            seconds = parse_readable_duration(stripped)
        except ValueError:
            return QValidator.State.Intermediate, text, pos
        ok = self.minimum() <= seconds <= self.maximum()
        return (QValidator.State.Acceptable if ok else QValidator.State.Intermediate), text, pos


def _utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit of QTextCursor positions."""
    return len(text.encode("utf-16-le")) // 2


def _item(text: str, data: Any = None) -> QTableWidgetItem:
    item = QTableWidgetItem(text)
    item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
    if data is not None:
        item.setData(Qt.ItemDataRole.UserRole, data)
    return item


def _table(columns: Sequence[str]) -> QTableWidget:
    table = QTableWidget(0, len(columns))
    table.setHorizontalHeaderLabels(list(columns))
    table.verticalHeader().setVisible(False)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    table.horizontalHeader().setStretchLastSection(True)
    return table


def highlight_html(result: MatchResult) -> str:
    """The sentence as HTML with every hit's span marked (overlapping hits merged)."""
    return mark_spans(result.text, ((h.start, h.end) for h in result.hits),
                      '<span style="background-color:#ffb3b3; font-weight:bold">', "</span>",
                      html.escape)


_ERROR_BG = QColor("#ffd6d6")
_WARNING_BG = QColor("#fff1c2")


class RulesEditorWindow(QMainWindow):
    """The admin's rules editor for the file at ``rules_path`` (see the module docstring).

    ``store`` keeps the version history and audit log; ``user`` is the signed-in admin
    (open it with :func:`open_rules_editor`, which asks for the sign-in); ``bridge``, if
    given, lets the admin push the saved file to the running engine.

    For tests and scripts: :meth:`set_text`, :meth:`validate_now`, :meth:`test_sentence`,
    :meth:`run_dry_run`, :meth:`save`, :meth:`push`, :meth:`restore_version`; the signals
    below fire when each finishes; :attr:`check` is the last check of the current text.
    """

    validated = Signal(object)  # Check of the current text, after it is shown
    tested = Signal(object)  # MatchResult, or None when the rules are invalid
    dry_run_done = Signal(object)  # DryRunView, or None when refused / failed
    saved = Signal(str)  # version saved
    save_refused = Signal(str)  # the message shown
    pushed = Signal(object)  # ReloadResult, or the exception
    history_loaded = Signal(object)  # list[RulesVersion]

    def __init__(self, store: StoreClient, rules_path: Path, user: str,
                 bridge: EngineBridge | None = None, parent: QWidget | None = None, *,
                 central: CentralSettings | None = None) -> None:
        """``central``: the desk's ``[central]`` settings when it is linked to a central
        server (also found from the engine's link when not given): the editor then says
        that it applies to this PC only and how the rules are published for every desk."""
        if not user:
            # Only a signed-in admin edits rules (open_rules_editor asks for the sign-in).
            raise PermissionError("the rules editor needs a signed-in admin")
        super().__init__(parent)
        self.store = store
        self.rules_path = Path(rules_path)
        self.user = user
        self.bridge = bridge
        linked = bridge is not None and getattr(bridge.engine, "central", None) is not None
        #: The central server's settings when this desk follows its rules, else None.
        self.central = (central if central is not None and central.enabled
                        else CentralSettings(url="-") if linked else None)
        self.check: Check | None = None  # the last check of the *current* text
        self.last_test: MatchResult | None = None
        self.last_dry_run: DryRunView | None = None
        self.last_push: ReloadResult | None = None
        self.history: list[RulesVersion] = []
        self._data: dict | None = None  # the form's model: the TOML as last parsed
        self._filling = False  # the form is being filled from the text: do not patch back
        self._checking = False
        self._recheck = False
        self._alive = True
        self._checker = RulesChecker(str(self.rules_path), self.rules_path.parent,
                                     analyzer=kiwi_process)
        # One worker thread: checks, tests and dry runs queue behind each other, so at most
        # one Kiwi-heavy job runs and the shared analyser is never used concurrently by us.
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="rules-editor")
        self._poster = Poster(self)  # parented: deleted with the window, by Qt
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(DEBOUNCE_MS)
        self._debounce.timeout.connect(self.validate_now)

        try:
            text = self.rules_path.read_text(encoding="utf-8")  # small local file
        except FileNotFoundError:
            text = NEW_RULES
        self._saved_text = text if self.rules_path.exists() else None

        self._build()
        self.raw.setPlainText(text)
        self.raw.document().setModified(False)
        self.raw.textChanged.connect(self._text_changed)
        self._update_title()
        if bridge is not None:
            bridge.event.connect(self._engine_event)
            rules = bridge.engine.rules
            self._show_engine_version(rules.version if rules is not None else None)
        self.validate_now()
        self.load_history()

    # == building the window ==================================================================
    def _build(self) -> None:
        fit(self, 1150, 800)
        self.tabs = QTabWidget()
        self._tab_index: dict[str, int] = {}
        self._form_pages: list[QWidget] = []
        for key, widget in (("settings", self._build_settings()), ("rules", self._build_rules()),
                            ("toml", self._build_raw()), ("test", self._build_test()),
                            ("dryrun", self._build_dry_run()),
                            ("history", self._build_history())):
            self._tab_index[key] = self.tabs.addTab(widget, T(f"rules.tab.{key}"))

        self.problems = QListWidget()
        self.problems.setWordWrap(True)
        self.problems.itemActivated.connect(self._jump_to_problem)
        self.problems.itemClicked.connect(self._jump_to_problem)
        self.check_status = QLabel(T("rules.check.running"))
        check_box = QGroupBox(T("rules.check.title"))
        check_layout = QVBoxLayout(check_box)
        check_layout.addWidget(self.check_status)
        check_layout.addWidget(self.problems)
        self.problems.setMinimumHeight(110)  # a few messages and the summary line

        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.tabs)
        splitter.addWidget(check_box)
        splitter.setStretchFactor(0, 4)
        splitter.setStretchFactor(1, 1)

        self.note_edit = QLineEdit()
        self.note_edit.setPlaceholderText(T("rules.note"))
        # With a running engine the one action is "save, then apply": an admin who saved
        # must not believe rules are in force that the engine has not loaded.
        self.save_button = QPushButton(self._save_text())
        self.save_button.clicked.connect(lambda: self.save_and_apply())
        self.push_button = QPushButton(T("rules.push"))
        self.push_button.clicked.connect(self.push)
        self.push_button.setEnabled(self.bridge is not None)
        self.push_button.setVisible(False)  # part of save_and_apply; kept for scripts
        self._apply_after_save = False
        self._close_after_save = False
        self._discard_ok = False
        self.close_question: QMessageBox | None = None
        self.restore_question: QMessageBox | None = None
        self.save_status = _StatusLabel()
        self.push_status = _StatusLabel()
        self.engine_label = QLabel(T("rules.no_engine"))
        bar = QHBoxLayout()
        bar.addWidget(self.note_edit, 2)
        bar.addWidget(self.save_button)
        bar.addWidget(self.push_button)
        bar.addWidget(self.engine_label, 1)
        statuses = QVBoxLayout()
        statuses.addWidget(self.save_status)
        statuses.addWidget(self.push_status)

        # A desk following a central server: say that this applies here only, and how
        # the rules are published for every desk (no server API is called from here).
        self.central_label = QLabel()
        self.central_label.setWordWrap(True)
        self.central_label.setTextFormat(Qt.TextFormat.RichText)
        self.central_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.central_label.setStyleSheet("QLabel { color:#0d3c61; background:#e3f2fd;"
                                         " border:1px solid #90caf9; padding:4px }")
        if self.central is not None:
            url = self.central.url if self.central.url != "-" else T("rules.central.server")
            command = T("rules.central.command", file=str(self.rules_path),
                        url=self.central.url if self.central.url != "-" else "URL",
                        fingerprint=self.central.fingerprint or "SHA256")
            self.central_label.setText(
                f"{html.escape(T('rules.central.notice', url=url))}<br>"
                f"<code>{html.escape(command)}</code>")
        self.central_label.setVisible(self.central is not None)

        self.form_banner = QLabel(T("rules.form.unavailable"))
        self.form_banner.setWordWrap(True)
        self.form_banner.setStyleSheet("color: #b00020")
        self.form_banner.hide()

        central = QWidget()
        layout = QVBoxLayout(central)
        layout.addLayout(bar)
        layout.addLayout(statuses)
        layout.addWidget(self.central_label)
        layout.addWidget(self.form_banner)
        layout.addWidget(splitter, 1)
        self.setCentralWidget(central)

    def _save_text(self) -> str:
        """The one save action's name: save, save and apply, or (a desk following a central
        server) save and apply on this PC."""
        if self.bridge is None:
            return T("rules.save")
        return T("rules.save_apply_here" if self.central is not None else "rules.save_apply")

    def _scroll(self, inner: QWidget) -> QScrollArea:
        area = QScrollArea()
        area.setWidgetResizable(True)
        area.setWidget(inner)
        return area

    def _build_settings(self) -> QWidget:
        page = QWidget()
        self._form_pages.append(page)
        layout = QVBoxLayout(page)

        general = QGroupBox(T("rules.general"))
        g = QFormLayout(general)
        self.name_edit = QLineEdit()
        self.name_edit.textChanged.connect(lambda v: self._form_set(("name",), v))
        g.addRow(T("rules.name"), self.name_edit)
        layout.addWidget(general)

        esc = QGroupBox(T("rules.escalation"))
        e = QFormLayout(esc)
        self.esc: dict[str, QSpinBox] = {
            "window": DurationSpinBox(1, 24 * 3600, step=10),
            "cooldown": DurationSpinBox(0, 3600),
        }
        for key in ("notice_at", "warn_at", "warnings", "final_at"):
            spin = QSpinBox()
            spin.setRange(1, 1000)
            self.esc[key] = spin
        for key, spin in self.esc.items():
            duration = isinstance(spin, DurationSpinBox)
            spin.valueChanged.connect(
                lambda v, k=key, d=duration: self._form_set(("escalation", k), v, duration=d))
            e.addRow(T(f"rules.esc.{key}"), spin)
        layout.addWidget(esc)

        dur = QGroupBox(T("rules.duration"))
        d = QGridLayout(dur)
        self.limits: dict[tuple[str, str], DurationSpinBox] = {}
        d.addWidget(QLabel(T("rules.dur.notice_at")), 0, 1)
        d.addWidget(QLabel(T("rules.dur.final_at")), 0, 2)
        for row, direction in enumerate(Direction, start=1):
            d.addWidget(QLabel(T(f"rules.dur.{direction}")), row, 0)
            for col, key in enumerate(("notice_at", "final_at"), start=1):
                spin = DurationSpinBox(1, 24 * 3600, step=60, optional=True)
                spin.valueChanged.connect(
                    lambda v, p=("duration", direction, key): self._form_set(
                        p, v, duration=True, delete_if=0))
                self.limits[(direction, key)] = spin
                d.addWidget(spin, row, col)
        layout.addWidget(dur)

        prompts = QGroupBox(T("rules.prompts"))
        p = QGridLayout(prompts)
        p.addWidget(QLabel(T("rules.prompt.file")), 0, 1)
        p.addWidget(QLabel(T("rules.prompt.text")), 0, 2)
        self.prompt_file: dict[str, QLineEdit] = {}
        self.prompt_text: dict[str, QLineEdit] = {}
        for row, key in enumerate(PROMPT_KEYS, start=1):
            p.addWidget(QLabel(T(f"rules.prompt.{key}")), row, 0)
            for col, (fld, store) in enumerate((("file", self.prompt_file),
                                                ("text", self.prompt_text)), start=1):
                edit = QLineEdit()
                edit.textChanged.connect(
                    lambda v, path=("prompts", key, fld): self._form_set(path, v, delete_if=""))
                store[key] = edit
                p.addWidget(edit, row, col)
        p.setColumnStretch(2, 3)
        p.setColumnStretch(1, 1)
        layout.addWidget(prompts)
        layout.addStretch(1)
        return self._scroll(page)

    def _build_rules(self) -> QWidget:
        page = QWidget()
        self._form_pages.append(page)
        layout = QHBoxLayout(page)
        left = QVBoxLayout()
        self.rule_list = QListWidget()
        self.rule_list.currentRowChanged.connect(self._fill_rule_detail)
        self.add_rule_button = QPushButton(T("rules.rule.add"))
        self.add_rule_button.clicked.connect(self.add_rule)
        self.remove_rule_button = QPushButton(T("rules.rule.remove"))
        self.remove_rule_button.clicked.connect(self.remove_rule)
        buttons = QHBoxLayout()
        buttons.addWidget(self.add_rule_button)
        buttons.addWidget(self.remove_rule_button)
        left.addWidget(self.rule_list, 1)
        left.addLayout(buttons)
        layout.addLayout(left, 1)

        self.rule_detail = QWidget()
        f = QFormLayout(self.rule_detail)
        self.rule_id = QLineEdit()
        self.rule_id.textChanged.connect(lambda v: self._rule_set("id", v))
        self.rule_category = QComboBox()
        for c in Category:
            self.rule_category.addItem(f"{c.value} ({c.label_ko})", c.value)
        self.rule_category.currentIndexChanged.connect(
            lambda i: i >= 0 and self._rule_set("category", self.rule_category.itemData(i)))
        self.rule_severity = QSpinBox()
        self.rule_severity.setRange(1, 10)
        self.rule_severity.valueChanged.connect(lambda v: self._rule_set("severity", v))
        self.rule_mode = QComboBox()
        for m in MatchMode:
            self.rule_mode.addItem(T(f"rules.mode.{m.value}"), m.value)
            self.rule_mode.setItemData(self.rule_mode.count() - 1, m.value,
                                       Qt.ItemDataRole.ToolTipRole)
        self.rule_mode.currentIndexChanged.connect(
            lambda i: i >= 0 and self._rule_set("mode", self.rule_mode.itemData(i)))
        self.rule_enabled = QCheckBox(T("rules.rule.enabled"))
        self.rule_enabled.toggled.connect(lambda v: self._rule_set("enabled", v))
        self.rule_terms = QPlainTextEdit()
        self.rule_terms.textChanged.connect(lambda: self._rule_set("terms", self._typed_terms()))
        self.rule_exceptions = QPlainTextEdit()
        self.rule_exceptions.setPlaceholderText(T("rules.rule.exceptions_hint"))
        self.rule_exceptions.setMaximumHeight(80)
        self.rule_exceptions.textChanged.connect(
            lambda: self._rule_set("exceptions", self._typed_exceptions()))
        self.rule_description = QLineEdit()
        self.rule_description.textChanged.connect(
            lambda v: self._rule_set("description", v))
        self.rule_broad = QCheckBox(T("rules.rule.broad"))
        self.rule_broad.toggled.connect(lambda v: self._rule_set("broad", v))
        # The check's problems with this rule, in the interface language, beside the form.
        self.rule_problems = QLabel()
        self.rule_problems.setWordWrap(True)
        self.rule_problems.setStyleSheet("QLabel { color:#b00020; background:#fdecea;"
                                         " padding:4px; border-radius:4px }")
        self.rule_problems.hide()
        f.addRow(self.rule_problems)
        f.addRow(T("rules.rule.id"), self.rule_id)
        f.addRow(T("rules.rule.category"), self.rule_category)
        f.addRow(T("rules.rule.severity"), self.rule_severity)
        f.addRow(T("rules.rule.mode"), self.rule_mode)
        f.addRow("", self.rule_enabled)
        f.addRow(T("rules.rule.terms"), self.rule_terms)
        f.addRow("", self.rule_broad)
        f.addRow(T("rules.rule.exceptions"), self.rule_exceptions)
        f.addRow(T("rules.rule.description"), self.rule_description)
        more = QLabel(T("rules.rule.more"))
        more.setWordWrap(True)
        f.addRow("", more)
        layout.addWidget(self.rule_detail, 2)
        return page

    def _build_raw(self) -> QWidget:
        self.raw = QPlainTextEdit()
        self.raw.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        font = QFont("monospace")
        font.setStyleHint(QFont.StyleHint.Monospace)
        self.raw.setFont(font)
        return self.raw

    def _build_test(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        row = QHBoxLayout()
        self.test_input = QLineEdit()
        self.test_input.setPlaceholderText(T("rules.test.placeholder"))
        self.test_input.returnPressed.connect(lambda: self.test_sentence())
        self.test_button = QPushButton(T("rules.test.run"))
        self.test_button.clicked.connect(lambda: self.test_sentence())
        row.addWidget(self.test_input, 1)
        row.addWidget(self.test_button)
        self.test_view = QTextBrowser()
        self.test_view.setMaximumHeight(110)
        self.test_summary = QLabel()
        self.test_table = _table([T("rules.col.rule"), T("rules.col.category"),
                                  T("rules.col.severity"), T("rules.col.matched"),
                                  T("rules.col.span"), T("rules.col.term")])
        self.test_suppressed = _StatusLabel()
        layout.addLayout(row)
        layout.addWidget(self.test_view)
        layout.addWidget(self.test_summary)
        layout.addWidget(self.test_table, 1)
        layout.addWidget(self.test_suppressed)
        return page

    def _build_dry_run(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        row = QHBoxLayout()
        self.dry_limit = QSpinBox()
        self.dry_limit.setRange(1, 10000)
        self.dry_limit.setValue(DEFAULT_DRY_RUN_CALLS)
        self.dry_button = QPushButton(T("rules.dry.run"))
        self.dry_button.clicked.connect(lambda: self.run_dry_run())
        row.addWidget(QLabel(T("rules.dry.limit")))
        row.addWidget(self.dry_limit)
        row.addWidget(self.dry_button)
        row.addStretch(1)
        self.dry_summary = QLabel()
        self.dry_summary.setWordWrap(True)
        self.dry_table = _table([T("rules.col.call"), T("rules.col.direction"),
                                 T("rules.col.recorded"), T("rules.col.replay"),
                                 T("rules.col.hits"), T("rules.col.rules")])
        layout.addLayout(row)
        layout.addWidget(self.dry_summary)
        layout.addWidget(self.dry_table, 1)
        return page

    def _build_history(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        self.history_table = _table([T("rules.col.version"), T("rules.col.who"),
                                     T("rules.col.when"), T("rules.col.note")])
        self.history_table.itemDoubleClicked.connect(lambda _item: self._view_selected())
        self.view_button = QPushButton(T("rules.history.view"))
        self.view_button.clicked.connect(self._view_selected)
        self.restore_button = QPushButton(T("rules.history.restore"))
        self.restore_button.clicked.connect(self._restore_selected)
        self.history_status = _StatusLabel()
        buttons = QHBoxLayout()
        buttons.addWidget(self.view_button)
        buttons.addWidget(self.restore_button)
        buttons.addStretch(1)
        layout.addWidget(self.history_table, 1)
        layout.addLayout(buttons)
        layout.addWidget(self.history_status)
        return page

    # == plumbing =============================================================================
    def _run(self, job: Callable[[], Any], done: Callable[[Any, BaseException | None], None]
             ) -> None:
        """Run ``job`` on the worker thread; ``done(result, error)`` on the GUI thread.
        Both close over this window: the poster keeps them on the GUI thread (bridge.Poster),
        so the worker never drops the last reference to the window."""
        self._poster.run_in(self._pool, job, self._guard(done))

    def _guard(self, fn: Callable[[Any, BaseException | None], None]
               ) -> Callable[[Any, BaseException | None], None]:
        """``fn`` unless the window has been closed by the time the answer arrives."""
        def run(result: Any, error: BaseException | None) -> None:
            if self._alive:
                fn(result, error)
        return run

    def closeEvent(self, event: QCloseEvent) -> None:  # Qt override
        if self.dirty and not self._discard_ok and self._alive:
            # Unsaved edits: ask (window-modal, so the event loop runs on) and stay open.
            event.ignore()
            self._ask_before_closing()
            return
        self._alive = False
        self._debounce.stop()
        self._pool.shutdown(wait=False, cancel_futures=True)
        super().closeEvent(event)

    def _ask_before_closing(self) -> None:
        if self.close_question is not None and self.close_question.isVisible():
            return
        box = QMessageBox(QMessageBox.Icon.Warning, T("rules.unsaved_title"),
                          T("rules.unsaved_text"), QMessageBox.StandardButton.NoButton, self)
        self.close_save = box.addButton(self._save_text(), QMessageBox.ButtonRole.AcceptRole)
        self.close_discard = box.addButton(T("rules.discard"),
                                           QMessageBox.ButtonRole.DestructiveRole)
        box.addButton(T("rules.keep_editing"), QMessageBox.ButtonRole.RejectRole)
        box.setWindowModality(Qt.WindowModality.WindowModal)

        def chosen(button) -> None:
            if button is self.close_discard:
                self._discard_ok = True
                self.close()
            elif button is self.close_save:
                self._close_after_save = True
                self.save_and_apply()

        box.buttonClicked.connect(chosen)
        self.close_question = box
        box.open()

    def show_tab(self, name: str) -> None:
        """Show one tab: settings, rules, toml, test, dryrun or history."""
        self.tabs.setCurrentIndex(self._tab_index[name])

    def text(self) -> str:
        """The editor's rules text (what Save writes)."""
        return self.raw.toPlainText()

    def set_text(self, text: str) -> None:
        """Replace the whole text (one undo step); it is checked after the debounce."""
        self._replace_text(text)

    @property
    def is_valid(self) -> bool:
        """Whether the current text has been checked and has no errors."""
        return self.check is not None and self.check.ok and self.check.text == self.text()

    @property
    def dirty(self) -> bool:
        return self.text() != self._saved_text

    def validation_lines(self) -> list[str]:
        """The check report as ``callguard rules check`` prints it (the problem list's
        tooltips; the list shows :meth:`problem_texts`)."""
        return [self.problems.item(i).data(CLI_LINE_ROLE) for i in range(self.problems.count())]

    def problem_texts(self) -> list[str]:
        """The problem list as shown: each problem in the interface language, then the
        summary line."""
        return [self.problems.item(i).text() for i in range(self.problems.count())]

    def _update_title(self) -> None:
        self.setWindowTitle(("* " if self.dirty else "") + T("rules.title",
                                                              file=str(self.rules_path)))

    def _replace_text(self, new: str) -> None:
        """Make the raw editor hold ``new``, replacing only the part that differs (keeps
        the cursor, scroll position and undo history of the rest)."""
        old = self.text()
        if new == old:
            return
        limit = min(len(old), len(new))
        prefix = 0
        while prefix < limit and old[prefix] == new[prefix]:
            prefix += 1
        suffix = 0
        while suffix < limit - prefix and old[-1 - suffix] == new[-1 - suffix]:
            suffix += 1
        cursor = QTextCursor(self.raw.document())
        cursor.beginEditBlock()
        cursor.setPosition(_utf16_len(old[:prefix]))
        cursor.setPosition(_utf16_len(old[:len(old) - suffix]), QTextCursor.MoveMode.KeepAnchor)
        cursor.insertText(new[prefix:len(new) - suffix])
        cursor.endEditBlock()

    # == validation ===========================================================================
    def _text_changed(self) -> None:
        self.check_status.setText(T("rules.check.running"))
        self._update_title()
        self._debounce.start()

    def validate_now(self) -> None:
        """Check the current text now (instead of after the debounce)."""
        self._debounce.stop()
        if self._checking:
            self._recheck = True  # one more check when this one is back
            return
        self._checking = True
        self.check_status.setText(T("rules.check.running"))
        text = self.text()
        self._run(lambda: self._check_for_form(text), self._checked)

    def _check_for_form(self, text: str) -> Check:
        """The worker's check of ``text``; it also parses the text for the form's edits, so
        the first one after typing does not parse it on the GUI thread."""
        check = self._checker.check(text)
        if check.data is not None:
            toml_edit.prepare(text)
        return check

    def _checked(self, check: Check | None, error: BaseException | None) -> None:
        self._checking = False
        if self._recheck:
            self._recheck = False
            self.validate_now()
            return
        if error is not None or check is None:
            log.error("rules check failed: %s", error)
            self.check_status.setText(T("rules.check.crashed", error=error))
            return
        if check.text != self.text():
            return  # stale: the text changed, its own check is on the way
        self._apply_check(check)

    def _apply_check(self, check: Check) -> None:
        self.check = check
        errors = check.errors
        self.check_status.setText(T("rules.check.ok") if check.ok
                                  else T("rules.check.errors", n=len(errors)))
        self.check_status.setStyleSheet("" if check.ok else "color: #b00020; font-weight: bold")
        self.problems.clear()
        ruleset = check.compiled.ruleset if check.compiled is not None else None
        last = summary(check.problems, None if ruleset is None else len(ruleset.rules),
                       0 if ruleset is None else len(ruleset.enabled_rules))
        for line, problem in zip(check.lines, [*check.problems, None], strict=True):
            # In the interface language; the check's own line (the CLI's) as the tooltip.
            item = QListWidgetItem(shown(problem) if problem is not None else last)
            item.setToolTip(line)
            item.setData(CLI_LINE_ROLE, line)
            if problem is not None:
                item.setData(Qt.ItemDataRole.UserRole, problem.line)
                error = problem.severity is Severity.ERROR
                item.setForeground(QColor("#b00020") if error else QColor("#8a6d00"))
            else:
                font = item.font()
                font.setBold(True)
                item.setFont(font)
            self.problems.addItem(item)
        self._mark_lines(check.problems)
        self._show_rule_problems()
        # A copy: form edits change the model in place, and the checker's cached Check must
        # keep the data of its own text (an undo back to that text reuses it).
        self._data = copy.deepcopy(check.data)
        self._set_form_enabled(check.data is not None)
        if check.data is not None:
            self._fill_form(check.data)
        self.validated.emit(check)

    def _mark_lines(self, problems: Sequence[Problem]) -> None:
        """Colour the offending lines in the raw editor (errors red, warnings yellow)."""
        marks: dict[int, bool] = {}  # line -> is an error
        for p in problems:
            if p.line > 0:
                marks[p.line] = marks.get(p.line, False) or p.severity is Severity.ERROR
        selections = []
        doc = self.raw.document()
        for line, error in sorted(marks.items()):
            block = doc.findBlockByNumber(line - 1)
            if not block.isValid():
                continue
            sel = QTextEdit.ExtraSelection()
            sel.format.setBackground(_ERROR_BG if error else _WARNING_BG)
            sel.format.setProperty(QTextFormat.Property.FullWidthSelection, True)
            sel.cursor = QTextCursor(block)
            selections.append(sel)
        self.raw.setExtraSelections(selections)

    def marked_lines(self) -> list[int]:
        """1-based lines currently marked in the raw editor."""
        return [s.cursor.blockNumber() + 1 for s in self.raw.extraSelections()]

    def show_problem(self, row: int = 0) -> None:
        """Select problem ``row`` of the check report and show its line in the raw TOML
        (what clicking it does)."""
        item = self.problems.item(row)
        if item is not None:
            self.problems.setCurrentItem(item)
            self._jump_to_problem(item)

    def _jump_to_problem(self, item: QListWidgetItem) -> None:
        line = item.data(Qt.ItemDataRole.UserRole)
        if not line:
            return
        self.show_tab("toml")
        block = self.raw.document().findBlockByNumber(int(line) - 1)
        if block.isValid():
            self.raw.setTextCursor(QTextCursor(block))
            self.raw.centerCursor()
            self.raw.setFocus()

    # == the form =============================================================================
    def _set_form_enabled(self, enabled: bool) -> None:
        self.form_banner.setVisible(not enabled)
        for page in self._form_pages:
            page.setEnabled(enabled)

    def _fill_form(self, data: dict) -> None:
        """Show ``data`` (parsed TOML) in the form, touching only widgets whose value
        differs (the one being typed in already holds its value)."""
        self._filling = True
        try:
            name = data.get("name", "")
            self._set_line(self.name_edit, name if isinstance(name, str) else "")
            esc = data.get("escalation", {})
            esc = esc if isinstance(esc, dict) else {}
            defaults = EscalationPolicy()
            for key, spin in self.esc.items():
                value = self._number(esc.get(key, getattr(defaults, key)),
                                     duration=isinstance(spin, DurationSpinBox))
                self._set_spin(spin, value if value is not None else getattr(defaults, key))
            for (direction, key), spin in self.limits.items():
                value = self._number(_get_in(data, ("duration", direction, key), None),
                                     duration=True)
                self._set_spin(spin, value or 0)
            for key in PROMPT_KEYS:
                for fld, edits in (("file", self.prompt_file), ("text", self.prompt_text)):
                    value = _get_in(data, ("prompts", key, fld), "")
                    self._set_line(edits[key], value if isinstance(value, str) else "")
            self._fill_rule_list()
        finally:
            self._filling = False

    @staticmethod
    def _number(raw: Any, duration: bool) -> int | None:
        if raw is None:
            return None
        try:
            value = parse_duration(raw) if duration else raw
            return round(value) if isinstance(value, int | float) and \
                not isinstance(value, bool) else None
        except ValueError:
            return None

    @staticmethod
    def _set_line(edit: QLineEdit, value: str) -> None:
        if edit.text() != value:
            edit.setText(value)

    @staticmethod
    def _set_spin(spin: QSpinBox, value: int) -> None:
        if spin.value() != value:
            spin.setValue(value)

    def _rules_data(self) -> list | None:
        rules = _get_in(self._data, ("rule",), [])
        return rules if isinstance(rules, list) else None

    def _rule_label(self, index: int, rule: Any) -> str:
        if not isinstance(rule, dict):
            return f"#{index + 1}"
        rid = rule.get("id") if isinstance(rule.get("id"), str) and rule.get("id") \
            else f"#{index + 1}"
        return T("rules.rule.off", id=rid) if rule.get("enabled") is False else rid

    def _fill_rule_list(self) -> None:
        rules = self._rules_data() or []
        bad = {p.rule_id for p in (self.check.errors if self.check else []) if p.rule_id}
        labels = [self._rule_label(i, r) for i, r in enumerate(rules)]
        current = self.rule_list.currentRow()
        was_filling, self._filling = self._filling, True
        try:
            if [self.rule_list.item(i).text() for i in range(self.rule_list.count())] != labels:
                self.rule_list.clear()
                self.rule_list.addItems(labels)
            for i, rule in enumerate(rules):
                rid = rule.get("id") if isinstance(rule, dict) else None
                error = rid in bad or f"#{i + 1}" in bad
                self.rule_list.item(i).setForeground(QColor("#b00020") if error else
                                                     self.palette().text().color())
            if rules:
                row = min(max(current, 0), len(rules) - 1)
                if self.rule_list.currentRow() != row:
                    self.rule_list.setCurrentRow(row)
            self._fill_rule_detail(self.rule_list.currentRow())
        finally:
            self._filling = was_filling

    def _fill_rule_detail(self, row: int) -> None:
        rules = self._rules_data() or []
        rule = rules[row] if 0 <= row < len(rules) and isinstance(rules[row], dict) else None
        self.rule_detail.setEnabled(rule is not None and self._data is not None)
        self.remove_rule_button.setEnabled(rule is not None)
        if rule is None:
            return
        was_filling, self._filling = self._filling, True
        try:
            rid = rule.get("id", "")
            self._set_line(self.rule_id, rid if isinstance(rid, str) else "")
            index = self.rule_category.findData(rule.get("category"))
            if self.rule_category.currentIndex() != index:
                self.rule_category.setCurrentIndex(index)  # -1 (blank) for a bad category
            severity = rule.get("severity", 1)
            self._set_spin(self.rule_severity, severity if isinstance(severity, int) else 1)
            mode = self.rule_mode.findData(rule.get("mode", MatchMode.NOSPACE.value))
            if self.rule_mode.currentIndex() != mode:
                self.rule_mode.setCurrentIndex(mode)
            self.rule_enabled.setChecked(rule.get("enabled", True) is not False)
            terms = rule.get("terms", [])
            terms = [t for t in terms if isinstance(t, str)] if isinstance(terms, list) else []
            if self._typed_terms() != terms:
                self.rule_terms.setPlainText("\n".join(terms))
            exceptions = rule.get("exceptions", [])
            exceptions = ([t for t in exceptions if isinstance(t, str)]
                          if isinstance(exceptions, list) else [])
            if self._typed_exceptions() != exceptions:
                self.rule_exceptions.setPlainText("\n".join(exceptions))
            description = rule.get("description", "")
            self._set_line(self.rule_description,
                           description if isinstance(description, str) else "")
            self.rule_broad.setChecked(rule.get("broad", False) is True)
            self._show_rule_problems()
        finally:
            self._filling = was_filling

    def rule_problem_texts(self) -> list[str]:
        """The selected rule's problems as the form shows them."""
        if self.check is None or not self.rule_id.text():
            return []
        out = []
        for p in self.check.problems:
            if p.rule_id != self.rule_id.text():
                continue
            message, field = korean(p)
            where = f"[{field_name(field)}] " if field else ""
            out.append(f"{where}{message}")
        return out

    def _show_rule_problems(self) -> None:
        texts = self.rule_problem_texts()
        self.rule_problems.setText("\n".join(texts))
        self.rule_problems.setVisible(bool(texts))
        bad = {korean(p)[1] for p in (self.check.problems if self.check else ())
               if p.rule_id == self.rule_id.text()}
        for field, widget in (("terms", self.rule_terms), ("category", self.rule_category),
                              ("id", self.rule_id), ("severity", self.rule_severity)):
            widget.setStyleSheet("border: 2px solid #b00020" if field in bad else "")

    def _typed_exceptions(self) -> list[str]:
        return [line.strip() for line in self.rule_exceptions.toPlainText().split("\n")
                if line.strip()]

    def _typed_terms(self) -> list[str]:
        return [line.strip() for line in self.rule_terms.toPlainText().split("\n")
                if line.strip()]

    def _rule_set(self, key: str, value: Any) -> None:
        row = self.rule_list.currentRow()
        if self._filling or row < 0:
            return
        if key == "enabled":
            # Enabled is the default: ticking it removes `enabled = false` from the file.
            self._form_set(("rule", row, key), value, delete_if=True)
        elif key in ("exceptions", "description", "broad"):
            # Optional keys: emptied (or unticked) in the form, gone from the file.
            empty = {"exceptions": [], "description": "", "broad": False}[key]
            self._form_set(("rule", row, key), value, delete_if=empty)
        else:
            self._form_set(("rule", row, key), value)
        rules = self._rules_data() or []
        if key in ("id", "enabled") and row < len(rules) and self.rule_list.item(row):
            self.rule_list.item(row).setText(self._rule_label(row, rules[row]))

    def _form_set(self, path: TomlPath, value: Any, *, duration: bool = False,
                  delete_if: Any = _MISSING) -> None:
        """A form widget changed: rewrite that one value in the TOML.

        ``duration`` values are seconds in the widget, written as ``"2m"``-style strings
        (or as a number if the file wrote a number there). ``delete_if``: the widget value
        that means "not set" (the key is removed).
        """
        if self._filling or self._data is None:
            return
        current = _get_in(self._data, path)
        outline = TomlText(self.text())
        try:
            if delete_if is not _MISSING and value == delete_if:
                if current is _MISSING:
                    return
                new = outline.delete(path)
                _del_in(self._data, path)
            else:
                if duration:
                    if current is not _MISSING and self._number(current, True) == value:
                        return
                    written: Any = value if isinstance(current, int | float) and \
                        not isinstance(current, bool) else format_duration(value)
                else:
                    if type(current) is type(value) and current == value:
                        return
                    written = value
                new = outline.set_value(path, written)
                _set_in(self._data, path, written)
        except NotEditable as exc:
            self.save_status.setText(T("rules.form.not_editable", key=str(exc)))
            return
        self._replace_text(new)

    def add_rule(self) -> None:
        """Append a new ``[[rule]]`` (no terms yet: the check asks for them) and select it."""
        rules = self._rules_data()
        if self._data is None or rules is None:
            return
        ids = {r.get("id") for r in rules if isinstance(r, dict)}
        new_id, n = "new.rule", 1
        while new_id in ids:
            n += 1
            new_id = f"new.rule{n}"
        fields = [("id", new_id), ("category", Category.PROFANITY.value), ("severity", 1),
                  ("terms", [])]
        new = TomlText(self.text()).append_array_table("rule", fields)
        self._data.setdefault("rule", []).append(dict(fields))
        self._replace_text(new)
        self._filling = True
        try:
            self._fill_rule_list()
            self.rule_list.setCurrentRow(self.rule_list.count() - 1)
        finally:
            self._filling = False
        self.rule_id.setFocus()

    def remove_rule(self) -> None:
        """Remove the selected ``[[rule]]`` from the text."""
        rules = self._rules_data()
        row = self.rule_list.currentRow()
        if self._data is None or rules is None or not 0 <= row < len(rules):
            return
        try:
            new = TomlText(self.text()).remove_table(("rule", row))
        except NotEditable as exc:
            self.save_status.setText(T("rules.form.not_editable", key=str(exc)))
            return
        rules.pop(row)
        self._replace_text(new)
        self._filling = True
        try:
            self._fill_rule_list()
        finally:
            self._filling = False

    # == test a sentence ======================================================================
    def test_sentence(self, sentence: str | None = None) -> None:
        """Match ``sentence`` (default: the test field) under the edited rules; the hits are
        shown and :attr:`tested` fires."""
        if sentence is not None:
            self.test_input.setText(sentence)
        sentence = self.test_input.text()
        text = self.text()
        self.test_summary.setText(T("rules.test.running"))

        def job() -> tuple[Check, MatchResult | None]:
            check = self._checker.check(text)
            return check, check.compiled.matcher.match(sentence) if check.compiled else None

        self._run(job, self._tested)

    def _tested(self, outcome: tuple[Check, MatchResult | None] | None,
                error: BaseException | None) -> None:
        self.test_table.setRowCount(0)
        self.test_suppressed.clear()
        result = outcome[1] if outcome else None
        self.last_test = result
        if error is not None:
            self.test_summary.setText(T("rules.check.crashed", error=error))
        elif result is None:
            self.test_summary.setText(T("rules.test.invalid"))
            self.test_view.clear()
        else:
            self.test_view.setHtml(highlight_html(result))
            self.test_summary.setText(T("rules.test.hits", n=len(result.hits)) if result.hits
                                      else T("rules.test.no_hits"))
            for h in result.hits:
                row = self.test_table.rowCount()
                self.test_table.insertRow(row)
                for col, value in enumerate((
                        h.rule_id, f"{h.category.value} ({h.category.label_ko})",
                        str(h.severity), h.matched, f"[{h.start}:{h.end}]", h.term)):
                    self.test_table.setItem(row, col, _item(value))
            self.test_suppressed.setText("\n".join(
                T("rules.test.suppressed", rule=s.hit.rule_id, matched=s.hit.matched,
                  exception=s.exception) for s in result.suppressed))
        self.tested.emit(result)

    # == dry run ==============================================================================
    def run_dry_run(self, limit: int | None = None) -> None:
        """Replay the last ``limit`` finished calls (default: the spin box) under the edited
        rules; the counts and changed calls are shown and :attr:`dry_run_done` fires."""
        if limit is not None:
            self.dry_limit.setValue(limit)
        n = self.dry_limit.value()
        text = self.text()
        self.dry_button.setEnabled(False)
        self.dry_summary.setText(T("rules.dry.running"))
        self.store.call(lambda s: s.ended_calls(n), self._guard(
            lambda got, err: self._dry_records(text, got[0] if got else None, err)))

    def _dry_records(self, text: str, records: list[CallRecord] | None,
                     error: BaseException | None) -> None:
        if error is not None:
            self._dry_finished(None, error)
            return

        def job() -> DryRunView | None:
            check = self._checker.check(text)
            return _dry_run(check, records or []) if check.ok else None

        self._run(job, self._dry_finished)

    def _dry_finished(self, view: DryRunView | None, error: BaseException | None) -> None:
        self.dry_button.setEnabled(True)
        self.dry_table.setRowCount(0)
        self.last_dry_run = view
        if error is not None:
            log.error("dry run failed: %s", error)
            self.dry_summary.setText(T("rules.dry.failed", error=error))
        elif view is None:
            self.dry_summary.setText(T("rules.dry.invalid"))
        elif not view.report.calls:
            self.dry_summary.setText(T("rules.dry.none"))
        else:
            r = view.report
            self.dry_summary.setText(T(
                "rules.dry.summary", calls=r.calls, version=r.rules_version[:12],
                warned=r.warned, rec_warned=view.recorded_warned, cut=r.cut_off,
                rec_cut=view.recorded_cut_off, changed=r.changed))
            for row in view.changed_rows:
                i = self.dry_table.rowCount()
                self.dry_table.insertRow(i)
                recorded = row.actual_stage + (f" ({row.actual_end_reason})"
                                               if row.actual_end_reason else "")
                replay = row.outcome if not row.cut_off else T(
                    "rules.cut", outcome=row.outcome, reason=row.cut_reason, at=row.cut_at)
                for col, value in enumerate((str(row.call_id), row.direction, recorded, replay,
                                             str(row.hits), ", ".join(row.rules))):
                    self.dry_table.setItem(i, col, _item(value, row.call_id))
        self.dry_run_done.emit(view)

    # == save, history, push ==================================================================
    def save_and_apply(self, note: str | None = None) -> None:
        """Save (as :meth:`save`) and, once saved, apply it to the running engine (as
        :meth:`push`); a text with errors is neither saved nor applied, and the engine
        keeps its rules. Without an engine, only save."""
        self._apply_after_save = self.bridge is not None
        self.save(note)

    def save(self, note: str | None = None) -> None:
        """Save the text if it has no errors (else refuse, leaving the file untouched):
        atomically to :attr:`rules_path`, into the store's version history, audited.
        :attr:`saved` or :attr:`save_refused` fires."""
        text = self.text()
        note = self.note_edit.text().strip() if note is None else note
        self.save_button.setEnabled(False)
        self.save_status.setStyleSheet("")
        self.save_status.setText(T("rules.saving"))
        # Check exactly the text being saved (a cache hit when validation has caught up).
        self._run(lambda: self._checker.check(text),
                  lambda check, err: self._save_checked(text, note, check, err))

    def _save_checked(self, text: str, note: str, check: Check | None,
                      error: BaseException | None) -> None:
        if error is not None or check is None or not check.ok:
            errors = check.errors if check is not None else []
            first = shown(errors[0]) if errors else str(error)
            self._apply_after_save = self._close_after_save = False
            self._save_failed(T("rules.save_refused", n=len(errors) or 1, first=first))
            self.save_refused.emit(self.save_status.text())
            return
        path, user = self.rules_path, self.user

        async def job(store) -> str:
            # The window is only opened after an admin sign-in; the service checks again at
            # the moment it matters, so a window built some other way cannot write the rules.
            try:
                return await rules_admin.save_rules(store, path, text, user, note, check=check)
            except PermissionDenied:
                raise PermissionError(T("rules.not_admin", user=user)) from None

        self.store.call(job, self._guard(lambda v, e: self._saved(text, v, e)))

    def _save_failed(self, message: str) -> None:
        self.save_button.setEnabled(True)
        self.save_status.setStyleSheet("color: #b00020")
        self.save_status.setText(message)

    def _saved(self, text: str, version: str | None, error: BaseException | None) -> None:
        if error is not None or version is None:
            log.error("saving rules failed: %s", error)
            self._apply_after_save = self._close_after_save = False
            self._save_failed(T("rules.save_failed", error=error))
            self.save_refused.emit(self.save_status.text())
            return
        self.save_button.setEnabled(True)
        self._saved_text = text
        self._update_title()
        self.note_edit.clear()
        self._saved_version = version
        self.save_status.setText(T("rules.saved", version=version[:12]))
        self.load_history()
        self.saved.emit(version)
        if self._apply_after_save:
            self._apply_after_save = False
            self.push()
        elif self._close_after_save:
            self.close()

    def load_history(self) -> None:
        """Reload the version history from the store (:attr:`history_loaded` fires)."""
        self.store.call(rules_admin.rules_history, self._guard(self._history_loaded))

    def _history_loaded(self, versions: list[RulesVersion] | None,
                        error: BaseException | None) -> None:
        if error is not None:
            self.history_status.setText(T("rules.history.failed", error=error))
            return
        self.history = list(versions or [])
        self.history_table.setRowCount(0)
        for v in self.history:
            row = self.history_table.rowCount()
            self.history_table.insertRow(row)
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(v.saved_at))
            for col, value in enumerate((v.version[:12], v.saved_by, when, v.note)):
                self.history_table.setItem(row, col, _item(value, v.version))
        if getattr(self, "_engine_version", None):
            self._show_engine_version(self._engine_version)  # now with date, who, note
        self.history_loaded.emit(self.history)

    def readable(self, version: str) -> str:
        """A version as people read it: when it was saved, by whom, its note, then the
        short hash (just the hash for a version not in the history)."""
        entry = next((v for v in getattr(self, "history", []) if v.version == version), None)
        if entry is None:
            return version[:12]
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(entry.saved_at))
        note = f" · «{entry.note}»" if entry.note else ""
        return f"{when} · {entry.saved_by}{note} ({version[:12]})"

    def _selected_version(self) -> str | None:
        row = self.history_table.currentRow()
        item = self.history_table.item(row, 0) if row >= 0 else None
        return item.data(Qt.ItemDataRole.UserRole) if item is not None else None

    def _view_selected(self) -> None:
        version = self._selected_version()
        if version:
            self.view_version(version)

    def _restore_selected(self) -> None:
        version = self._selected_version()
        if version:
            self.ask_restore(version)

    def ask_restore(self, version: str) -> None:
        """Ask (window-modal, :attr:`restore_question`) before going back to ``version``;
        its "restore" button (:attr:`restore_go`) does :meth:`restore_version`: one action
        that saves and applies, as 저장 후 적용 does. Unsaved edits are said to go."""
        applies = self.bridge is not None
        text = T("rules.history.restore_apply" if applies else "rules.history.restore_save",
                 version=self.readable(version))
        if applies and self.central is not None:
            text += "\n" + T("rules.history.restore_here")
        if self.dirty:
            text += "\n\n" + T("rules.history.restore_unsaved")
        box = QMessageBox(QMessageBox.Icon.Question, T("rules.history.restore_title"), text,
                          QMessageBox.StandardButton.NoButton, self)
        self.restore_go = box.addButton(T("rules.history.restore_go_apply" if applies
                                          else "rules.history.restore_go_save"),
                                        QMessageBox.ButtonRole.AcceptRole)
        cancel = box.addButton(T("rules.history.cancel"), QMessageBox.ButtonRole.RejectRole)
        box.setDefaultButton(cancel)
        box.setWindowModality(Qt.WindowModality.WindowModal)
        box.buttonClicked.connect(
            lambda button: self.restore_version(version) if button is self.restore_go else None)
        self.restore_question = box
        box.open()

    def view_version(self, version: str) -> None:
        """Show a stored version read-only in its own window."""
        def show(found: str | None, error: BaseException | None) -> None:
            if error is not None or found is None:
                self.history_status.setText(T("rules.history.failed", error=error))
                return
            dialog = QDialog(self)
            dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            dialog.setWindowTitle(T("rules.history.view_title", version=version[:12]))
            view = QPlainTextEdit(found)
            view.setReadOnly(True)
            view.setFont(self.raw.font())
            QVBoxLayout(dialog).addWidget(view)
            dialog.resize(800, 600)
            dialog.show()
            self.version_view = dialog

        self.store.call(lambda s: rules_admin.stored_rules(s, version), self._guard(show))

    def restore_version(self, version: str) -> None:
        """Go back to a stored version in one action: its text replaces the editor's, then
        :meth:`save_and_apply` (saved as a new history entry noting the restore, and applied
        to the running engine). If the old text no longer passes the check (e.g. a prompt
        file is gone), it is neither saved nor applied and stays in the editor, unsaved."""
        self.history_status.setText(T("rules.history.restoring", version=version[:12]))

        def restore(found: str | None, error: BaseException | None) -> None:
            if error is not None or found is None:
                self.history_status.setText(T("rules.history.failed", error=error))
                return
            self.set_text(found)
            self.history_status.setText(T("rules.history.restored", version=version[:12]))
            self.save_and_apply(note=T("rules.history.restore_note",
                                       version=self.readable(version)))

        self.store.call(lambda s: rules_admin.stored_rules(s, version), self._guard(restore))

    def push(self) -> None:
        """Ask the running engine to load the saved file for new calls; it refuses a bad
        file and keeps the rules in force. :attr:`pushed` fires with the ReloadResult."""
        if self.bridge is None:
            return
        self.push_button.setEnabled(False)
        self.push_status.setStyleSheet("")
        note = (" " + T("rules.push_unsaved")) if self.dirty else ""
        self.push_status.setText(T("rules.pushing") + note)
        self.bridge.push_rules(self.rules_path, self._guard(self._pushed))

    def _pushed(self, result: ReloadResult | None, error: BaseException | None) -> None:
        self.push_button.setEnabled(True)
        unsaved = (" " + T("rules.push_unsaved")) if self.dirty else ""
        if error is not None or result is None:
            log.error("pushing rules failed: %s", error)
            self.push_status.setStyleSheet("color: #b00020")
            self.push_status.setText(T("rules.push_failed", error=error))
            self.pushed.emit(error)
            return
        self.last_push = result
        if result.ok:
            here = (" " + T("rules.pushed_here")) if self.central is not None else ""
            self.push_status.setText(T("rules.pushed", version=self.readable(result.version))
                                     + here + unsaved)
        else:
            self.push_status.setStyleSheet("color: #b00020")
            self.push_status.setText("\n".join(
                [T("rules.push_refused", version=self.readable(result.version)),
                 *(shown(p) for p in result.problems)]))
        self._show_engine_version(result.version)
        self.pushed.emit(result)
        if self._close_after_save and not self.dirty:
            self.close()

    def _engine_event(self, ev: Any) -> None:
        if (getattr(ev, "kind", None) is EngineEventKind.RULES
                and isinstance(ev.data, ReloadResult)):
            self._show_engine_version(ev.data.version)

    def _show_engine_version(self, version: str | None) -> None:
        self._engine_version = version
        self.engine_label.setText(T("rules.engine", version=self.readable(version)) if version
                                  else T("rules.no_engine"))


def stage_validation_error(editor: RulesEditorWindow, app: QApplication | None = None,
                           timeout: float = 30.0) -> str:
    """Put ``editor`` in the "showing a validation error" state, for screenshot scripts.

    Types a misspelt key (``enabeld = false``) under the first ``[[rule]]``'s ``id`` line
    (at the top of the file if there is no rule), checks at once, waits until the error is
    shown (processing events, at most ``timeout`` seconds), then shows the Raw TOML tab at
    the marked line with the message selected. Returns the first error message. It spins
    the event loop itself: call it from a script, never from a slot.
    """
    app = app or QApplication.instance()
    lines = editor.text().split("\n")
    row = next((i for i, line in enumerate(lines) if re.match(r"\s*id\s*=", line)), None)
    doc = editor.raw.document()
    cursor = QTextCursor(doc)
    if row is None:
        cursor.setPosition(0)
        cursor.insertText("enabeld = false\n")
    else:
        cursor.setPosition(doc.findBlockByNumber(row).position() + _utf16_len(lines[row]))
        cursor.insertText("\nenabeld = false")
    editor.validate_now()
    deadline = time.monotonic() + timeout
    while editor.check is None or editor.check.text != editor.text() or editor.check.ok:
        if time.monotonic() > deadline:
            raise TimeoutError("the rules editor did not show the validation error")
        app.processEvents()
        time.sleep(0.01)
    editor.show_tab("toml")
    first_error = next(i for i, p in enumerate(editor.check.problems)
                       if p.severity is Severity.ERROR)
    editor.show_problem(first_error)  # warnings (e.g. missing prompt files) may come first
    return str(editor.check.problems[first_error])


def open_rules_editor(store: StoreClient, rules_path: Path, parent: QWidget | None = None,
                      bridge: EngineBridge | None = None,
                      done: Callable[[RulesEditorWindow | None], None] | None = None
                      ) -> None:
    """Ask for an admin sign-in, then show the rules editor; ``done(window)``, or
    ``done(None)`` when the sign-in was cancelled (a counselor never gets the editor)."""
    def signed_in(user: str | None) -> None:
        window = None
        if user:
            window = RulesEditorWindow(store, rules_path, user, bridge, parent)
            window.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            window.show()
        if done is not None:
            done(window)

    request_role(store, Role.ADMIN, parent, signed_in)
