"""The pure call policy: rule hits and the call clock in, verdicts out."""

from callguard.policy.escalation import (
    CallState,
    ClockTick,
    HitsObserved,
    PolicyEvaluator,
    ProtectRequested,
    Stage,
    Strike,
    Verdict,
    VerdictKind,
)

__all__ = [
    "CallState",
    "ClockTick",
    "HitsObserved",
    "PolicyEvaluator",
    "ProtectRequested",
    "Stage",
    "Strike",
    "Verdict",
    "VerdictKind",
]
