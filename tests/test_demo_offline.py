"""`callguard demo` on a user's machine: no ../shared, so no recorded Korean speech.

The demo then plays its call from a scripted transcript through the real session (policy,
prompts, final notice played to its end, hangup, SQLite store) and says so on screen. The
demo finds recorded speech in $CALLGUARD_SPEECH_DATA and else in ``shared/data/speech-ko``
beside the checkout, so these tests run a copy of the checkout that has no ``shared``
beside it, with $CALLGUARD_SPEECH_DATA naming an empty folder, and HOME and the XDG folders
in the test's temporary directory. Every timing checked is a call time the session
reported (seconds since answer), never a wall-clock duration.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest
from conftest import DATA, ROOT, require_shared

from callguard.demo import scripted
from callguard.demo.scenario import SCRIPT
from callguard.store import Store

INSULT, THREAT = 3, 4  # SCRIPT indices of the stand-in insult and threat


def _env(tmp_path: Path, code: Path, speech: Path | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("CALLGUARD_SPEECH_DATA", "CALLGUARD_CACHE", "CALLGUARD_CONFIG")}
    env.update({"PYTHONPATH": str(code), "HOME": str(tmp_path / "home"),
                "XDG_DATA_HOME": str(tmp_path / "data"),
                "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
                "XDG_CACHE_HOME": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1"})
    if speech is not None:
        env["CALLGUARD_SPEECH_DATA"] = str(speech)
    return env


def _demo(tmp_path: Path, *args: str, code: Path = ROOT, speech: Path | None = None,
          ) -> subprocess.CompletedProcess:
    cwd = tmp_path / "cwd"
    cwd.mkdir(exist_ok=True)
    return subprocess.run([sys.executable, "-m", "callguard", "demo", *args],
                          capture_output=True, text=True, encoding="utf-8", cwd=cwd,
                          env=_env(tmp_path, code, speech), timeout=600)


def _checkout_copy(tmp_path: Path) -> Path:
    """The package and its rules as a user's checkout has them, with no ``shared/``
    beside it."""
    dst = tmp_path / "user" / "callguard"
    skip = shutil.ignore_patterns("__pycache__")
    shutil.copytree(ROOT / "callguard", dst / "callguard", ignore=skip)
    shutil.copytree(ROOT / "rules", dst / "rules", ignore=skip)
    assert not (dst.parent / "shared").exists()
    return dst


@pytest.fixture(scope="module")
def offline(tmp_path_factory):
    """`callguard demo` run once from the copy, as a user runs it: (process, store, where)."""
    tmp = tmp_path_factory.mktemp("offline")
    code = _checkout_copy(tmp)
    empty = tmp / "no-speech-here"
    empty.mkdir()
    db = tmp / "demo.db"
    proc = _demo(tmp, "--db", str(db), code=code, speech=empty)
    return proc, db, {"tmp": tmp, "code": code, "empty": empty}


async def _calls(db: Path):
    async with Store.open(db) as store:
        return [await store.get_call(s.id) for s in await store.list_calls()]


def test_without_speech_the_demo_runs_scripted_and_says_so(offline):
    proc, _, where = offline
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    head = out.splitlines()[0]
    assert "SCRIPTED TRANSCRIPT" in head and "no speech recognition" in head
    # Why, and where it looked: the empty $CALLGUARD_SPEECH_DATA and ../shared of the copy.
    assert "No recorded Korean speech was found" in out
    looked = out.split("Looked in:", 1)[1]
    assert str(where["empty"]) in looked
    assert str(where["code"].parent / "shared" / "data" / "speech-ko") in looked
    # Where to go for speech recognition.
    assert "callguard simulate YOUR_CALL.wav" in out
    assert "CALLGUARD_SPEECH_DATA=DIR callguard demo" in out
    # The warning prompt, then the final notice played to its end and the hangup.
    assert "▶ prompt   warning (" in out and "▶ prompt   final (" in out
    assert "✆ hangup   after final notice played to the end" in out
    assert "call ended: final_notice" in out
    assert "demo check: OK" in out
    # Whisper was neither loaded nor prepared: nothing of the model in the fresh cache.
    assert "recogniser: scripted transcript (no speech recognition)" in out
    assert not (where["tmp"] / "cache" / "callguard" / "models").exists()
    assert (where["tmp"] / "cache" / "callguard" / "demo" / "scripted_call.wav").is_file()
    assert not (where["tmp"] / "home").exists()  # everything went to the XDG folders


def test_every_transcript_line_is_labelled_scripted(offline):
    out = offline[0].stdout
    said = [line for line in out.splitlines() if "“" in line]
    assert len(said) >= 4
    for line in said:
        assert re.match(r"\d\d:\d\d\.\d  (caller |counselor)\s+\[scripted\] “", line), line
    # The banner's script is labelled too, at the call times the lines have in the call.
    script = [line for line in out.splitlines()
              if re.match(r" {4}\d\d:\d\d\.\d  (caller|counselor)", line)]
    assert len(script) == len(SCRIPT)
    for line, (start, _, leg, sl) in zip(script, scripted.call_times(), strict=True):
        m, s = divmod(start, 60)
        assert line.startswith(f"    {int(m):02d}:{s:04.1f}  {leg:<9}  [scripted] {sl.says}")
    # No recognition, so no recognition delay is claimed.
    assert "after speech" not in out and "end of caller speech" not in out


def test_the_store_holds_the_scripted_call(offline):
    proc, db, _ = offline
    assert proc.returncode == 0, proc.stderr
    (call,) = asyncio.run(_calls(db))
    assert call.source == scripted.SOURCE and call.note == scripted.NOTE
    assert "Scripted" in call.note and "no speech recognition" in call.note
    assert call.stage == "final" and call.flagged
    assert call.end_reason == "final_notice" and call.hung_up_by == "agent"
    assert [v.kind for v in call.verdicts] == ["notice", "warn", "final"]
    kinds = [(a.kind, a.detail.split(" ")[0]) for a in call.actions]
    assert kinds == [("play_prompt", "warning"), ("play_prompt", "final"),
                     ("hangup", "final")]
    assert all(a.ok for a in call.actions)
    lines = {line.says for line in SCRIPT}
    assert call.utterances and all(u.text in lines for u in call.utterances)
    assert {h.rule_id for u in call.utterances for h in u.hits} == {
        "demo.standin_insult", "demo.standin_threat"}
    assert any(u.leg == "counselor" and u.text == SCRIPT[1].says for u in call.utterances)


def test_timings_are_the_sessions_call_times(tmp_path):
    """Each claim is checked against the script's call times: the stand-in insult is acted
    on when its line ends (not before: the scripted line arrives when the voice detector
    closes it), the final notice when the threat's line ends, and the hangup comes once the
    final notice has played to its end."""
    db = tmp_path / "demo.db"
    proc = _demo(tmp_path, "--scripted", "--json", "--db", str(db))
    assert proc.returncode == 0, proc.stderr
    *events, last = [json.loads(line) for line in proc.stdout.splitlines()]
    s = last["summary"]
    assert s["scripted"] is True and s["latency_p50_s"] is None
    times = scripted.call_times()
    insult_end, threat_end = times[INSULT][1], times[THREAT][1]
    (t_warn,) = [t for t, k in s["verdicts"] if k == "warn"]
    (t_final,) = [t for t, k in s["verdicts"] if k == "final"]
    # The early look runs after 100 ms of pause; the scripted recogniser takes no time.
    assert insult_end < t_warn < insult_end + 0.5
    assert threat_end < t_final < threat_end + 0.5
    (final,) = [e for e in events if e["event"] == "prompt_started" and e["key"] == "final"]
    assert final["at_s"] == pytest.approx(t_final, abs=0.01)
    (hangup,) = s["hangup_at"]
    assert t_final + final["seconds"] <= hangup <= t_final + final["seconds"] + 0.5
    said = [e for e in events if e["event"] == "transcribed"]
    assert said and all(e["scripted"] and e["lag_s"] is None for e in said)
    # Each utterance lies on its scripted line: 0.3 s of pre-roll before, and the
    # detector's last voiced frame plus 0.3 s of tail after.
    for e in said:
        if not e["after_end"]:
            assert any(leg == e["leg"] and a - 0.35 <= e["start_s"] and e["end_s"] <= b + 0.5
                       for a, b, leg, _ in times), e


def test_scripted_can_be_forced_where_speech_exists(tmp_path):
    """--scripted plays the scripted call from this checkout, beside ../shared."""
    proc = _demo(tmp_path, "--scripted", "--no-store")
    assert proc.returncode == 0, proc.stderr
    assert "--scripted was given" in proc.stdout and "Looked in" not in proc.stdout
    assert "demo check: OK" in proc.stdout
    assert not (tmp_path / "data").exists()  # --no-store: nothing written


def test_speech_that_is_found_is_used_not_replaced_by_the_script(tmp_path):
    """A speech folder that is there but incomplete is an error, as before: the scripted
    demo is for machines without speech, not a cover for broken data."""
    speech = tmp_path / "speech"
    speech.mkdir()
    with wave.open(str(speech / f"{SCRIPT[0].clip}.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(np.zeros(1600, "<i2").tobytes())
    proc = _demo(tmp_path, "--no-store", code=_checkout_copy(tmp_path), speech=speech)
    assert proc.returncode == 2
    assert f"{SCRIPT[1].clip}.wav" in proc.stderr and "Traceback" not in proc.stderr
    assert "SCRIPTED" not in proc.stdout


def test_scripted_lines_last_as_long_as_the_recordings():
    """The scripted call keeps the recorded demo's call times."""
    require_shared()
    for line in SCRIPT:
        with wave.open(str(DATA / "speech-ko" / f"{line.clip}.wav"), "rb") as w:
            assert abs(w.getnframes() / w.getframerate() - line.seconds) < 0.01, line.clip
