"""The rules in force survive a bad reload."""

from __future__ import annotations

from callguard.rules import ActiveRules

V1 = '[[rule]]\nid = "a"\ncategory = "profanity"\nterms = ["씨발"]\n'
V2 = '[[rule]]\nid = "b"\ncategory = "insult"\nterms = ["멍청이"]\n'
BROKEN = '[[rule]]\nid = "b"\ncategory = "insult"\nterms = ["멍청이"]\nenabeld = false\n'


def test_reload_swaps_in_valid_rules(write_rules):
    path = write_rules(V1)
    engine = ActiveRules(path)
    v1 = engine.version
    assert [h.rule_id for h in engine.match("씨발").hits] == ["a"]
    path.write_text(V2, encoding="utf-8")
    result = engine.reload()
    assert result.ok and result.version == engine.version != v1
    assert engine.match("씨발").hits == ()
    assert [h.rule_id for h in engine.match("멍청이").hits] == ["b"]


def test_bad_reload_keeps_last_good_rules_and_says_why(write_rules):
    path = write_rules(V1)
    engine = ActiveRules(path)
    good = engine.version
    path.write_text(BROKEN, encoding="utf-8")
    result = engine.reload()
    assert not result.ok
    assert result.version == good == engine.version
    assert [str(p) for p in result.problems] == [
        f"{path}:5: rule b: unknown key 'enabeld' in [[rule]] (did you mean 'enabled'?); "
        "allowed: broad, category, description, enabled, exceptions, gap, id, mode, severity, "
        "terms"]
    assert "kept the last good rules" in result.message
    assert [h.rule_id for h in engine.match("씨발").hits] == ["a"]  # still enforcing V1
    assert engine.last_problems == result.problems


def test_reload_of_missing_file_keeps_rules(write_rules, tmp_path):
    engine = ActiveRules(write_rules(V1))
    result = engine.reload(tmp_path / "gone.toml")
    assert not result.ok and "cannot read the rules file" in result.message
    assert [h.rule_id for h in engine.match("씨발").hits] == ["a"]


def test_load_text_from_an_editor(write_rules):
    engine = ActiveRules(write_rules(V1))
    bad = engine.load_text("[[rule]\n", name="editor")
    assert not bad.ok and bad.problems[0].line == 1
    ok = engine.load_text(V2, name="editor")
    assert ok.ok and [h.rule_id for h in engine.match("멍청이").hits] == ["b"]
