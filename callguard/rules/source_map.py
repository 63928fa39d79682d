"""Line numbers for values in a TOML document.

``tomllib`` returns plain dicts without positions, so this module scans the source lines
once to find where each table header and key sits. It understands what rules files use:
``[table]``, ``[a.b]``, ``[[array]]`` headers, ``key = value`` lines (bare, quoted or
dotted keys), comments and multi-line strings. Paths are tuples: ``("rule", 0, "terms")``
is the ``terms`` key of the first ``[[rule]]``.
"""

from __future__ import annotations

import re

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_PART = r"""(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')"""
_KEY = re.compile(rf"^\s*({_PART}(?:\s*\.\s*{_PART})*)\s*=")

Path = tuple[str | int, ...]


def _split_key(raw: str) -> tuple[str, ...]:
    parts = re.findall(r"""[A-Za-z0-9_-]+|"[^"]*"|'[^']*'""", raw)
    return tuple(p.strip("\"'") for p in parts)


class SourceMap:
    """Where table headers and keys sit in a TOML source (1-based line numbers)."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        self._lines: dict[Path, int] = {}
        self._blocks: dict[Path, tuple[int, int]] = {}
        self._scan()

    def _scan(self) -> None:
        counters: dict[tuple[str, ...], int] = {}
        current: Path = ()
        block_start = 1
        in_multiline: str | None = None
        for number, line in enumerate(self.lines, start=1):
            if in_multiline:
                if line.count(in_multiline) % 2 == 1:
                    in_multiline = None
                continue
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            header = _HEADER.match(line)
            if header and not _KEY.match(line):
                self._blocks[current] = (block_start, number - 1)
                name = _split_key(header.group(2))
                if header.group(1) == "[[":
                    index = counters.get(name, 0)
                    counters[name] = index + 1
                    current = (*name, index)
                else:
                    current = name
                self._lines.setdefault(current, number)
                block_start = number
                continue
            key = _KEY.match(line)
            if key:
                path = current + _split_key(key.group(1))
                self._lines.setdefault(path, number)
                rest = line[key.end():]
                for quote in ('"""', "'''"):
                    if rest.count(quote) % 2 == 1:
                        in_multiline = quote
        self._blocks[current] = (block_start, len(self.lines))

    def line(self, *path: str | int) -> int:
        """Line of ``path``, or of its nearest enclosing table that was found (0 if none)."""
        p: Path = tuple(path)
        while p:
            if p in self._lines:
                return self._lines[p]
            p = p[:-1]
        return 0

    def find(self, needle: str, *path: str | int) -> int:
        """First line of the block of ``path`` at or after its key that contains ``needle``.

        Used to point at one term inside a multi-line list; falls back to :meth:`line`.
        """
        start = self.line(*path)
        table: Path = tuple(path)
        while table and table not in self._blocks:
            table = table[:-1]
        end = self._blocks.get(table, (0, len(self.lines)))[1]
        if start:
            for number in range(start, min(end, len(self.lines)) + 1):
                text = self.lines[number - 1]
                if needle in text.split("#", 1)[0] or needle in text:
                    return number
        return start
