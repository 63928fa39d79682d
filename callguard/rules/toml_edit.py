"""Change single values of a hand-written, commented TOML text (the rules editor's form).

:class:`TomlText` takes the whole text and returns the whole new text after one edit: a
value set, a key removed, an ``[[array]]`` table appended or removed. Everything the edit
does not touch stays as the admin wrote it, byte for byte: comments, blank lines, key
order, how other values are spelt. Paths are tuples as in :mod:`callguard.rules.source_map`:
``("rule", 0, "terms")`` is the ``terms`` of the first ``[[rule]]``.

The text is read with tomlkit (a style-preserving TOML parser). Values are set and removed
through it, which also reaches values inside inline tables and dotted keys. Where tomlkit's
own placement would move comments, a new key, table or ``[[rule]]`` goes in as lines at
rows tomlkit located:

- tomlkit counts the comment lines above a table header as the end of the table *before*
  it. Removing a ``[[rule]]`` through tomlkit would delete the section banner above the
  next one, and a new key would be written below that banner. Here a new key goes right
  after the table's last value and a removed table takes only its header and values.
- A new plain table goes before the first ``[[array]]`` table (after array tables it would
  read as part of the rules), not at the end of the file.
- A new ``[[rule]]`` is set off by a blank line, and a long list is wrapped at
  :data:`WIDTH` columns as rules files write terms (:func:`toml_value`).

Every edit is checked: the new text, parsed again, must hold exactly the old data with
that one change. An edit that cannot be made so (the text does not parse, a table defined
in a way a new header would clash with) raises :class:`NotEditable` and leaves the text as
it was; the admin then edits the raw TOML.

Units: durations are **seconds** in Python; the TOML writes them as strings like ``"2m"`` or
``"1m30s"`` (:func:`format_duration`, :func:`callguard.rules.loader.parse_duration`).

Pure and synchronous, no Qt. Each edit re-reads its result to check it, about 6 ms on the
default rules (24 kB; the line scanner this replaced took 2 ms). The parsed document of the
text an edit returns is kept for the next edit; a text typed by hand is parsed by its first
edit (about 40 ms) unless :func:`prepare` parsed it already, on a worker thread.
"""

from __future__ import annotations

import copy
import json
import re
import threading
import tomllib
from collections.abc import Sequence
from typing import Any

import tomlkit
from tomlkit.exceptions import TOMLKitError
from tomlkit.items import AoT, Item, Table

from callguard.errors import CallguardError

__all__ = [
    "WIDTH",
    "NotEditable",
    "TomlPath",
    "TomlText",
    "format_duration",
    "prepare",
    "toml_string",
    "toml_value",
]

TomlPath = tuple[str | int, ...]
#: Lists longer than this many columns are wrapped (as the default rules write terms).
WIDTH = 96


class NotEditable(CallguardError):
    """The form cannot change this value where it is written (an inline table, dotted
    keys): the admin edits it in the raw TOML."""


# -- durations and TOML values -------------------------------------------------------------
def format_duration(seconds: float) -> str:
    """Seconds as a rules file writes a duration: ``"2m"``, ``"1m30s"``, ``"1h"``, ``"0s"``
    (fractions as ``"1.5s"``). :func:`parse_duration` reads each back to ``seconds``."""
    total = float(seconds)
    if total != int(total):
        return f"{total:g}s"
    hours, rest = divmod(int(total), 3600)
    minutes, secs = divmod(rest, 60)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "") + \
        (f"{secs}s" if secs else "")
    return text or "0s"


def toml_string(value: str) -> str:
    """A TOML basic string. JSON's escapes are all valid TOML escapes; DEL is not allowed
    raw in TOML, so it is escaped too."""
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


