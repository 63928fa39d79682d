"""The rules editor's form for non-programmers (issue 15, item 6): match modes in Korean with
an example each; exceptions, description and the broad-term allowance edited in the form,
written into the TOML and checked like any edit."""

from __future__ import annotations

import shutil

from callguard.rules.loader import parse_rules
from tests.gui.test_rules_editor import (
    DEFAULT_RULES,
    clients,  # noqa: F401
    open_editor,
    select_rule,
    wait_checked,
)


def test_exceptions_description_and_broad_are_edited_in_the_form(qtbot, tmp_path, kiwi,
                                                                 clients):  # noqa: F811
    path = tmp_path / "rules.toml"
    shutil.copy(DEFAULT_RULES, path)
    editor = open_editor(qtbot, clients(tmp_path / "calls.db"), path)
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
