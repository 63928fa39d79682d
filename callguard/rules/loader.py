"""Load and validate a rules file (TOML) into a :class:`~callguard.rules.model.RuleSet`.

Every problem is reported with its file, line and rule (see :mod:`.problems`); all of
them are collected before giving up, so an admin fixes a file in one pass. Unknown keys are
errors: a misspelt ``enabeld = false`` must not silently leave a rule on. Warnings
(duplicate terms, keywords that Kiwi splits unexpectedly, missing prompt files) do not
stop a file from loading; a file with no ``[[rule]]`` and a prompt WAV that does not decode
are errors.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from callguard.rules.broad import ORDINARY_SENTENCES, BroadTerm, one_syllable
from callguard.rules.matcher import Matcher
from callguard.rules.model import (
    PROMPT_KEYS,
    Category,
    DurationPolicy,
    EscalationPolicy,
    MatchMode,
    Prompt,
    RepeatCallerPolicy,
    Rule,
    RuleSet,
)
from callguard.rules.problems import Problem, RulesError, Severity
from callguard.rules.source_map import SourceMap
from callguard.rules.terms import TermSyntaxError, parse_tagged
from callguard.text.analyzer import Analyzer, Dictionary, is_functional
from callguard.text.normalize import squeeze_term
from callguard.vocabulary import Direction

FORMAT_VERSION = 1
_TAGGED = re.compile(r"/(?:[A-Z]{2,3}|W_[A-Z]+|Z_[A-Z]+)(?:-[IR])?\b")
_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
_NUM = r"(\d+(?:\.\d+)?)"
_DURATION = re.compile(rf"^\s*(?:{_NUM}h)?\s*(?:{_NUM}m)?\s*(?:{_NUM}s)?\s*$")

TOP_KEYS = {"format", "name", "description", "dictionary", "exceptions", "escalation",
            "duration", "prompts", "rule", "repeat_callers"}
RULE_KEYS = {"id", "category", "terms", "mode", "severity", "exceptions", "enabled", "gap",
             "description", "broad"}
ESCALATION_KEYS = {"window", "cooldown", "notice_at", "warn_at", "warnings", "final_at"}
DURATION_KEYS = {"notice_at", "final_at"}
PROMPT_FIELDS = {"file", "text"}


@dataclass
class LoadResult:
    """A usable rule set and the warnings found while loading it."""

    ruleset: RuleSet
    warnings: list[Problem] = field(default_factory=list)


def parse_duration(value: Any) -> float:
    """Seconds from ``90``, ``90.5``, ``"90s"``, ``"15m"``, ``"1h"`` or ``"15m30s"``."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string like \"15m\"")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        if re.fullmatch(rf"\s*{_NUM}\s*", value):
            return float(value)
        m = _DURATION.match(value)
        if m and any(m.groups()):
            h, mi, s = (float(g) if g else 0.0 for g in m.groups())
            return h * 3600 + mi * 60 + s
    raise ValueError(f"{value!r} is not a duration (use seconds or a string like \"15m30s\")")


