"""Roles and sign-in for the supervisor and admin windows.

A counselor uses the softphone window without signing in; that role can never open the
rules editor, the supervisor windows, or delete recordings (:func:`may`). Supervisor and
admin windows ask for a name and password first (:func:`request_role`). An admin account
also opens supervisor windows.

First run: while no account of the requested role exists, the dialog creates one (the
password typed twice, at least :data:`MIN_PASSWORD` characters). The store keeps only a
scrypt hash (:meth:`callguard.store.Store.set_password`).

Passwords are checked and hashed by the store on the :class:`StoreClient` thread: scrypt
takes tens of milliseconds on purpose and must never run on the GUI thread. The dialog
stays responsive (and can be cancelled) while a check is under way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from callguard.gui.bridge import StoreClient
from callguard.gui.i18n import texts
from callguard.services import accounts
from callguard.services.accounts import ACCOUNT_ROLES
from callguard.vocabulary import Role

log = logging.getLogger(__name__)

#: Roles that sign in (a counselor never does).
LOGIN_ROLES = ACCOUNT_ROLES
#: Shortest password accepted for a new account (the store refuses shorter ones too).
MIN_PASSWORD = 8
#: The role each protected action needs; an admin may do whatever a supervisor may.
REQUIRED_ROLE = {
    "open_supervisor": Role.SUPERVISOR,  # call review, statistics
    "delete_recording": Role.SUPERVISOR,
    "open_rules_editor": Role.ADMIN,
}

T = texts({
    "login.title.supervisor": ("상담 관리자 로그인", "Supervisor sign-in"),
    "login.title.admin": ("시스템 관리자 로그인", "Admin sign-in"),
    "login.role.supervisor": ("상담 관리자", "supervisor"),
    "login.role.admin": ("시스템 관리자", "admin"),
    "login.name": ("이름", "Name"),
    "login.password": ("비밀번호", "Password"),
    "login.repeat": ("비밀번호 확인", "Repeat password"),
    "login.loading": ("계정을 확인하는 중…", "Looking up accounts…"),
    "login.prompt": ("{role} 계정으로 로그인하세요.", "Sign in with a {role} account."),
    "login.first_run": ("{role} 계정이 아직 없습니다. 처음 쓸 계정을 만드세요 (비밀번호 {n}자 "
                        "이상, 두 번 입력).",
                        "No {role} account exists yet: create the first one (a password of at "
                        "least {n} characters, typed twice)."),
    "login.ok": ("로그인", "Sign in"),
    "login.create": ("계정 만들기", "Create account"),
    "login.cancel": ("취소", "Cancel"),
    "login.use_existing": ("다른 기존 계정으로 로그인", "Sign in with another existing account"),
    "login.checking": ("확인하는 중…", "Checking…"),
    "login.wrong": ("이름 또는 비밀번호가 틀렸습니다.", "Wrong name or password."),
    "login.not_allowed": ("이 계정({role})으로는 이 창을 열 수 없습니다.",
                          "This account ({role}) cannot open this window."),
    "login.need_name": ("이름을 입력하세요.", "Enter a name."),
    "login.too_short": ("비밀번호는 {n}자 이상이어야 합니다.",
                        "The password needs at least {n} characters."),
    "login.mismatch": ("두 비밀번호가 다릅니다.", "The two passwords differ."),
    "login.taken": ("이미 있는 이름입니다. 다른 이름을 쓰세요.",
                    "That name is taken: choose another."),
    "login.exists_now": ("그 사이에 계정이 만들어졌습니다. 로그인하세요.",
                         "An account was created meanwhile: sign in with it."),
    "login.failed": ("확인하지 못했습니다: {error}", "Could not check: {error}"),
})


def role_allows(role: str | None, required: str) -> bool:
    """Whether an account of ``role`` (``None``: nobody signed in, a counselor) may open
    what needs ``required`` (``"supervisor"`` or ``"admin"``)."""
    if required not in LOGIN_ROLES:
        raise ValueError(f"required role must be one of {LOGIN_ROLES}, not {required!r}")
    return accounts.role_allows(role, required)


def may(role: str | None, action: str) -> bool:
    """Whether ``role`` may do ``action`` (a key of :data:`REQUIRED_ROLE`); a counselor
    (``"counselor"`` or ``None``) may do none of them."""
    return role_allows(role, REQUIRED_ROLE[action])


class LoginDialog(QDialog):
    """Name and password for a ``role`` window, or the first account of that role.

    Not modal to the application: it is opened with :meth:`QDialog.open` (window-modal)
    and reports through :attr:`user` and ``finished``. ``mode`` is ``"loading"`` until the
    store says whether an account of the role exists, then ``"login"`` or ``"create"``.
    """

    def __init__(self, store: StoreClient, role: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        if role not in LOGIN_ROLES:
            raise ValueError(f"role must be one of {LOGIN_ROLES}, not {role!r}")
        self.store = store
        self.role = role
        self.mode = "loading"
        self.user: str | None = None  # set when the sign-in succeeded
        self.account_role: str | None = None  # that account's role (an admin may sign in
        # to a supervisor window: callers that care which one read it here)
        self._busy = False
        # Store answers can arrive after the dialog closed: they must not touch it then.
        self._alive = True
        self.finished.connect(self._closed)

        self.setWindowTitle(T(f"login.title.{role}"))
        self.message = QLabel(T("login.loading"))
        self.message.setWordWrap(True)
        self.name_edit = QLineEdit()
        self.password_edit = QLineEdit()
        self.password_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.repeat_edit = QLineEdit()
        self.repeat_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self._repeat_label = QLabel(T("login.repeat"))
        self.error_label = QLabel()
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color: #b00020")
        self.ok_button = QPushButton(T("login.ok"))
        self.ok_button.setDefault(True)
        self.cancel_button = QPushButton(T("login.cancel"))
        self.existing_button = QPushButton(T("login.use_existing"))
        self.existing_button.setFlat(True)

        form = QFormLayout()
        form.addRow(T("login.name"), self.name_edit)
        form.addRow(T("login.password"), self.password_edit)
        form.addRow(self._repeat_label, self.repeat_edit)
        buttons = QHBoxLayout()
        buttons.addWidget(self.existing_button)
        buttons.addStretch(1)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.ok_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.message)
        layout.addLayout(form)
        layout.addWidget(self.error_label)
        layout.addLayout(buttons)

        self.ok_button.clicked.connect(self.submit)
        self.cancel_button.clicked.connect(self.reject)
        # An admin may sign in to a supervisor window before any supervisor account exists.
        self.existing_button.clicked.connect(lambda: self._set_mode("login"))
        self._set_mode("loading")
        store.call(lambda s: s.users(), self._guard(self._users_loaded))

    # -- state -----------------------------------------------------------------------------
    def _guard(self, fn: Callable[[Any, BaseException | None], None]
               ) -> Callable[[Any, BaseException | None], None]:
        def run(result: Any, error: BaseException | None) -> None:
            if self._alive:
                fn(result, error)
        return run

    def _closed(self, _result: int) -> None:
        self._alive = False
        # Do not keep typed passwords in widgets that may outlive the dialog for a while.
        self.password_edit.clear()
        self.repeat_edit.clear()

    def _set_mode(self, mode: str) -> None:
        self.mode = mode
        role = T(f"login.role.{self.role}")
        creating = mode == "create"
        self._repeat_label.setVisible(creating)
        self.repeat_edit.setVisible(creating)
        self.existing_button.setVisible(creating and self.role == Role.SUPERVISOR)
        self.ok_button.setText(T("login.create") if creating else T("login.ok"))
        if mode == "loading":
            self.message.setText(T("login.loading"))
        elif creating:
            self.message.setText(T("login.first_run", role=role, n=MIN_PASSWORD))
        else:
            self.message.setText(T("login.prompt", role=role))
        self.error_label.clear()
        self._update_enabled()

    def _update_enabled(self) -> None:
        ready = self.mode != "loading" and not self._busy
        for w in (self.name_edit, self.password_edit, self.repeat_edit, self.ok_button):
            w.setEnabled(ready)

    def _set_busy(self, busy: bool) -> None:
        self._busy = busy
        if busy:
            self.error_label.setText(T("login.checking"))
        self._update_enabled()

    def _users_loaded(self, users: list[tuple[str, str]] | None,
                      error: BaseException | None) -> None:
        if error is not None:
            self._set_mode("login")
            self.error_label.setText(T("login.failed", error=error))
            return
        exists = any(role == self.role for _, role in users or ())
        self._set_mode("login" if exists else "create")
        self.name_edit.setFocus()

    # -- submitting ------------------------------------------------------------------------
    def submit(self) -> None:
        """Check the typed name and password (or create the account) on the store thread."""
        if self.mode == "loading" or self._busy:
            return
        name = self.name_edit.text().strip()
        password = self.password_edit.text()
        if not name:
            self.error_label.setText(T("login.need_name"))
            return
        if self.mode == "create":
            if len(password) < MIN_PASSWORD:
                self.error_label.setText(T("login.too_short", n=MIN_PASSWORD))
                return
            if password != self.repeat_edit.text():
                self.error_label.setText(T("login.mismatch"))
                self.repeat_edit.clear()
                return
            self._set_busy(True)
            self.store.call(_create_account(name, self.role, password),
                            self._guard(lambda r, e: self._created(name, r, e)))
        else:
            self._set_busy(True)
            self.store.call(_check_login(name, password, self.role),
                            self._guard(lambda r, e: self._checked(name, r, e)))
        self.password_edit.clear()
        self.repeat_edit.clear()

    def _created(self, name: str, outcome: str | None, error: BaseException | None) -> None:
        self._set_busy(False)
        if error is not None:
            self.error_label.setText(T("login.failed", error=error))
        elif outcome == "taken":
            self.error_label.setText(T("login.taken"))
        elif outcome == "exists":
            self._set_mode("login")  # someone created the first account in the meantime
            self.error_label.setText(T("login.exists_now"))
        else:
            self._finish(name, self.role)

    def _checked(self, name: str, role: str | None, error: BaseException | None) -> None:
        self._set_busy(False)
        if error is not None:
            self.error_label.setText(T("login.failed", error=error))
        elif role is None:
            self.error_label.setText(T("login.wrong"))
            self.password_edit.setFocus()
        elif not role_allows(role, self.role):
            self.error_label.setText(T("login.not_allowed", role=T(f"login.role.{role}")))
        else:
            self._finish(name, role)

    def _finish(self, name: str, role: str) -> None:
        self.user = name
        self.account_role = role
        self.accept()


def _create_account(name: str, role: str, password: str):
    """The store job creating the first account of ``role``: ``"ok"``, or ``"taken"`` when
    the name exists (set_password would overwrite that account), ``"exists"`` when an
    account of the role appeared since the dialog looked."""
    async def job(store) -> str:
        users = await store.users()
        if any(n == name for n, _ in users):
            return "taken"
        if any(r == role for _, r in users):
            return "exists"
        await store.set_password(name, role, password)  # hashes off the loop; audited
        return "ok"
    return job


def _check_login(name: str, password: str, required: str):
    """The store job checking a password: the account's role or ``None``; audited. A name
    that is no account is logged as ``unknown`` (it may be a password typed in the wrong
    field)."""
    async def job(store) -> str | None:
        role = await store.check_password(name, password)
        if role is None:
            known = any(n == name for n, _ in await store.users())
            await store.audit(name if known else "unknown", required, "login_failed")
        elif role_allows(role, required):
            await store.audit(name, role, "login", f"{required} window")
        return role
    return job


def request_role(store: StoreClient, role: str, parent: QWidget | None,
                 done: Callable[[str | None], None]) -> LoginDialog:
    """Ask for a ``role`` sign-in; ``done(user name)`` on success, ``done(None)`` when the
    dialog is cancelled. Returns at once with the (window-modal) dialog; ``done`` runs
    later on the GUI thread, exactly once."""
    dialog = LoginDialog(store, role, parent)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.finished.connect(
        lambda result: done(dialog.user if result == QDialog.DialogCode.Accepted else None))
    dialog.open()
    return dialog
