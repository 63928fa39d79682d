"""The rules editor's form for non-programmers (issue 15, item 6): match modes in Korean with
an example each; exceptions, description and the broad-term allowance edited in the form,
written into the TOML and checked like any edit."""

from __future__ import annotations

from callguard.rules.loader import parse_rules
from tests.gui.test_rules_editor import (
    clients,  # noqa: F401
    default_editor,
    select_rule,
    wait_checked,
)


def test_exceptions_description_and_broad_are_edited_in_the_form(qtbot, tmp_path, kiwi,
                                                                 clients):  # noqa: F811
    editor, _ = default_editor(qtbot, clients, tmp_path)
    modes = [editor.rule_mode.itemText(i) for i in range(editor.rule_mode.count())]
    assert modes[editor.rule_mode.findData("nospace")].startswith("띄어쓰기·기호 무시 — 예:")
    assert all(" — 예: " in m for m in modes)

    select_rule(editor, "profanity.saekki")
    editor.rule_exceptions.appendPlainText("새끼손가락")
    editor.rule_description.setText("새끼 계열 욕설")
    editor.rule_terms.appendPlainText("다")
    wait_checked(qtbot, editor)
    assert not editor.is_valid  # the broad-term guard
    editor.rule_broad.setChecked(True)  # the admin allows it, in the form
    wait_checked(qtbot, editor)
    assert editor.is_valid, editor.validation_lines()
    rule = parse_rules(editor.text(), analyzer=kiwi).ruleset.rule("profanity.saekki")
    assert "새끼손가락" in rule.exceptions and rule.description == "새끼 계열 욕설"
    assert rule.broad and "다" in rule.terms
    # Emptied in the form: gone from the file.
    editor.rule_broad.setChecked(False)
    editor.rule_description.setText("")
    wait_checked(qtbot, editor)
    text = editor.text()
    section = text[text.index('id = "profanity.saekki"'):]
    section = section[:section.index("[[rule]]")]
    assert "description" not in section and "broad" not in section
    # Another rule and back: the form shows what the file holds.
    select_rule(editor, "profanity.ssibal")
    assert editor.rule_broad.isChecked()  # the default rules allow its one-syllable slur
    select_rule(editor, "profanity.saekki")
    assert "새끼손가락" in editor._typed_exceptions() and editor.rule_description.text() == ""


def test_check_errors_are_shown_in_korean_at_the_form_field(qtbot, tmp_path, kiwi,
                                                            clients):  # noqa: F811
    editor, _ = default_editor(qtbot, clients, tmp_path)
    select_rule(editor, "profanity.saekki")
    assert editor.rule_problems.isHidden() and editor.rule_terms.styleSheet() == ""
    editor.rule_terms.appendPlainText("다")
    editor.rule_terms.appendPlainText("감사")
    wait_checked(qtbot, editor)
    shown = editor.rule_problems.text().split("\n")
    assert shown[0].startswith("[단어] 단어 '다'은(는) 한 글자라 평범한 말 속에서도 걸립니다")
    assert shown[1].startswith("[단어] 단어 '감사'은(는) 평범한 상담 문장 60개 중 4개에서 "
                               "걸립니다 (예: '기다려 주셔서 감사합니다.'")
    assert "넓은 단어 허용" in shown[1]
    assert not editor.rule_problems.isHidden() and "b00020" in editor.rule_terms.styleSheet()
    # The list below keeps the check's own lines (the CLI's), with file and line.
    assert any(": rule profanity.saekki: term '다' is too broad" in s
               for s in editor.validation_lines())
    # Another rule has no problem: nothing shown there.
    select_rule(editor, "profanity.ssibal")
    assert editor.rule_problems.text() == "" and editor.rule_terms.styleSheet() == ""


def test_durations_read_as_people_say_them_and_the_file_keeps_toml(qtbot, tmp_path, kiwi,
                                                                  clients):  # noqa: F811
    from PySide6.QtCore import Qt

    editor, _ = default_editor(qtbot, clients, tmp_path)
    box = editor.esc["window"]
    assert box.text() == "2분"
    assert editor.limits[("inbound", "final_at")].text() == "20분"
    box.lineEdit().setText("1분 30초")  # as typed (QTest types ASCII only)
    qtbot.keyClick(box.lineEdit(), Qt.Key.Key_Return)
    assert box.value() == 90
    wait_checked(qtbot, editor)
    assert 'window = "1m30s"' in editor.text() and editor.is_valid
    box.lineEdit().selectAll()
    qtbot.keyClicks(box.lineEdit(), "3m")  # the TOML's way is understood too
    qtbot.keyClick(box.lineEdit(), Qt.Key.Key_Return)
    assert box.value() == 180 and box.text() == "3분"
