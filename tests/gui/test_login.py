"""Sign-in for supervisor and admin windows: accounts are made by the install-time command,
never by the dialog (first run shows that command and creates nothing; only a scrypt hash is
stored), wrong passwords are refused, an admin opens supervisor windows, and nobody gets the
rules editor without an admin sign-in."""

from __future__ import annotations

import sqlite3

import pytest
from fakerig import GUI_RULES
from PySide6.QtWidgets import QApplication
from shiboken6 import isValid

from callguard.gui.bridge import StoreClient
from callguard.gui.i18n import tr
from callguard.gui.login import LoginDialog, may, request_role, role_allows
from callguard.gui.rules_editor import RulesEditorWindow, open_rules_editor

PASSWORD = "correct horse battery"


@pytest.fixture
def client(tmp_path):
    c = StoreClient(tmp_path / "calls.db")
    yield c
    c.close()


def add_account(client: StoreClient, name: str, role: str, password: str = PASSWORD) -> None:
    client.submit(lambda s: s.set_password(name, role, password)).result(10)


def ask(qtbot, client: StoreClient, role: str):
    """Open the sign-in for ``role``; returns the dialog (once it knows its mode) and the
    list that ``done`` appends to, as ``(user, account role)``."""
    results: list = []
    holder: list[LoginDialog] = []
    dialog = request_role(client, role, None,
                          lambda user: results.append((user, holder[0].account_role)))
    holder.append(dialog)
    qtbot.waitUntil(lambda: dialog.mode != "loading", timeout=5000)
    return dialog, results


def sign_in(qtbot, dialog: LoginDialog, name: str, password: str) -> None:
    dialog.name_edit.setText(name)
    dialog.password_edit.setText(password)
    dialog.ok_button.click()
    # Done when the check is back: the dialog says why, or it closed (and deleted itself).
    qtbot.waitUntil(lambda: not isValid(dialog) or not dialog.isVisible()
                    or dialog.ok_button.isEnabled(), timeout=5000)


def test_first_run_without_accounts_tells_how_to_make_one_and_creates_nothing(
        qtbot, client, tmp_path):
    for role in ("admin", "supervisor"):
        dialog, results = ask(qtbot, client, role)
        assert dialog.mode == "none"
        # The command, in plain sight; no fields to type a name or password in, no button
        # that creates anything.
        assert dialog.message.text() == tr("login.no_account", role=tr(f"login.role.{role}"))
        assert dialog.command_label.isVisible()
        assert dialog.command_label.text() == f"callguard accounts add 이름 --role {role}"
        for widget in (dialog.name_edit, dialog.password_edit, dialog.ok_button):
            assert not widget.isVisible() and not widget.isEnabled()
        assert dialog.cancel_button.text() == tr("login.close")
        dialog.name_edit.setText("mallory")  # even with a name typed in by a script
        dialog.password_edit.setText(PASSWORD)
        dialog.submit()
        dialog.cancel_button.click()
        assert results == [(None, None)]
    assert client.submit(lambda s: s.users()).result(10) == []

    # The install-time command makes the account (a real process on the same store) ...
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-m", "callguard", "accounts", "add", "boss",
                          "--role", "admin", "--password-stdin", "--store",
                          str(tmp_path / "calls.db")], input=PASSWORD + "\n",
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    with sqlite3.connect(tmp_path / "calls.db") as db:
        (stored,) = db.execute("SELECT pw_hash FROM users WHERE name = 'boss'").fetchone()
    assert stored.startswith("scrypt$") and PASSWORD not in stored
    # ... and a name that exists is refused without --reset.
    again = subprocess.run([sys.executable, "-m", "callguard", "accounts", "add", "boss",
                            "--role", "supervisor", "--password-stdin", "--store",
                            str(tmp_path / "calls.db")], input="another password\n",
                           capture_output=True, text=True, timeout=60)
    assert again.returncode == 1 and "exists" in again.stderr

    # Now the dialogs ask to sign in: the admin's, and the review's too (an admin may
    # review before any supervisor account exists).
    for role in ("admin", "supervisor"):
        dialog, results = ask(qtbot, client, role)
        assert dialog.mode == "login" and dialog.name_edit.isVisible()
        assert not dialog.command_label.isVisible()
        sign_in(qtbot, dialog, "boss", PASSWORD)
        qtbot.waitUntil(lambda r=results: bool(r), timeout=5000)
        assert results == [("boss", "admin")]


