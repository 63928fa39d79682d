"""The rules in force, with reloads that never leave the agent without rules.

:class:`ActiveRules` holds the current :class:`RuleSet` and its compiled
:class:`Matcher`. :meth:`ActiveRules.reload` validates the new file completely and
compiles it *before* swapping; if anything fails, the last good rules stay in force and
the result says why. The swap is one attribute assignment, so a thread matching an
utterance sees either the old or the new rules, never a mix.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from callguard.rules.loader import LoadResult, load_rules, parse_rules
from callguard.rules.matcher import Matcher, MatchResult
from callguard.rules.model import RuleSet
from callguard.rules.problems import Problem, RulesError, Severity
from callguard.text.analyzer import Analyzer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReloadResult:
    """What a reload did. ``version`` is the rule-set version in force afterwards.
    ``last_good_since``: set when the rules file was refused at start and the agent runs on
    the last good rules kept in the store, in force since then (unix epoch seconds)."""

    ok: bool
    version: str
    problems: list[Problem] = field(default_factory=list)
    last_good_since: float | None = None

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity is Severity.ERROR]

    @property
    def headline(self) -> str:
        """One line for a status bar or a terminal."""
        if self.ok:
            return f"rules {self.version[:12]} in force"
        n = len(self.errors)
        if self.last_good_since is not None:
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.last_good_since))
            return (f"running on the last good rules from {when} ({self.version[:12]}): "
                    f"the file has {n} error(s)")
        return f"rules refused ({n} error(s)); kept the last good rules ({self.version[:12]})"

    @property
    def message(self) -> str:
        if self.ok:
            return self.headline
        lines = [str(p) for p in self.problems]
        if self.last_good_since is not None:
            return "\n".join([self.headline, *lines])
        return "\n".join([*lines, f"kept the last good rules ({self.version[:12]})"])


class ActiveRules:
    """The rule set in force and its matcher; see the module docstring."""

    def __init__(self, initial: RuleSet | str | Path, *,
                 analyzer: Analyzer | None = None) -> None:
        self._analyzer = analyzer
        if isinstance(initial, RuleSet):
            ruleset = initial
        else:
            ruleset = load_rules(initial, analyzer=analyzer).ruleset  # raises RulesError
        self._state: tuple[RuleSet, Matcher] = (ruleset, Matcher(ruleset, analyzer))
        self.last_problems: list[Problem] = []

    @property
    def ruleset(self) -> RuleSet:
        return self._state[0]

    @property
    def matcher(self) -> Matcher:
        return self._state[1]

    @property
    def version(self) -> str:
        return self._state[0].version

    def match(self, text: str) -> MatchResult:
        """Hits of the rules in force in one utterance."""
        return self._state[1].match(text)

    def reload(self, path: str | Path | None = None) -> ReloadResult:
        """Load ``path`` (default: the current file) and swap it in if it is valid."""
        target = Path(path) if path is not None else self.ruleset.path
        if target is None:
            raise ValueError("the rules in force came from no file; give a path")
        return self._swap(lambda: load_rules(target, analyzer=self._analyzer), str(target))

    def load_text(self, text: str, *, name: str, base_dir: Path | None = None) -> ReloadResult:
        """Swap in rules given as text (an editor's buffer) if they are valid."""
        return self._swap(lambda: parse_rules(text, name=name, base_dir=base_dir,
                                              analyzer=self._analyzer), name)

    def _swap(self, load, name: str) -> ReloadResult:
        try:
            result: LoadResult = load()
            matcher = Matcher(result.ruleset, self._analyzer)
        except RulesError as exc:
            self.last_problems = exc.problems
            log.warning("rules %s rejected, keeping %s: %s", name, self.version[:12], exc)
            return ReloadResult(False, self.version, exc.problems)
        except Exception as exc:  # compile failure must not cost us the rules in force
            problem = Problem(name, 0, f"could not compile the rules: {exc}")
            self.last_problems = [problem]
            log.exception("rules %s failed to compile, keeping %s", name, self.version[:12])
            return ReloadResult(False, self.version, [problem])
        self._state = (result.ruleset, matcher)
        self.last_problems = result.warnings
        log.info("rules %s in force (%s)", result.ruleset.version[:12], name)
        return ReloadResult(True, result.ruleset.version, result.warnings)
