"""``callguard gui``: the desktop app.

The counselor's window opens at once (no login: counselors answer calls); the supervisor's
review and the admin's rules editor open from its menu after a password (accounts are made
at install time with ``callguard accounts add``, never from this menu; stored hashed). The
engine (model, line, store) starts on its own thread while the window is already up, so a
slow model load never freezes the screen.

    callguard gui [--config FILE] [--rules FILE] [--store FILE] [--lang ko|en]
    callguard gui --fake-line     # no PBX: an in-memory line (demos, trying the screens)
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QApplication, QMessageBox

from callguard.config import ConfigError, Settings, exposed_password_warning, load_settings
from callguard.engine.wiring import build_engine, sip_line
from callguard.gui.bridge import EngineBridge, StoreClient, release_windows
from callguard.gui.desk import DeskSettings, desk_path, load_desk_settings
from callguard.gui.i18n import install_qt_translations, set_language, texts
from callguard.vocabulary import Role

log = logging.getLogger(__name__)

T = texts({
    "app.menu.supervisor": ("관리(&S)", "&Supervision"),
    "app.menu.review": ("통화 검토(&R)…", "&Review calls…"),
    "app.menu.rules": ("규칙 편집(&E)…", "&Edit rules…"),
    "app.start_failed": ("callguard를 시작하지 못했습니다", "callguard could not start"),
    "app.no_line": ("전화 회선이 설정되지 않았습니다: 설정 파일의 [sip]에 server, user, "
                    "password를 넣으세요.",
                    "No phone line is configured: set server, user and password under [sip] "
                    "in the settings file."),
})


class _Started(QObject):
    done = Signal(object)  # None, or the exception that stopped the engine from starting


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="callguard gui", description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", type=Path, help="settings file")
    ap.add_argument("--rules", type=Path, help="rules file (default: from the settings)")
    ap.add_argument("--store", type=Path, help="call store (default: from the settings)")
    ap.add_argument("--lang", choices=("ko", "en"), help="interface language (default: ko)")
    ap.add_argument("--desk", type=Path, metavar="FILE",
                    help="desk settings: protect hotkey, mini bar, rest (default: gui.toml "
                         "beside the settings file)")
    ap.add_argument("--open", choices=("review", "rules"),
                    help="also open call review or the rules editor (after the sign-in), "
                         "as the Start-menu entries 통화 검토 and 규칙 편집 do")
    ap.add_argument("--review", action="store_true",
                    help="only the review window, no phone line (a supervisor's PC): on the "
                         "central server when the settings have [central], else this PC's "
                         "store")
    ap.add_argument("--fake-line", action="store_true",
                    help="an in-memory line instead of the PBX (demos; no real calls)")
    return ap


def _line(settings: Settings, fake: bool):
    if fake:
        from callguard.telephony.fake import FakeLine

        return FakeLine(settings.sip.user or Role.COUNSELOR, answer_after_s=2.0)
    return sip_line(settings)


def _quit_on_signals(app: QApplication) -> QTimer:
    """SIGTERM (the PC shutting down, a service manager), SIGHUP (the terminal it was
    started from closed, the session ended) and SIGINT (Ctrl-C) end the event loop like
    closing the window does, so a call in progress is hung up with a BYE and closed and
    sealed in the store as ``agent_stopped``, rather than the process dying with the caller
    left on a dead line. Python runs signal handlers only between bytecodes, and Qt's event loop
    runs none while idle: a timer wakes the interpreter every 200 ms to let them run."""
    def stop(signum, frame) -> None:
        log.warning("signal %d: stopping", signum)
        app.quit()

    for name in ("SIGTERM", "SIGHUP", "SIGINT"):
        if hasattr(signal, name):  # Windows has no SIGHUP
            signal.signal(getattr(signal, name), stop)
    wake = QTimer(app)
    wake.timeout.connect(lambda: None)
    wake.start(200)
    return wake


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.umask(0o077)  # the store, its WAL and exported evidence: the counselor's alone
    if args.lang:
        set_language(args.lang)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    install_qt_translations(app)  # Qt's standard dialogs in Korean too
    try:
        settings = load_settings(args.config)
        desk = load_desk_settings(args.desk or desk_path(settings.source),
                                  explicit=args.desk is not None)
    except ConfigError as exc:
        QMessageBox.critical(None, T("app.start_failed"), str(exc))
        return 2
    exposed = exposed_password_warning(settings)
    if exposed is not None:
        log.warning("%s", exposed)
        print(f"callguard gui: warning: {exposed}", file=sys.stderr, flush=True)
    if args.review:
        return review_only(app, settings, args.store or settings.store_path)
    line = _line(settings, args.fake_line)
    if line is None:
        QMessageBox.critical(None, T("app.start_failed"), T("app.no_line"))
        return 2
    rules_path = args.rules or settings.rules_path
    store_path = args.store or settings.store_path
    engine = build_engine(settings, line, rules_path=rules_path, store_path=store_path)
    bridge = EngineBridge(engine)
    store = StoreClient(store_path)
    window = build_windows(bridge, store, rules_path, settings.sip.user or "", desk,
                           central=settings.central if settings.central.desk else None)
    window.show()
    if args.open:
        QTimer.singleShot(0, window._open_window[args.open])  # type: ignore[attr-defined]

    started = _Started(bridge)  # parented: deleted by Qt, not by whichever thread drops it
    started.done.connect(lambda err: err is not None and QMessageBox.critical(
        window, T("app.start_failed"), str(err)))

    def start() -> None:  # off the GUI thread: loading the model takes seconds
        try:
            engine.start()
        except Exception as exc:
            started.done.emit(exc)
            return
        started.done.emit(None)

    threading.Thread(target=start, name="engine-start", daemon=True).start()
    _quit_on_signals(app)
    try:
        return app.exec()
    finally:
        # The windows first, on the GUI thread while the QApplication lives (see
        # release_windows for why not later, by PySide at exit); their closeEvent may still
        # write to the store, so the engine and the store stop after them.
        release_windows()
        engine.stop()
        store.close()


def review_only(app: QApplication, settings: Settings, store_path: Path) -> int:
    """``callguard gui --review``: the review window alone (see :func:`open_review_only`),
    until it is closed or the process is told to stop."""
    opened = open_review_only(settings, store_path, on_cancel=app.quit)
    _quit_on_signals(app)
    try:
        return app.exec()
    finally:
        release_windows()
        client = opened.get("client")
        if client is not None:
            client.close()


def open_review_only(settings: Settings, store_path: Path, *,
                     on_cancel: Callable[[], None] = lambda: None) -> dict[str, Any]:
    """Open the sign-in, then the review window, without a phone line (a supervisor's PC).
    With ``[central]`` it signs in to the central server (a server account) and shows every
    desk's calls, with alerts as they happen; without, it reviews this PC's store (an
    account of ``callguard accounts``). Returns what it opened as it opens it: ``dialog``,
    then ``client`` and ``window``. ``on_cancel`` runs when the sign-in is given up."""
    from callguard.gui.review import ReviewWindow

    opened: dict[str, Any] = {}
    if settings.central.enabled:
        from callguard.gui.central_review import CentralSignIn, watch_alerts

        dialog = CentralSignIn(store_path.parent, settings.central.url,
                               settings.central.fingerprint)
        opened["dialog"] = dialog

        def signed_in() -> None:
            client = opened["client"] = dialog.client
            window = opened["window"] = ReviewWindow(client, dialog.name_edit.text().strip(),
                                                     dialog.role or "")
            watch_alerts(window, client)
            window.show()
        dialog.accepted.connect(signed_in)
        dialog.rejected.connect(on_cancel)
        dialog.show()
    else:
        from callguard.gui.login import request_role

        client = opened["client"] = StoreClient(store_path)

        def go(user: str | None) -> None:
            if not user:
                on_cancel()
                return
            role = getattr(opened.get("dialog"), "account_role", None) or "supervisor"
            window = opened["window"] = ReviewWindow(client, user, role)
            window.show()
        opened["dialog"] = request_role(client, "supervisor", None, go)
    return opened


def build_windows(bridge: EngineBridge, store: StoreClient, rules_path: Path, counselor: str,
                  desk: DeskSettings | None = None, central=None):
    """The counselor's window (with the system-wide protect hotkey) and the
    supervisor/admin menu wired to the login. ``central``: the desk's ``[central]``
    settings when it has a central server (the rules editor says it applies to this PC)."""
    from callguard.gui.counselor import CounselorWindow
    from callguard.gui.login import request_role

    window = CounselorWindow(bridge, store, counselor, desk=desk or DeskSettings(),
                             global_hotkey=True)
    menu = window.menuBar().addMenu(T("app.menu.supervisor"))
    opened: list[object] = []  # keep the windows alive while they are open

    def keep(w) -> None:
        # Closing deletes the window (Qt, on the GUI thread): a closed window kept alive
        # only by the lambdas connected to its own widgets would otherwise linger until
        # PySide deletes it at exit (see bridge.release_windows).
        w.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        opened.append(w)
        w.destroyed.connect(lambda: opened.remove(w))

    def open_review() -> None:
        dialog = None

        def go(user: str | None) -> None:
            if user:
                from callguard.gui.review import ReviewWindow

                # An admin may sign in to review: the window gets the account's real role.
                role = getattr(dialog, "account_role", None) or "supervisor"
                w = ReviewWindow(store, user, role)
                keep(w)
                w.show()
        dialog = request_role(store, "supervisor", window, go)

    def open_rules() -> None:
        def go(user: str | None) -> None:
            if user:
                from callguard.gui.rules_editor import RulesEditorWindow

                w = RulesEditorWindow(store, rules_path, user, bridge, central=central)
                keep(w)
                w.show()
        request_role(store, "admin", window, go)

    for key, slot in (("app.menu.review", open_review), ("app.menu.rules", open_rules)):
        action = QAction(T(key), window)
        action.triggered.connect(slot)
        menu.addAction(action)
    window._opened = opened  # type: ignore[attr-defined]
    window._open_window = {"review": open_review, "rules": open_rules}  # type: ignore[attr-defined]
    return window
