"""Validation: every error names file, line and rule; warnings do not block loading."""

from __future__ import annotations

import pytest

from callguard.rules import Category, MatchMode, RulesError, load_rules, parse_rules
from callguard.rules.loader import parse_duration
from callguard.rules.problems import Severity

GOOD = """
format = 1
name = "test"

[escalation]
window = "2m"
cooldown = 5
warn_at = 2
final_at = 3

[duration.inbound]
notice_at = "15m"
final_at = "20m"

[duration.outbound]
final_at = 600

[prompts.warning]
text = "경고"

[[rule]]
id = "p.ssibal"
category = "profanity"
terms = ["씨발", "시발"]
exceptions = ["시발점"]

[[rule]]
id = "t.kill"
category = "threat"
mode = "phrase"
severity = 3
terms = ["죽이다"]
"""


def errors_of(write_rules, body: str) -> list[str]:
    path = write_rules(body)
    with pytest.raises(RulesError) as info:
        load_rules(path)
    return [str(p) for p in info.value.errors]


def test_good_file_loads(write_rules, kiwi):
    path = write_rules(GOOD)
    result = load_rules(path, analyzer=kiwi)
    rs = result.ruleset
    assert result.warnings == []
    assert rs.path == path
    assert len(rs.version) == 64
    assert [r.id for r in rs.rules] == ["p.ssibal", "t.kill"]
    assert rs.rules[1].mode is MatchMode.PHRASE and rs.rules[1].category is Category.THREAT
    assert rs.rules[0].mode is MatchMode.NOSPACE  # the default mode
    assert rs.escalation.window == 120 and rs.escalation.cooldown == 5
    assert rs.escalation.final_at == 3
    assert rs.inbound.notice_at == 900 and rs.inbound.final_at == 1200
    assert rs.outbound.notice_at is None and rs.outbound.final_at == 600
    assert rs.prompts["warning"].text == "경고" and rs.prompts["warning"].file is None
    assert rs.rules[1].line == 26
    assert rs.description == ""


def test_version_is_content_hash(write_rules, kiwi):
    a = load_rules(write_rules(GOOD, "a.toml"), analyzer=kiwi).ruleset.version
    b = load_rules(write_rules(GOOD, "b.toml"), analyzer=kiwi).ruleset.version
    c = load_rules(write_rules(GOOD + "\n# changed\n", "c.toml"), analyzer=kiwi).ruleset.version
    assert a == b != c


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(90, 90.0), (1.5, 1.5), ("90s", 90.0), ("15m", 900.0), ("1h", 3600.0),
     ("15m30s", 930.0), ("1h2m3s", 3723.0)],
)
def test_durations(value, seconds):
    assert parse_duration(value) == seconds


def test_bare_number_string_is_seconds():
    assert parse_duration("900") == 900.0


@pytest.mark.parametrize("value", ["15 minutes", "", "m", True, [1]])
def test_bad_durations(value):
    with pytest.raises(ValueError):
        parse_duration(value)


def test_missing_file():
    with pytest.raises(RulesError) as info:
        load_rules("/nonexistent/rules.toml")
    assert "cannot read the rules file" in str(info.value)
    assert str(info.value).startswith("/nonexistent/rules.toml:")


def test_syntax_error_names_the_line(write_rules):
    errs = errors_of(write_rules, '[[rule]]\nid = "a"\nterms = ["x"\ncategory = "profanity"\n')
    path = write_rules('[[rule]]\nid = "a"\nterms = ["x"\ncategory = "profanity"\n')
    assert errs == [f"{path}:4: TOML syntax error: Unclosed array (column 1)"]


