"""The agent at run time (issue 13, findings 8 and 9): the rules file changing under a
running ``callguard run``, a broken rules file at start, an empty rules file, a broken
prompt recording, SIGHUP and SIGTERM mid-call, the store's file modes and the settings
file holding the SIP password.

The agent is a real ``callguard run`` process registered to kamailio on 127.0.0.1 and called
by baresip, except that its recogniser is the tone fake (callguard.asr.fake): a burst with
marker tone ``ABUSE_HZ`` is heard as "이 새끼야", one with ``NEW_HZ`` as a sentence holding
``NEW_TERM``, so a test says what the caller said without loading Whisper. What is not
about the process (what ``rules check`` says, what the store records a prompt played) uses
the command in-process or the real engine on the in-memory line.
"""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from fakerig import ABUSE_HZ, FakeRig, rules_text, tone, write_wav
from officepbx import agent_settings, bob_calls_agent, pbx_fixture
from peers.kamailio import Kamailio
from synth import call_audio

from callguard.cli.main import main as callguard_main
from callguard.store import Store

NEW_HZ = 1400.0
NEW_TERM = "멍텅구리"

# ``callguard run`` with the tone recogniser instead of Whisper (the same command, wiring,
# engine, line and store otherwise).
AGENT = f"""\
import importlib
import sys

from callguard.asr.fake import ToneTranscriber

SCRIPT = {{{ABUSE_HZ!r}: "이 새끼야", {NEW_HZ!r}: "이 {NEW_TERM} 같으니"}}


def factory(settings):
    return lambda: ToneTranscriber(SCRIPT)


for module, name in (("callguard.engine.wiring", "transcriber_factory"),
                     ("callguard.sim.runner", "whisper_factory")):
    try:
        mod = importlib.import_module(module)
    except ImportError:
        continue
    if hasattr(mod, name):
        setattr(mod, name, factory)

from callguard.cli.main import main

sys.exit(main(sys.argv[1:]))
"""

NEW_RULE = f"""
[[rule]]
id = "t.new"
category = "insult"
terms = ["{NEW_TERM}"]
"""


pbx = pbx_fixture("kamailio", "baresip")


class Agent:
    """``callguard run --auto-answer`` in ``tmp`` on kamailio: rules ``rules.toml`` (with
    tone prompts ``warning.wav`` and ``final.wav``), store ``store/calls.db``, settings
    ``agent.toml``; stdout and stderr each in a file."""

    def __init__(self, pbx: Kamailio, tmp: Path, rules: str = rules_text()) -> None:
        self.pbx = pbx
        self.tmp = tmp
        write_wav(tmp / "warning.wav", tone(500, 1.0))
        write_wav(tmp / "final.wav", tone(700, 1.21))
        self.rules = tmp / "rules.toml"
        self.rules.write_text(rules, encoding="utf-8")
        self.db = tmp / "store" / "calls.db"
        self.config = tmp / "agent.toml"
        self.config.write_text(agent_settings(pbx, self.rules, self.db, rtp_low=33000,
                                              rtp_high=33998), encoding="utf-8")
        self.config.chmod(0o600)
        self.script = tmp / "agent.py"
        self.script.write_text(AGENT, encoding="utf-8")
        self.proc: subprocess.Popen | None = None
        self.runs = 0

    @property
    def out(self) -> str:
        return (self.tmp / f"out{self.runs}.log").read_text(errors="replace")

    @property
    def err(self) -> str:
        return (self.tmp / f"err{self.runs}.log").read_text(errors="replace")

    def start(self, *, umask: int = 0o022) -> Agent:
        self.runs += 1
        out = (self.tmp / f"out{self.runs}.log").open("wb")
        err = (self.tmp / f"err{self.runs}.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, str(self.script), "run", "--config", str(self.config),
             "--auto-answer"], stdout=out, stderr=err, stdin=subprocess.DEVNULL,
            cwd=Path(__file__).parent, preexec_fn=lambda: os.umask(umask),
            env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
        self.wait_out("line: registered", 60)
        return self

    def wait_out(self, text: str, timeout: float, *, err: bool = False) -> None:
        deadline = time.monotonic() + timeout
        while text not in (self.err if err else self.out):
            assert self.proc is not None
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"no {text!r} from the agent; stdout:\n{self.out[-3000:]}"
                                     f"\nstderr:\n{self.err[-3000:]}")
            time.sleep(0.1)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise

    def call(self, audio: np.ndarray, *, ends_within: float = 30):
        """Bob calls the agent and plays ``audio``; returns bob's CALL_CLOSED event."""
        src = write_wav(self.tmp / f"caller{self.runs}.wav", audio)
        with bob_calls_agent(self.pbx, src) as bob:
            bob.wait_event("CALL_ESTABLISHED", 10)
            return bob.wait_event("CALL_CLOSED", ends_within)

    def calls(self):
        async def read():
            async with Store.open(self.db) as store:
                return [await store.get_call(c.id) for c in
                        sorted(await store.list_calls(), key=lambda c: c.id)]
        return asyncio.run(read())

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


