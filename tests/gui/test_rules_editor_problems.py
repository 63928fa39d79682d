"""The rules editor's problem list speaks the interface language (issue 15, item 6): each
problem in Korean (English in English mode) with its line and rule, the summary too; the
check's own line (what `callguard rules check` prints) is each item's tooltip."""

from __future__ import annotations

import re

import pytest
from fakerig import GUI_RULES

from callguard.gui import i18n
from tests.gui.test_rules_editor import (
    clients,  # noqa: F401
    insert_after,
    open_editor,
    wait_checked,
)

HANGUL = re.compile(r"[가-힣]")


@pytest.fixture
def english():
    before = i18n.language()
    i18n.set_language("en")
    yield
    i18n.set_language(before)


def _broken(qtbot, tmp_path, make):
    """An editor on GUI_RULES without its prompt files (two warnings) and a misspelt key
    typed under a rule (an error)."""
    path = tmp_path / "rules.toml"
    path.write_text(GUI_RULES, encoding="utf-8")
    editor = open_editor(qtbot, make(tmp_path / "calls.db"), path)
    line = insert_after(editor, 'id = "t.saekki"', "enabeld = false")
    wait_checked(qtbot, editor)
    assert not editor.is_valid
    return editor, line


def test_the_problem_list_is_korean(qtbot, tmp_path, clients):  # noqa: F811
    editor, line = _broken(qtbot, tmp_path, clients)
    shown = editor.problem_texts()
    cli = editor.validation_lines()
    assert len(shown) == len(cli) >= 3  # two prompt warnings, the error, the summary
    assert cli == list(editor.check.lines)  # the CLI's lines: the tooltips
    assert [editor.problems.item(i).toolTip() for i in range(len(cli))] == cli
    for text in shown:
        assert HANGUL.search(text), text
        for english in ("unknown key", "not found", "error(s)", "warning:", "rule t."):
            assert english not in text, text
        assert "(검사 원문)" not in text  # every message here has its Korean
    assert (f"{line}번째 줄 · 규칙 t.saekki · 오류: 'enabeld'은(는) 규칙에 쓸 수 없는 "
            "항목입니다 ('enabled'을(를) 쓰려던 것인가요?)") in "\n".join(shown)
    assert any("주의: 안내 음성 파일 'warning.wav'이(가) 없어" in s for s in shown), shown
    assert shown[-1].startswith("오류 1건: 이 규칙 파일은 쓸 수 없습니다")
    # Fixed: the summary says so in Korean too.
    editor.set_text(editor.text().replace("enabeld = false\n", ""))
    wait_checked(qtbot, editor)
    assert editor.problem_texts()[-1].startswith("문제없음: 규칙 ")


def test_the_problem_list_is_english_in_english_mode(qtbot, tmp_path, english,
                                                     clients):  # noqa: F811
    editor, line = _broken(qtbot, tmp_path, clients)
    shown = editor.problem_texts()
    assert not any(HANGUL.search(s.replace("'enabeld'", "")) for s in shown), shown
    assert (f"line {line} · rule t.saekki · error: unknown key 'enabeld' in [[rule]] "
            "(did you mean 'enabled'?)") in "\n".join(shown)
    assert shown[-1].startswith("1 error(s): these rules cannot be used")


@pytest.mark.parametrize("message", [
    "unknown key 'windw' in [escalation] (did you mean 'window'?); allowed: a, b",
    "unknown key 'zz' in the top level; allowed: format, rule",
    "TOML syntax error: Expected '=' after a key (at line 3, column 5)",
    "prompt file 'warning.wav' not found; prompt 'warning' cannot be played",
    "mode must be one of surface, nospace, morpheme, phrase, not 'x'",
    "exception '시발점/NNG' has a part-of-speech tag; exceptions are matched as text "
    "(write it without '/TAG')",
    "'window' must be at least 1, not 0",
    "notice_at (3) must not be above warn_at (2): the counselor is told before the caller "
    "is warned",
    "term '죽어' has no content morpheme to match (Kiwi: 죽/VV 어/EC)",
])
def test_the_checks_messages_have_korean(message):
    from callguard.gui.check_ko import shown
    from callguard.rules.problems import Problem, Severity

    text = shown(Problem("rules.toml", 3, message, Severity.ERROR, "t.x"))
    assert text.startswith("3번째 줄 · 규칙 t.x · 오류: ") and "(검사 원문)" not in text
    assert not re.search(r"\b(must|unknown|not found|syntax|top level)\b", text), text


def test_a_one_syllable_term_shows_the_sentences_it_would_flag_in_korean():
    from callguard.gui.check_ko import korean
    from callguard.rules.problems import Problem

    message = ("term '다' is too broad: it is one syllable, which can match inside ordinary "
               "words; it flags 35 of 60 ordinary call-centre sentences (more than 2%): "
               "'안녕하세요.', '잠시만요.' and 33 more. Narrow it, or write broad = true in "
               "this rule if you mean it")
    text, field = korean(Problem("rules.toml", 3, message, rule_id="t.x"))
    assert field == "terms"
    assert text.startswith("단어 '다'은(는) 한 글자라 평범한 말 속에서도 걸립니다 (평범한 상담 "
                           "문장 60개 중 35개에서 걸림, 예: '안녕하세요.', '잠시만요.' 외 33개)")
    assert "넓은 단어 허용" in text and "Narrow" not in text
