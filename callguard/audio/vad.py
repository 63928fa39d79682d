"""Utterance segmentation of one audio direction with webrtcvad (pure, synchronous).

Input is mono int16 PCM at ``sample_rate`` (8 kHz for G.711 calls), pushed in chunks of any
size. The segmenter cuts it into frames of ``frame_ms`` (10, 20 or 30 ms: the sizes
webrtcvad accepts), asks a voice detector whether each frame is voiced, and emits
:class:`Utterance` objects. There is no clock: time is the **stream timeline in samples**,
counted from the first sample pushed, so an utterance's ``start``/``end`` line up with the
call recording and with transcripts.

State machine, per frame:

* **Idle → speech** when at least ``onset_voiced_ms`` of the last ``onset_window_ms`` of
  frames are voiced (the ring buffer of the classic py-webrtcvad example, shorter): one
  click or one voiced 10 ms frame in noise does not start an utterance. Speech starts at the
  first voiced frame of that window; the utterance starts ``pre_roll_ms`` earlier (so the
  recogniser hears the onset), but never before the stream start or the end of the previous
  utterance: utterances never overlap.
* **Speech → idle** after ``hangover_ms`` of consecutive unvoiced frames. Pauses shorter
  than that stay inside one utterance (500-800 ms suits spontaneous speech; 300 ms split
  sentences at internal pauses in the measurements of DESIGN.md). The utterance ends
  ``tail_ms`` after the last voiced frame (the rest of the hangover is silence the
  recogniser does not need; it can become the next utterance's pre-roll). Utterances whose
  speech (first to last voiced frame) is shorter than ``min_speech_ms`` are dropped: coughs,
  clicks, line noise.
* **Forced cut** when an utterance reaches ``max_utterance_s``: it is emitted with
  ``forced=True`` and exactly that length, and a new utterance continues from the next
  sample (no gap, no pre-roll, still in speech), so a monologue is transcribed in bounded
  pieces. A continuation is emitted if it holds any voiced frame (``min_speech_ms`` does not
  apply: the speech was already confirmed).

Defaults follow DESIGN.md §2: 20 ms frames, mode 2, 600 ms hangover. The webrtcvad cost is
about 100 µs per audio second at 8 kHz.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

__all__ = ["Segmenter", "Utterance", "VoicedFn", "WebRtcVoiced", "quietest_frame"]

Int16Array = npt.NDArray[np.int16]

_WEBRTC_RATES = (8000, 16000, 32000, 48000)
_FRAME_MS = (10, 20, 30)


class VoicedFn(Protocol):
    """Voice detector: one frame of int16 PCM (``frame_ms`` at the segmenter's rate) → voiced?"""

    def __call__(self, frame: Int16Array) -> bool: ...


class WebRtcVoiced:
    """The default detector: ``webrtcvad.Vad(mode).is_speech`` on little-endian int16 bytes.

    ``mode`` 0-3 is webrtcvad's aggressiveness (3 rejects the most non-speech). Modes 1-2
    with 20-30 ms frames did best on telephone audio; mode 3 missed whole utterances in
    noise (DESIGN.md §2).
    """

    def __init__(self, mode: int = 2, sample_rate: int = 8000) -> None:
        import webrtcvad  # deferred: the pure parts and fake-detector tests don't need it

        if sample_rate not in _WEBRTC_RATES:
            raise ValueError(f"webrtcvad supports {_WEBRTC_RATES} Hz, not {sample_rate}")
        self._vad = webrtcvad.Vad(mode)
        self.sample_rate = sample_rate

    def __call__(self, frame: Int16Array) -> bool:
        return bool(self._vad.is_speech(frame.astype("<i2", copy=False).tobytes(),
                                        self.sample_rate))


@dataclass(frozen=True)
class Utterance:
    """One stretch of speech on the stream timeline.

    ``start``/``end`` are sample indices at ``sample_rate`` counted from the first sample
    pushed into the segmenter, half-open: ``pcm`` holds samples ``start..end-1`` (int16 mono,
    pre-roll and tail included), so ``len(pcm) == end - start``. ``forced`` is True when the
    utterance was cut because it reached the maximum length; the next one then starts at
    this one's ``end``.

    ``speech_end`` is the end (exclusive sample index) of the last voiced frame: the moment
    the speaker stopped, as far as the detector can tell; detection latency is measured from
    it. ``provisional`` marks an early look at an utterance that is still open (the speaker
    paused for ``early_ms``): it has the same ``start`` as the final utterance that follows,
    and if ``speech_end`` is unchanged by then, the final audio holds no new speech.
    """

    start: int
    end: int
    pcm: Int16Array = field(repr=False, compare=False)
    forced: bool = False
    sample_rate: int = 8000
    speech_end: int = -1
    provisional: bool = False

    @property
    def num_samples(self) -> int:
        return self.end - self.start

    @property
    def start_s(self) -> float:
        """Start in seconds on the stream timeline."""
        return self.start / self.sample_rate

    @property
    def end_s(self) -> float:
        """End (exclusive) in seconds on the stream timeline."""
        return self.end / self.sample_rate

    @property
    def duration_s(self) -> float:
        return (self.end - self.start) / self.sample_rate


#: After a look at a pause, a voiced frame this many dB below the utterance's loudest is
#: not taken as the speaker going on. On speech-ko at telephone quality webrtcvad called
#: frames 38-44 dB below the speech voiced after it ended (noise, breath), which made a
#: second look at the same words queue behind the first.
RESUME_GATE_DB = 35.0


def _level_db(frame: Int16Array) -> float:
    """Mean power of int16 samples in dB (0 dB: a mean square of 1)."""
    return 10.0 * math.log10(float(np.mean(frame.astype(np.float64) ** 2)) + 1.0)


#: Seconds of speech that must follow the quietest frame before a look ends there
#: (:meth:`Segmenter._early_at_dip`).
_DIP_AFTER_S = 0.3


def quietest_frame(pcm: Int16Array, lo: int, hi: int, frame_len: int) -> int:
    """Start (sample index into ``pcm``) of the ``frame_len``-sample frame with the least
    mean energy among those starting at ``lo``, ``lo + frame_len``, ... and ending by
    ``hi``; on a tie the earlier one. ``lo`` when not one whole frame fits."""
    n = (hi - lo) // frame_len
    if n < 1:
        return lo
    frames = pcm[lo : lo + n * frame_len].astype(np.float64).reshape(n, frame_len)
    return lo + int(np.argmin(np.mean(frames**2, axis=1))) * frame_len


def _ms_to_frames(ms: float, frame_ms: int) -> int:
    return max(1, math.ceil(ms / frame_ms - 1e-9))


class Segmenter:
    """Streaming VAD segmenter: ``push(pcm)`` → completed utterances; ``flush()`` at the end.

    Parameters (durations in milliseconds or seconds as named; all are converted to samples
    or whole frames at construction):

    * ``sample_rate``: Hz of the int16 mono input; 8000, 16000, 32000 or 48000.
    * ``frame_ms``: analysis frame, 10, 20 or 30 ms.
    * ``mode``: webrtcvad aggressiveness 0-3 (ignored when ``voiced`` is given).
    * ``pre_roll_ms``: audio kept before the first voiced frame.
    * ``hangover_ms``: unvoiced run that ends an utterance (rounded up to whole frames).
    * ``tail_ms``: audio kept after the last voiced frame (≤ ``hangover_ms``).
    * ``min_speech_ms``: shortest speech (first to last voiced frame) that is emitted.
    * ``max_utterance_s``: longest utterance, pre-roll included; longer ones are cut.
    * ``onset_voiced_ms`` of the last ``onset_window_ms``: voiced frames needed to start.
    * ``early_ms``: pause after which a *provisional* utterance is emitted while the
      utterance stays open (``None``: never). Recognising it early cuts detection latency by
      ``hangover_ms - early_ms`` without splitting sentences at short pauses.
    * ``early_long_ms`` / ``early_long_after_s``: a shorter pause that also emits a
      provisional utterance once ``early_long_after_s`` of speech went by since the last
      one (or since the start): a caller who talks on without a pause of ``early_ms`` is
      still looked at every few seconds, at the short pauses between phrases, so the look
      at the end has only those last seconds to recognise (``None``: off). Where the
      detector hears no such pause at all (noisy, fast speech: 12 s without one were seen),
      once ``early_long_after_s + 1`` s went unlooked the quietest frame of the last
      second becomes the boundary (a syllable gap, most often between words), once
      0.3 s of speech followed it (not a fade at the phrase's end).
    * After a provisional utterance at a pause, a voiced frame ``RESUME_GATE_DB`` below
      the utterance's loudest frame counts as part of the pause (webrtcvad calls faint
      noise after speech voiced), so it does not make a second look at the same words.
    * ``voiced``: detector to use instead of webrtcvad (tests inject fakes here).

    Not thread-safe: one segmenter per audio direction, fed by one task.
    """

    def __init__(
        self,
        sample_rate: int = 8000,
        frame_ms: int = 20,
        mode: int = 2,
        pre_roll_ms: int = 300,
        hangover_ms: int = 600,
        tail_ms: int = 300,
        min_speech_ms: int = 200,
        max_utterance_s: float = 15.0,
        onset_voiced_ms: int = 60,
        onset_window_ms: int = 100,
        early_ms: int | None = None,
        early_long_ms: int | None = None,
        early_long_after_s: float = 3.0,
        voiced: VoicedFn | None = None,
    ) -> None:
        if frame_ms not in _FRAME_MS:
            raise ValueError(f"frame_ms must be one of {_FRAME_MS}, not {frame_ms}")
        if sample_rate not in _WEBRTC_RATES:
            raise ValueError(f"sample_rate must be one of {_WEBRTC_RATES}, not {sample_rate}")
        if not 0 <= tail_ms <= hangover_ms:
            raise ValueError("need 0 <= tail_ms <= hangover_ms")
        if onset_voiced_ms > onset_window_ms:
            raise ValueError("onset_voiced_ms cannot exceed onset_window_ms")
        if pre_roll_ms < 0 or min_speech_ms < 0:
            raise ValueError("durations must be non-negative")
        self.sample_rate = sample_rate
        self.frame_ms = frame_ms
        self.frame_len = sample_rate * frame_ms // 1000
        per_ms = sample_rate / 1000
        self.pre_roll = round(pre_roll_ms * per_ms)
        self.tail = round(tail_ms * per_ms)
        self.min_speech = round(min_speech_ms * per_ms)
        self.max_samples = round(max_utterance_s * sample_rate)
        self.hangover_frames = _ms_to_frames(hangover_ms, frame_ms)
        self.onset_window = _ms_to_frames(onset_window_ms, frame_ms)
        self.onset_voiced = min(_ms_to_frames(onset_voiced_ms, frame_ms), self.onset_window)
        self.early_frames = (_ms_to_frames(early_ms, frame_ms) if early_ms is not None
                             else 0)
        if self.early_frames >= self.hangover_frames:
            self.early_frames = 0  # the final utterance would come first anyway
        self.early_long_frames = (_ms_to_frames(early_long_ms, frame_ms)
                                  if early_long_ms is not None and self.early_frames else 0)
        if self.early_long_frames >= self.early_frames:
            self.early_long_frames = 0  # the ordinary early look comes first anyway
        self.early_long_after = round(early_long_after_s * sample_rate)
        if self.max_samples < self.frame_len:
            raise ValueError("max_utterance_s must be at least one frame")
        self._voiced: VoicedFn = voiced if voiced is not None else WebRtcVoiced(mode, sample_rate)
        self._reset()

    # --- public API ---------------------------------------------------------------------

    @property
    def position(self) -> int:
        """Samples pushed so far (the stream timeline's current end)."""
        return self._total

    @property
    def in_speech(self) -> bool:
        """True while an utterance is open (started and not yet ended)."""
        return self._in_speech

    def push(self, pcm: npt.ArrayLike) -> list[Utterance]:
        """Add int16 mono samples (any count, even 0); return the utterances completed."""
        chunk = np.asarray(pcm)
        if chunk.dtype != np.int16:
            raise TypeError(f"expected int16 PCM, got dtype {chunk.dtype}")
        if chunk.ndim != 1:
            raise ValueError("expected mono 1-D samples")
        out: list[Utterance] = []
        if chunk.size == 0:
            return out
        self._total += chunk.size
        data = np.concatenate([self._pending, chunk]) if self._pending.size else chunk
        n_frames = data.size // self.frame_len
        for i in range(n_frames):
            frame = data[i * self.frame_len : (i + 1) * self.frame_len].copy()
            self._frames.append((self._frame_pos, frame))
            self._frame_pos += self.frame_len
            self._on_frame(frame, out)
        self._pending = data[n_frames * self.frame_len :].copy()
        return out

    def flush(self) -> list[Utterance]:
        """End of stream: emit the open utterance (if any), then reset to a new timeline.

        The partial frame left over (fewer than ``frame_len`` samples) is not analysed, but
        it can hold the open utterance's tail.
        """
        out: list[Utterance] = []
        if self._in_speech and self._last_voiced_end is not None:
            end = min(self._last_voiced_end + self.tail, self._total,
                      self._utt_start + self.max_samples)
            self._finish(end, forced=False, out=out)
        self._reset()
        return out

    # --- internals ----------------------------------------------------------------------

    def _reset(self) -> None:
        self._total = 0  # samples pushed, including the pending partial frame
        self._frame_pos = 0  # start sample of the next whole frame
        self._pending = np.zeros(0, dtype=np.int16)
        # Recent whole frames as (start sample, pcm): pre-roll while idle, the utterance in
        # speech. Trimmed as we go so memory stays bounded by max_utterance_s + pre-roll.
        self._frames: deque[tuple[int, Int16Array]] = deque()
        self._ring: deque[tuple[int, bool]] = deque(maxlen=self.onset_window)
        self._in_speech = False
        self._continuation = False  # this utterance continues a forced cut
        self._utt_start = 0
        self._speech_start = 0
        self._last_voiced_end: int | None = None
        self._unvoiced_run = 0
        self._early_sent: int | None = None  # speech_end of the last provisional utterance
        self._peak_db = -math.inf
        self._prev_end = 0  # end of the last utterance: the next pre-roll stops there

    def _on_frame(self, frame: Int16Array, out: list[Utterance]) -> None:
        start = self._frame_pos - self.frame_len
        end = self._frame_pos
        is_voiced = bool(self._voiced(frame))
        if self._in_speech and is_voiced:
            level = _level_db(frame)
            looked = self._early_sent is not None and self._early_sent == self._last_voiced_end
            if looked and level < self._peak_db - RESUME_GATE_DB:
                # A look went out at this pause; this frame is far too faint to be the
                # speaker going on (webrtcvad calls line noise and breath after speech
                # voiced): the pause goes on.
                is_voiced = False
            else:
                self._peak_db = max(self._peak_db, level)
        if not self._in_speech:
            self._ring.append((start, is_voiced))
            if sum(v for _, v in self._ring) >= self.onset_voiced:
                first_voiced = next(s for s, v in self._ring if v)
                self._open(first_voiced, end)
            else:
                self._trim(end - self.pre_roll - self.onset_window * self.frame_len)
            return
        if is_voiced:
            self._last_voiced_end = end
            self._unvoiced_run = 0
            if self.early_long_frames and self._unlooked() >= self.early_long_after + \
                    self.sample_rate:
                self._early_at_dip(out)
        else:
            self._unvoiced_run += 1
            long_unlooked = (self._unvoiced_run == self.early_long_frames
                             and self._unlooked() >= self.early_long_after)
            if self._unvoiced_run == self.early_frames or long_unlooked:
                self._early(end, out)
        if self._unvoiced_run >= self.hangover_frames:
            if self._last_voiced_end is not None:
                # Never past the length limit, even when the hangover and a cut coincide.
                limit = self._utt_start + self.max_samples
                self._finish(min(self._last_voiced_end + self.tail, limit), forced=False,
                             out=out)
            self._in_speech = False
            self._ring.clear()
            self._trim(end - self.pre_roll - self.onset_window * self.frame_len)
        elif end - self._utt_start >= self.max_samples:
            cut = self._utt_start + self.max_samples
            self._finish(cut, forced=True, out=out)
            # Continue seamlessly: the next utterance starts where this one was cut.
            self._in_speech = True
            self._continuation = True
            self._utt_start = self._speech_start = cut
            self._last_voiced_end = end if is_voiced and end > cut else None
            self._trim(cut)

    def _open(self, speech_start: int, frame_end: int) -> None:
        self._in_speech = True
        self._continuation = False
        self._speech_start = speech_start
        self._utt_start = max(speech_start - self.pre_roll, self._prev_end, 0)
        self._last_voiced_end = frame_end
        self._unvoiced_run = 0
        self._ring.clear()
        self._peak_db = -math.inf  # the loudest voiced frame of this utterance, dB

    def _long_enough(self, voiced_end: int) -> bool:
        return self._continuation or voiced_end - self._speech_start >= self.min_speech

    def _unlooked(self) -> int:
        """Samples of speech since the last provisional utterance of this one (or since its
        speech started)."""
        if self._last_voiced_end is None:
            return 0
        since = self._speech_start
        if self._early_sent is not None and self._early_sent >= self._utt_start:
            since = max(since, self._early_sent)
        return self._last_voiced_end - since

    def _early_at_dip(self, out: list[Utterance]) -> None:
        """A provisional utterance ending at the quietest frame of the last second of
        speech (not the last 100 ms: the syllable being spoken is not a gap), once louder
        speech followed it for ``_DIP_AFTER_S``: quietest near the end means the voice is
        fading, most often the phrase ending, and then the pause's look will come in a
        moment. Looking at the dip then would only keep the recogniser busy when that
        look comes (on speech-ko it cost the end's look 0.15-0.18 s in the queue); the
        next voiced frame asks again."""
        if not self._frames:
            return
        # Frames are kept on the frame grid, from the utterance's start at the earliest.
        lo = max(self._last_voiced_end - self.sample_rate, self._frames[0][0])
        hi = self._last_voiced_end - self.sample_rate // 10
        if hi - lo < self.frame_len:
            return
        boundary = lo + quietest_frame(self._slice(lo, hi), 0, hi - lo, self.frame_len)
        if boundary + self.frame_len > self._last_voiced_end - round(_DIP_AFTER_S *
                                                                     self.sample_rate):
            return
        if boundary > self._utt_start and self._long_enough(boundary):
            self._look(boundary, boundary, out)

    def _early(self, frame_end: int, out: list[Utterance]) -> None:
        voiced_end = self._last_voiced_end
        if voiced_end is None or voiced_end == self._early_sent:
            return
        if not self._long_enough(voiced_end):
            return
        end = min(voiced_end + self.tail, frame_end, self._utt_start + self.max_samples)
        self._look(end, voiced_end, out)

    def _look(self, end: int, speech_end: int, out: list[Utterance]) -> None:
        """Emit the open utterance so far (its start to ``end``, speech up to
        ``speech_end``) as a provisional one."""
        start = self._utt_start
        self._early_sent = speech_end
        out.append(Utterance(start=start, end=end, pcm=self._slice(start, end),
                             sample_rate=self.sample_rate, speech_end=speech_end,
                             provisional=True))

    def _finish(self, end: int, *, forced: bool, out: list[Utterance]) -> None:
        start = self._utt_start
        voiced_end = self._last_voiced_end
        if voiced_end is None:
            return  # a continuation that only held the end of a pause
        if not forced and not self._long_enough(voiced_end):
            return
        out.append(Utterance(start=start, end=end, pcm=self._slice(start, end), forced=forced,
                             sample_rate=self.sample_rate, speech_end=min(voiced_end, end)))
        # Only emitted utterances bound the next pre-roll: a dropped blip may be heard again.
        self._prev_end = end

    def _slice(self, start: int, end: int) -> Int16Array:
        """Samples ``start..end-1`` from the kept frames plus the pending partial frame."""
        pieces = [(s, f) for s, f in self._frames if s + f.size > start and s < end]
        if self._pending.size and self._frame_pos < end:
            pieces.append((self._frame_pos, self._pending))
        if not pieces:
            return np.zeros(0, dtype=np.int16)
        first = pieces[0][0]
        joined = np.concatenate([f for _, f in pieces])
        return joined[start - first : end - first].copy()

    def _trim(self, keep_from: int) -> None:
        """Forget whole frames that end at or before ``keep_from``."""
        while self._frames and self._frames[0][0] + self.frame_len <= keep_from:
            self._frames.popleft()