class _Checker:
    """Collects problems while converting the parsed TOML into model objects."""

    def __init__(self, file: str, smap: SourceMap) -> None:
        self.file = file
        self.smap = smap
        self.problems: list[Problem] = []

    def error(self, path: tuple, message: str, rule_id: str | None = None,
              line: int | None = None) -> None:
        self.problems.append(Problem(self.file, line if line is not None else
                                     self.smap.line(*path), message, Severity.ERROR, rule_id))

    def warn(self, path: tuple, message: str, rule_id: str | None = None,
             line: int | None = None) -> None:
        self.problems.append(Problem(self.file, line if line is not None else
                                     self.smap.line(*path), message, Severity.WARNING, rule_id))

    def unknown_keys(self, table: dict, allowed: set[str], path: tuple, what: str,
                     rule_id: str | None = None) -> None:
        for key in table:
            if key not in allowed:
                hint = _closest(key, allowed)
                self.error((*path, key), f"unknown key '{key}' in {what}"
                           + (f" (did you mean '{hint}'?)" if hint else "")
                           + f"; allowed: {', '.join(sorted(allowed))}", rule_id)

    def table(self, data: dict, key: str, path: tuple) -> dict:
        value = data.get(key, {})
        if not isinstance(value, dict):
            self.error((*path, key), f"'{key}' must be a table")
            return {}
        return value

    def string_list(self, value: Any, path: tuple, what: str, rule_id: str | None) -> list[str]:
        if not isinstance(value, list):
            self.error(path, f"{what} must be a list of strings", rule_id)
            return []
        out = []
        for item in value:
            if not isinstance(item, str):
                self.error(path, f"{what} must hold only strings, found {item!r}", rule_id)
            elif not item.strip():
                self.error(path, f"{what} holds an empty string", rule_id)
            else:
                out.append(item.strip())
        return out

    def number(self, table: dict, key: str, path: tuple, default: Any, *, kind: type,
               minimum: float, rule_id: str | None = None,
               convert: Callable[[Any], float] | None = None) -> Any:
        if key not in table:
            return default
        raw = table[key]
        try:
            if convert is not None:
                value = convert(raw)
            elif isinstance(raw, bool) or not isinstance(raw, kind | int):
                raise ValueError(f"'{key}' must be {'an integer' if kind is int else 'a number'}"
                                 f", not {raw!r}")
            else:
                value = kind(raw)
        except ValueError as exc:
            self.error((*path, key), f"'{key}': {exc}", rule_id)
            return default
        if value < minimum:
            self.error((*path, key), f"'{key}' must be at least {minimum:g}, not {raw!r}", rule_id)
            return default
        return value


def _closest(word: str, options: set[str]) -> str | None:
    import difflib

    match = difflib.get_close_matches(word, sorted(options), n=1, cutoff=0.6)
    return match[0] if match else None


def _syntax_problem(file: str, exc: tomllib.TOMLDecodeError) -> Problem:
    m = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
    line = int(m.group(1)) if m else getattr(exc, "lineno", 0)
    msg = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
    if m:
        msg += f" (column {m.group(2)})"
    return Problem(file, line, f"TOML syntax error: {msg}")


def _dictionary(c: _Checker, data: dict) -> Dictionary:
    table = c.table(data, "dictionary", ())
    c.unknown_keys(table, {"words", "aliases"}, ("dictionary",), "[dictionary]")
    words: list[tuple[str, str]] = []
    for item in c.string_list(table.get("words", []), ("dictionary", "words"),
                              "dictionary words", None):
        try:
            morphs = parse_tagged(item)
        except TermSyntaxError as exc:
            c.error(("dictionary", "words"), f"word {item!r}: {exc}",
                    line=c.smap.find(item, "dictionary", "words"))
            continue
        if len(morphs) != 1 or morphs[0][1] is None:
            c.error(("dictionary", "words"), f"word {item!r} must be one 'form/TAG', e.g. "
                    "'씹선비/NNG'", line=c.smap.find(item, "dictionary", "words"))
            continue
        words.append((morphs[0][0], morphs[0][1]))
    aliases_raw = table.get("aliases", {})
    aliases: list[tuple[str, tuple[tuple[str, str], ...]]] = []
    if not isinstance(aliases_raw, dict):
        c.error(("dictionary", "aliases"), "aliases must be a table of \"spelling\" = "
                "\"form/TAG\"")
        aliases_raw = {}
    for spelling, analysis in aliases_raw.items():
        line = c.smap.find(spelling, "dictionary", "aliases")
        if not isinstance(analysis, str):
            c.error(("dictionary", "aliases"), f"alias {spelling!r} must map to a string like "
                    "\"개새끼/NNG\"", line=line)
            continue
        try:
            morphs = parse_tagged(analysis)
        except TermSyntaxError as exc:
            c.error(("dictionary", "aliases"), f"alias {spelling!r}: {exc}", line=line)
            continue
        if any(tag is None for _, tag in morphs):
            c.error(("dictionary", "aliases"), f"alias {spelling!r}: every morpheme needs a "
                    f"tag, e.g. \"개새끼/NNG\" (got {analysis!r})", line=line)
            continue
        aliases.append((spelling, tuple((f, t) for f, t in morphs if t is not None)))
    return Dictionary(tuple(words), tuple(aliases))


