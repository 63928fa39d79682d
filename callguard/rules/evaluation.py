"""Measure a rule set on a labelled text dataset: precision, recall and F1.

A dataset is a text file of rows, each a text and a label field. Formats:

- ``pipe``: ``text|label`` (the last ``|`` splits), no header;
- ``tsv`` / ``csv``: columns chosen by name or 0-based index, header optional.

A label field may hold several labels separated by commas (K-MHaS: ``1,3``). A
*label map* turns raw labels into callguard categories (``3=profanity``) or ``abuse``
(any escalating category); unmapped labels count as clean. A row is a gold positive for a
category when one of its labels maps to it, and predicted positive when a hit of that
category survives the exceptions. "overall" compares *any* abusive label with *any*
escalating hit. Crisis hits never count as abuse here.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from callguard.errors import InputError
from callguard.rules.matcher import Matcher, MatchResult
from callguard.rules.model import Category

ABUSE = "abuse"
ESCALATING = frozenset(c for c in Category if c.escalates)

#: Ready-made settings for the public datasets in ../shared/data/abuse-dev.
PRESETS: dict[str, dict] = {
    "curse": {"format": "pipe", "labels": {"1": ABUSE}},
    "kmhas-profanity": {"format": "tsv", "text": "document", "label": "label",
                        "labels": {"3": "profanity"}},
    "kmhas": {"format": "tsv", "text": "document", "label": "label",
              "labels": {"3": "profanity", "1": "insult", "0": "discrimination",
                         "2": "discrimination", "4": "discrimination",
                         "5": "discrimination", "6": "discrimination",
                         "7": "discrimination"}},
    "beep": {"format": "tsv", "text": "comments", "label": "hate",
             "labels": {"offensive": "insult", "hate": "discrimination"}},
    "dktc": {"format": "csv", "text": "conversation", "label": "class",
             "labels": {"협박 대화": "threat", "갈취 대화": "threat",
                        "직장 내 괴롭힘 대화": "insult", "기타 괴롭힘 대화": "insult"}},
}


@dataclass(frozen=True, slots=True)
class Example:
    """One dataset row: its text and the set of categories (or ``abuse``) it is gold for."""

    text: str
    gold: frozenset[str]
    line: int


@dataclass
class Score:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def as_dict(self) -> dict:
        return {"precision": round(self.precision, 4), "recall": round(self.recall, 4),
                "f1": round(self.f1, 4), "tp": self.tp, "fp": self.fp, "fn": self.fn,
                "tn": self.tn, "support": self.tp + self.fn}


@dataclass
class Report:
    """Scores per category and overall, with sample errors (line, text, hits)."""

    dataset: str
    rows: int
    overall: Score
    per_category: dict[str, Score]
    false_positives: list[tuple[int, str, list[str]]] = field(default_factory=list)
    false_negatives: list[tuple[int, str]] = field(default_factory=list)
    rule_hits: dict[str, dict[str, int]] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "dataset": self.dataset,
            "rows": self.rows,
            "overall": self.overall.as_dict(),
            "per_category": {k: v.as_dict() for k, v in self.per_category.items()},
            "false_positives": [{"line": n, "text": t, "hits": h}
                                for n, t, h in self.false_positives],
            "false_negatives": [{"line": n, "text": t} for n, t in self.false_negatives],
            "rule_hits": self.rule_hits,
        }


class DatasetError(InputError, ValueError):
    """The dataset could not be read with the given options."""


def _column(header: Sequence[str] | None, wanted: str | int | None, default: int) -> int:
    if wanted is None:
        return default
    if isinstance(wanted, int) or (isinstance(wanted, str) and wanted.lstrip("-").isdigit()):
        return int(wanted)
    if header is None or wanted not in header:
        raise DatasetError(f"no column named {wanted!r}; columns: {list(header or [])}")
    return list(header).index(wanted)


def read_dataset(path: str | Path, *, fmt: str = "auto", text: str | int | None = None,
                 label: str | int | None = None, labels: dict[str, str],
                 header: bool | None = None) -> list[Example]:
    """Read labelled rows; see the module docstring for formats and label maps."""
    p = Path(path)
    raw = p.read_text(encoding="utf-8-sig")
    if fmt == "auto":
        fmt = {".tsv": "tsv", ".csv": "csv"}.get(p.suffix.lower(), "pipe")
    for target in labels.values():
        if target != ABUSE and target not in {c.value for c in Category}:
            raise DatasetError(f"label map target {target!r} is not a category or '{ABUSE}'")
    rows: list[tuple[int, str, str]] = []
    if fmt == "pipe":
        for number, line in enumerate(raw.splitlines(), start=1):
            if "|" not in line:
                continue
            t, _, lab = line.rpartition("|")
            rows.append((number, t, lab.strip()))
    elif fmt in ("tsv", "csv"):
        delimiter = "\t" if fmt == "tsv" else ","
        reader = csv.reader(io.StringIO(raw), delimiter=delimiter)
        table = list(reader)
        if not table:
            return []
        has_header = header if header is not None else (
            isinstance(text, str) and not text.isdigit()) or (
            isinstance(label, str) and not label.isdigit())
        head = table[0] if has_header else None
        ti = _column(head, text, 0)
        li = _column(head, label, -1)
        for number, row in enumerate(table[1:] if has_header else table,
                                     start=2 if has_header else 1):
            if not row:
                continue
            try:
                rows.append((number, row[ti], row[li].strip()))
            except IndexError:
                raise DatasetError(f"{p}:{number}: row has {len(row)} columns") from None
    else:
        raise DatasetError(f"unknown format {fmt!r} (pipe, tsv, csv or auto)")
    out = []
    for number, t, lab in rows:
        gold = frozenset(labels[x.strip()] for x in lab.split(",") if x.strip() in labels)
        out.append(Example(t.strip().strip('"'), gold, number))
    return out


def evaluate(matcher: Matcher, examples: Iterable[Example], *, dataset: str = "",
             samples: int = 5, batch: int = 512) -> Report:
    """Score ``matcher`` on ``examples`` (see the module docstring for the definitions)."""
    examples = list(examples)
    targets = sorted({g for e in examples for g in e.gold if g != ABUSE})
    per = {t: Score() for t in targets}
    overall = Score()
    fps: list[tuple[int, str, list[str]]] = []
    fns: list[tuple[int, str]] = []
    rule_hits: dict[str, dict[str, int]] = {}
    for offset in range(0, len(examples), batch):
        chunk = examples[offset:offset + batch]
        results: list[MatchResult] = matcher.match_many([e.text for e in chunk])
        for example, result in zip(chunk, results, strict=True):
            hits = [h for h in result.hits if h.category in ESCALATING]
            predicted = {h.category.value for h in hits}
            gold_any = bool(example.gold)
            pred_any = bool(predicted)
            _count(overall, gold_any, pred_any)
            for t in targets:
                _count(per[t], t in example.gold, t in predicted)
            for h in hits:
                stats = rule_hits.setdefault(h.rule_id, {"tp": 0, "fp": 0})
                stats["tp" if gold_any else "fp"] += 1
            if pred_any and not gold_any and len(fps) < samples:
                fps.append((example.line, example.text, [f"{h.rule_id}:{h.matched}"
                                                          for h in hits]))
            if gold_any and not pred_any and len(fns) < samples:
                fns.append((example.line, example.text))
    return Report(dataset, len(examples), overall, per, fps, fns, rule_hits)


def _count(score: Score, gold: bool, pred: bool) -> None:
    if gold and pred:
        score.tp += 1
    elif pred:
        score.fp += 1
    elif gold:
        score.fn += 1
    else:
        score.tn += 1
