"""Problems found in a rules file, and the error raised when a file cannot be used.

Every problem is printed as ``file:line: rule <id>: message`` (the rule part only when the
problem belongs to a rule), the form an admin's editor can jump to.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from callguard.errors import InputError

if TYPE_CHECKING:
    from callguard.rules.model import RuleSet


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding. ``line`` is 1-based (0 when no line applies)."""

    file: str
    line: int
    message: str
    severity: Severity = Severity.ERROR
    rule_id: str | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        rule = f" rule {self.rule_id}:" if self.rule_id else ""
        tag = "" if self.severity is Severity.ERROR else " warning:"
        return f"{where}:{tag}{rule} {self.message}"


class RulesError(InputError):
    """A rules file could not be used. ``problems`` holds every error (and warning) found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        errors = [p for p in problems if p.severity is Severity.ERROR]
        first = str(errors[0]) if errors else "invalid rules"
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(first + more)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity is Severity.ERROR]


def check_summary(name: str, problems: Sequence[Problem], ruleset: RuleSet | None) -> str:
    """The last line of ``callguard rules check <name>``: ``ruleset`` is ``None`` when the
    file has errors (counted among ``problems``), else the loaded rules with ``problems``
    its warnings. The rules editor shows the same line."""
    if ruleset is None:
        errors = sum(1 for p in problems if p.severity is Severity.ERROR)
        return f"{errors} error(s): {name} is not usable; the engine keeps the last good rules"
    enabled = len(ruleset.enabled_rules)
    return (f"OK: {name}: {len(ruleset.rules)} rules ({enabled} enabled), "
            f"{len(problems)} warning(s), version {ruleset.version[:12]}")


def check_lines(name: str, problems: Sequence[Problem], ruleset: RuleSet | None) -> list[str]:
    """Everything ``callguard rules check <name>`` prints without ``--analysis`` or
    ``--strict``: each problem, then :func:`check_summary`."""
    return [str(p) for p in problems] + [check_summary(name, problems, ruleset)]
