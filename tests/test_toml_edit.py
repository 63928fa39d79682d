"""The rules form's TOML edits (callguard.rules.toml_edit): every edit the editor makes,
on the default rules, changes exactly the lines it should and nothing else; comments,
blank lines and key order stay; edits that tomlkit alone would misplace (a new key after
the next section's banner, a removed rule taking that banner along) do not."""

from __future__ import annotations

import difflib
import tomllib

import pytest
import tomlkit
from conftest import DEFAULT_RULES

from callguard.rules import toml_edit
from callguard.rules.loader import parse_duration
from callguard.rules.toml_edit import NotEditable, TomlText, format_duration

TEXT = DEFAULT_RULES.read_text(encoding="utf-8")
DATA = tomllib.loads(TEXT)


def changed(old: str, new: str) -> list[str]:
    """The diff lines (``-``/``+``) between two texts, without context."""
    return [line for line in difflib.unified_diff(old.split("\n"), new.split("\n"), n=0,
                                                  lineterm="")
            if line[:1] in "+-" and line[:3] not in ("---", "+++")]


def rule_index(rule_id: str) -> int:
    return next(i for i, r in enumerate(DATA["rule"]) if r["id"] == rule_id)


def test_tomlkit_reads_the_default_rules_back_byte_for_byte():
    assert tomlkit.dumps(tomlkit.parse(TEXT)) == TEXT


def test_a_value_is_rewritten_in_place_with_its_comment():
    new = TomlText(TEXT).set_value(("escalation", "window"), "3m")
    assert changed(TEXT, new) == [
        '-window = "2m"      # 이보다 오래된 점수는 사라짐 / strikes older than this fall out',
        '+window = "3m"      # 이보다 오래된 점수는 사라짐 / strikes older than this fall out']
    new = TomlText(TEXT).set_value(("escalation", "warnings"), 3)
    assert changed(TEXT, new) == [
        "-warnings = 2       # 종료 전 경고 횟수 / warnings before the final stage",
        "+warnings = 3       # 종료 전 경고 횟수 / warnings before the final stage"]
    new = TomlText(TEXT).set_value(("rule", rule_index("threat.kill"), "severity"), 2)
    assert changed(TEXT, new) == ["-severity = 3", "+severity = 2"]


def test_every_form_edit_of_every_rule_touches_only_its_own_lines_and_undoes():
    for i, rule in enumerate(DATA["rule"]):
        for key, value in (("id", rule["id"] + ".x"), ("severity", 7), ("mode", "surface"),
                           ("category", "insult"), ("terms", [*rule["terms"], "추가어"])):
            path = ("rule", i, key)
            new = TomlText(TEXT).set_value(path, value)
            data = tomllib.loads(new)
            assert data["rule"][i].pop(key) == value
            assert data["rule"][i] == {k: v for k, v in rule.items() if k != key}
            assert {k: v for k, v in data.items() if k != "rule"} == \
                {k: v for k, v in DATA.items() if k != "rule"}
            # Removed lines are only the old value's; added only the new one's.
            for line in changed(TEXT, new):
                assert "#" not in line, (rule["id"], key, line)
            # Setting the old value back (or removing the key again) gives the file back;
            # a list is written in the file's wrapping style, not as the admin broke it.
            back = (TomlText(new).set_value(path, rule[key]) if key in rule
                    else TomlText(new).delete(path))
            assert tomllib.loads(back) == DATA
            assert back == TEXT or key == "terms", (rule["id"], key)


def test_switching_a_rule_off_and_on_again_gives_back_the_file():
    # Rules 9, 16, 17, 20 and 23 end where a section banner (comments) begins: the new
    # key goes right after the rule's last value, not below the next section's banner.
    for i, rule in enumerate(DATA["rule"]):
        off = TomlText(TEXT).set_value(("rule", i, "enabled"), False)
        assert off.count("\nenabled = false\n") == 1
        assert off.replace("\nenabled = false\n", "\n") == TEXT  # one line added, no more
        lines = off.split("\n")
        row = lines.index("enabled = false", TEXT.split("\n").index(f'id = "{rule["id"]}"'))
        assert not lines[row - 1].startswith("#") and lines[row - 1].strip(), rule["id"]
        assert TomlText(off).delete(("rule", i, "enabled")) == TEXT


