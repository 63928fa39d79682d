"""``callguard rules save``: the rules editor's save from the command line. It checks the
file with the messages of `rules check`, needs an admin's password, writes the configured
rules path atomically and records the history and the audit as the editor does."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest

from callguard.cli.main import main as cli
from callguard.store import Store

ADMIN, PASSWORD = "root", "correct horse battery"
GOOD = 'format = 1\n\n[[rule]]\nid = "p.babo"\ncategory = "profanity"\nterms = ["바보"]\n'
BROKEN = GOOD.replace('terms = ["바보"]', 'terms = ["바보"]\nenabeld = false')


def run(coro):
    return asyncio.run(coro)


def read(db: Path, job):
    async def go():
        async with Store.open(db) as store:
            return await job(store)
    return run(go())


@pytest.fixture
def site(tmp_path: Path):
    """A settings file naming the rules path and the store; the store has one admin."""
    rules = tmp_path / "etc" / "rules.toml"
    rules.parent.mkdir()
    rules.write_text(GOOD, encoding="utf-8")
    db = tmp_path / "calls.db"
    read(db, lambda s: s.set_password(ADMIN, "admin", PASSWORD))
    config = tmp_path / "config.toml"
    config.write_text(f'[rules]\npath = "{rules}"\n[store]\npath = "{db}"\n', encoding="utf-8")
    src = tmp_path / "edited.toml"
    return config, rules, db, src


def save(config: Path, src: Path, *extra: str, password: str | None = PASSWORD,
         monkeypatch=None) -> int:
    args = ["rules", "save", str(src), "--config", str(config), *extra]
    if password is not None:
        monkeypatch.setattr("sys.stdin", io.StringIO(password + "\n"))
        args.append("--password-stdin")
    return cli(args)


def test_a_good_file_is_saved_with_history_and_audit(site, capsys, monkeypatch):
    config, rules, db, src = site
    text = GOOD.replace('["바보"]', '["바보", "멍청이"]')
    src.write_text(text, encoding="utf-8")
    assert save(config, src, "--note", "two words", monkeypatch=monkeypatch) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"OK: {src}: 1 rules (1 enabled), 0 warning(s), version ")
    version = out[0].rsplit(" ", 1)[1]
    assert out[1] == f"saved {rules}: version {version} (two words)"
    assert rules.read_text(encoding="utf-8") == text
    assert [p.name for p in rules.parent.iterdir()] == ["rules.toml"]
    history = read(db, lambda s: s.rules_history())
    assert [(v.version[:12], v.saved_by, v.note) for v in history] == [
        (version, ADMIN, "two words")]
    audit = read(db, lambda s: s.audit_log())
    assert [(a.actor, a.role, a.kind) for a in audit[-2:]] == [
        (ADMIN, "admin", "login"), (ADMIN, "admin", "rules_saved")]
    assert audit[-1].detail == f"rules.toml {version}"


def test_a_broken_file_is_refused_with_the_messages_of_rules_check(site, capsys,
                                                                    monkeypatch):
    config, rules, db, src = site
    src.write_text(BROKEN, encoding="utf-8")
    assert cli(["rules", "check", str(src)]) == 1
    expected = capsys.readouterr().out
    assert save(config, src, monkeypatch=monkeypatch) == 1
    got = capsys.readouterr()
    assert got.out == expected and "unknown key 'enabeld'" in got.out
    assert got.err == f"callguard: not saved: {rules} is unchanged\n"
    assert rules.read_text(encoding="utf-8") == GOOD
    assert read(db, lambda s: s.rules_history()) == []
    # A file that is not there gets the loader's message too.
    assert save(config, src.with_name("missing.toml"), monkeypatch=monkeypatch) == 1
    assert "cannot read the rules file" in capsys.readouterr().out


def test_a_wrong_password_saves_nothing_and_is_audited(site, capsys, monkeypatch):
    config, rules, db, src = site
    src.write_text(GOOD.replace("바보", "멍청이"), encoding="utf-8")
    assert save(config, src, password="not the password", monkeypatch=monkeypatch) == 1
    assert "callguard: wrong account name or password" in capsys.readouterr().err
    assert rules.read_text(encoding="utf-8") == GOOD
    audit = read(db, lambda s: s.audit_log())
    assert [(a.actor, a.kind) for a in audit][-1] == (ADMIN, "login_failed")
    assert read(db, lambda s: s.rules_history()) == []


def test_the_account_is_chosen_and_a_password_is_needed(site, capsys, monkeypatch):
    config, _rules, db, src = site
    src.write_text(GOOD.replace("바보", "멍청이"), encoding="utf-8")
    # No terminal to ask on (pytest's standard input) and no --password-stdin.
    assert save(config, src, password=None, monkeypatch=monkeypatch) == 2
    assert "no terminal to ask the password on" in capsys.readouterr().err
    # Two admins: --as says which.
    read(db, lambda s: s.set_password("second", "admin", "another password"))
    assert save(config, src, monkeypatch=monkeypatch) == 2
    assert "several admin accounts (root, second): choose one with --as" in \
        capsys.readouterr().err
    assert save(config, src, "--as", "second", password="another password",
                monkeypatch=monkeypatch) == 0
    assert read(db, lambda s: s.rules_history())[0].saved_by == "second"
    # A supervisor's password is not enough.
    read(db, lambda s: s.set_password("boss", "supervisor", PASSWORD))
    assert save(config, src, "--as", "boss", monkeypatch=monkeypatch) == 1
    assert "boss has the supervisor role; this needs the admin role" in \
        capsys.readouterr().err


def test_no_store_means_no_admin_to_save_as(site, capsys, monkeypatch, tmp_path):
    config, _rules, _db, src = site
    src.write_text(GOOD, encoding="utf-8")
    missing = tmp_path / "nowhere.db"
    assert save(config, src, "--store", str(missing), monkeypatch=monkeypatch) == 2
    assert f"no call store at {missing}" in capsys.readouterr().err
    assert not missing.exists()
