"""Sign-in for supervisor and admin windows: the first account is created at first run (only
a scrypt hash is stored), wrong passwords are refused, an admin opens supervisor windows,
and nobody gets the rules editor without an admin sign-in."""

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


def test_first_run_creates_the_account_and_stores_only_a_hash(qtbot, client, tmp_path):
    dialog, results = ask(qtbot, client, "admin")
    assert dialog.mode == "create" and dialog.repeat_edit.isVisible()
    dialog.name_edit.setText("boss")
    for password, repeat, error in (("short", "short", tr("login.too_short", n=8)),
                                    (PASSWORD, PASSWORD + "x", tr("login.mismatch"))):
        dialog.password_edit.setText(password)
        dialog.repeat_edit.setText(repeat)
        dialog.ok_button.click()
        assert dialog.error_label.text() == error and results == []
    dialog.password_edit.setText(PASSWORD)
    dialog.repeat_edit.setText(PASSWORD)
    dialog.ok_button.click()
    qtbot.waitUntil(lambda: bool(results), timeout=5000)
    assert results == [("boss", "admin")]

    assert client.submit(lambda s: s.users()).result(10) == [("boss", "admin")]
    with sqlite3.connect(tmp_path / "calls.db") as db:
        (stored,) = db.execute("SELECT pw_hash FROM users WHERE name = 'boss'").fetchone()
    assert stored.startswith("scrypt$") and PASSWORD not in stored
    assert client.submit(lambda s: s.check_password("boss", PASSWORD)).result(10) == "admin"

    # The next time, the account exists: the dialog asks to sign in.
    dialog, _ = ask(qtbot, client, "admin")
    assert dialog.mode == "login" and not dialog.repeat_edit.isVisible()
    dialog.reject()


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
    # No supervisor account yet: the dialog offers to create one, and the admin signs in.
    dialog, results = ask(qtbot, client, "supervisor")
    assert dialog.mode == "create" and dialog.existing_button.isVisible()
    dialog.existing_button.click()
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
