"""GUI tests: a real Qt application on the offscreen platform (pytest-qt's ``qtbot``), the
real engine on the in-memory line (callguard.telephony.fake), the real SQLite store."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before anything imports Qt
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: synth, audiocheck

from callguard.asr.fake import ToneTranscriber
from callguard.engine.engine import Engine, EngineEvent
from callguard.telephony.fake import FakeLine

ABUSE_HZ = 1000.0  # a burst with this marker tone is "heard" as ABUSE_TEXT
ABUSE_TEXT = "이 새끼야"

GUI_RULES = """\
format = 1
name = "gui test"
[escalation]
window = "2m"
cooldown = "1s"
notice_at = 1
warn_at = 1
warnings = 1
final_at = 1
[duration.inbound]
final_at = "10m"
[duration.outbound]
final_at = "10m"
[prompts.warning]
file = "warning.wav"
text = "경고"
[prompts.final]
file = "final.wav"
text = "종료"
[prompts.duration_final]
file = "final.wav"
text = "시간 종료"
[[rule]]
id = "t.saekki"
category = "profanity"
terms = ["새끼"]
"""


def write_tone_wav(path: Path, hz: float, seconds: float) -> Path:
    import wave

    import numpy as np

    t = np.arange(int(seconds * 8000)) / 8000
    pcm = np.rint(6000 * np.sin(2 * np.pi * hz * t)).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(pcm.tobytes())
    return path


class LiveRig:
    """The engine running on a FakeLine in ``tmp``: ``rules`` (path), ``db`` (store path),
    ``line`` (ring calls on it), ``engine``; ``events`` collected; ``wait(kind)``."""

    def __init__(self, tmp: Path, rules_text: str = GUI_RULES) -> None:
        write_tone_wav(tmp / "warning.wav", 500, 1.0)
        write_tone_wav(tmp / "final.wav", 700, 1.2)
        self.rules = tmp / "rules.toml"
        self.rules.write_text(rules_text, encoding="utf-8")
        self.db = tmp / "calls.db"
        self.line = FakeLine("kim")
        self.events: list[EngineEvent] = []
        self._cv = threading.Condition()
        self.engine = Engine(
            line=self.line, rules_path=self.rules, store_path=self.db,
            transcriber_factory=lambda: ToneTranscriber({ABUSE_HZ: ABUSE_TEXT}),
            auto_answer=False, on_event=self._on_event, counselor="kim")

    def _on_event(self, ev: EngineEvent) -> None:
        with self._cv:
            self.events.append(ev)
            self._cv.notify_all()

    def wait(self, kind: str, timeout: float = 15, pred=lambda ev: True) -> EngineEvent:
        """Block the *test* thread (not Qt's event loop: use qtbot.waitUntil in GUI code
        paths) until an event of ``kind`` arrives."""
        deadline = time.monotonic() + timeout
        with self._cv:
            while True:
                for ev in self.events:
                    if ev.kind == kind and pred(ev):
                        return ev
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no {kind} event: {[e.kind for e in self.events]}")
                self._cv.wait(left)


@pytest.fixture
def live(tmp_path):
    """A started :class:`LiveRig` (stopped after the test). Create the window's bridge
    *before* events matter: EngineBridge chains to the rig's own event hook."""
    rig = LiveRig(tmp_path)
    rig.engine.start()
    yield rig
    rig.engine.stop()


def abusive_call_audio(seconds: float = 12.0, bursts=((0.3, 1.2), (4.5, 1.2))):
    """Caller audio (int16, 8 kHz): speech-like bursts carrying the abuse marker tone."""
    from synth import call_audio

    return call_audio([(s, d, ABUSE_HZ) for s, d in bursts], seconds)