def _escalation(c: _Checker, data: dict) -> EscalationPolicy:
    table = c.table(data, "escalation", ())
    path = ("escalation",)
    c.unknown_keys(table, ESCALATION_KEYS, path, "[escalation]")
    d = EscalationPolicy()
    policy = EscalationPolicy(
        window=c.number(table, "window", path, d.window, kind=float, minimum=1,
                        convert=parse_duration),
        cooldown=c.number(table, "cooldown", path, d.cooldown, kind=float, minimum=0,
                          convert=parse_duration),
        notice_at=c.number(table, "notice_at", path, d.notice_at, kind=int, minimum=1),
        warn_at=c.number(table, "warn_at", path, d.warn_at, kind=int, minimum=1),
        warnings=c.number(table, "warnings", path, d.warnings, kind=int, minimum=1),
        final_at=c.number(table, "final_at", path, d.final_at, kind=int, minimum=1),
    )
    if policy.notice_at > policy.warn_at:
        c.error((*path, "notice_at"), f"notice_at ({policy.notice_at}) must not be above "
                f"warn_at ({policy.warn_at}): the counselor is told before the caller is warned")
    return policy


def _repeat_callers(c: _Checker, data: dict, prompts: dict) -> RepeatCallerPolicy:
    table = c.table(data, "repeat_callers", ())
    path = ("repeat_callers",)
    c.unknown_keys(table, {"warn_after"}, path, "[repeat_callers]")
    policy = RepeatCallerPolicy(
        warn_after=c.number(table, "warn_after", path, 0, kind=int, minimum=0))
    if policy.warn_after and "warning" not in prompts:
        c.error((*path, "warn_after"), "warn_after plays the warning prompt: add "
                "[prompts.warning]")
    return policy


def _durations(c: _Checker, data: dict) -> tuple[DurationPolicy, DurationPolicy]:
    table = c.table(data, "duration", ())
    c.unknown_keys(table, set(Direction), ("duration",), "[duration]")
    out = []
    for direction in Direction:
        path = ("duration", direction)
        sub = table.get(direction, {})
        if not isinstance(sub, dict):
            c.error(path, f"[duration.{direction}] must be a table")
            sub = {}
        c.unknown_keys(sub, DURATION_KEYS, path, f"[duration.{direction}]")
        notice = c.number(sub, "notice_at", path, None, kind=float, minimum=1,
                          convert=parse_duration)
        final = c.number(sub, "final_at", path, None, kind=float, minimum=1,
                         convert=parse_duration)
        if notice is not None and final is not None and notice >= final:
            c.error((*path, "final_at"), f"final_at ({final:g} s) must come after notice_at "
                    f"({notice:g} s)")
            notice = final = None
        out.append(DurationPolicy(notice, final))
    return out[0], out[1]


