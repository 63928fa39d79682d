"""The admin's rules use cases (callguard.services.rules_admin) on a real SQLite store in
tmp_path: only an admin account saves, only rules without errors (with the messages of
`callguard rules check`), atomically, into the version history and the audit log; saved
versions list, read back and restore."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

import pytest

from callguard.cli.main import main as cli
from callguard.services import rules_admin
from callguard.services.accounts import Actor, PermissionDenied, role_allows, sign_in
from callguard.services.rules_admin import RulesRefused, check_text, save_rules, write_atomic
from callguard.store import Store, StoreError

ADMIN, PASSWORD = "root", "correct horse battery"
GOOD = """\
format = 1
name = "test rules"   # kept as written

[[rule]]
id = "profanity.babo"
category = "profanity"
terms = ["바보"]
"""
BETTER = GOOD.replace('terms = ["바보"]', 'terms = ["바보", "멍청이"]')
BROKEN = GOOD.replace('category = "profanity"', 'category = "profanity"\nenabeld = false')


def run(coro):
    return asyncio.run(coro)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A store with an admin and a supervisor account."""
    path = tmp_path / "calls.db"

    async def make() -> None:
        async with Store.open(path) as store:
            await store.set_password(ADMIN, "admin", PASSWORD)
            await store.set_password("boss", "supervisor", PASSWORD)

    run(make())
    return path


def with_store(db: Path, job):
    async def go():
        async with Store.open(db) as store:
            return await job(store)
    return run(go())


def rules_check_output(path: Path, capsys) -> list[str]:
    capsys.readouterr()
    cli(["rules", "check", str(path)])
    return capsys.readouterr().out.splitlines()


def test_an_admin_saves_atomically_with_history_and_audit(db, tmp_path):
    dest = tmp_path / "etc" / "rules.toml"
    version = with_store(db, lambda s: save_rules(s, dest, GOOD, ADMIN, "first"))
    assert version == hashlib.sha256(GOOD.encode()).hexdigest()
    assert dest.read_text(encoding="utf-8") == GOOD
    assert [p.name for p in dest.parent.iterdir()] == ["rules.toml"]  # no temporary left

    async def read(store):
        return (await rules_admin.rules_history(store), await store.audit_log(),
                await rules_admin.stored_rules(store, version))

    history, audit, text = with_store(db, read)
    assert [(v.version, v.saved_by, v.note) for v in history] == [(version, ADMIN, "first")]
    saved = [a for a in audit if a.kind == "rules_saved"]
    assert [(a.actor, a.role, a.detail) for a in saved] == [
        (ADMIN, "admin", f"rules.toml {version[:12]}")]
    assert text == GOOD


@pytest.mark.parametrize("who", ["boss", "nobody", "kim"])
def test_only_an_admin_account_saves(db, tmp_path, who):
    dest = tmp_path / "rules.toml"
    dest.write_text(GOOD, encoding="utf-8")
    with pytest.raises(PermissionDenied, match="only admin accounts may save rules"):
        with_store(db, lambda s: save_rules(s, dest, BETTER, who))
    assert dest.read_text(encoding="utf-8") == GOOD
    assert with_store(db, rules_admin.rules_history) == []


def test_broken_rules_are_refused_with_the_messages_of_rules_check(db, tmp_path, capsys):
    dest = tmp_path / "rules.toml"
    dest.write_text(GOOD, encoding="utf-8")
    with pytest.raises(RulesRefused) as refused:
        with_store(db, lambda s: save_rules(s, dest, BROKEN, ADMIN))
    check = refused.value.check
    assert not check.ok and len(check.errors) == 1
    assert "unknown key 'enabeld'" in str(refused.value)
    assert dest.read_text(encoding="utf-8") == GOOD  # untouched
    assert with_store(db, rules_admin.rules_history) == []
    assert not [a for a in with_store(db, lambda s: s.audit_log()) if a.kind == "rules_saved"]
    # Exactly what `callguard rules check` prints for that text in that file.
    dest.write_text(BROKEN, encoding="utf-8")
    assert list(check.lines) == rules_check_output(dest, capsys)
    assert check.lines[0].startswith(f"{dest}:7: rule profanity.babo: unknown key 'enabeld'")


