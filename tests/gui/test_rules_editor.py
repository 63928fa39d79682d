"""The admin's rules editor: checks as you type with the messages of `callguard rules check`,
tests sentences and dry-runs stored calls under the edited rules, saves only valid rules
(atomically, with history) and pushes them to the live engine, which refuses bad files.

The live tests make real calls through the engine on the in-memory line (see conftest);
the default-rules tests share the session's Kiwi (the `kiwi` fixture)."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
from fakerig import GUI_RULES, abusive_call_audio

from callguard.cli.main import main as cli
from callguard.gui.bridge import EngineBridge, StoreClient
from callguard.gui.rules_editor import (
    RulesEditorWindow,
    format_duration,
    stage_validation_error,
)
from callguard.rules.loader import parse_duration
from callguard.rules.toml_edit import TomlText

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_RULES = ROOT / "rules" / "default.toml"
ADMIN, PASSWORD = "admin", "correct horse battery"
WAIT_MS = 20_000


@pytest.fixture
def clients():
    """``make(db)``: a StoreClient on ``db`` with the admin account; closed afterwards."""
    made: list[StoreClient] = []

    def make(db: Path) -> StoreClient:
        client = StoreClient(db)
        client.submit(lambda s: s.set_password(ADMIN, "admin", PASSWORD)).result(10)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def open_editor(qtbot, client: StoreClient, path: Path, bridge=None) -> RulesEditorWindow:
    editor = RulesEditorWindow(client, path, ADMIN, bridge)
    qtbot.addWidget(editor)
    wait_checked(qtbot, editor)
    return editor


def default_editor(qtbot, clients, tmp: Path) -> tuple[RulesEditorWindow, Path]:
    """An editor, checked, on a copy of the shipped default rules at ``tmp/rules.toml`` (the
    store ``tmp/calls.db``, ``clients`` the fixture). Returns (the editor, the copy's path)."""
    path = tmp / "rules.toml"
    shutil.copy(DEFAULT_RULES, path)
    return open_editor(qtbot, clients(tmp / "calls.db"), path), path


def wait_checked(qtbot, editor: RulesEditorWindow) -> None:
    """Until the check of the editor's current text is shown (after the 300 ms pause)."""
    qtbot.waitUntil(lambda: editor.check is not None and editor.check.text == editor.text()
                    and not editor._debounce.isActive(), timeout=WAIT_MS)


def rules_check(path: Path, capsys) -> list[str]:
    """What `callguard rules check PATH` prints, line by line."""
    capsys.readouterr()
    cli(["rules", "check", str(path)])
    return capsys.readouterr().out.splitlines()


def insert_after(editor: RulesEditorWindow, line_text: str, new_line: str) -> int:
    """Type ``new_line`` below the line ``line_text`` in the raw editor; its 1-based line."""
    lines = editor.text().split("\n")
    row = lines.index(line_text)
    cursor = editor.raw.textCursor()
    cursor.setPosition(editor.raw.document().findBlockByNumber(row).position()
                       + len(line_text))
    cursor.insertText("\n" + new_line)
    return row + 2


def select_rule(editor: RulesEditorWindow, rule_id: str) -> None:
    ids = [editor.rule_list.item(i).text() for i in range(editor.rule_list.count())]
    editor.rule_list.setCurrentRow(ids.index(rule_id))
    assert editor.rule_id.text() == rule_id


def test_the_form_shows_the_default_rules_and_edits_only_the_value(qtbot, tmp_path, kiwi,
                                                                   clients):
    editor, path = default_editor(qtbot, clients, tmp_path)
    original = path.read_text(encoding="utf-8")
    assert editor.is_valid and editor.text() == original
    assert editor.name_edit.text() == "callguard 기본 규칙 (default Korean rules)"
    assert editor.esc["window"].value() == 120 and editor.esc["window"].text() == "2분"
    assert editor.esc["warnings"].value() == 2
    assert editor.limits[("inbound", "final_at")].value() == 20 * 60
    assert editor.prompt_text["final"].text().startswith("반복된 욕설과 폭언")
    assert editor.rule_list.count() == 25
    select_rule(editor, "threat.kill")
    assert editor.rule_category.currentData() == "threat"
    assert editor.rule_mode.currentData() == "phrase" and editor.rule_severity.value() == 3

    # A form edit rewrites that one value; the comment on its line and the rest stay.
    editor.esc["window"].setValue(180)
    changed = [(a, b) for a, b in zip(original.split("\n"), editor.text().split("\n"),
                                      strict=True) if a != b]
    assert changed == [('window = "2m"      # 이보다 오래된 점수는 사라짐 / strikes older than '
                        'this fall out',
                        'window = "3m"      # 이보다 오래된 점수는 사라짐 / strikes older than '
                        'this fall out')]
    # A raw edit fills the form once it parses.
    editor.set_text(editor.text().replace('warnings = 2 ', 'warnings = 3 '))
    wait_checked(qtbot, editor)
    assert editor.esc["warnings"].value() == 3 and editor.is_valid

    # A new rule starts without terms (the check asks for them); removed, the text is back.
    before = editor.text()
    editor.add_rule()
    wait_checked(qtbot, editor)
    assert editor.rule_id.text() == "new.rule" and editor.rule_list.count() == 26
    assert ": rule new.rule: terms must list at least one keyword" in \
        editor.validation_lines()[0]
    editor.rule_terms.setPlainText("짜증")
    wait_checked(qtbot, editor)
    assert editor.is_valid and editor.text().endswith('id = "new.rule"\ncategory = "profanity"'
                                                      '\nseverity = 1\nterms = ["짜증"]\n')
    editor.remove_rule()
    wait_checked(qtbot, editor)
    assert editor.text() == before and editor.rule_list.count() == 25
    assert path.read_text(encoding="utf-8") == original  # nothing saved


def test_an_edit_is_checked_with_the_messages_of_rules_check(qtbot, tmp_path, kiwi, clients,
                                                             capsys):
    path = tmp_path / "rules.toml"
    shutil.copy(DEFAULT_RULES, path)
    original = path.read_text(encoding="utf-8")
    editor = open_editor(qtbot, clients(tmp_path / "calls.db"), path)
    assert editor.validation_lines() == rules_check(path, capsys)
    assert editor.marked_lines() == []

    # An unknown key, typed in the raw editor: checked after the pause, line and rule named.
    line = insert_after(editor, 'id = "threat.kill"', "enabeld = false")
    wait_checked(qtbot, editor)
    shown = editor.validation_lines()
    assert shown[0].startswith(f"{path}:{line}: rule threat.kill: unknown key 'enabeld' in "
                               "[[rule]] (did you mean 'enabled'?)")
    assert not editor.is_valid and line in editor.marked_lines()

    # A bad term, typed in the form: a tag in a nospace rule.
    select_rule(editor, "profanity.saekki")
    editor.rule_terms.appendPlainText("보지/NNG")
    wait_checked(qtbot, editor)
    shown = editor.validation_lines()
    assert any(": rule profanity.saekki: term '보지/NNG' has a part-of-speech tag" in s
               for s in shown)
    # Exactly what `callguard rules check` prints for the same text.
    path.write_text(editor.text(), encoding="utf-8")
    assert shown == rules_check(path, capsys)
    assert shown[-1] == f"2 error(s): {path} is not usable; the engine keeps the last good rules"

    # Fixed (the key removed in the raw text, the term in the form): the errors clear.
    editor.set_text(editor.text().replace("enabeld = false\n", ""))
    select_rule(editor, "profanity.saekki")
    editor.rule_terms.setPlainText("\n".join(editor._typed_terms()[:-1]))
    wait_checked(qtbot, editor)
    assert editor.is_valid and editor.marked_lines() == []
    assert editor.text() == original
    path.write_text(original, encoding="utf-8")
    assert editor.validation_lines() == rules_check(path, capsys)
    assert editor.validation_lines()[-1].startswith(f"OK: {path}: 25 rules (25 enabled)")


def test_a_sentence_shows_its_hits_under_the_edited_rules(qtbot, tmp_path, kiwi, clients):
    editor, _ = default_editor(qtbot, clients, tmp_path)

    with qtbot.waitSignal(editor.tested, timeout=WAIT_MS) as got:
        editor.test_sentence("야 이 개새끼야")
    result = got.args[0]
    assert [(h.rule_id, h.category.value, h.matched) for h in result.hits] == [
        ("profanity.saekki", "profanity", "개새끼")]
    assert result.text[result.hits[0].start:result.hits[0].end] == "개새끼"
    assert "개새끼</span>" in editor.test_view.toHtml()  # the span is highlighted
    assert editor.test_table.rowCount() == 1
    assert editor.test_table.item(0, 0).text() == "profanity.saekki"
    assert editor.test_table.item(0, 1).text() == "profanity (욕설)"

    # A term added in the form (not saved) is what the next test uses.
    with qtbot.waitSignal(editor.tested, timeout=WAIT_MS) as got:
        editor.test_sentence("아 진짜 짜증나네요")
    assert got.args[0].hits == ()
    select_rule(editor, "insult.rude_words")
    editor.rule_terms.appendPlainText("짜증")
    with qtbot.waitSignal(editor.tested, timeout=WAIT_MS) as got:
        editor.test_sentence()
    assert [(h.rule_id, h.matched) for h in got.args[0].hits] == [("insult.rude_words", "짜증")]


def make_calls(live) -> None:
    """One abusive call the agent ends with the final notice, one clean call (3 s of
    silence) the caller hangs up."""
    abusive = live.answered("010-1111-2222")
    abusive.far_play(abusive_call_audio(), at_s=0.0)
    live.advance(7.62)  # the BYE after the final notice
    ended = live.wait("ended", pred=lambda ev: ev.call_id == abusive.call_id)
    assert ended.data["reason"] == "final_notice"
    clean = live.answered("010-3333-4444")
    live.advance(3.0)
    clean.far_hangup()
    live.advance(0.02)
    ended = live.wait("ended", pred=lambda ev: ev.call_id == clean.call_id)
    assert ended.data["reason"] == "caller_hangup"


def dry_run(qtbot, editor: RulesEditorWindow):
    wait_checked(qtbot, editor)
    with qtbot.waitSignal(editor.dry_run_done, timeout=WAIT_MS) as got:
        editor.run_dry_run(10)
    assert got.args[0] is not None, editor.dry_summary.text()
    return got.args[0]


def test_dry_run_counts_match_the_store(qtbot, stepped, clients):
    live = stepped
    make_calls(live)
    client = clients(live.db)
    editor = open_editor(qtbot, client, live.rules)

    # The rules the calls were made under give back what the store recorded.
    view = dry_run(qtbot, editor)
    records, _ = client.submit(lambda s: s.ended_calls(10)).result(10)
    assert len(records) == 2
    warned = sum(1 for r in records if any(v.kind == "warn" for v in r.verdicts))
    cut_off = sum(1 for r in records if r.end_reason in ("final_notice", "duration_limit"))
    assert (warned, cut_off) == (1, 1)
    report = view.report
    assert (report.calls, report.warned, report.cut_off, report.changed) == (2, warned,
                                                                             cut_off, 0)
    assert (view.recorded_warned, view.recorded_cut_off) == (warned, cut_off)
    assert editor.dry_table.rowCount() == 0

    # The rule switched off: the abusive call would have gone on untouched.
    select_rule(editor, "t.saekki")
    editor.rule_enabled.setChecked(False)
    report = dry_run(qtbot, editor).report
    assert (report.warned, report.cut_off, report.changed) == (0, 0, 1)
    abusive = next(r for r in records if r.end_reason == "final_notice")
    assert editor.dry_table.rowCount() == 1
    assert editor.dry_table.item(0, 0).text() == str(abusive.id)

    # Back on, and the inbound limit lowered to 2 s: both calls are cut off by the limit.
    editor.rule_enabled.setChecked(True)
    editor.limits[("inbound", "final_at")].setValue(2)
    assert 'final_at = "2s"' in editor.text()
    report = dry_run(qtbot, editor).report
    assert (report.cut_off, report.changed) == (2, 2)
    assert {r.cut_reason for r in report.rows} == {"duration_limit"}
    assert editor.dry_table.rowCount() == 2


def test_a_bad_edit_is_refused_and_the_old_rules_stay(qtbot, live, clients):
    bridge = EngineBridge(live.engine)
    editor = open_editor(qtbot, clients(live.db), live.rules, bridge)
    on_disk = live.rules.read_bytes()
    before = live.engine.rules.version
    assert before[:12] in editor.engine_label.text()

    line = insert_after(editor, 'id = "t.saekki"', "enabeld = true")
    wait_checked(qtbot, editor)
    assert not editor.is_valid
    with qtbot.waitSignal(editor.save_refused, timeout=WAIT_MS) as got:
        editor.save(note="typo")
    # Said in the interface language (the CLI's line is the problem list's tooltip).
    error = f"{line}번째 줄 · 규칙 t.saekki · 오류: 'enabeld'은(는) 규칙에 쓸 수 없는 항목입니다"
    assert error in got.args[0] and error in editor.save_status.text()
    assert live.rules.read_bytes() == on_disk  # the file on disk is untouched
    with qtbot.waitSignal(editor.history_loaded, timeout=WAIT_MS) as got:
        editor.load_history()
    assert got.args[0] == []

    # The same bad text written by hand and pushed: the engine refuses it, its rules stay.
    live.rules.write_text(editor.text(), encoding="utf-8")
    with qtbot.waitSignal(editor.pushed, timeout=WAIT_MS) as got:
        editor.push()
    result = got.args[0]
    assert not result.ok and result.version == before
    assert live.engine.rules.version == before
    assert before[:12] in editor.push_status.text() and error in editor.push_status.text()


def test_a_good_save_is_in_the_history_and_a_push_changes_the_engine_rules(qtbot, live,
                                                                          clients):
    bridge = EngineBridge(live.engine)
    client = clients(live.db)
    editor = open_editor(qtbot, client, live.rules, bridge)
    before = live.engine.rules.version

    editor.esc["warnings"].setValue(2)
    wait_checked(qtbot, editor)
    assert editor.is_valid and editor.dirty
    text = editor.text()
    # The history is reloaded after the save.
    with qtbot.waitSignal(editor.history_loaded, timeout=WAIT_MS), \
            qtbot.waitSignal(editor.saved, timeout=WAIT_MS) as got:
        editor.save(note="two warnings")
    version = got.args[0]
    assert version == hashlib.sha256(text.encode("utf-8")).hexdigest()
    assert live.rules.read_bytes() == text.encode("utf-8") and not editor.dirty
    assert not list(live.rules.parent.glob(".rules.toml.*"))  # no temporary file left
    entry = editor.history[0]
    assert (entry.version, entry.saved_by, entry.note) == (version, ADMIN, "two warnings")
    assert editor.history_table.item(0, 0).text() == version[:12]
    audit = client.submit(lambda s: s.audit_log(kind="rules_saved")).result(10)
    assert [(a.actor, a.role) for a in audit] == [(ADMIN, "admin")]
    assert version[:12] in audit[0].detail

    with qtbot.waitSignal(editor.pushed, timeout=WAIT_MS) as got:
        editor.push()
    assert got.args[0].ok and got.args[0].version == version
    assert live.engine.rules.version == version != before
    assert version[:12] in editor.engine_label.text()

    # A saved version restores in one action: into the editor, saved and applied.
    editor.set_text("format = 1\n")
    with qtbot.waitSignal(editor.pushed, timeout=WAIT_MS) as got:
        editor.restore_version(version)
    assert editor.text() == text and not editor.dirty
    assert got.args[0].ok and live.engine.rules.version == version


def test_durations_and_values_round_trip():
    for seconds in (0, 5, 59, 60, 90, 120, 900, 3600, 3725, 1.5):
        assert parse_duration(format_duration(seconds)) == seconds
    assert [format_duration(s) for s in (5, 120, 90, 3600)] == ["5s", "2m", "1m30s", "1h"]
    text = 'a = 1  # one\n[t]\nb = [\n  "x", # c\n  "y",\n]\nc = """\nq\n"""\n'
    out = TomlText(text).set_value(("t", "c"), "z")
    assert out == 'a = 1  # one\n[t]\nb = [\n  "x", # c\n  "y",\n]\nc = "z"\n'
    out = TomlText(text).set_value(("t", "b"), ["p"])
    assert out == 'a = 1  # one\n[t]\nb = ["p"]\nc = """\nq\n"""\n'
    out = TomlText(text).set_value(("a",), 2)
    assert out.startswith("a = 2  # one\n")


def test_the_screenshot_state_shows_a_validation_error(qtbot, tmp_path, clients):
    path = tmp_path / "rules.toml"
    path.write_text(GUI_RULES, encoding="utf-8")
    editor = RulesEditorWindow(clients(tmp_path / "calls.db"), path, ADMIN)
    qtbot.addWidget(editor)
    editor.show()
    line = GUI_RULES.split("\n").index('id = "t.saekki"') + 2  # the typed line, 1-based
    message = stage_validation_error(editor)
    assert message.startswith(f"{path}:{line}: rule t.saekki: unknown key 'enabeld'")
    assert message in editor.validation_lines() and line in editor.marked_lines()
    item = editor.problems.currentItem()  # shown in Korean; the check's own line its tooltip
    assert item.toolTip() == message
    assert item.text() == (f"{line}번째 줄 · 규칙 t.saekki · 오류: 'enabeld'은(는) 규칙에 쓸 수 "
                           "없는 항목입니다 ('enabled'을(를) 쓰려던 것인가요?). TOML 원문에서 "
                           "고치세요.")
    assert editor.tabs.currentIndex() == editor._tab_index["toml"]
    assert editor.raw.textCursor().blockNumber() == line - 1
    assert path.read_text(encoding="utf-8") == GUI_RULES


def test_editing_the_dictionary_never_freezes_the_window(qtbot, tmp_path, clients):
    """A new [dictionary] word makes the check build another Kiwi (over a second of work
    that holds the GIL); it runs in Kiwi's own process, so the GUI thread keeps going."""
    import time

    from fakerig import fresh_word, kiwi_build_in_this_process
    from PySide6.QtCore import QTimer

    from callguard.text.kiwiproc import KiwiProcess

    def longest_gap(ticks: list[float], began: float, ended: float) -> float:
        during = [t for t in ticks if began <= t <= ended]
        return max(b - a for a, b in zip([began, *during], [*during, ended], strict=True))

    editor, _ = default_editor(qtbot, clients, tmp_path)
    word = fresh_word()
    ticks: list[float] = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(time.monotonic()))
    timer.start(20)
    # Control, just before and on the same 20 ms timer: a Kiwi built in this process (as the
    # check did before it had Kiwi's process) freezes the GUI thread for as long as it holds
    # the GIL, which depends on the CPU; so the freeze is judged against it, not seconds.
    began = time.monotonic()
    builder = kiwi_build_in_this_process()
    qtbot.waitUntil(lambda: not builder.is_alive(), timeout=WAIT_MS)
    built = time.monotonic() - began  # what building a Kiwi takes on this machine
    control = longest_gap(ticks, began, began + built)
    began = time.monotonic()
    editor.set_text(editor.text().replace("[dictionary]\nwords = []",
                                          f'[dictionary]\nwords = ["{word}/NNG"]'))
    wait_checked(qtbot, editor)
    took = time.monotonic() - began
    timer.stop()
    assert editor.is_valid, editor.validation_lines()
    analyzer = editor.check.compiled.matcher.analyzer
    assert isinstance(analyzer, KiwiProcess) and analyzer.dictionary.words == ((word, "NNG"),)
    # A Kiwi was built meanwhile: the check took about as long as the control's build (and
    # its 300 ms pause); one that builds none is done far sooner...
    assert took > built / 2, (took, built)
    # ...and the timer kept ticking, where in-process the check would freeze it about as
    # long as the control did (ratio ~1). Measured here: longest gap 0.024-0.041 s against
    # a control of 0.50-1.18 s.
    assert control > 10 * 0.020, control  # the control really froze the timer
    gap = longest_gap(ticks, began, began + took)
    assert gap < control / 2, (gap, control, took)
