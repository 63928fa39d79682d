"""Timeline events a session publishes (for the simulate printout, the GUI and tests).

These carry transcript text, which is personal data: show them to the people entitled to
see them; never log them at INFO.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class TimelineEvent:
    """``t``: call time in seconds. ``kind``: ``speech`` (a final transcript), ``early``
    (a provisional look that found hits), ``dropped`` (guard rejected), ``verdict``,
    ``action``, ``call``. ``leg``: ``caller``/``counselor`` or None."""

    t: float
    kind: str
    leg: str | None = None
    text: str = ""
    detail: dict[str, Any] = field(default_factory=dict)