def toml_value(value: Any, column: int = 0, indent: str = "", width: int = WIDTH) -> str:
    """``value`` as TOML. A list that would run past ``width`` characters (it starts at
    ``column``) is wrapped one indent deeper than ``indent``, as rules files write terms."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, list | tuple):
        items = [toml_value(v) for v in value]
        one = "[" + ", ".join(items) + "]"
        if column + len(one) <= width or not items:
            return one
        inner = indent + "    "
        rows: list[str] = []
        row = ""
        for item in items:
            piece = item + ","
            if row and len(inner) + len(row) + 1 + len(piece) > width:
                rows.append(inner + row)
                row = piece
            else:
                row = f"{row} {piece}" if row else piece
        rows.append(inner + row)
        return "[\n" + "\n".join(rows) + "\n" + indent + "]"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def _toml_key(key: str | int) -> str:
    """A key as TOML writes it: bare if it can be, else quoted."""
    key = str(key)
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else toml_string(key)


def _where(path: TomlPath) -> str:
    return ".".join(str(p) for p in path)


# -- plain data (what tomllib reads) ---------------------------------------------------------
def _set_in(data: Any, path: TomlPath, value: Any) -> None:
    """Set ``path`` in plain data, making missing tables; NotEditable if a step is no table."""
    try:
        for part in path[:-1]:
            data = data[part] if isinstance(part, int) else data.setdefault(part, {})
        if not isinstance(data, dict):
            raise TypeError(type(data).__name__)
    except (KeyError, IndexError, TypeError, AttributeError):
        raise NotEditable(_where(path)) from None
    data[path[-1]] = value


def _pruned(data: Any) -> Any:
    """``data`` without empty tables: removing the last ``[duration.*]`` table leaves no
    ``duration`` in the text, while deleting it from the data leaves ``duration = {}``."""
    if isinstance(data, dict):
        out = {k: _pruned(v) for k, v in data.items()}
        return {k: v for k, v in out.items() if v != {}}
    if isinstance(data, list):
        return [_pruned(v) for v in data]
    return data


def _del_in(data: Any, path: TomlPath) -> None:
    try:
        for part in path[:-1]:
            data = data[part]
        del data[path[-1]]
    except (KeyError, IndexError, TypeError):
        raise NotEditable(_where(path)) from None


# -- parsed texts -----------------------------------------------------------------------------
class _Parsed:
    """What edits parsed, by text: the tomlkit document (``None`` until needed) and the
    plain data. Each entry is handed out once: an edit changes the document in place, and
    it then belongs to the text the edit returned. A form edit thus starts from what the
    previous edit left instead of parsing the file twice again."""

    def __init__(self, keep: int = 4) -> None:
        self.keep = keep
        self._entries: dict[str, tuple[tomlkit.TOMLDocument | None, dict]] = {}
        self._lock = threading.Lock()

    def take(self, text: str) -> tuple[tomlkit.TOMLDocument | None, dict | None]:
        with self._lock:
            return self._entries.pop(text, (None, None))

    def put(self, text: str, doc: tomlkit.TOMLDocument | None, data: dict) -> None:
        with self._lock:
            self._entries[text] = (doc, data)
            while len(self._entries) > self.keep:
                self._entries.pop(next(iter(self._entries)))


_parsed = _Parsed()


def prepare(text: str) -> None:
    """Parse ``text`` ahead of the form's edits (on a worker thread, say): the first edit
    of a text otherwise parses it itself, about 40 ms for the default rules."""
    try:
        doc, data = tomlkit.parse(text), tomllib.loads(text)
    except (TOMLKitError, tomllib.TOMLDecodeError):
        return
    if doc.as_string() == text:
        _parsed.put(text, doc, data)


def _item(value: Any, column: int, indent: str) -> Item:
    """``value`` as a tomlkit item written the way :func:`toml_value` writes it."""
    return tomlkit.parse(f"v = {toml_value(value, column=column, indent=indent)}\n")["v"]


def _walk(doc: tomlkit.TOMLDocument, path: TomlPath) -> Any:
    """The container at ``path``, or ``None`` if a table on the way does not exist."""
    node: Any = doc
    for part in path:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return None
    return node


def _last_value(table: Table) -> Item | None:
    """The table's last ``key = value`` item (not a sub-table), if any."""
    last = None
    for key, item in table.value.body:
        if key is not None and not isinstance(item, Table | AoT):
            last = item
    return last


