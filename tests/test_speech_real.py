"""Real-model tests: the bundled Whisper base model on real recorded Korean speech.

Audio is the speech-ko set read in place from ``../shared/data/speech-ko`` (or
``$CALLGUARD_SPEECH_DATA``), brought to telephone quality as ``callguard bench cer`` does:
8 kHz, µ-law round trip, 1 s gaps between files, and a continuous line-noise floor of RMS
30 on the int16 scale (-61 dBFS, fixed seed). The model loads once per module. CER is edits
/ reference characters after normalisation (:mod:`callguard.text.cer`).

Thresholds come from ``python -m callguard.bench.speech_cer --noise-rms 30 --files <SUBSET>``
on a 2-core machine: whole utterances CER 0.295, the continuous stream through the
live-call segmenter (SessionConfig defaults) 0.338 (0.311 / 0.341 with another noise
seed; 0.279 / 0.321 without noise). Greedy decoding is deterministic for identical audio,
but Whisper base swings by several CER points on a 300-character subset when the audio
changes slightly (another noise draw, another CPU's int8 kernels), so the margins are wide
while still far below what a broken pipeline gives (a wrong sample rate, a lost pre-roll,
a segmenter that drops or merges files: CER 0.6-1.0).
"""

from __future__ import annotations

import numpy as np
import pytest

from callguard.asr.guard import judge
from callguard.asr.transcript import Transcript
from callguard.audio.resample import to_16k
from callguard.bench.speech_cer import (
    Recognizer,
    SegSettings,
    build_stream,
    default_data_dir,
    load_items,
    run_stream,
    run_whole,
)

pytestmark = pytest.mark.slow

#: Ten files (74.6 s of speech, 305 reference characters): short and long, several with
#: internal pauses that the segmenter splits (k002, k004, k007, k020, k023).
SUBSET = ("k002", "k004", "k007", "k011", "k016", "k020", "k022", "k023", "k031", "k037")
NOISE_RMS = 30.0
WHOLE_MAX_CER = 0.40  # measured 0.295
STREAM_MAX_CER = 0.45  # measured 0.338
STREAM_MAX_GAP = 0.10  # stream CER - whole CER; measured 0.043 (0.030 and 0.042 in variants)
#: Segments for the 10 files: measured 17 (webrtcvad is deterministic fixed-point code). A
#: choppy segmenter (100 ms hangover, no pre-roll or tail) made 31 and still reached CER
#: 0.374, inside the CER bounds: Whisper hides some damage, so count the pieces too.
MAX_SEGMENTS = 2 * len(SUBSET)


@pytest.fixture(scope="module")
def data():
    folder = default_data_dir()
    if not all((folder / f"{n}.wav").is_file() and (folder / f"{n}.txt").is_file()
               for n in SUBSET):
        pytest.skip(f"speech-ko data not found at {folder} (clone callguard next to "
                    "../shared, or set CALLGUARD_SPEECH_DATA)")
    items = load_items(folder, names=SUBSET)
    stream, spans = build_stream(items, noise_rms=NOISE_RMS)  # 1 s gaps, µ-law
    return items, stream, spans


@pytest.fixture(scope="module")
def transcriber():
    """The bundled model, loaded once; a missing model is an error, not a skip (it is a
    dependency of callguard)."""
    from callguard.asr.bundled import bundled_model_dir
    from callguard.asr.whisper import WhisperTranscriber

    return WhisperTranscriber(bundled_model_dir(), cpu_threads=2)


@pytest.fixture(scope="module")
def whole(data, transcriber):
    items, stream, spans = data
    return run_whole(items, stream, spans, Recognizer(transcriber))


def test_whole_utterance_cer_at_telephone_quality(whole) -> None:
    worst = sorted(whole["files"], key=lambda f: -f["cer"])[:3]
    assert whole["cer"] <= WHOLE_MAX_CER, f"corpus CER {whole['cer']}; worst files: {worst}"
    # every file produced guarded text: nothing real speech says was thrown away
    assert all(f["hyp"] for f in whole["files"]), whole["files"]


def test_live_segmentation_keeps_whole_utterance_quality(data, transcriber, whole) -> None:
    items, stream, spans = data
    result = run_stream(items, stream, spans, Recognizer(transcriber),
                        SegSettings.session_default())
    detail = {k: result[k] for k in ("segments", "refs_split", "refs_merged", "refs_missed")}
    assert result["cer"] <= STREAM_MAX_CER, (result["cer"], detail)
    assert result["cer"] - whole["cer"] <= STREAM_MAX_GAP, (result["cer"], whole["cer"], detail)
    assert result["segments"] <= MAX_SEGMENTS, detail
    # files are 1 s apart: the segmenter must never run two of them together or lose one
    assert result["refs_merged"] == 0, detail
    assert result["refs_missed"] == 0, detail


def _accepted(transcriber, pcm8k: np.ndarray) -> tuple[str, Transcript]:
    transcript = transcriber.transcribe(to_16k(pcm8k, 8000))
    return judge(transcript).text, transcript


@pytest.mark.parametrize("kind", ["silence", "line_noise", "loud_noise"])
def test_silence_and_noise_give_no_text(transcriber, kind: str) -> None:
    """2 s at 8 kHz: digital silence, a line-noise floor (RMS 100) and loud white noise
    (RMS 2000, about -24 dBFS), each through the µ-law codec like a call."""
    from callguard.audio import g711

    rng = np.random.default_rng(7)
    n = 2 * 8000
    rms = {"silence": 0.0, "line_noise": 100.0, "loud_noise": 2000.0}[kind]
    pcm = np.clip(np.rint(rng.normal(0, rms, n)), -32768, 32767).astype(np.int16)
    pcm = g711.ulaw_to_pcm16(g711.pcm16_to_ulaw(pcm))
    text, transcript = _accepted(transcriber, pcm)
    assert text == "", (kind, transcript.segments)
