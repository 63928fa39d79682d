"""The demo's sample call, assembled at run time from real recorded Korean speech.

No Korean speech that callguard may redistribute was found (PyPI, Debian and npm were
searched; see README), so nothing is shipped: the call is put together on this machine from
the KsponSpeech utterances in ``../shared/data/speech-ko`` (or ``$CALLGUARD_SPEECH_DATA``),
which may be used here but not copied into the package.

Output: a stereo 16 kHz PCM16 WAV, caller left, counselor right.
"""

from __future__ import annotations

import os
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from callguard.config import REPO_ROOT
from callguard.sim.callaudio import read_wav

RATE = 16_000


@dataclass(frozen=True)
class Line:
    """One recorded utterance: ``leg`` speaks file ``clip`` (``kNNN``), then ``pause_s``
    seconds pass before the next line starts."""

    leg: str
    clip: str
    pause_s: float
    says: str  # what is said, in short, for the banner


#: The story: two ordinary questions, then "몰라" (stand-in insult) → warning; after the
#: warning has played, "절대로 안 할 거야" (stand-in threat) → final notice → hangup. The
#: caller keeps talking over the final notice; that speech is recorded and transcribed too.
SCRIPT = (
    Line("caller", "k025", 0.8, "근데 왜 그 집을 기억을 못 해?"),
    Line("counselor", "k038", 0.8, "네 네."),
    Line("caller", "k016", 1.2, "아 근데 강남 너무 비싸."),
    Line("caller", "k009", 9.5, "나도 몰라. …   ← stand-in insult: warning"),
    Line("caller", "k031", 0.6, "아 그건 절대로 안 할 거야.   ← stand-in threat: final notice"),
    Line("caller", "k027", 4.0, "아 니가 사주는 거였어?   (spoken over the final notice)"),
)


class DemoDataMissing(FileNotFoundError):
    pass


def speech_dir() -> Path:
    """The speech-ko folder, or :class:`DemoDataMissing` saying where it was looked for."""
    env = os.environ.get("CALLGUARD_SPEECH_DATA")
    candidates = [Path(env)] if env else []
    candidates.append(REPO_ROOT.parent / "shared" / "data" / "speech-ko")
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
    lead = 1.0
    pos = int(lead * RATE)
    placed: list[tuple[int, np.ndarray, str]] = []
    starts = []
    for line in SCRIPT:
        x, rate = read_wav(data / f"{line.clip}.wav")
        if rate != RATE:
            raise ValueError(f"{line.clip}.wav is {rate} Hz; expected {RATE}")
        mono = x[:, 0]
        placed.append((pos, mono, line.leg))
        starts.append((pos / RATE, line.leg, line))
        pos += mono.size + int(line.pause_s * RATE)
    stereo = np.zeros((pos, 2))
    for start, mono, leg in placed:
        ch = 0 if leg == "caller" else 1
        stereo[start:start + mono.size, ch] += mono
    pcm = np.clip(np.rint(stereo * 32767), -32768, 32767).astype("<i2")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp.wav")
    with wave.open(str(tmp), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm.tobytes())
    tmp.replace(out)
    return starts
