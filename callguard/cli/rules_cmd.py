"""``callguard rules check|test|eval|bench|dryrun|save``: the admin's rule tools."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from pathlib import Path

from callguard.cli.failure import say
from callguard.config import load_settings
from callguard.rules.evaluation import PRESETS, DatasetError, evaluate, read_dataset
from callguard.rules.loader import load_rules
from callguard.rules.matcher import Matcher, MatchResult
from callguard.rules.problems import RulesError, check_lines, check_summary
from callguard.services import rules_admin
from callguard.services.accounts import sign_in
from callguard.services.dryrun import CallReplay, DryRunReport, dry_run
from callguard.store import Store
from callguard.store.records import CallRecord

DEFAULT_RULES = Path(__file__).resolve().parents[2] / "rules" / "default.toml"


def register(sub: argparse._SubParsersAction) -> None:
    rules = sub.add_parser("rules", help="check, test and evaluate a rules file")
    rsub = rules.add_subparsers(dest="rules_command", metavar="ACTION", required=True)

    check = rsub.add_parser("check", help="validate a rules file: OK or file:line: errors")
    check.add_argument("file", type=Path)
    check.add_argument("--analysis", action="store_true",
                       help="also show Kiwi's analysis of every morpheme/phrase keyword")
    check.add_argument("--strict", action="store_true", help="treat warnings as errors")
    check.set_defaults(func=cmd_check)

    test = rsub.add_parser("test", help="show analysis, hits and exceptions for sentences")
    test.add_argument("file", type=Path)
    test.add_argument("sentences", nargs="*",
                      help="sentences to test (default: one per line from standard input)")
    test.add_argument("--json", action="store_true", help="print JSON, one object per line")
    test.set_defaults(func=cmd_test)

    ev = rsub.add_parser("eval", help="precision/recall/F1 on a labelled dataset")
    ev.add_argument("file", type=Path)
    ev.add_argument("dataset", type=Path)
    ev.add_argument("--preset", choices=sorted(PRESETS),
                    help="format and label map of a known public dataset")
    ev.add_argument("--format", choices=["auto", "pipe", "tsv", "csv"], default=None)
    ev.add_argument("--text-col", help="text column (name or 0-based index)")
    ev.add_argument("--label-col", help="label column (name or 0-based index)")
    ev.add_argument("--labels", metavar="MAP",
                    help="label map, e.g. '1=abuse' or '3=profanity,1=insult' "
                         "(targets: a category or 'abuse')")
    ev.add_argument("--examples", type=int, default=5,
                    help="how many false positives/negatives to show (default 5)")
    ev.add_argument("--json", action="store_true", help="print the report as JSON")
    ev.set_defaults(func=cmd_eval)

    bench = rsub.add_parser("bench", help="time matching transcript-length sentences (JSON)")
    bench.add_argument("file", type=Path, nargs="?", default=DEFAULT_RULES)
    bench.add_argument("--sentences", type=int, default=1000)
    bench.add_argument("--dataset", type=Path, default=None,
                       help="text file (pipe format) to draw sentences from; default: "
                            "generated Korean call-center sentences")
    bench.set_defaults(func=cmd_bench)

    dry = rsub.add_parser("dryrun", help="replay stored calls under a rules file: which would "
                          "it warn or cut off, and what changes")
    dry.add_argument("file", type=Path)
    dry.add_argument("--store", type=Path, required=True, metavar="STORE",
                     help="the call store (SQLite file) whose calls to replay")
    dry.add_argument("--limit", type=int, default=100, metavar="N",
                     help="replay the latest N calls (default 100); calls still going on "
                          "are left out")
    dry.add_argument("--json", action="store_true", help="print the report as JSON")
    dry.set_defaults(func=cmd_dryrun)

    save = rsub.add_parser(
        "save", help="check a rules file and save it as the rules in use (an admin's "
        "password; version history and audit, as the rules editor saves)",
        description="Check FILE as `rules check` does and, if it has no errors, write it "
        "atomically to the configured rules path, keep it in the call store's version "
        "history and audit the save. Needs an admin account's password (the admin of the "
        "rules editor), asked on the terminal.")
    save.add_argument("file", type=Path)
    save.add_argument("--note", default="", help="what changed (kept in the history)")
    save.add_argument("--as", dest="account", metavar="ACCOUNT",
                      help="the admin account (default: the only one there is)")
    save.add_argument("--password-stdin", action="store_true",
                      help="read the password from the first line of standard input (scripts)")
    save.add_argument("--config", type=Path, help="settings file (default: ~/.config/callguard/"
                      "config.toml)")
    save.add_argument("--rules", type=Path, metavar="PATH",
                      help="where to save (default: [rules] path of the settings)")
    save.add_argument("--store", type=Path, metavar="STORE",
                      help="the call store (default: [store] path of the settings)")
    save.set_defaults(func=cmd_save)


def _load(path: Path):
    try:
        result = load_rules(path)
    except RulesError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return None
    for warning in result.warnings:
        print(warning, file=sys.stderr)
    return result


def cmd_check(args: argparse.Namespace) -> int:
    try:
        result = load_rules(args.file)
    except RulesError as exc:
        for line in check_lines(str(args.file), exc.problems, None):
            print(line)
        return 1
    for warning in result.warnings:
        print(warning)
    rs = result.ruleset
    if args.analysis:
        matcher = Matcher(rs)
        for rule in rs.enabled_rules:
            if not rule.mode.needs_analyzer or matcher.analyzer is None:
                continue
            for term in rule.terms:
                kiwi = " + ".join(str(m) for m in matcher.analyzer.analyze(term))
                pattern = matcher.pattern_of(rule, term)
                looks_for = " + ".join(f"{f}/{t}" if t else f for f, t in pattern)
                pinned = "/" in term
                print(f"{args.file}:{rule.line}: rule {rule.id}: {term!r} → "
                      + (f"pinned {looks_for}" if pinned else
                         f"Kiwi {kiwi}; matches forms {looks_for}"))
    if args.strict and result.warnings:
        print(f"{len(result.warnings)} warning(s) (--strict)")
        return 1
    print(check_summary(str(args.file), result.warnings, rs))
    return 0


def _describe(result: MatchResult, matcher: Matcher) -> list[str]:
    out = [f"> {result.text}"]
    if result.morphs is not None:
        out.append("  Kiwi: " + " ".join(str(m) for m in result.morphs))
    for h in result.hits:
        rule = matcher.ruleset.rule(h.rule_id)
        out.append(f"  HIT [{h.start}:{h.end}] {h.matched!r} rule {h.rule_id} "
                   f"({h.category.value} {h.category.label_ko}, severity {h.severity}, "
                   f"{rule.mode.value} term {h.term!r})")
    for s in result.suppressed:
        h = s.hit
        out.append(f"  SUPPRESSED [{h.start}:{h.end}] {h.matched!r} rule {h.rule_id} by "
                   f"exception {s.exception!r} [{s.start}:{s.end}]")
    if not result.hits:
        out.append("  no hits")
    else:
        cats = ", ".join(sorted({h.category.value for h in result.hits}))
        out.append(f"  → {len(result.hits)} hit(s): {cats}")
    return out


def cmd_test(args: argparse.Namespace) -> int:
    loaded = _load(args.file)
    if loaded is None:
        return 1
    matcher = Matcher(loaded.ruleset)
    sentences = args.sentences or [line.rstrip("\n") for line in sys.stdin if line.strip()]
    for result in matcher.match_many(sentences):
        if args.json:
            print(json.dumps({
                "text": result.text,
                "morphs": [[m.form, m.tag, m.start, m.end] for m in result.morphs or ()],
                "hits": [{"rule": h.rule_id, "category": h.category.value,
                          "severity": h.severity, "start": h.start, "end": h.end,
                          "matched": h.matched, "term": h.term} for h in result.hits],
                "suppressed": [{"rule": s.hit.rule_id, "matched": s.hit.matched,
                                "start": s.hit.start, "end": s.hit.end,
                                "exception": s.exception} for s in result.suppressed],
            }, ensure_ascii=False))
        else:
            print("\n".join(_describe(result, matcher)))
    return 0


def _label_map(text: str) -> dict[str, str]:
    out = {}
    for part in text.split(","):
        raw, sep, target = part.partition("=")
        if not sep:
            raise DatasetError(f"label map entry {part!r} is not LABEL=TARGET")
        out[raw.strip()] = target.strip()
    return out


def cmd_eval(args: argparse.Namespace) -> int:
    loaded = _load(args.file)
    if loaded is None:
        return 1
    preset = dict(PRESETS[args.preset]) if args.preset else {}
    try:
        labels = _label_map(args.labels) if args.labels else preset.get("labels")
        if not labels:
            raise DatasetError("give --labels (e.g. '1=abuse') or --preset")
        examples = read_dataset(
            args.dataset, fmt=args.format or preset.get("format", "auto"),
            text=args.text_col if args.text_col is not None else preset.get("text"),
            label=args.label_col if args.label_col is not None else preset.get("label"),
            labels=labels)
    except OSError as exc:  # the dataset cannot be read (a DatasetError goes to main: 2)
        say(exc)
        return 2
    report = evaluate(Matcher(loaded.ruleset), examples, dataset=str(args.dataset),
                      samples=args.examples)
    if args.json:
        print(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
        return 0
    print(f"{args.dataset}: {report.rows} rows, rules {args.file} "
          f"(version {loaded.ruleset.version[:12]})")
    print(f"{'category':<16}{'precision':>10}{'recall':>8}{'F1':>8}{'support':>9}")
    for name, score in [*report.per_category.items(), ("overall", report.overall)]:
        print(f"{name:<16}{score.precision:>10.3f}{score.recall:>8.3f}{score.f1:>8.3f}"
              f"{score.tp + score.fn:>9}")
    if report.false_positives:
        print("\nfalse positives (line: text ← hits):")
        for line, text, hits in report.false_positives:
            print(f"  {line}: {text[:80]} ← {', '.join(hits)}")
    if report.false_negatives:
        print("\nfalse negatives (line: text):")
        for line, text in report.false_negatives:
            print(f"  {line}: {text[:80]}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from callguard.bench.rules_match import run

    print(json.dumps(run(args.file, args.sentences, args.dataset), ensure_ascii=False))
    return 0


async def _ended_calls(path: Path, limit: int) -> tuple[list[CallRecord], int]:
    async with Store.open(path) as store:
        return await store.ended_calls(limit)


def _replay_line(row: CallReplay) -> str:
    actual = row.actual_stage + (f" ({row.actual_end_reason})" if row.actual_end_reason else "")
    replay = row.outcome
    if row.cut_off:
        replay += f", cut off: {row.cut_reason} at {row.cut_at:.1f} s"
    rules = f" [{', '.join(row.rules)}]" if row.rules else ""
    return (f"call {row.call_id} {row.direction}: recorded {actual} → replay {replay}; "
            f"{row.hits} hit(s){rules}" + ("  CHANGED" if row.changed else ""))


def _print_report(report: DryRunReport, args: argparse.Namespace, skipped: int) -> None:
    print(f"rules {args.file} (version {report.rules_version[:12]}) on {report.calls} call(s) "
          f"of {args.store}")
    for row in report.rows:
        print(_replay_line(row))
    if skipped:
        print(f"{skipped} call(s) still going on left out")
    print(f"{report.calls} call(s): {report.warned} warned, {report.cut_off} cut off, "
          f"{report.changed} changed")


def cmd_dryrun(args: argparse.Namespace) -> int:
    if args.limit < 1:
        print("callguard rules dryrun: --limit must be at least 1", file=sys.stderr)
        return 2
    # Opening a store creates a missing file: a mistyped path must not become an empty store.
    if not args.store.is_file():
        print(f"callguard rules dryrun: no call store at {args.store}", file=sys.stderr)
        return 2
    loaded = _load(args.file)
    if loaded is None:
        return 1
    records, skipped = asyncio.run(_ended_calls(args.store, args.limit))
    report = dry_run(records, loaded.ruleset, Matcher(loaded.ruleset))
    if args.json:
        print(json.dumps({**report.as_dict(), "skipped_ongoing": skipped}, ensure_ascii=False,
                         indent=2))
    else:
        _print_report(report, args, skipped)
    return 0


def _read_password(account: str | None, from_stdin: bool) -> str | None:
    """The admin's password: the first line of standard input, or typed on the terminal
    (never a command-line argument: other users of the machine could read it)."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        return None
    return getpass.getpass(f"password of admin account {account}: " if account
                           else "admin password: ")


