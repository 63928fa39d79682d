"""The broad-term guard in the admin's rules editor (issue 15, item 6): "다" or an everyday
word typed into a rule's terms in the form is refused, with the ordinary sentences it would
flag, until the rule says broad = true."""

from __future__ import annotations

from tests.gui.test_rules_editor import (
    clients,  # noqa: F401
    default_editor,
    select_rule,
    wait_checked,
)


def test_da_and_an_everyday_word_are_refused_in_the_form(qtbot, tmp_path, kiwi,
                                                        clients):  # noqa: F811
    editor, _ = default_editor(qtbot, clients, tmp_path)
    assert editor.is_valid
    for term, shown in (("다", "it is one syllable"),
                        ("감사", "'기다려 주셔서 감사합니다.'")):
        select_rule(editor, "profanity.saekki")
        before = editor.text()
        editor.rule_terms.appendPlainText(term)
        wait_checked(qtbot, editor)
        assert not editor.is_valid
        lines = [s for s in editor.validation_lines()
                 if f"rule profanity.saekki: term '{term}' is too broad" in s]
        assert lines and shown in lines[0], editor.validation_lines()
        assert editor.marked_lines()  # the line is marked in the TOML view
        editor.set_text(before)
        wait_checked(qtbot, editor)
        assert editor.is_valid