@pytest.fixture
def agent(pbx, tmp_path):
    made: list[Agent] = []

    def make(rules: str = rules_text()) -> Agent:
        a = Agent(pbx, tmp_path, rules)
        made.append(a)
        return a

    yield make
    for a in made:
        a.kill()


def abuse(hz: float) -> np.ndarray:
    """Two speech-like bursts carrying ``hz``: the first warns, the second ends the call."""
    return call_audio([(0.5, 1.2, hz), (4.7, 1.2, hz), ], 20.0)


def hit_rules(rec) -> set[str]:
    return {h.rule_id for u in rec.utterances for h in u.hits}


def assert_ran_on_the_last_good_rules(a: Agent, closed: dict, good: bytes) -> None:
    """Bob's call closed; the one call stored hit only ``t.saekki`` of the last good rules,
    ended by the final notice, and was stored as run on them (``good``: the rules file's
    bytes then; the stored version is their SHA-256)."""
    assert "CALL_CLOSED" in closed["type"]
    (rec,) = a.calls()
    assert hit_rules(rec) == {"t.saekki"} and rec.end_reason == "final_notice"
    import hashlib
    assert rec.rules_version == hashlib.sha256(good).hexdigest()


def edit(path: Path, text: str) -> None:
    """Rewrite the file as an editor does (its mtime moves on even within one tick)."""
    before = path.stat().st_mtime_ns
    path.write_text(text, encoding="utf-8")
    if path.stat().st_mtime_ns == before:
        os.utime(path, ns=(before + 1_000_000, before + 1_000_000))


# --- finding 8: the rules at run time --------------------------------------------------------


@pytest.mark.slow
def test_a_rules_file_edited_while_running_is_picked_up_and_its_new_term_hit(agent):
    a = agent().start()
    try:
        edit(a.rules, rules_text() + NEW_RULE)
        a.wait_out("in force", 15)  # the reload, within a poll or two
        closed = a.call(abuse(NEW_HZ))
    finally:
        assert a.stop() == 0
    assert "CALL_CLOSED" in closed["type"]
    (rec,) = a.calls()
    assert "t.new" in hit_rules(rec), hit_rules(rec)
    assert rec.end_reason == "final_notice"
    # The call ran on the edited rules, kept in the store as its evidence.
    import hashlib
    assert rec.rules_version == hashlib.sha256(a.rules.read_bytes()).hexdigest()


@pytest.mark.slow
def test_a_broken_edit_keeps_the_old_rules_and_says_why(agent):
    a = agent().start()
    good = a.rules.read_bytes()
    try:
        edit(a.rules, rules_text() + NEW_RULE + "\n[[rule]]\nid = \"oops\"\n")
        a.wait_out("refused", 15, err=True)  # stderr: the file on disk is not what runs
        assert "rule has no 'terms'" in a.out  # and why, with the file and line
        assert "kept the last good rules" in a.out
        closed = a.call(abuse(ABUSE_HZ))
    finally:
        assert a.stop() == 0
    assert_ran_on_the_last_good_rules(a, closed, good)


@pytest.mark.slow
def test_a_broken_file_at_start_starts_the_line_on_the_last_good_rules(agent):
    a = agent().start()
    good = a.rules.read_bytes()
    assert a.stop() == 0
    a.rules.write_text("format = 1\n[[rule]]\nid = \"x\"\ncategory = \"nonsense\"\n"
                       "terms = [\"새끼\"]\n", encoding="utf-8")
    a.start()
    try:
        # Loudly: on stderr, and in the status line.
        assert "running on the last good rules from" in a.err, a.err
        assert "the file has 1 error(s)" in a.err
        assert "status: running on the last good rules from" in a.out
        closed = a.call(abuse(ABUSE_HZ))
    finally:
        assert a.stop() == 0
    assert_ran_on_the_last_good_rules(a, closed, good)


def test_an_empty_rules_file_is_refused_by_rules_check(tmp_path, capsys):
    empty = tmp_path / "empty.toml"
    empty.write_text("format = 1\nname = \"nothing\"\n", encoding="utf-8")
    assert callguard_main(["rules", "check", str(empty)]) == 1
    out = capsys.readouterr().out
    assert "has no [[rule]]" in out and "not usable" in out, out


