"""Problems found in a rules file, and the error raised when a file cannot be used.

Every problem is printed as ``file:line: rule <id>: message`` (the rule part only when the
problem belongs to a rule), the form an admin's editor can jump to.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


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


class RulesError(Exception):
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
