"""The phone side of a call, as the session sees it, and its fake.

The SIP line (telephony) implements :class:`CallControl`; :class:`FakeCallControl` stands in
for simulations, the demo and tests. Prompts are *started* and report their length; the
session hangs up only after the final prompt's last sample has been played.
"""

from __future__ import annotations

import wave
from dataclasses import dataclass, field
from typing import Protocol

from callguard.asr.guard import squash
from callguard.rules.model import Prompt

#: Speaking rate used to estimate a prompt's length when it has no audio file yet
#: (Hangul syllables per second of a calm announcement).
PROMPT_SYLLABLES_PER_S = 5.0


def prompt_seconds(prompt: Prompt) -> float:
    """Length of ``prompt`` in seconds: the WAV's length, or an estimate from its text."""
    if prompt.file is not None and prompt.file.is_file():
        with wave.open(str(prompt.file), "rb") as w:
            return w.getnframes() / w.getframerate()
    return round(0.5 + len(squash(prompt.text)) / PROMPT_SYLLABLES_PER_S, 2)


class CallControl(Protocol):
    def start_prompt(self, key: str, prompt: Prompt) -> float:
        """Begin playing ``prompt`` to the caller (after anything already playing); return
        its length in seconds. Queues audio and returns at once (never waits on the line);
        raises if the prompt cannot be played."""
        ...

    async def hangup(self) -> None:
        """End the call (BYE). Called once."""
        ...


@dataclass
class FakeCallControl:
    """Records what a real line would have done. ``fail_prompts`` makes ``start_prompt``
    raise, to test that a broken audio path still ends the call when it must."""

    played: list[tuple[str, float]] = field(default_factory=list)
    hangups: int = 0
    fail_prompts: bool = False

    def start_prompt(self, key: str, prompt: Prompt) -> float:
        if self.fail_prompts:
            raise OSError(f"cannot play prompt {key!r}")
        seconds = prompt_seconds(prompt)
        self.played.append((key, seconds))
        return seconds

    async def hangup(self) -> None:
        self.hangups += 1