def _prompts(c: _Checker, data: dict, base_dir: Path | None) -> dict[str, Prompt]:
    table = c.table(data, "prompts", ())
    c.unknown_keys(table, set(PROMPT_KEYS), ("prompts",), "[prompts]")
    prompts: dict[str, Prompt] = {}
    for key in PROMPT_KEYS:
        if key not in table:
            continue
        path = ("prompts", key)
        sub = table[key]
        if not isinstance(sub, dict):
            c.error(path, f"[prompts.{key}] must be a table with 'file' and 'text'")
            continue
        c.unknown_keys(sub, PROMPT_FIELDS, path, f"[prompts.{key}]")
        file_raw = sub.get("file", "")
        text = sub.get("text", "")
        if not isinstance(file_raw, str) or not isinstance(text, str):
            c.error(path, f"[prompts.{key}] 'file' and 'text' must be strings")
            continue
        file: Path | None = None
        if file_raw:
            file = Path(file_raw)
            if not file.is_absolute() and base_dir is not None:
                file = base_dir / file
            if base_dir is not None and not file.is_file():
                c.warn((*path, "file"), f"prompt file {file_raw!r} not found; "
                       f"prompt '{key}' cannot be played")
            elif base_dir is not None:
                problem = prompt_audio_problem(file)
                if problem is not None:  # the caller would hear the chime, not the prompt
                    c.error((*path, "file"), f"prompt file {file_raw!r} ({file}) cannot be "
                            f"played: {problem}")
        prompts[key] = Prompt(file, text)
    return prompts


def prompt_audio_problem(file: Path) -> str | None:
    """Why the prompt WAV ``file`` cannot be played (``None`` if it decodes to audio): the
    rules load decodes every prompt, so a broken recording is found by ``rules check`` and
    refused by a reload, not discovered when a caller should hear it."""
    from callguard.audio.wavfile import AudioFileError, read_wav

    try:
        data, rate = read_wav(file)
    except AudioFileError as exc:
        return str(exc).removeprefix(f"{file}: ")
    except Exception as exc:  # any failure to decode is the answer
        # e.g. the wave module's RuntimeError on a malformed chunk, numpy's ValueError on
        # truncated sample data
        detail = f": {exc}" if str(exc) else ""
        return f"cannot decode it as PCM WAV ({type(exc).__name__}{detail})"
    if rate <= 0:
        return f"sample rate {rate} Hz"
    if data.shape[0] == 0:
        return "the file holds no audio"
    return None


def _untagged_exceptions(c: _Checker, terms: list[str], path: tuple,
                         rule_id: str | None) -> bool:
    """Report exceptions written with a POS tag (they are matched as text); True if none."""
    ok = True
    for term in terms:
        if _TAGGED.search(term):
            c.error(path, f"exception {term!r} has a part-of-speech tag; exceptions are "
                    "matched as text (write it without '/TAG')", rule_id,
                    line=c.smap.find(term, *path))
            ok = False
    return ok