def test_removing_a_rule_keeps_the_banner_of_the_next_section():
    insult = next(i for i, r in enumerate(DATA["rule"]) if r["category"] == "insult")
    # The first insult rule: the section's banner is above it.
    before = DATA["rule"][insult - 1]["id"]
    new = TomlText(TEXT).remove_table(("rule", insult - 1))
    assert "#  모욕 / insult" in new
    assert [r["id"] for r in tomllib.loads(new)["rule"]] == \
        [r["id"] for r in DATA["rule"] if r["id"] != before]
    removed = changed(TEXT, new)
    assert all(line.startswith("-") for line in removed)
    assert not any(line.startswith("-#") for line in removed)
    for i in range(len(DATA["rule"])):  # every rule: only its own lines go
        new = TomlText(TEXT).remove_table(("rule", i))
        assert not any(line.startswith(("+", "-#")) for line in changed(TEXT, new)), i


def test_a_new_rule_is_appended_and_removing_it_gives_back_the_file():
    fields = [("id", "new.rule"), ("category", "profanity"), ("severity", 1), ("terms", [])]
    added = TomlText(TEXT).append_array_table("rule", fields)
    assert added.startswith(TEXT) and added[len(TEXT):] == (
        '\n[[rule]]\nid = "new.rule"\ncategory = "profanity"\nseverity = 1\nterms = []\n')
    with_term = TomlText(added).set_value(("rule", len(DATA["rule"]), "terms"), ["짜증"])
    assert with_term.endswith('id = "new.rule"\ncategory = "profanity"\nseverity = 1\n'
                              'terms = ["짜증"]\n')
    assert TomlText(with_term).remove_table(("rule", len(DATA["rule"]))) == TEXT


def test_long_lists_are_wrapped_as_the_rules_file_writes_them():
    i = rule_index("profanity.jot")
    terms = [*DATA["rule"][i]["terms"], "짜증"]
    new = TomlText(TEXT).set_value(("rule", i, "terms"), terms)
    lines = changed(TEXT, new)
    removed = [line for line in lines if line.startswith("-")]
    added = [line[1:] for line in lines if line.startswith("+")]
    assert removed[0].startswith('-terms = ["좆", ') and len(removed) == 2
    assert added[0] == "terms = [" and added[-1] == "]" and len(added) == 4
    assert all(row.startswith('    "') and row.endswith(",") and len(row) <= 96
               for row in added[1:-1])
    assert added[2].endswith('"짜증",')
    assert tomllib.loads(new)["rule"][i]["terms"] == terms


def test_limits_and_prompts_are_deleted_and_added_back_in_their_table():
    off = TomlText(TEXT).delete(("duration", "inbound", "final_at"))
    assert changed(TEXT, off) == ['-final_at = "20m"']
    assert TomlText(off).set_value(("duration", "inbound", "final_at"), "20m") == TEXT
    assert TomlText(TEXT).delete(("prompts", "warning", "file")) == TEXT  # absent: unchanged
    with_file = TomlText(TEXT).set_value(("prompts", "warning", "file"), "warning.wav")
    lines = with_file.split("\n")
    at = lines.index('file = "warning.wav"')
    assert lines[at - 2] == "[prompts.warning]" and lines[at - 1].startswith("text = ")


def test_a_missing_table_goes_before_the_rules():
    text = TomlText(TEXT).remove_table(("duration", "inbound"))
    text = TomlText(text).remove_table(("duration", "outbound"))
    assert "[duration." not in text
    new = TomlText(text).set_value(("duration", "inbound", "final_at"), "20m")
    lines = new.split("\n")
    at = lines.index("[duration.inbound]")
    assert lines[at + 1] == 'final_at = "20m"' and lines[at + 2] == ""
    assert lines.index("[[rule]]") == at + 3
    # In a file without rules: at the end, after a blank line.
    small = 'format = 1\nname = ""\n'
    assert TomlText(small).set_value(("prompts", "final", "text"), "끝") == \
        'format = 1\nname = ""\n\n[prompts.final]\ntext = "끝"\n'


