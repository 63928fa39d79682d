"""The admin's rules: file format, validation, matching and the rules in force.

Public API::

    load_rules(path) -> LoadResult          # validate; raises RulesError(problems)
    Matcher(ruleset).match(text) -> MatchResult(hits, suppressed, morphs)
    ActiveRules(path).reload() -> ReloadResult  # keeps the last good rules on failure
"""

from callguard.rules.active import ActiveRules, ReloadResult
from callguard.rules.loader import LoadResult, load_rules, parse_rules
from callguard.rules.matcher import Hit, Matcher, MatchResult, Suppressed
from callguard.rules.model import (
    Category,
    DurationPolicy,
    EscalationPolicy,
    MatchMode,
    Prompt,
    Rule,
    RuleSet,
)
from callguard.rules.problems import Problem, RulesError, Severity

__all__ = [
    "ActiveRules",
    "Category",
    "DurationPolicy",
    "EscalationPolicy",
    "Hit",
    "LoadResult",
    "MatchMode",
    "MatchResult",
    "Matcher",
    "Problem",
    "Prompt",
    "ReloadResult",
    "Rule",
    "RuleSet",
    "RulesError",
    "Severity",
    "Suppressed",
    "load_rules",
    "parse_rules",
]