def _rule(c: _Checker, index: int, raw: Any, seen_ids: dict[str, int]) -> Rule | None:
    path: tuple = ("rule", index)
    if not isinstance(raw, dict):
        c.error(path, "each [[rule]] must be a table")
        return None
    rule_id = raw.get("id")
    if not isinstance(rule_id, str) or not _ID.match(rule_id):
        c.error((*path, "id") if "id" in raw else path,
                "every rule needs an 'id' of letters, digits, '_', '-' or '.'"
                + (f" (got {rule_id!r})" if rule_id is not None else ""),
                rule_id=f"#{index + 1}")
        rule_id = f"#{index + 1}"
    elif rule_id in seen_ids:
        c.error((*path, "id"), f"duplicate rule id (first defined on line {seen_ids[rule_id]})",
                rule_id)
    else:
        seen_ids[rule_id] = c.smap.line(*path)
    rid: str = rule_id
    c.unknown_keys(raw, RULE_KEYS, path, "[[rule]]", rid)
    ok = True

    category_raw = raw.get("category")
    try:
        category = Category(category_raw)
    except ValueError:
        c.error((*path, "category") if "category" in raw else path,
                f"category must be one of {', '.join(x.value for x in Category)}"
                + (f", not {category_raw!r}" if category_raw is not None else ""), rid)
        category, ok = Category.PROFANITY, False

    mode_raw = raw.get("mode", MatchMode.NOSPACE.value)
    try:
        mode = MatchMode(mode_raw)
    except ValueError:
        c.error((*path, "mode"), f"mode must be one of {', '.join(m.value for m in MatchMode)}, "
                f"not {mode_raw!r}", rid)
        mode, ok = MatchMode.NOSPACE, False

    if "terms" not in raw:
        c.error(path, "rule has no 'terms'", rid)
        terms: list[str] = []
        ok = False
    else:
        terms = c.string_list(raw["terms"], (*path, "terms"), "terms", rid)
        if not terms:
            c.error((*path, "terms"), "terms must list at least one keyword", rid)
            ok = False
    for term in terms:
        try:
            morphs = parse_tagged(term)
        except TermSyntaxError as exc:
            c.error((*path, "terms"), f"term {term!r}: {exc}", rid,
                    line=c.smap.find(term, *path, "terms"))
            ok = False
            continue
        tagged = any(tag is not None for _, tag in morphs)
        if tagged and not mode.needs_analyzer:
            c.error((*path, "terms"), f"term {term!r} has a part-of-speech tag, which only "
                    f"'morpheme' and 'phrase' modes use (this rule's mode is '{mode.value}')",
                    rid, line=c.smap.find(term, *path, "terms"))
            ok = False
        if not mode.needs_analyzer and not squeeze_term(term):
            c.error((*path, "terms"), f"term {term!r} has no letters to match", rid,
                    line=c.smap.find(term, *path, "terms"))
            ok = False

    exceptions = c.string_list(raw.get("exceptions", []), (*path, "exceptions"), "exceptions",
                               rid)
    if not _untagged_exceptions(c, exceptions, (*path, "exceptions"), rid):
        ok = False
    severity = c.number(raw, "severity", path, 1, kind=int, minimum=1, rule_id=rid)
    if severity > 10:
        c.error((*path, "severity"), f"severity must be 1-10, not {severity}", rid)
        ok = False
    gap = c.number(raw, "gap", path, 2, kind=int, minimum=0, rule_id=rid)
    if "gap" in raw and mode is not MatchMode.PHRASE:
        c.error((*path, "gap"), "'gap' only applies to mode = \"phrase\"", rid)
        ok = False
    enabled = raw.get("enabled", True)
    if not isinstance(enabled, bool):
        c.error((*path, "enabled"), f"enabled must be true or false, not {enabled!r}", rid)
        enabled, ok = True, False
    description = raw.get("description", "")
    if not isinstance(description, str):
        c.error((*path, "description"), "description must be a string", rid)
        description = ""
    broad = raw.get("broad", False)
    if not isinstance(broad, bool):
        c.error((*path, "broad"), f"broad must be true or false, not {broad!r}", rid)
        broad, ok = False, False
    if not ok:
        return None
    return Rule(id=rid, category=category, terms=tuple(terms), mode=mode, severity=severity,
                exceptions=tuple(exceptions), enabled=enabled, gap=gap,
                description=description, line=c.smap.line(*path), broad=broad)


def _duplicate_warnings(c: _Checker, rules: list[Rule]) -> None:
    seen: dict[tuple[str, str], str] = {}
    for rule in rules:
        index = None
        for term in rule.terms:
            key = (rule.mode.value, squeeze_term(term) if not rule.mode.needs_analyzer else term)
            if key in seen:
                other = seen[key]
                where = "this rule" if other == rule.id else f"rule {other}"
                if index is None:
                    index = _index_of(c, rule)
                c.warn((), f"term {term!r} duplicates a term of {where}", rule.id,
                       line=c.smap.find(term, "rule", index, "terms"))
            else:
                seen[key] = rule.id