def test_inline_tables_and_dotted_keys_are_edited_where_they_are_written():
    text = 'format = 1\nduration = { inbound = { final_at = "20m" } }  # limits\n'
    assert TomlText(text).set_value(("duration", "inbound", "final_at"), "2s") == \
        'format = 1\nduration = { inbound = { final_at = "2s" } }  # limits\n'
    text = '[prompts]\nwarning.text = "w"\n'
    assert TomlText(text).set_value(("prompts", "warning", "file"), "w.wav") == \
        '[prompts]\nwarning.text = "w"\nwarning.file = "w.wav"\n'


def test_a_new_table_beside_dotted_keys_keeps_the_other_keys_where_they_were():
    # tomlkit alone writes [duration.outbound] right after the dotted key, which makes
    # `name` one of its keys; here it goes at the end and `name` stays a top-level key.
    text = 'duration.inbound.final_at = "20m"\nname = "x"\n'
    new = TomlText(text).set_value(("duration", "outbound", "final_at"), "1m")
    assert new == text + '\n[duration.outbound]\nfinal_at = "1m"\n'
    assert tomllib.loads(new)["name"] == "x"


def test_an_edit_that_cannot_be_written_in_place_is_refused():
    # An inline table is closed: a [duration.outbound] header cannot add to it, and the
    # check of the result refuses what the text would become.
    text = 'format = 1\nduration = { inbound = { final_at = "20m" } }\n'
    with pytest.raises(NotEditable, match=r"duration\.outbound\.final_at"):
        TomlText(text).set_value(("duration", "outbound", "final_at"), "1m")
    with pytest.raises(NotEditable):
        TomlText('name = "x"\n').set_value(("name", "inner"), 1)  # a string is no table
    with pytest.raises(NotEditable):
        TomlText("name = \n").set_value(("name",), "x")  # not TOML


def test_the_editor_unit_cases():
    text = 'a = 1  # one\n[t]\nb = [\n  "x", # c\n  "y",\n]\nc = """\nq\n"""\n'
    assert TomlText(text).set_value(("t", "c"), "z") == \
        'a = 1  # one\n[t]\nb = [\n  "x", # c\n  "y",\n]\nc = "z"\n'
    assert TomlText(text).set_value(("t", "b"), ["p"]) == \
        'a = 1  # one\n[t]\nb = ["p"]\nc = """\nq\n"""\n'
    assert TomlText(text).set_value(("a",), 2).startswith("a = 2  # one\n")


def test_a_run_of_form_edits_matches_editing_each_text_afresh(monkeypatch):
    """Edits reuse the document the previous edit left instead of parsing again; the texts
    are those that parsing each one afresh gives."""
    i = rule_index("threat.kill")

    def edits() -> list[str]:
        text, out = TEXT, []
        for n in range(1, 6):
            text = TomlText(text).set_value(("rule", i, "terms"), ["죽이다", "가" * n])
            text = TomlText(text).set_value(("escalation", "window"), format_duration(60 * n))
            text = TomlText(text).set_value(("rule", i, "enabled"), n % 2 == 0)
            out.append(text)
        return out

    reused = edits()
    monkeypatch.setattr(toml_edit, "_parsed", toml_edit._Parsed(keep=0))  # nothing kept
    assert edits() == reused
    assert [line for line in changed(TEXT, reused[-1]) if "window" in line] == [
        '-window = "2m"      # 이보다 오래된 점수는 사라짐 / strikes older than this fall out',
        '+window = "5m"      # 이보다 오래된 점수는 사라짐 / strikes older than this fall out']


def test_durations_round_trip():
    for seconds in (0, 5, 59, 60, 90, 120, 900, 3600, 3725, 1.5):
        assert parse_duration(format_duration(seconds)) == seconds
    assert [format_duration(s) for s in (5, 120, 90, 3600)] == ["5s", "2m", "1m30s", "1h"]
