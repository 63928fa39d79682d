"""The admin's rule commands, run as a user runs them (a real subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

RULES = """
[[rule]]
id = "p.ssibal"
category = "profanity"
terms = ["씨발"]
exceptions = ["시발점"]

[[rule]]
id = "t.kill"
category = "threat"
mode = "phrase"
terms = ["죽이다"]

[[rule]]
id = "c.die"
category = "crisis"
mode = "phrase"
terms = ["죽고 싶다"]
"""


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "callguard", *args], input=stdin,
                          capture_output=True, text=True, timeout=120, encoding="utf-8")


@pytest.fixture
def rules(write_rules) -> Path:
    return write_rules(RULES)


def test_version_and_help():
    out = run("--version")
    assert out.returncode == 0 and out.stdout.startswith("callguard ")
    assert run().returncode == 2


def test_check_ok(rules):
    out = run("rules", "check", str(rules))
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.startswith(f"OK: {rules}: 3 rules (3 enabled), 0 warning(s), version ")


def test_check_prints_every_error_and_fails(write_rules):
    path = write_rules('[[rule]]\nid = "a"\ncategory = "rude"\nterms = ["x"]\nenabeld = 1\n')
    out = run("rules", "check", str(path))
    assert out.returncode == 1
    lines = out.stdout.splitlines()
    assert lines[0].startswith(f"{path}:3: rule a: category must be one of")
    assert lines[1].startswith(f"{path}:5: rule a: unknown key 'enabeld'")
    assert lines[2] == f"2 error(s): {path} is not usable; the engine keeps the last good rules"


def test_check_strict_and_analysis(write_rules):
    path = write_rules('[[rule]]\nid = "a"\ncategory = "insult"\nmode = "morpheme"\n'
                       'terms = ["미친놈"]\n')
    out = run("rules", "check", "--strict", "--analysis", str(path))
    assert out.returncode == 1
    assert "Kiwi splits '미친놈'" in out.stdout
    assert f"{path}:1: rule a: '미친놈' → Kiwi 미치/VV + ᆫ/ETM + 놈/NNB; matches forms " \
           "미치 + ᆫ + 놈" in out.stdout


def test_test_shows_analysis_hits_and_exceptions(rules):
    out = run("rules", "test", str(rules), "시발점에서 씨발 죽여버린다")
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "> 시발점에서 씨발 죽여버린다" in text
    assert "Kiwi: 시발점/NNG 에서/JKB" in text
    assert "HIT [6:8] '씨발' rule p.ssibal (profanity 욕설, severity 1, nospace term '씨발')" \
        in text
    assert "HIT [9:11] '죽여' rule t.kill (threat 협박" in text
    assert "SUPPRESSED [0:2] '시발' rule p.ssibal" not in text  # 시발 is not a term here
    assert "→ 2 hit(s): profanity, threat" in text


def test_test_reads_stdin_and_prints_json(write_rules):
    path = write_rules('[[rule]]\nid = "a"\ncategory = "profanity"\nterms = ["시발"]\n'
                       '[exceptions]\n', "x.toml")
    path.write_text('[exceptions]\nterms = ["시발점"]\n[[rule]]\nid = "a"\n'
                    'category = "profanity"\nterms = ["시발"]\n', encoding="utf-8")
    out = run("rules", "test", "--json", str(path), stdin="시발점\n아 시 발\n\n")
    assert out.returncode == 0, out.stderr
    first, second = (json.loads(line) for line in out.stdout.splitlines())
    assert first["hits"] == [] and first["suppressed"][0]["exception"] == "시발점"
    assert second["hits"] == [{"rule": "a", "category": "profanity", "severity": 1,
                               "start": 2, "end": 5, "matched": "시 발", "term": "시발"}]


def test_test_with_broken_rules_fails_clearly(write_rules):
    path = write_rules("[[rule]\n")
    out = run("rules", "test", str(path), "안녕")
    assert out.returncode == 1 and f"{path}:1: TOML syntax error" in out.stderr


def test_eval_counts_by_hand(rules, tmp_path):
    data = tmp_path / "d.txt"
    data.write_text("\n".join([
        "씨발 뭐야|1",          # TP
        "죽여버린다 진짜|1",     # TP (threat)
        "시발점이 어디야|0",     # TN (exception)
        "너 정말 멍청하구나|1",  # FN
        "씨발 맛있다|0",        # FP
        "죽고 싶어요|0",        # crisis: not abuse, TN
    ]) + "\n", encoding="utf-8")
    out = run("rules", "eval", str(rules), str(data), "--labels", "1=abuse", "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["rows"] == 6
    o = report["overall"]
    assert (o["tp"], o["fp"], o["fn"], o["tn"]) == (2, 1, 1, 2)
    assert o["precision"] == pytest.approx(2 / 3, abs=1e-4)
    assert o["recall"] == pytest.approx(2 / 3, abs=1e-4)
    assert report["false_positives"][0]["line"] == 5
    assert report["false_negatives"][0]["text"] == "너 정말 멍청하구나"
    assert report["rule_hits"]["p.ssibal"] == {"tp": 1, "fp": 1}


def test_eval_tsv_with_category_map_and_table(rules, tmp_path):
    data = tmp_path / "d.tsv"
    data.write_text("document\tlabel\n씨발\t3\n죽여버린다\t1,3\n안녕하세요\t8\n죽일 거야\t8\n",
                    encoding="utf-8")
    out = run("rules", "eval", str(rules), str(data), "--text-col", "document",
              "--label-col", "label", "--labels", "3=profanity,1=threat")
    assert out.returncode == 0, out.stderr
    rows = {line.split()[0]: line.split()[1:] for line in out.stdout.splitlines()[2:6]
            if line.strip()}
    assert rows["profanity"] == ["1.000", "0.500", "0.667", "2"]  # 죽여버린다 is 1,3
    assert rows["threat"] == ["0.500", "1.000", "0.667", "1"]
    assert "false positives" in out.stdout and "5: 죽일 거야 ← t.kill:죽일" in out.stdout


def test_eval_bad_options(rules, tmp_path):
    data = tmp_path / "d.tsv"
    data.write_text("a\tb\nx\t1\n", encoding="utf-8")
    out = run("rules", "eval", str(rules), str(data), "--labels", "1=abuse",
              "--text-col", "nope")
    assert out.returncode == 2 and "no column named 'nope'" in out.stderr
    out = run("rules", "eval", str(rules), str(data), "--labels", "1=rudeness")
    assert out.returncode == 2 and "'rudeness' is not a category" in out.stderr
    out = run("rules", "eval", str(rules), str(data))
    assert out.returncode == 2 and "give --labels" in out.stderr


def test_bench_prints_json(rules):
    out = run("rules", "bench", str(rules), "--sentences", "50")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["sentences"] == 50 and result["rules_enabled"] == 3
    assert result["total_s"] > 0 and result["per_sentence_ms_p95"] >= result[
        "per_sentence_ms_p50"]
    assert result["hits"] > 0