def broad_terms(rules: list[Rule] | tuple[Rule, ...], global_exceptions: tuple[str, ...] = (),
                dictionary: Dictionary | None = None, analyzer: Analyzer | None = None,
                ) -> dict[tuple[str, str], BroadTerm]:
    """The terms of ``rules`` (those without ``broad = true``) that are one syllable or
    flag any of the ordinary sentences, by ``(rule id, term)``. Morpheme and phrase terms
    are matched only when ``analyzer`` is given (else only their length is judged)."""
    checked = [replace(r, enabled=True) for r in rules if not r.broad
               and (analyzer is not None or not r.mode.needs_analyzer)]
    flagged: dict[tuple[str, str], list[str]] = {}
    if checked:
        ruleset = RuleSet(path=None, version="", name="", rules=tuple(checked),
                          global_exceptions=tuple(global_exceptions),
                          dictionary=dictionary or Dictionary())
        matcher = Matcher(ruleset, analyzer)
        for sentence, result in zip(ORDINARY_SENTENCES, matcher.match_many(ORDINARY_SENTENCES),
                                    strict=True):
            for hit in result.hits:
                seen = flagged.setdefault((hit.rule_id, hit.term), [])
                if sentence not in seen:
                    seen.append(sentence)
    out = {}
    for rule in rules:
        if rule.broad:
            continue
        for term in rule.terms:
            short = one_syllable(term)
            hits = tuple(flagged.get((rule.id, term), ()))
            if short or hits:
                out[(rule.id, term)] = BroadTerm(term, short, hits)
    return out


def _broad_problems(c: _Checker, rules: list[Rule], global_exceptions: list[str],
                    dictionary: Dictionary, analyzer: Analyzer | None) -> None:
    """The broad-term guard (:mod:`callguard.rules.broad`): an error for a term of one
    syllable or one that flags more than BROAD_SHARE of the ordinary sentences, a warning
    for one that flags fewer; none for a rule with ``broad = true``."""
    found = broad_terms(rules, tuple(global_exceptions), dictionary, analyzer)
    for rule in rules:
        index = None
        for term in rule.terms:
            broad = found.get((rule.id, term))
            if broad is None:
                continue
            if index is None:
                index = _index_of(c, rule)
            line = c.smap.find(term, "rule", index, "terms")
            if broad.one_syllable or broad.too_many:
                c.error(("rule", index), broad.message(), rule.id, line=line)
            else:
                c.warn((), broad.message(), rule.id, line=line)


def _index_of(c: _Checker, rule: Rule) -> int:
    # Rules keep their header line; find the [[rule]] index that has it.
    index = 0
    while True:
        line = c.smap.line("rule", index)
        if not line or line == rule.line:
            return index
        index += 1


def _analysis_warnings(c: _Checker, rules: list[Rule], analyzer: Analyzer) -> None:
    """Warn about keywords Kiwi reads differently from what the admin probably meant."""
    for rule in rules:
        if not rule.mode.needs_analyzer:
            continue
        index = _index_of(c, rule)
        for term in rule.terms:
            if any(tag is not None for _, tag in parse_tagged(term)):
                continue  # the admin pinned the analysis
            morphs = analyzer.analyze(term)
            shown = " + ".join(str(m) for m in morphs)
            line = c.smap.find(term, "rule", index, "terms")
            content = [m for m in morphs if not is_functional(m.tag)]
            if not content:
                c.error(("rule", index), f"term {term!r} has no content morpheme to match "
                        f"(Kiwi: {shown})", rule.id, line=line)
            elif rule.mode is MatchMode.MORPHEME and is_functional(morphs[-1].tag):
                c.warn((), f"Kiwi reads {term!r} as {shown}: it ends in an ending or particle, "
                       "so only that inflection matches; pin the tags you mean (e.g. "
                       f"'{term}/NNG', adding it to [dictionary] words if Kiwi does not know "
                       "the word) or use mode = \"phrase\"", rule.id, line=line)
            elif rule.mode is MatchMode.MORPHEME and " " not in term and len(content) > 1:
                c.warn((), f"Kiwi splits {term!r} into {shown}; it matches only where Kiwi "
                       "splits the text the same way (add an alias in [dictionary] or pin "
                       "tags)", rule.id, line=line)


