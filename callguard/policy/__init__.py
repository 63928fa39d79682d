"""The pure call policy: rule hits and the call clock in, verdicts out."""

from callguard.policy.escalation import (
    ClockTick,
    HitsObserved,
    PolicyEvaluator,
    PolicyState,
    Progress,
    ProtectRequested,
    Strike,
    VerdictKind,
)

__all__ = [
    "ClockTick",
    "HitsObserved",
    "PolicyEvaluator",
    "PolicyState",
    "Progress",
    "ProtectRequested",
    "Strike",
    "VerdictKind",
]
