"""Human-readable timeline lines and JSON records of a call's events, for ``simulate`` and
``demo`` (stdout, never the log: they carry transcript text)."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from callguard.vocabulary import (
    AlertRaised,
    CallEnded,
    CallEvent,
    CallStarted,
    FaultNoted,
    HangupSent,
    Leg,
    PromptFailed,
    PromptFinished,
    PromptStarted,
    Transcribed,
    UtteranceStatus,
    VerdictIssued,
)


def clock(t: float) -> str:
    """Call time as ``MM:SS.s``."""
    m, s = divmod(max(t, 0.0), 60)
    return f"{int(m):02d}:{s:04.1f}"


def event_name(ev: CallEvent) -> str:
    """The event's type in snake case (``VerdictIssued`` → ``verdict_issued``)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(ev).__name__).lower()


def event_record(ev: CallEvent) -> dict[str, Any]:
    """``ev`` as a JSON-ready dict: ``{"event": <event_name>, <its fields>...}``."""
    return {"event": event_name(ev), **dataclasses.asdict(ev)}


def format_event(ev: CallEvent) -> str | None:
    """One line of the printed timeline, or ``None`` for events it does not show."""
    match ev:
        case CallStarted():
            return (f"{clock(ev.at_s)}  ·          call answered ({ev.direction}, "
                    f"rules {ev.rules_version[:12]})")
        case CallEnded():
            return f"{clock(ev.at_s)}  ·          call ended: {ev.reason}"
        case Transcribed() if ev.status is not UtteranceStatus.OK:
            return f"{clock(ev.at_s)}  {ev.leg:<9}  [not used: {ev.reason or ev.status}]"
        case Transcribed():
            mark = f"   ⚑ {', '.join(ev.rule_ids)}" if ev.hits else ""
            timing = (f"   (+{ev.lag_s:.2f} s after speech)"
                      if ev.lag_s is not None and ev.leg is Leg.CALLER else "")
            early = " (early look)" if ev.early else ""
            if ev.after_end:
                early += " (recognised after the call ended)"
                timing = ""
            return f"{clock(ev.at_s)}  {ev.leg:<9}  “{ev.text}”{early}{mark}{timing}"
        case VerdictIssued():
            rules = f" [{', '.join(ev.rule_ids)}]" if ev.rule_ids else ""
            return f"{clock(ev.at_s)}  ■ {ev.kind.upper():<8} {ev.reason}{rules}"
        case PromptStarted():
            return f"{clock(ev.at_s)}  ▶ prompt   {ev.key} ({ev.seconds:.1f} s)"
        case PromptFailed():
            return f"{clock(ev.at_s)}  ▶ prompt   {ev.key}  FAILED: {ev.error}"
        case HangupSent():
            failed = "" if ev.ok else f"  FAILED: {ev.error}"
            return (f"{clock(ev.at_s)}  ✆ hangup   after {ev.verdict} notice played to the "
                    f"end{failed}")
        case AlertRaised():
            return f"{clock(ev.at_s)}  ! alert    supervisor alert: {', '.join(ev.rule_ids)}"
        case FaultNoted():
            return f"{clock(ev.at_s)}  ! fault    {ev.detail}"
        case PromptFinished():
            return None
    return None
