"""The demo's sample call, assembled at run time from real recorded Korean speech.

No Korean speech that callguard may redistribute was found (PyPI, Debian and npm were
searched; see README), so nothing is shipped: the call is put together on this machine from
the KsponSpeech utterances in ``../shared/data/speech-ko`` (or ``$CALLGUARD_SPEECH_DATA``),
which may be used here but not copied into the package.

Output: a stereo 16 kHz PCM16 WAV, caller left, counselor right.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from callguard.audio.wavfile import read_wav, write_wav
from callguard.config import REPO_ROOT
from callguard.errors import ResourceError
from callguard.vocabulary import Leg

RATE = 16_000


@dataclass(frozen=True)
class Line:
    """One recorded utterance: ``leg`` speaks file ``clip`` (``kNNN``), then ``pause_s``
    seconds pass before the next line starts.

    ``says`` is what is said, in short (the banner, and the line the scripted demo's
    stand-in recogniser returns); ``note`` what the line does in the story. ``seconds`` is
    the clip's length, so that the scripted demo (:mod:`callguard.demo.scripted`), which
    has no recording, places its lines at the same call times."""

    leg: Leg
    clip: str
    pause_s: float
    says: str
    note: str = ""
    seconds: float = 0.0

    @property
    def banner(self) -> str:
        return self.says + self.note


#: The story: two ordinary questions, then "몰라" (stand-in insult) → warning; after the
#: warning has played, "절대로 안 할 거야" (stand-in threat) → final notice → hangup. The
#: caller keeps talking over the final notice; that speech is recorded and transcribed too.
SCRIPT = (
    Line(Leg.CALLER, "k025", 0.8, "근데 왜 그 집을 기억을 못 해?", seconds=2.17),
    Line(Leg.COUNSELOR, "k038", 0.8, "네 네.", seconds=1.74),
    Line(Leg.CALLER, "k016", 1.2, "아 근데 강남 너무 비싸.", seconds=2.79),
    Line(Leg.CALLER, "k009", 9.5, "나도 몰라. …", "   ← stand-in insult: warning", seconds=6.33),
    Line(Leg.CALLER, "k031", 0.6, "아 그건 절대로 안 할 거야.",
         "   ← stand-in threat: final notice", seconds=4.86),
    Line(Leg.CALLER, "k027", 4.0, "아 니가 사주는 거였어?", "   (spoken over the final notice)",
         seconds=4.82),
)
#: Silence before the first line, seconds.
LEAD_S = 1.0


def place(lengths: list[int], rate: int) -> list[int]:
    """Start sample of each :data:`SCRIPT` line, given each line's length in samples at
    ``rate``: :data:`LEAD_S` of silence, then each line followed by its pause. The last
    entry is the call's length (after the last pause)."""
    pos = int(LEAD_S * rate)
    starts = []
    for line, n in zip(SCRIPT, lengths, strict=True):
        starts.append(pos)
        pos += n + int(line.pause_s * rate)
    return [*starts, pos]


class DemoDataMissing(ResourceError, FileNotFoundError):
    pass


def speech_candidates() -> list[Path]:
    """Where the demo looks for recorded speech, in order: ``$CALLGUARD_SPEECH_DATA`` (if
    set), then ``shared/data/speech-ko`` beside the checkout."""
    env = os.environ.get("CALLGUARD_SPEECH_DATA")
    candidates = [Path(env)] if env else []
    candidates.append(REPO_ROOT.parent / "shared" / "data" / "speech-ko")
    return candidates


def speech_dir() -> Path:
    """The speech-ko folder, or :class:`DemoDataMissing` saying where it was looked for."""
    candidates = speech_candidates()
    for c in candidates:
        if (c / f"{SCRIPT[0].clip}.wav").is_file():
            return c
    raise DemoDataMissing(
        "the demo needs recorded Korean speech, and none that may be redistributed could be "
        "found to ship with callguard. Looked in: " + ", ".join(str(c) for c in candidates)
        + ". Set CALLGUARD_SPEECH_DATA to a folder with KsponSpeech-style kNNN.wav files, or "
        "run `callguard simulate YOUR_CALL.wav` on a recording of your own.")


def build_call(out: Path, data: Path | None = None) -> list[tuple[float, str, Line]]:
    """Write the sample call to ``out``; return ``(start_s, leg, line)`` per line."""
    data = data or speech_dir()
    clips = []
    for line in SCRIPT:
        x, rate = read_wav(data / f"{line.clip}.wav")
        if rate != RATE:
            raise ValueError(f"{line.clip}.wav is {rate} Hz; expected {RATE}")
        clips.append(x[:, 0])
    *at, pos = place([c.size for c in clips], RATE)
    starts = [(p / RATE, line.leg, line) for p, line in zip(at, SCRIPT, strict=True)]
    stereo = np.zeros((pos, 2))
    for start, mono, line in zip(at, clips, SCRIPT, strict=True):
        ch = 0 if line.leg is Leg.CALLER else 1
        stereo[start:start + mono.size, ch] += mono
    write_wav(out, stereo, RATE)
    return starts
