"""The demo without recorded speech: the same call, played from a labelled scripted transcript.

``callguard demo`` needs recorded Korean speech to show speech recognition, and callguard
may ship none (see :mod:`callguard.demo.scenario`). Where none is found, or with
``callguard demo --scripted``, the demo's story is told from a *scripted transcript*
instead: each line of :data:`~callguard.demo.scenario.SCRIPT` becomes a voiced burst of the
recording's length at the recording's call time, carrying a steady marker tone of its own,
and a stand-in recogniser (:class:`ScriptedLines`, a
:class:`~callguard.asr.fake.ToneTranscriber`) returns the scripted line for that tone. No
speech is recognised and Whisper is not loaded.

Everything from the audio on is the real session, as in the recorded demo: G.711, webrtcvad
cutting utterances (so each line arrives when the detector closes it, on the session's call
clock), the worker thread and its guard, the demo rules, the escalation policy, the warning,
the final notice played to its end, the hangup and the SQLite store.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from callguard.asr.fake import ToneTranscriber
from callguard.audio.wavfile import write_wav
from callguard.demo.scenario import SCRIPT, Line, place
from callguard.vocabulary import Leg, Source

#: The scripted call's audio rate: telephone audio, as the line would deliver it.
RATE = 8000
#: ``calls.source`` of a scripted demo call: a demo call, which says it was scripted in its
#: note (:data:`NOTE`).
SOURCE = Source.DEMO
#: Kept with the stored call (``calls.note``), so whoever reviews it knows.
NOTE = ("Scripted demo call: no speech recognition. No recorded Korean speech was used; the "
        "transcript is the demo's scripted lines and the recording holds tone bursts that "
        "stand for them.")


def marker_hz(index: int) -> float:
    """The marker tone of :data:`SCRIPT` line ``index``: 1000 Hz up in 200 Hz steps, inside
    the telephone band and far apart for the recogniser's 25 Hz tolerance."""
    return 1000.0 + 200.0 * index


class ScriptedLines(ToneTranscriber):
    """The stand-in recogniser: hears each line's marker tone as that line of the script."""

    name = "scripted transcript (no speech recognition)"

    def __init__(self, script: tuple[Line, ...] = SCRIPT) -> None:
        super().__init__({marker_hz(i): line.says for i, line in enumerate(script)})


def _layout(rate: int) -> tuple[list[int], list[int], int]:
    """Start and length (samples) of each scripted line, and the call's length."""
    lengths = [round(line.seconds * rate) for line in SCRIPT]
    *starts, total = place(lengths, rate)
    return starts, lengths, total


def call_times(rate: int = RATE) -> list[tuple[float, float, str, Line]]:
    """``(start_s, end_s, leg, line)`` of each scripted line: the recorded demo's times."""
    starts, lengths, _ = _layout(rate)
    return [(s / rate, (s + n) / rate, line.leg, line)
            for s, n, line in zip(starts, lengths, SCRIPT, strict=True)]


def voiced_burst(n: int, rate: int, marker: float, phase0: float = 0.0) -> np.ndarray:
    """``n`` samples of a vowel-like sound the voice detector takes for speech, with a steady
    ``marker`` tone (Hz) that dominates its spectrum; float, peak 1.

    The voice is a harmonic series on a pitch that rises and falls around 170 Hz, weighted
    by three vowel formants and pulsed at a syllable rate of about 4 Hz."""
    t = np.arange(n) / rate
    pitch = 170.0 + 40.0 * np.sin(2 * np.pi * 0.7 * t + phase0)
    phase = 2 * np.pi * np.cumsum(pitch) / rate
    voice = np.zeros(n)
    for k in range(1, 20):
        f = k * pitch
        weight = sum(np.exp(-((f - centre) / width) ** 2)
                     for centre, width in ((600.0, 200.0), (1100.0, 250.0), (2400.0, 350.0)))
        voice += np.where(f < 0.45 * rate, (0.05 + weight) / k, 0.0) * np.sin(k * phase)
    voice /= np.abs(voice).max()
    x = 0.5 * voice + 0.5 * np.sin(2 * np.pi * marker * t)
    x *= 0.65 + 0.35 * np.sin(2 * np.pi * 4.0 * t + phase0)
    return x / np.abs(x).max()


def build_scripted_call(out: Path) -> list[tuple[float, str, Line]]:
    """Write the scripted call to ``out`` (stereo 8 kHz PCM16 WAV, caller left, counselor
    right; faint line noise, and a voiced burst per scripted line at its call time);
    return ``(start_s, leg, line)`` per line, as :func:`~callguard.demo.scenario.build_call`
    does."""
    starts, lengths, total = _layout(RATE)
    rng = np.random.default_rng(12)
    stereo = rng.standard_normal((total, 2)) * 0.003
    for i, (start, n, line) in enumerate(zip(starts, lengths, SCRIPT, strict=True)):
        ch = 0 if line.leg is Leg.CALLER else 1
        stereo[start:start + n, ch] += 0.3 * voiced_burst(n, RATE, marker_hz(i), phase0=i)
    write_wav(out, stereo, RATE)
    return [(s / RATE, line.leg, line) for s, line in zip(starts, SCRIPT, strict=True)]