def parse_rules(source: str | bytes, *, name: str = "<rules>", base_dir: Path | None = None,
                analyzer: Analyzer | None = None, check_analysis: bool = True) -> LoadResult:
    """Validate rules given as text; raise :class:`RulesError` listing every error.

    ``name`` is the file name used in messages; prompt paths are relative to ``base_dir``
    (prompt files are not checked when it is ``None``). Kiwi-based checks use ``analyzer``,
    or the shared Kiwi analyser when ``check_analysis`` is true and it is ``None``.
    """
    raw = source.encode("utf-8") if isinstance(source, str) else source
    version = hashlib.sha256(raw).hexdigest()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise RulesError([Problem(name, line, "the file is not valid UTF-8 text")]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RulesError([_syntax_problem(name, exc)]) from None

    c = _Checker(name, SourceMap(text))
    c.unknown_keys(data, TOP_KEYS, (), "the top level")
    fmt = data.get("format", FORMAT_VERSION)
    if fmt != FORMAT_VERSION:
        c.error(("format",), f"unsupported format {fmt!r}; this callguard reads format "
                f"{FORMAT_VERSION}")
    title = data.get("name", "")
    if not isinstance(title, str):
        c.error(("name",), "name must be a string")
        title = ""
    description = data.get("description", "")
    if not isinstance(description, str):
        c.error(("description",), "description must be a string")
        description = ""
    dictionary = _dictionary(c, data)
    ex_table = c.table(data, "exceptions", ())
    c.unknown_keys(ex_table, {"terms"}, ("exceptions",), "[exceptions]")
    global_exceptions = c.string_list(ex_table.get("terms", []), ("exceptions", "terms"),
                                      "exceptions", None)
    _untagged_exceptions(c, global_exceptions, ("exceptions", "terms"), None)
    escalation = _escalation(c, data)
    inbound, outbound = _durations(c, data)
    prompts = _prompts(c, data, base_dir)

    raw_rules = data.get("rule", [])
    if not isinstance(raw_rules, list):
        c.error(("rule",), "rules must be written as [[rule]] tables")
        raw_rules = []
    seen: dict[str, int] = {}
    rules = [r for i, item in enumerate(raw_rules) if (r := _rule(c, i, item, seen))]
    if not raw_rules:
        # An error, not a warning: an empty file (truncated by an editor, a failed copy)
        # would otherwise go into force and silently detect nothing.
        c.error((), "the file has no [[rule]]: no abuse would be detected (an empty rule set "
                "is refused; the last good rules stay in force)")
    _duplicate_warnings(c, rules)
    if check_analysis and any(r.mode.needs_analyzer for r in rules):
        if analyzer is None:
            from callguard.text.analyzer import kiwi_analyzer

            analyzer = kiwi_analyzer(dictionary)
        _analysis_warnings(c, rules, analyzer.with_dictionary(dictionary))
    _broad_problems(c, rules, global_exceptions, dictionary,
                    analyzer if check_analysis else None)

    repeat = _repeat_callers(c, data, prompts)

    if any(p.severity is Severity.ERROR for p in c.problems):
        raise RulesError(sorted(c.problems, key=lambda p: p.line))
    ruleset = RuleSet(path=None, version=version, name=title, description=description,
                      rules=tuple(rules),
                      global_exceptions=tuple(global_exceptions), escalation=escalation,
                      inbound=inbound, outbound=outbound, prompts=prompts,
                      dictionary=dictionary, source=text, repeat_callers=repeat)
    return LoadResult(ruleset, sorted(c.problems, key=lambda p: p.line))


def load_rules(path: str | Path, *, analyzer: Analyzer | None = None,
               check_analysis: bool = True) -> LoadResult:
    """Read and validate the rules file at ``path``; see :func:`parse_rules`."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise RulesError([Problem(str(p), 0, f"cannot read the rules file: {exc.strerror}")]) \
            from None
    result = parse_rules(raw, name=str(p), base_dir=p.parent, analyzer=analyzer,
                         check_analysis=check_analysis)
    result.ruleset = replace(result.ruleset, path=p)
    return result
