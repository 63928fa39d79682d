"""The review window on the central server: every desk's calls, alerts as they happen.

A supervisor PC (with or without a phone line) signs in with a *server* account
(:class:`CentralSignIn`), and the same :class:`~callguard.gui.review.ReviewWindow` it knows
reads the server through :class:`CentralStoreClient` (a :class:`StoreClient` whose store is a
:class:`~callguard.central.review.CentralReviewStore`). :class:`AlertStream` keeps a
server-sent-events stream open on its own thread and, for every alert (a crisis, a protect
press, "notify supervisor", a rest, from any desk), reloads the window's notifications and
flashes the window — so an alert is on screen about as soon as the server has it.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

import httpx
from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QWidget,
)

from callguard.central.review import CentralReviewStore, SignInRefused, client_context
from callguard.gui.bridge import StoreClient
from callguard.gui.i18n import texts

log = logging.getLogger(__name__)

T = texts({
    "central.title": ("중앙 서버 로그인", "Sign in to the central server"),
    "central.intro": ("{url}\n서버 계정으로 로그인하세요.",
                      "{url}\nSign in with your server account."),
    "central.name": ("이름(&N)", "&Name"),
    "central.password": ("비밀번호(&P)", "&Password"),
    "central.refused": ("이름이나 비밀번호가 틀렸습니다.", "Wrong name or password."),
    "central.unreachable": ("중앙 서버에 연결할 수 없습니다: {error}",
                            "The central server cannot be reached: {error}"),
    # Alerts from the desks, shown among the review window's notifications.
    "review.note.crisis": ("위기 알림", "Crisis alert"),
    "review.note.protect": ("보호 버튼 누름", "Protect pressed"),
})


class CentralStoreClient(StoreClient):
    """A :class:`StoreClient` whose store is the central server, signed in as ``name``.
    ``folder`` keeps the pinned certificate and the evidence key. A failed sign-in fails
    every job (the sign-in dialog checks one first)."""

    central = True

    def __init__(self, folder: Path, url: str, fingerprint: str, name: str, password: str,
                 parent: QObject | None = None, *,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._sign_in = (url, fingerprint, name, password, transport)
        self.url, self.fingerprint = url, fingerprint
        folder.mkdir(parents=True, exist_ok=True)
        super().__init__(folder / "central-review", parent)

    async def _open(self) -> CentralReviewStore:  # type: ignore[override]
        url, fingerprint, name, password, transport = self._sign_in
        self._sign_in = (url, fingerprint, name, "", transport)  # not kept longer than needed
        return await CentralReviewStore.sign_in(url, fingerprint, name, password,
                                                folder=self.path.parent, transport=transport)


class CentralSignIn(QDialog):
    """Name and password for the server; on success :attr:`client` is signed in and
    :attr:`role` is the account's role."""

    def __init__(self, folder: Path, url: str, fingerprint: str,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(T("central.title"))
        self.folder, self.url, self.fingerprint = folder, url, fingerprint
        self.client: CentralStoreClient | None = None
        self.role: str | None = None
        self.name_edit = QLineEdit()
        self.name_edit.setAccessibleName(T("central.name").replace("&", ""))
        self.password_edit = QLineEdit()
        self.password_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.password_edit.setAccessibleName(T("central.password").replace("&", ""))
        self.message = QLabel(T("central.intro", url=url))
        self.message.setWordWrap(True)
        form = QFormLayout(self)
        form.addRow(self.message)
        name_label, pw_label = QLabel(T("central.name")), QLabel(T("central.password"))
        name_label.setBuddy(self.name_edit)
        pw_label.setBuddy(self.password_edit)
        form.addRow(name_label, self.name_edit)
        form.addRow(pw_label, self.password_edit)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                        | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.try_sign_in)
        self.buttons.rejected.connect(self.reject)
        form.addRow(self.buttons)

    def try_sign_in(self) -> None:
        name, password = self.name_edit.text().strip(), self.password_edit.text()
        if not name or not password:
            return
        self.buttons.setEnabled(False)
        client = CentralStoreClient(self.folder, self.url, self.fingerprint, name, password)
        client.call(lambda store: _role_of(store),
                    lambda role, error: self._signed_in(client, role, error))

    def _signed_in(self, client: CentralStoreClient, role: Any,
                   error: BaseException | None) -> None:
        self.buttons.setEnabled(True)
        if error is not None:
            client.close()
            self.password_edit.clear()
            self.message.setText(T("central.refused") if isinstance(error, SignInRefused)
                                 else T("central.unreachable", error=error))
            return
        self.client, self.role = client, str(role)
        self.accept()


async def _role_of(store: CentralReviewStore) -> str:
    return store.role


class AlertStream(QObject):
    """The server's alert stream (server-sent events) on a thread of its own; ``alert`` is
    emitted on the GUI thread for each alert (a dict: id, desk, counselor, kind, detail,
    call_uuid, raised_at). Reconnects after a dropped connection, from the last alert seen
    (``Last-Event-ID``), so none is missed. Stop it with :meth:`stop`."""

    alert = Signal(object)

    def __init__(self, client: CentralStoreClient, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._client = client
        self._stop = threading.Event()
        self._last = 0
        self._thread = threading.Thread(target=self._run, name="gui-alerts", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        token = self._client.submit(_token_of).result(30)
        ssl = client_context(self._client.url, self._client.fingerprint,
                             self._client.path.parent / "central.pem")
        delay = 1.0
        while not self._stop.is_set():
            try:
                headers = {"Authorization": f"Bearer {token}"}
                if self._last:
                    headers["Last-Event-ID"] = str(self._last)
                with httpx.Client(base_url=self._client.url, verify=ssl,
                                  timeout=httpx.Timeout(10, read=30)) as http, \
                        http.stream("GET", "/api/v1/alerts/stream", headers=headers) as r:
                    delay = 1.0
                    event = None
                    for line in r.iter_lines():
                        if self._stop.is_set():
                            return
                        if line.startswith("event:"):
                            event = line.split(":", 1)[1].strip()
                        elif line.startswith("data:") and event == "alert":
                            data = json.loads(line[5:])
                            self._last = max(self._last, int(data["id"]))
                            self.alert.emit(data)
            except (httpx.HTTPError, ValueError) as exc:
                log.warning("alert stream: %s; reconnecting in %.0f s", exc, delay)
            self._stop.wait(delay)
            delay = min(delay * 2, 30.0)


async def _token_of(store: CentralReviewStore) -> str:
    return store.token


def watch_alerts(window: Any, client: CentralStoreClient) -> AlertStream:
    """Keep ``window`` (a ReviewWindow) up to date with the server's alerts: each one
    reloads its notifications and asks the desktop to draw attention to it."""
    stream = AlertStream(client, window)

    def arrived(alert: dict) -> None:
        window.refresh_notifications()
        QApplication.alert(window)

    stream.alert.connect(arrived)
    window.destroyed.connect(stream.stop)
    stream.start()
    return stream