def test_a_check_made_beforehand_is_used_and_must_be_of_the_text(db, tmp_path):
    dest = tmp_path / "rules.toml"
    check = check_text(GOOD, name=str(dest), base_dir=tmp_path)
    assert check.ok and check.version == hashlib.sha256(GOOD.encode()).hexdigest()
    with pytest.raises(ValueError, match="not the check of the text"):
        with_store(db, lambda s: save_rules(s, dest, BETTER, ADMIN, check=check))
    assert not dest.exists()
    with_store(db, lambda s: save_rules(s, dest, GOOD, ADMIN, check=check))
    assert dest.read_text(encoding="utf-8") == GOOD


def test_versions_list_newest_first_and_one_restores(db, tmp_path):
    dest = tmp_path / "rules.toml"

    async def job(store):
        v1 = await save_rules(store, dest, GOOD, ADMIN, "one")
        v2 = await save_rules(store, dest, BETTER, ADMIN, "two")
        assert await rules_admin.find_version(store, v1[:12]) == v1
        v3 = await rules_admin.restore_rules(store, dest, v1, ADMIN)
        return v1, v2, v3, await rules_admin.rules_history(store), await store.audit_log()

    v1, v2, v3, history, audit = with_store(db, job)
    assert v3 == v1 and dest.read_text(encoding="utf-8") == GOOD
    assert [(v.version, v.note) for v in history] == [
        (v1, f"restored {v1[:12]}"), (v2, "two"), (v1, "one")]
    kinds = [a.kind for a in audit if a.kind.startswith("rules_")]
    assert kinds == ["rules_saved", "rules_saved", "rules_restored"]


def test_unknown_or_ambiguous_versions_are_named(db):
    with pytest.raises(StoreError, match="no saved rules version starts with abcdef"):
        with_store(db, lambda s: rules_admin.find_version(s, "abcdef"))
    with pytest.raises(StoreError, match="not a rules version"):
        with_store(db, lambda s: rules_admin.find_version(s, "xyz"))
    with pytest.raises(StoreError, match="no rules version"):
        with_store(db, lambda s: rules_admin.stored_rules(s, "0" * 64))


def test_write_atomic_keeps_the_mode_and_leaves_nothing_behind_on_failure(tmp_path,
                                                                          monkeypatch):
    path = tmp_path / "rules.toml"
    path.write_text("old", encoding="utf-8")
    path.chmod(0o640)
    write_atomic(path, "new 규칙")
    assert path.read_text(encoding="utf-8") == "new 규칙"
    assert path.stat().st_mode & 0o777 == 0o640

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write_atomic(path, "newer")
    assert path.read_text(encoding="utf-8") == "new 규칙"
    assert [p.name for p in tmp_path.iterdir()] == ["rules.toml"]


def test_the_checker_keeps_recent_checks():
    checker = rules_admin.RulesChecker("r.toml", None, keep=2)
    first = checker.check(GOOD)
    assert checker.check(GOOD) is first
    checker.check(BETTER)
    checker.check(BROKEN)
    assert checker.check(GOOD) is not first  # pushed out by the two newer texts


def test_sign_in_checks_the_password_and_role_and_is_audited(db):
    async def job(store):
        actor = await sign_in(store, ADMIN, PASSWORD, "admin")
        boss = await sign_in(store, "boss", PASSWORD, "supervisor")
        errors = []
        for name, password, role in (("root", "wrong password", "admin"),
                                     ("ghost", PASSWORD, "admin"),
                                     ("boss", PASSWORD, "admin")):
            try:
                await sign_in(store, name, password, role)
            except PermissionDenied as exc:
                errors.append(str(exc))
        return actor, boss, errors, await store.audit_log()

    actor, boss, errors, audit = with_store(db, job)
    assert actor == Actor(ADMIN, "admin") and boss == Actor("boss", "supervisor")
    assert errors[0] == errors[1]  # a wrong password reads as an unknown name
    assert "wrong account name or password" in errors[0]
    assert "boss has the supervisor role; this needs the admin role" in errors[2]
    logins = [(a.actor, a.kind) for a in audit if a.kind.startswith("login")]
    assert logins == [(ADMIN, "login"), ("boss", "login"), (ADMIN, "login_failed"),
                      ("unknown", "login_failed")]


def test_roles_rank_counselor_supervisor_admin():
    assert role_allows("admin", "supervisor") and role_allows("supervisor", "supervisor")
    assert not role_allows("counselor", "supervisor") and not role_allows(None, "supervisor")
    assert not role_allows("supervisor", "admin")
    with pytest.raises(ValueError):
        Actor("x", "janitor")
    with pytest.raises(PermissionDenied, match="kim \\(counselor\\) may not save rules"):
        Actor("kim", "counselor").require("admin", "save rules")
