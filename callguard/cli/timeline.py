"""Human-readable timeline lines for ``simulate`` and ``demo`` (stdout, never the log)."""

from __future__ import annotations

from callguard.session.events import TimelineEvent


def clock(t: float) -> str:
    """Call time as ``MM:SS.s``."""
    m, s = divmod(max(t, 0.0), 60)
    return f"{int(m):02d}:{s:04.1f}"


def format_event(ev: TimelineEvent) -> str | None:
    d = ev.detail
    at = clock(ev.t)
    if ev.kind == "call":
        if ev.text == "end":
            return f"{at}  ·          call ended: {d.get('reason')}"
        return f"{at}  ·          call answered ({d.get('direction')}, rules {d.get('rules')})"
    if ev.kind in ("speech", "early"):
        hits = d.get("hits") or []
        mark = f"   ⚑ {', '.join(hits)}" if hits else ""
        lag = d.get("lag_s")
        timing = f"   (+{lag:.2f} s after speech)" if lag is not None and ev.leg == "caller" else ""
        early = " (early look)" if ev.kind == "early" else ""
        if d.get("after_end"):
            early += " (recognised after the call ended)"
            timing = ""
        return f"{at}  {ev.leg:<9}  “{ev.text}”{early}{mark}{timing}"
    if ev.kind == "dropped":
        reason = d.get("reason") or d.get("status")
        return f"{at}  {ev.leg:<9}  [not used: {reason}]"
    if ev.kind == "verdict":
        rules = f" [{', '.join(d['rules'])}]" if d.get("rules") else ""
        return f"{at}  ■ {d['kind'].upper():<8} {d['reason']}{rules}"
    if ev.kind == "action":
        ok = "" if d.get("ok", True) else f"  FAILED: {d.get('error')}"
        if d["kind"] == "play_prompt":
            return f"{at}  ▶ prompt   {d['detail']}{ok}"
        if d["kind"] == "hangup":
            return f"{at}  ✆ hangup   after {d['detail']} notice played to the end{ok}"
        return f"{at}  ! {d['kind']:<8} {d['detail']}{ok}"
    return None
