"""The admin's rules file: check it, save it (version history, audit), list and restore
saved versions. The rules editor window and ``callguard rules save`` are faces over this.

- **Check** (:func:`check_text`, :class:`RulesChecker`): the loader of ``callguard rules
  check`` (:func:`callguard.rules.loader.parse_rules`) on a text, compiled as the engine
  would; the messages are exactly the lines ``rules check`` prints
  (:func:`callguard.rules.problems.check_lines`).
- **Save** (:func:`save_rules`): only by an admin account (checked in the store at that
  moment), only rules without errors (else :class:`RulesRefused`, the file untouched),
  written atomically (:func:`write_atomic`: a reader such as the engine reloading sees the
  old file or the new one, never half), then kept in the store's version history and the
  audit log (``rules_saved``, detail ``"<file name> <version[:12]>"``).
- **History** (:func:`rules_history`, :func:`stored_rules`, :func:`find_version`) and
  **restore** (:func:`restore_rules`: a stored version saved again, audited
  ``rules_restored``).

A version is the SHA-256 (hex) of the file's UTF-8 text. Saving a version the history
already holds adds a history row (who, when, note) but no second copy of the text.

Async where the store is (one asyncio loop owns it); checking runs Kiwi and takes from
milliseconds to seconds, so :func:`save_rules` runs it in a thread when not handed a
:class:`Check` already made.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import tempfile
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from callguard.errors import CallguardError
from callguard.rules.problems import Problem, RulesError, Severity, check_lines
from callguard.services.accounts import require_account
from callguard.services.dryrun import CompiledRules, compile_rules
from callguard.store import RulesVersion, Store, StoreError
from callguard.text.analyzer import Analyzer
from callguard.vocabulary import Role

#: The role that may write the rules.
ADMIN = Role.ADMIN


# -- checking ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Check:
    """The outcome of checking one rules text.

    ``data`` is the TOML as parsed (``None`` on a TOML syntax error), ``problems`` every
    error and warning, ``lines`` the ``rules check`` report, ``compiled`` the usable rules
    (``None`` when there are errors). ``version`` is the SHA-256 of the text as saved.
    """

    text: str
    version: str
    data: dict | None
    problems: tuple[Problem, ...]
    lines: tuple[str, ...]
    compiled: CompiledRules | None

    @property
    def ok(self) -> bool:
        return self.compiled is not None

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity is Severity.ERROR]


def text_version(text: str) -> str:
    """The version of a rules text: the SHA-256 (hex) of its UTF-8 bytes."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def check_text(text: str, *, name: str, base_dir: Path | None,
               analyzer: Analyzer | None = None) -> Check:
    """Check and compile ``text``. ``name`` is the file name the messages carry; prompt
    files are looked for relative to ``base_dir`` (the directory the file is or will be
    saved in). ``analyzer``: Kiwi to use (default: the shared one in this process)."""
    try:
        data: dict | None = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        data = None
    try:
        compiled = compile_rules(text, name=name, base_dir=base_dir, analyzer=analyzer)
    except RulesError as exc:
        return Check(text, text_version(text), data, tuple(exc.problems),
                     tuple(check_lines(name, exc.problems, None)), None)
    return Check(text, text_version(text), data, compiled.warnings,
                 tuple(check_lines(name, compiled.warnings, compiled.ruleset)), compiled)


class RulesChecker:
    """Checks texts for one rules file, keeping the last few results (each holds a
    Kiwi-backed matcher), so a save, a test or a dry run reuses what checking as the admin
    typed already built.

    Not thread-safe: use it from one thread. ``name`` is the file name messages carry;
    prompt files are resolved against ``base_dir``. ``analyzer`` makes the Kiwi for each
    check (the rules editor's runs Kiwi in its own process); default: this process's.
    """

    def __init__(self, name: str, base_dir: Path | None, keep: int = 4,
                 analyzer: Callable[[], Analyzer] | None = None) -> None:
        self.name = name
        self.base_dir = base_dir
        self.keep = keep
        self._analyzer = analyzer
        self._cache: dict[str, Check] = {}

    def check(self, text: str) -> Check:
        version = text_version(text)
        cached = self._cache.get(version)
        if cached is not None:
            return cached
        analyzer = self._analyzer() if self._analyzer is not None else None
        result = check_text(text, name=self.name, base_dir=self.base_dir, analyzer=analyzer)
        self._cache[version] = result
        while len(self._cache) > self.keep:
            self._cache.pop(next(iter(self._cache)))
        return result


