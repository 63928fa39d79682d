"""Roles and sign-in for the supervisor and admin windows.

A counselor uses the softphone window without signing in; that role can never open the
rules editor, the supervisor windows, or delete recordings (:func:`may`). Supervisor and
admin windows ask for a name and password first (:func:`request_role`). An admin account
also opens supervisor windows.

Accounts are made at install time with ``callguard accounts add NAME --role ROLE``
(:mod:`callguard.cli.accounts_cmd`), never here: whoever first opened the menu on a
counselor's PC would otherwise become its supervisor or admin. While no account that may
open the window exists, the dialog says so and shows that command; it has no fields and
creates nothing. The store keeps only a scrypt hash
(:meth:`callguard.store.Store.set_password`).

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
from callguard.gui.i18n import plain, texts
from callguard.services import accounts
from callguard.services.accounts import ACCOUNT_ROLES
from callguard.vocabulary import Role

log = logging.getLogger(__name__)

#: Roles that sign in (a counselor never does).
LOGIN_ROLES = ACCOUNT_ROLES
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
    "login.name": ("이름(&N)", "&Name"),
    "login.password": ("비밀번호(&P)", "&Password"),
    "login.loading": ("계정을 확인하는 중…", "Looking up accounts…"),
    "login.prompt": ("{role} 계정으로 로그인하세요.", "Sign in with a {role} account."),
    "login.no_account": ("이 창을 열 수 있는 {role} 계정이 아직 없습니다.\n"
                         "계정은 여기서 만들 수 없습니다. 시스템 관리자가 이 PC에서 callguard를 "
                         "실행하는 사용자로 다음 명령을 실행해 만듭니다:",
                         "No {role} account that may open this window exists yet.\n"
                         "Accounts cannot be made here. An admin makes one on this PC, as the "
                         "user who runs callguard, with this command:"),
    "login.no_account_cmd": ("callguard accounts add 이름 --role {role}",
                             "callguard accounts add NAME --role {role}"),
    "login.ok": ("로그인(&L)", "&Sign in"),
    "login.cancel": ("취소", "Cancel"),
    "login.close": ("닫기", "Close"),
    "login.checking": ("확인하는 중…", "Checking…"),
    "login.wrong": ("이름 또는 비밀번호가 틀렸습니다.", "Wrong name or password."),
    "login.not_allowed": ("이 계정({role})으로는 이 창을 열 수 없습니다.",
                          "This account ({role}) cannot open this window."),
    "login.need_name": ("이름을 입력하세요.", "Enter a name."),
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
    """Name and password for a ``role`` window.

    Not modal to the application: it is opened with :meth:`QDialog.open` (window-modal)
    and reports through :attr:`user` and ``finished``. ``mode`` is ``"loading"`` until the
    store says which accounts exist, then ``"login"``, or ``"none"`` when no account may
    open the window (no admin for the rules editor; neither a supervisor nor an admin for
    the review): the dialog then shows how an admin makes one and offers nothing else.
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
        self.command_label = QLabel()  # the command that makes an account ("none" mode)
        self.command_label.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse
            | Qt.TextInteractionFlag.TextSelectableByKeyboard)
        self.command_label.setStyleSheet(
            "font-family: monospace; background: #f2f2f2; color: #1a1a1a; padding: 6px")
        self.command_label.setAccessibleName(T("login.no_account_cmd", role=role))
        self.name_edit = QLineEdit()
        self.name_edit.setAccessibleName(plain(T("login.name")))
        self.password_edit = QLineEdit()
        self.password_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.password_edit.setAccessibleName(plain(T("login.password")))
        self.error_label = QLabel()
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color: #b00020")
        self.ok_button = QPushButton(T("login.ok"))
        self.ok_button.setDefault(True)
        self.cancel_button = QPushButton(T("login.cancel"))

        self._form_box = QWidget()
        form = QFormLayout(self._form_box)
        form.setContentsMargins(0, 0, 0, 0)
        name_label = QLabel(T("login.name"))
        name_label.setBuddy(self.name_edit)
        password_label = QLabel(T("login.password"))
        password_label.setBuddy(self.password_edit)
        form.addRow(name_label, self.name_edit)
        form.addRow(password_label, self.password_edit)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.ok_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.message)
        layout.addWidget(self.command_label)
        layout.addWidget(self._form_box)
        layout.addWidget(self.error_label)
        layout.addLayout(buttons)

        self.ok_button.clicked.connect(self.submit)
        self.cancel_button.clicked.connect(self.reject)
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
        # Do not keep a typed password in a widget that may outlive the dialog for a while.
        self.password_edit.clear()

    def _set_mode(self, mode: str) -> None:
        self.mode = mode
        role = T(f"login.role.{self.role}")
        none = mode == "none"
        self._form_box.setVisible(not none)
        self.ok_button.setVisible(not none)
        self.command_label.setVisible(none)
        self.cancel_button.setText(T("login.close") if none else T("login.cancel"))
        if mode == "loading":
            self.message.setText(T("login.loading"))
        elif none:
            self.message.setText(T("login.no_account", role=role))
            self.command_label.setText(T("login.no_account_cmd", role=self.role))
        else:
            self.message.setText(T("login.prompt", role=role))
        self.error_label.clear()
        self._update_enabled()

    def _update_enabled(self) -> None:
        ready = self.mode == "login" and not self._busy
        for w in (self.name_edit, self.password_edit, self.ok_button):
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
        exists = any(role_allows(role, self.role) for _, role in users or ())
        self._set_mode("login" if exists else "none")
        if exists:
            self.name_edit.setFocus()
        else:
            self.cancel_button.setFocus()

    # -- submitting ------------------------------------------------------------------------
    def submit(self) -> None:
        """Check the typed name and password on the store thread."""
        if self.mode != "login" or self._busy:
            return
        name = self.name_edit.text().strip()
        password = self.password_edit.text()
        if not name:
            self.error_label.setText(T("login.need_name"))
            return
        self._set_busy(True)
        self.store.call(_check_login(name, password, self.role),
                        self._guard(lambda r, e: self._checked(name, r, e)))
        self.password_edit.clear()

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