def test_the_shipped_rules_still_pass_check(capsys):
    root = Path(__file__).parents[1]
    for path in (root / "rules" / "default.toml", root / "callguard" / "demo" / "demo_rules.toml"):
        assert callguard_main(["rules", "check", str(path)]) == 0, capsys.readouterr().out


# --- finding 9: prompts, signals, files ---------------------------------------------------------


def test_a_broken_prompt_wav_is_a_check_error_naming_the_file_and_why(tmp_path, capsys):
    rules = tmp_path / "rules.toml"
    rules.write_text(rules_text(), encoding="utf-8")
    write_wav(tmp_path / "final.wav", tone(700, 1.0))
    (tmp_path / "warning.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEnot audio at all")
    assert callguard_main(["rules", "check", str(rules)]) == 1
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if "warning.wav" in ln)
    assert "cannot be played" in line and "PCM WAV" in line, out
    assert ":14:" in line or ":15:" in line, line  # the [prompts.warning] file line


def test_the_store_records_the_chime_when_a_prompt_has_no_recording(tmp_path):
    text = rules_text().replace('[prompts.warning]\nfile = "warning.wav"\n',
                                "[prompts.warning]\n")
    r = FakeRig(tmp_path, text, auto_answer=True, stepped=True)
    r.engine.start()
    try:
        call = r.answered()
        call.far_play(call_audio([(0.3, 1.2, ABUSE_HZ)], 4.0), at_s=0.0)
        r.advance(4.0)
        r.engine.hangup()
        r.advance(0.1)
        ended = r.wait("ended")
    finally:
        r.stop()

    async def read():
        async with Store.open(r.db) as store:
            return await store.get_call(ended.data["store_id"])
    rec = asyncio.run(read())
    (played,) = [a for a in rec.actions if a.kind == "play_prompt"]
    assert played.prompt == "warning"
    assert played.detail == "warning (chime: no recording; 1.5 s)", played.detail
    assert "chime" in (played.error or "")
    assert played.seconds == pytest.approx(1.5)  # what the caller heard, for that long


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGTERM], ids=["SIGHUP", "SIGTERM"])
def test_a_stop_signal_mid_call_sends_bye_and_stores_agent_stopped(agent, sig):
    a = agent().start()
    src = write_wav(a.tmp / "caller.wav", call_audio([], 40.0))
    try:
        with bob_calls_agent(a.pbx, src) as bob:
            bob.wait_event("CALL_ESTABLISHED", 10)
            time.sleep(3.0)
            a.proc.send_signal(sig)
            closed = bob.wait_event("CALL_CLOSED", 10)  # our BYE
    finally:
        status = a.stop()
    assert status == 0, (status, a.err[-2000:])
    assert "CALL_CLOSED" in closed["type"]
    (rec,) = a.calls()
    assert rec.end_reason == "agent_stopped", rec.end_reason
    assert rec.hung_up_by == "agent"
    assert 2.0 < rec.duration_s < 8.0, rec.duration_s


@pytest.mark.slow
def test_the_store_is_private_whatever_the_umask(agent, tmp_path):
    a = agent()
    a.db.parent.mkdir(mode=0o755)  # made by someone else first, e.g. callguard demo
    a.start(umask=0o022)
    try:
        mode = {p.name: stat.S_IMODE(p.stat().st_mode)
                for p in (a.db.parent, a.db, a.db.with_name("calls.db-wal"),
                          a.db.with_name("calls.db-shm"))}
    finally:
        assert a.stop() == 0
    assert mode == {"store": 0o700, "calls.db": 0o600, "calls.db-wal": 0o600,
                    "calls.db-shm": 0o600}, {k: oct(v) for k, v in mode.items()}


def test_an_exported_evidence_package_is_0600(tmp_path):
    from callguard.evidence.package import export_package

    async def go() -> Path:
        async with Store.open(tmp_path / "calls.db") as store:
            call_id = await store.create_call("inbound", "sip:bob@127.0.0.1", "sip",
                                              1_767_225_600.0, None, 8000)
            await store.append_audio(call_id, "caller", 0, np.zeros(800, "<i2").tobytes())
            await store.end_call(call_id, 1_767_225_601.0, 1.0, "caller_hangup", "remote")
            return await export_package(store, call_id, tmp_path / "out" / "call.zip",
                                        "sup", None)
    old = os.umask(0o022)
    try:
        path = asyncio.run(go())
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.slow
def test_a_settings_file_with_the_password_readable_by_others_is_warned_about(agent):
    a = agent()
    a.config.chmod(0o644)
    a.start()
    try:
        a.wait_out("holds the SIP password", 5, err=True)
        assert "chmod 600" in a.err
    finally:
        assert a.stop() == 0
    a.config.chmod(0o600)
    a.start()
    assert a.stop() == 0
    assert "SIP password" not in a.err