class RulesRefused(CallguardError):
    """The rules were not saved because they have errors; :attr:`check` holds them all.
    The file on disk is unchanged."""

    def __init__(self, check: Check) -> None:
        self.check = check
        errors = check.errors
        first = f" — {errors[0]}" if errors else ""
        super().__init__(f"not saved: {len(errors)} error(s){first}")


# -- writing -------------------------------------------------------------------------------
def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` (UTF-8) so that a reader (the engine reloading it)
    sees the old file or the new one, never half of it: written to a temporary file in the
    same directory, flushed to disk, then renamed over the old one (keeping its mode)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(text.encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
        if path.exists():
            tmp.chmod(path.stat().st_mode & 0o7777)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    # The rename itself is durable once the directory is (not every system can do it).
    with contextlib.suppress(OSError):
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


async def save_rules(store: Store, path: Path, text: str, actor: str, note: str = "", *,
                     check: Check | None = None, analyzer: Analyzer | None = None,
                     audit_kind: str = "rules_saved") -> str:
    """Save ``text`` as the rules file at ``path`` for the admin account ``actor``; its
    version.

    In order: ``actor`` must be an admin account in ``store`` (else
    :class:`~callguard.services.accounts.PermissionDenied`); the text must have no errors
    (``check``, if given, must be the check of this very text; else it is checked here,
    messages naming ``path``; errors: :class:`RulesRefused`); then the file is written
    atomically, the version kept in the history with ``note``, and the save audited as
    ``audit_kind``. A failure before the write leaves the file as it was.
    """
    path = Path(path)
    await require_account(store, actor, ADMIN, "save rules")
    if check is None:
        check = await asyncio.to_thread(check_text, text, name=str(path), base_dir=path.parent,
                                        analyzer=analyzer)
    elif check.text != text:
        raise ValueError("the check given is not the check of the text to save")
    if not check.ok:
        raise RulesRefused(check)
    await asyncio.to_thread(write_atomic, path, text)
    version = await store.save_rules(str(path), text, actor, note)
    await store.audit(actor, ADMIN, audit_kind, f"{path.name} {version[:12]}")
    return version


# -- history -------------------------------------------------------------------------------
async def rules_history(store: Store, limit: int = 100) -> list[RulesVersion]:
    """Saved versions, newest first (a version saved twice is listed twice)."""
    return await store.rules_history(limit)


async def stored_rules(store: Store, version: str) -> str:
    """The text of a stored version (the full SHA-256); StoreError if there is none or its
    text no longer matches its hash."""
    _path, text = await store.ruleset(version)
    return text


async def find_version(store: Store, prefix: str) -> str:
    """The full version a prefix of at least 6 hex digits names in the history (as the
    history shows them, 12 digits); StoreError if none or several do."""
    prefix = prefix.strip().lower()
    if len(prefix) < 6 or any(c not in "0123456789abcdef" for c in prefix):
        raise StoreError(f"{prefix!r} is not a rules version (at least 6 hex digits)")
    found = {v.version for v in await store.rules_history(limit=100_000)
             if v.version.startswith(prefix)}
    if len(found) != 1:
        raise StoreError(f"{'no' if not found else 'more than one'} saved rules version "
                         f"starts with {prefix}")
    return found.pop()


async def restore_rules(store: Store, path: Path, version: str, actor: str,
                        note: str | None = None, *, analyzer: Analyzer | None = None) -> str:
    """Save a stored version again as the rules file at ``path`` (as :func:`save_rules`
    does, checked again: the loader may have grown stricter since), audited as
    ``rules_restored``; its version. ``note`` defaults to "restored <version[:12]>"."""
    text = await stored_rules(store, version)
    return await save_rules(store, path, text, actor,
                            f"restored {version[:12]}" if note is None else note,
                            analyzer=analyzer, audit_kind="rules_restored")