def test_a_wrong_password_is_refused_and_the_right_one_accepted(qtbot, client):
    add_account(client, "boss", "admin")
    dialog, results = ask(qtbot, client, "admin")
    assert dialog.mode == "login"
    sign_in(qtbot, dialog, "boss", "not the password")
    assert dialog.error_label.text() == tr("login.wrong") and results == []
    assert dialog.isVisible() and dialog.password_edit.text() == ""
    sign_in(qtbot, dialog, "nobody", PASSWORD)
    assert dialog.error_label.text() == tr("login.wrong") and results == []
    sign_in(qtbot, dialog, "boss", PASSWORD)
    qtbot.waitUntil(lambda: bool(results), timeout=5000)
    assert results == [("boss", "admin")]
    audit = client.submit(lambda s: s.audit_log()).result(10)
    assert [(a.kind, a.actor) for a in audit if a.kind.startswith("login")] == [
        ("login_failed", "boss"), ("login_failed", "unknown"), ("login", "boss")]


def test_an_admin_can_open_a_supervisor_window(qtbot, client):
    add_account(client, "boss", "admin")
    # No supervisor account yet: the admin signs in to the review.
    dialog, results = ask(qtbot, client, "supervisor")
    assert dialog.mode == "login"
    sign_in(qtbot, dialog, "boss", PASSWORD)
    qtbot.waitUntil(lambda: bool(results), timeout=5000)
    assert results == [("boss", "admin")]

    # A supervisor signs in to supervisor windows but not to the admin's.
    add_account(client, "kim", "supervisor")
    dialog, results = ask(qtbot, client, "supervisor")
    assert dialog.mode == "login"
    sign_in(qtbot, dialog, "kim", PASSWORD)
    qtbot.waitUntil(lambda: bool(results), timeout=5000)
    assert results == [("kim", "supervisor")]
    dialog, results = ask(qtbot, client, "admin")
    sign_in(qtbot, dialog, "kim", PASSWORD)
    assert dialog.error_label.text() == tr("login.not_allowed", role=tr("login.role.supervisor"))
    assert results == []
    dialog.cancel_button.click()
    assert results == [(None, None)]
    assert role_allows("admin", "supervisor") and not role_allows("supervisor", "admin")


def test_without_an_admin_sign_in_there_is_no_rules_editor(qtbot, client, tmp_path):
    path = tmp_path / "rules.toml"
    path.write_text(GUI_RULES, encoding="utf-8")
    # A counselor (no sign-in) may do none of the protected things.
    for role in (None, "counselor"):
        assert not may(role, "open_rules_editor") and not may(role, "delete_recording")
        assert not may(role, "open_supervisor")
    assert not may("supervisor", "open_rules_editor") and may("admin", "delete_recording")
    with pytest.raises(PermissionError):
        RulesEditorWindow(client, path, "")

    # The menu path: the sign-in is cancelled, no editor opens.
    opened: list = []
    open_rules_editor(client, path, done=opened.append)
    dialog = next(w for w in QApplication.topLevelWidgets() if isinstance(w, LoginDialog))
    qtbot.waitUntil(lambda: dialog.mode != "loading", timeout=5000)
    dialog.reject()
    assert opened == [None]
    assert not [w for w in QApplication.topLevelWidgets()
                if isinstance(w, RulesEditorWindow) and w.isVisible()]

    # An editor built for a non-admin name anyway cannot write the rules.
    add_account(client, "kim", "supervisor")
    editor = RulesEditorWindow(client, path, "kim")
    qtbot.addWidget(editor)
    qtbot.waitUntil(lambda: editor.is_valid, timeout=10_000)
    editor.set_text(editor.text().replace("warnings = 1", "warnings = 2"))
    qtbot.waitUntil(lambda: editor.is_valid, timeout=10_000)
    with qtbot.waitSignal(editor.save_refused, timeout=10_000) as got:
        editor.save()
    assert tr("rules.not_admin", user="kim") in got.args[0]
    assert path.read_text(encoding="utf-8") == GUI_RULES

    # With the admin's sign-in, it opens.
    add_account(client, "boss", "admin")
    open_rules_editor(client, path, done=opened.append)
    dialog = next(w for w in QApplication.topLevelWidgets()
                  if isinstance(w, LoginDialog) and w.isVisible())
    qtbot.waitUntil(lambda: dialog.mode == "login", timeout=5000)
    sign_in(qtbot, dialog, "boss", PASSWORD)
    qtbot.waitUntil(lambda: len(opened) == 2, timeout=5000)
    assert isinstance(opened[1], RulesEditorWindow) and opened[1].user == "boss"
    qtbot.addWidget(opened[1])