async def _admin_name(store: Store, wanted: str | None) -> str | None:
    """``wanted``, or the only admin account; ``None`` (reported) when it cannot choose."""
    if wanted:
        return wanted
    admins = [name for name, role in await store.users() if role == rules_admin.ADMIN]
    if len(admins) == 1:
        return admins[0]
    say("no admin account yet: make one with `callguard accounts add NAME --role admin`"
        if not admins else f"several admin accounts ({', '.join(admins)}): choose one "
        "with --as")
    return None


async def _save(args: argparse.Namespace, store_path: Path, dest: Path, text: str,
                check: rules_admin.Check) -> str | None:
    async with Store.open(store_path) as store:
        name = await _admin_name(store, args.account)
        if name is None:
            return None
        password = _read_password(name, args.password_stdin)
        if password is None:
            say("no terminal to ask the password on: give it on standard input with "
                "--password-stdin")
            return None
        actor = await sign_in(store, name, password, rules_admin.ADMIN)
        return await rules_admin.save_rules(store, dest, text, actor.name, args.note,
                                            check=check)


def _unreadable(path: Path) -> list[str]:
    """What `rules check` prints for a file that cannot be read as UTF-8 text."""
    try:
        load_rules(path, check_analysis=False)
    except RulesError as exc:
        return check_lines(str(path), exc.problems, None)
    return [f"{path}: the file changed while it was being read; try again"]


def cmd_save(args: argparse.Namespace) -> int:
    """Check the file, then save it for an admin (its password): exit 0 when saved, 1 when
    the file has errors (printed as `rules check` prints them; nothing written) or the
    sign-in fails, 2 when there is no store, account or password to work with."""
    settings = load_settings(args.config)
    dest = args.rules or settings.rules_path
    store_path = args.store or settings.store_path
    try:
        text = args.file.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError):
        text = None
    # Prompt files are looked for beside the file being replaced: that is where the engine
    # will look for them once it is saved.
    check = (None if text is None else
             rules_admin.check_text(text, name=str(args.file), base_dir=dest.parent))
    for line in check.lines if check is not None else _unreadable(args.file):
        print(line)
    if text is None or check is None or not check.ok:
        say(f"not saved: {dest} is unchanged")
        return 1
    # Opening a store creates a missing file: an admin account cannot be in a new one.
    if not store_path.is_file():
        say(f"no call store at {store_path}: its admin account is needed to save rules "
            "(give --store, or set [store] path)")
        return 2
    version = asyncio.run(_save(args, store_path, dest, text, check))
    if version is None:
        return 2
    print(f"saved {dest}: version {version[:12]}" + (f" ({args.note})" if args.note else ""))
    return 0