def test_not_utf8(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_bytes(b'name = "ok"\nname2 = "\xff"\n')
    with pytest.raises(RulesError) as info:
        load_rules(path)
    assert str(info.value.errors[0]) == f"{path}:2: the file is not valid UTF-8 text"


def test_unknown_rule_key_is_an_error_with_hint(write_rules):
    path = write_rules("""
        [[rule]]
        id = "p1"
        category = "profanity"
        terms = ["씨발"]
        enabeld = false
        """)
    with pytest.raises(RulesError) as info:
        load_rules(path)
    (err,) = info.value.errors
    assert str(err).startswith(f"{path}:5: rule p1: unknown key 'enabeld' in [[rule]]")
    assert "did you mean 'enabled'?" in str(err)


@pytest.mark.parametrize(
    ("body", "line", "fragment"),
    [
        ('colour = "red"\n', 1, "unknown key 'colour' in the top level"),
        ("[escalation]\nwarn_after = 2\n", 2, "unknown key 'warn_after' in [escalation]"),
        ("[duration.inbound]\nlimit = 5\n", 2, "unknown key 'limit' in [duration.inbound]"),
        ("[duration.sideways]\nfinal_at = 5\n", 1, "unknown key 'sideways' in [duration]"),
        ("[prompts.hello]\ntext = 'x'\n", 1, "unknown key 'hello' in [prompts]"),
        ("[prompts.warning]\nfiel = 'x.wav'\n", 2, "unknown key 'fiel' in [prompts.warning]"),
        ("[dictionary]\nword = []\n", 2, "unknown key 'word' in [dictionary]"),
        ("[exceptions]\nterm = []\n", 2, "unknown key 'term' in [exceptions]"),
    ],
)
def test_unknown_keys_everywhere(write_rules, body, line, fragment):
    path = write_rules(body)
    errs = errors_of(write_rules, body)
    assert any(e.startswith(f"{path}:{line}:") and fragment in e for e in errs), errs


RULE_ERRORS = [
    # (rule body lines after [[rule]] on line 1, expected line, rule id shown, fragment)
    ('category = "profanity"\nterms = ["x"]', 1, "#1", "every rule needs an 'id'"),
    ('id = "bad id!"\ncategory = "profanity"\nterms = ["x"]', 2, "#1", "every rule needs an 'id'"),
    ('id = "r"\ncategory = "rude"\nterms = ["x"]', 3, "r", "category must be one of"),
    ('id = "r"\nterms = ["x"]', 1, "r", "category must be one of"),
    ('id = "r"\ncategory = "insult"\nmode = "regex"\nterms = ["x"]', 4, "r",
     "mode must be one of surface, nospace, morpheme, phrase, not 'regex'"),
    ('id = "r"\ncategory = "insult"', 1, "r", "rule has no 'terms'"),
    ('id = "r"\ncategory = "insult"\nterms = []', 4, "r", "terms must list at least one"),
    ('id = "r"\ncategory = "insult"\nterms = "x"', 4, "r", "terms must be a list of strings"),
    ('id = "r"\ncategory = "insult"\nterms = ["x", 3]', 4, "r", "must hold only strings"),
    ('id = "r"\ncategory = "insult"\nterms = ["x", " "]', 4, "r", "holds an empty string"),
    ('id = "r"\ncategory = "insult"\nterms = ["보지/NNG"]', 4, "r",
     "has a part-of-speech tag, which only 'morpheme' and 'phrase' modes use"),
    ('id = "r"\ncategory = "insult"\nmode = "morpheme"\nterms = [\n  "ok",\n  "보지/XX",\n]',
     7, "r", "unknown part-of-speech tag 'XX'"),
    ('id = "r"\ncategory = "insult"\nterms = ["..."]', 4, "r", "has no letters to match"),
    ('id = "r"\ncategory = "insult"\nterms = ["x"]\nseverity = 0', 5, "r",
     "'severity' must be at least 1"),
    ('id = "r"\ncategory = "insult"\nterms = ["x"]\nseverity = 11', 5, "r",
     "severity must be 1-10"),
    ('id = "r"\ncategory = "insult"\nterms = ["x"]\nseverity = "high"', 5, "r",
     "'severity' must be an integer"),
    ('id = "r"\ncategory = "insult"\nterms = ["x"]\nenabled = "no"', 5, "r",
     "enabled must be true or false"),
    ('id = "r"\ncategory = "insult"\nterms = ["x"]\ngap = 3', 5, "r",
     "'gap' only applies to mode = \"phrase\""),
    ('id = "r"\ncategory = "insult"\nterms = ["x"]\nexceptions = "y"', 5, "r",
     "exceptions must be a list of strings"),
    ('id = "r"\ncategory = "insult"\nterms = ["x"]\ndescription = 5', 5, "r",
     "description must be a string"),
    ('id = "r"\ncategory = "insult"\nterms = ["x"]\nexceptions = [\n "a",\n "시발점/NNG",\n]',
     7, "r", "exceptions are matched as text"),
]


@pytest.mark.parametrize(("body", "line", "rule_id", "fragment"), RULE_ERRORS)
def test_rule_errors(write_rules, body, line, rule_id, fragment):
    path = write_rules("[[rule]]\n" + body + "\n")
    errs = errors_of(write_rules, "[[rule]]\n" + body + "\n")
    expected = f"{path}:{line}: rule {rule_id}: "
    assert any(e.startswith(expected) and fragment in e for e in errs), errs


def test_duplicate_rule_id(write_rules):
    body = ('[[rule]]\nid = "a"\ncategory = "insult"\nterms = ["xx"]\n\n'
            '[[rule]]\nid = "a"\ncategory = "insult"\nterms = ["yy"]\n')
    path = write_rules(body)
    errs = errors_of(write_rules, body)
    assert errs == [f"{path}:7: rule a: duplicate rule id (first defined on line 1)"]


@pytest.mark.parametrize(
    ("body", "line", "fragment"),
    [
        ("format = 2\n", 1, "unsupported format 2"),
        ("name = 3\n", 1, "name must be a string"),
        ("[escalation]\nnotice_at = 3\nwarn_at = 2\n", 2, "notice_at (3) must not be above"),
        ("[escalation]\nwindow = 0\n", 2, "'window' must be at least 1"),
        ("[escalation]\ncooldown = -1\n", 2, "'cooldown' must be at least 0"),
        ("[escalation]\nwarnings = 0\n", 2, "'warnings' must be at least 1"),
        ("[escalation]\nwindow = 'soon'\n", 2, "'window': 'soon' is not a duration"),
        ("description = 3\n", 1, "description must be a string"),
        ("[exceptions]\nterms = ['시발점/NNG']\n", 2, "exception '시발점/NNG' has a part-of-"),
        ("[duration.inbound]\nnotice_at = '20m'\nfinal_at = '15m'\n", 3,
         "final_at (900 s) must come after notice_at (1200 s)"),
        ("[prompts]\nwarning = 'x.wav'\n", 2, "[prompts.warning] must be a table"),
        ("[dictionary]\nwords = ['씹선비']\n", 2, "must be one 'form/TAG'"),
        ("[dictionary]\naliases = { '개색기' = '개새끼' }\n", 2, "every morpheme needs a tag"),
        ("[dictionary]\naliases = { '개색기' = 3 }\n", 2, "must map to a string"),
        ("[exceptions]\nterms = [1]\n", 2, "exceptions must hold only strings"),
        ("rule = 3\n", 1, "rules must be written as [[rule]] tables"),
    ],
)
def test_file_level_errors(write_rules, body, line, fragment):
    path = write_rules(body)
    errs = errors_of(write_rules, body)
    assert any(e.startswith(f"{path}:{line}: ") and fragment in e for e in errs), errs


def test_all_errors_reported_at_once(write_rules):
    body = ('colour = 1\n[[rule]]\nid = "a"\ncategory = "rude"\nterms = ["x"]\n'
            '[[rule]]\nid = "b"\ncategory = "insult"\nterms = []\n')
    errs = errors_of(write_rules, body)
    assert len(errs) == 3
    assert [e.split(":")[1] for e in errs] == ["1", "4", "9"]  # sorted by line


def test_warnings_do_not_block(write_rules, kiwi):
    path = write_rules("""
        [prompts.final]
        file = "prompts/missing.wav"
        text = "종료합니다"

        [[rule]]
        id = "a"
        category = "profanity"
        terms = ["씨발", "씨 발"]

        [[rule]]
        id = "b"
        category = "sexual"
        mode = "morpheme"
        terms = ["보지"]
        """)
    result = load_rules(path, analyzer=kiwi)
    msgs = [str(w) for w in result.warnings]
    assert all(w.severity is Severity.WARNING for w in result.warnings)
    assert f"{path}:2: warning: prompt file 'prompts/missing.wav' not found; prompt 'final' " \
           "cannot be played" in msgs
    assert any(m.startswith(f"{path}:8: warning: rule a: term '씨 발' duplicates a term of "
                            "this rule") for m in msgs), msgs
    # Kiwi reads 보지 alone as the verb 보 + ending 지: the admin is told to pin a tag.
    assert any(m.startswith(f"{path}:14: warning: rule b: Kiwi reads '보지' as 보/VV + 지/E")
               for m in msgs), msgs
    assert result.ruleset.prompts["final"].file == path.parent / "prompts/missing.wav"


def test_kiwi_split_warning_and_no_content_error(write_rules, kiwi):
    path = write_rules("""
        [[rule]]
        id = "a"
        category = "insult"
        mode = "morpheme"
        terms = ["미친놈"]
        """)
    (warning,) = load_rules(path, analyzer=kiwi).warnings
    assert "Kiwi splits '미친놈' into 미치/VV + ᆫ/ETM + 놈/NNB" in str(warning)
    body = '[[rule]]\nid = "b"\ncategory = "insult"\nmode = "phrase"\nterms = ["에서"]\n'
    with pytest.raises(RulesError) as info:
        parse_rules(body, name="x.toml", analyzer=kiwi)
    assert "has no content morpheme to match" in str(info.value)


def test_duplicate_across_rules_warns(kiwi):
    body = ('[[rule]]\nid = "a"\ncategory = "insult"\nterms = ["멍청이"]\n'
            '[[rule]]\nid = "b"\ncategory = "insult"\nterms = ["멍 청 이"]\n')
    (warning,) = parse_rules(body, name="r.toml", analyzer=kiwi).warnings
    assert str(warning) == "r.toml:8: warning: rule b: term '멍 청 이' duplicates a term of " \
                           "rule a"


def test_empty_file_is_an_error_not_a_warning():
    with pytest.raises(RulesError) as info:
        parse_rules("", name="e.toml")
    assert [str(e) for e in info.value.errors] == [
        "e.toml: the file has no [[rule]]: no abuse would be detected (an empty rule set is "
        "refused; the last good rules stay in force)"]