def _rows(doc: tomlkit.TOMLDocument, items: Sequence[Item], path: TomlPath) -> list[int]:
    """The 0-based line on which each item's line ends in the text: a table's header line,
    the last line of a value. Found by writing a marker comment there for a moment."""
    saved = [(it.trivia.comment_ws, it.trivia.comment) for it in items]
    marks = [f"#callguard-row-mark-{i}" for i in range(len(items))]
    try:
        for it, mark in zip(items, marks, strict=True):
            it.trivia.comment_ws, it.trivia.comment = " ", mark
        text = doc.as_string()
    finally:
        for it, (ws, comment) in zip(items, saved, strict=True):
            it.trivia.comment_ws, it.trivia.comment = ws, comment
    rows = []
    for mark in marks:
        at = text.find(mark)
        if at < 0:
            raise NotEditable(_where(path))  # not written where a comment can follow
        rows.append(text.count("\n", 0, at))
    return rows


# -- the editor -------------------------------------------------------------------------------
class TomlText:
    """One TOML text to edit; each method returns the whole new text (``text`` itself is
    never changed). Raises :class:`NotEditable` when the edit cannot be made in place."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._doc, self._data = _parsed.take(text)

    # -- edits -----------------------------------------------------------------------------
    def set_value(self, path: TomlPath, value: Any) -> str:
        """The text with the value at ``path`` set to ``value`` (added if missing)."""
        expected = self._expected(path)
        _set_in(expected, path, value)
        doc = self._document(path)
        parent = _walk(doc, path[:-1])
        key = path[-1]
        if parent is None:
            return self._new_table(doc, path, value, expected)
        if not hasattr(parent, "__setitem__") or isinstance(parent, AoT):
            raise NotEditable(_where(path))
        if key in parent:
            old = parent.item(key)  # the item, not its value (a bool has no trivia)
            column = len(old.trivia.indent) + len(_toml_key(key)) + 3
            parent[key] = _item(value, column, old.trivia.indent)
            return self._checked(doc.as_string(), expected, path, doc)
        # A new key: right after the table's last value (tomlkit would put it after the
        # comments that end the table, which are those above the next table's header).
        last = _last_value(parent) if isinstance(parent, Table) else None
        if last is not None and not parent.is_super_table():
            row = _rows(doc, [last], path)[0]
            indent = last.trivia.indent
            entry = f"{indent}{_toml_key(key)} = "
            entry += toml_value(value, column=len(entry), indent=indent)
            lines = self.text.split("\n")
            new = "\n".join(lines[:row + 1] + entry.split("\n") + lines[row + 1:])
            data = self._read(new, expected)
            if data is not None:
                _parsed.put(new, None, data)
                return new
        parent[key] = _item(value, len(_toml_key(key)) + 3, "")
        return self._checked(doc.as_string(), expected, path, doc)

    def delete(self, path: TomlPath) -> str:
        """The text without the key at ``path`` (its line or lines removed); unchanged if
        there is no such key."""
        doc = self._document(path)
        parent = _walk(doc, path[:-1])
        if parent is None or not hasattr(parent, "__delitem__") or path[-1] not in parent:
            self._keep(doc)
            return self.text
        expected = self._expected(path)
        _del_in(expected, path)
        del parent[path[-1]]
        return self._checked(doc.as_string(), expected, path, doc)

    def append_array_table(self, name: str, fields: Sequence[tuple[str, Any]]) -> str:
        """The text with a new ``[[name]]`` table of ``fields`` at the end, after a blank
        line."""
        expected = self._expected((name,))
        tables = expected.setdefault(name, [])
        if not isinstance(tables, list):
            raise NotEditable(name)
        tables.append(dict(fields))
        body = self.text.rstrip("\n")
        entries = []
        for key, value in fields:
            entry = f"{_toml_key(key)} = "
            entries.append(entry + toml_value(value, column=len(entry)))
        new = (body + ("\n\n" if body else "") + f"[[{_toml_key(name)}]]\n"
               + "\n".join(entries) + "\n")
        return self._checked(new, expected, (name,))

    def remove_table(self, path: TomlPath) -> str:
        """The text without the table at ``path`` (its header and values; the comments
        above the next table stay)."""
        doc = self._document(path)
        table = _walk(doc, path)
        if not isinstance(table, Table) or table.is_super_table():
            raise NotEditable(_where(path))
        expected = self._expected(path)
        _del_in(expected, path)
        last = _last_value(table)
        rows = _rows(doc, [table] if last is None else [table, last], path)
        first, end = rows[0], rows[-1]
        lines = self.text.split("\n")
        # Drop one blank line around it as well, so removals do not pile up blank lines.
        if end + 1 < len(lines) and not lines[end + 1].strip() and \
                (first == 0 or not lines[first - 1].strip()):
            end += 1
        return self._checked("\n".join(lines[:first] + lines[end + 1:]), expected, path)

    # -- helpers ---------------------------------------------------------------------------
    def _document(self, path: TomlPath) -> tomlkit.TOMLDocument:
        """The text's tomlkit document, to change (it is this object's no longer)."""
        doc, self._doc = self._doc, None
        if doc is not None:
            return doc
        try:
            doc = tomlkit.parse(self.text)
        except TOMLKitError:
            raise NotEditable(_where(path)) from None
        if doc.as_string() != self.text:  # tomlkit promises this; never write what it changed
            raise NotEditable(_where(path))
        return doc

    def _keep(self, doc: tomlkit.TOMLDocument) -> None:
        """``doc`` is unchanged: keep it for the next edit of this same text."""
        if self._data is not None:
            _parsed.put(self.text, doc, self._data)

    def _expected(self, path: TomlPath) -> dict:
        """A copy of the text's data, to apply the edit to."""
        if self._data is None:
            try:
                self._data = tomllib.loads(self.text)
            except tomllib.TOMLDecodeError:
                raise NotEditable(_where(path)) from None
        return copy.deepcopy(self._data)

    def _new_table(self, doc: tomlkit.TOMLDocument, path: TomlPath, value: Any,
                   expected: dict) -> str:
        """Set ``path`` whose table is missing: a new ``[table]`` with the one key, before
        the first ``[[array]]`` table (and the comments right above it) or at the end."""
        table, key = path[:-1], path[-1]
        if any(isinstance(p, int) for p in table):
            raise NotEditable(_where(path))
        entry = f"{_toml_key(key)} = "
        block = ["[" + ".".join(_toml_key(k) for k in table) + "]",
                 *(entry + toml_value(value, column=len(entry))).split("\n")]
        lines = self.text.split("\n")
        arrays = [item for _key, item in doc.body if isinstance(item, AoT) and item.body]
        if arrays:
            at = _rows(doc, [arrays[0].body[0]], path)[0]
            while at > 0 and lines[at - 1].strip().startswith("#"):
                at -= 1
            new_lines = lines[:at] + block + [""] + lines[at:]
        else:
            while lines and not lines[-1].strip():
                lines.pop()
            new_lines = [*lines, "", *block, ""]
        self._keep(doc)  # not changed: still this text's document
        return self._checked("\n".join(new_lines), expected, path)

    @staticmethod
    def _read(new: str, expected: dict) -> dict | None:
        """``new``'s data if it is ``expected`` (empty tables aside), else ``None``."""
        try:
            data = tomllib.loads(new)
        except tomllib.TOMLDecodeError:
            return None
        return data if _pruned(data) == _pruned(expected) else None

    def _checked(self, new: str, expected: dict, path: TomlPath,
                 doc: tomlkit.TOMLDocument | None = None) -> str:
        """``new`` if it holds ``expected``, else NotEditable; ``doc`` (``new``'s document,
        if the edit went through tomlkit) and the data are kept for the next edit."""
        data = self._read(new, expected)
        if data is None:
            raise NotEditable(_where(path))
        _parsed.put(new, doc, data)
        return new
