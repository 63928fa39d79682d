"""The review window on the real central server (PostgreSQL and ``callguard server run`` on
127.0.0.1): a supervisor signs in with a server account, sees the calls of every desk, and a
crisis alert raised on a desk is in the window within 2 s."""

from __future__ import annotations

import asyncio
import time

import psycopg
import pytest
from centralkit import ServerProcess, make_call, private_tmp

from callguard.central.client import HttpCentral
from callguard.central.link import CentralLink
from callguard.central.uploader import Uploader
from callguard.config import CentralSettings
from callguard.gui.central_review import CentralSignIn, watch_alerts
from callguard.gui.review import ReviewWindow
from callguard.server.localpg import LocalPostgres
from callguard.store import Store

pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    pg = LocalPostgres(private_tmp("callguard-pg-"))
    pg.start()
    srv = ServerProcess(tmp_path_factory.mktemp("srv"), pg.dsn)
    srv.start()
    yield srv
    srv.stop()
    pg.remove()


def desk(server, home, name, counselor):
    home.mkdir()
    settings = CentralSettings(server.url, server.desk(name), server.fingerprint,
                               audio="flac", cert_cache=home / "central.pem")

    async def fill():
        async with Store.open(home / "calls.db") as store:
            await make_call(store, seconds=3.0, counselor=counselor)
            central = HttpCentral(settings)
            try:
                assert await Uploader(store, central, audio="flac").run_once() == 1
            finally:
                await central.aclose()
    asyncio.run(fill())
    return settings


def test_a_supervisor_reviews_every_desk_and_sees_a_crisis_within_two_seconds(
        qtbot, server, tmp_path):
    a = desk(server, tmp_path / "a", "desk-a", "kim")
    desk(server, tmp_path / "b", "desk-b", "lee")
    server.user("sup", "supervisor")

    dialog = CentralSignIn(tmp_path / "sup", server.url, server.fingerprint)
    qtbot.addWidget(dialog)
    dialog.name_edit.setText("sup")
    dialog.password_edit.setText("wrong-password")
    dialog.try_sign_in()
    qtbot.waitUntil(lambda: dialog.buttons.isEnabled() and "틀렸" in dialog.message.text(),
                    timeout=10_000)
    assert dialog.client is None
    dialog.password_edit.setText("password-123")
    with qtbot.waitSignal(dialog.accepted, timeout=10_000):
        dialog.try_sign_in()
    client = dialog.client
    assert dialog.role == "supervisor"
    window = ReviewWindow(client, "sup", dialog.role, key_path=tmp_path / "site.key",
                          today=False)
    qtbot.addWidget(window)
    window.resize(1366, 768)
    window.show()
    try:
        qtbot.waitUntil(lambda: window.table.rowCount() == 2, timeout=10_000)
        counselors = {window.table.item(r, c).text() for r in range(2)
                      for c in range(window.table.columnCount())
                      if window.table.item(r, c) is not None}
        assert {"kim", "lee"} <= counselors
        # Every desk is a filter (the central server's list), like a counselor or a day.
        qtbot.waitUntil(lambda: window.desk_box.findData("desk-b") >= 0, timeout=10_000)
        window.desk_box.setCurrentIndex(window.desk_box.findData("desk-b"))
        qtbot.waitUntil(lambda: window.table.rowCount() == 1, timeout=10_000)
        assert window.table.item(0, 1).text() == "lee"
        window.desk_box.setCurrentIndex(0)
        qtbot.waitUntil(lambda: window.table.rowCount() == 2, timeout=10_000)
        watch_alerts(window, client)
        time.sleep(0.5)  # the stream is open
        link = CentralLink(tmp_path / "a" / "calls.db", lambda: HttpCentral(a),
                           rules_target=None, rules_base=tmp_path, audio="flac")
        link.start()  # as on the desk: wakes every second, or when kicked

        async def crisis():
            async with Store.open(tmp_path / "a" / "calls.db") as store:
                cid = await make_call(store, seconds=2.0, counselor="kim", end=False)
                raised = time.time()
                await store.add_action(cid, 1.0, "alert", "crisis: self-harm")
                return raised

        try:
            raised = asyncio.run(crisis())
            qtbot.waitUntil(lambda: any(n.kind == "crisis" for n in window.notifications()),
                            timeout=5_000)
            seen = time.time()
        finally:
            link.stop()
        crisis_note = next(n for n in window.notifications() if n.kind == "crisis")
        print({"alert_to_window_s": round(seen - raised, 3)})
        assert seen - raised <= 2.0
        assert crisis_note.actor == "kim · desk-a"
        assert window.unseen_notifications >= 1 or window.notes_box.title()
        text = window.notes_list.item(0).text()
        assert "위기 알림" in text and "kim · desk-a" in text
    finally:
        window.close()
        client.close()
    with psycopg.connect(server_dsn(server)) as conn:
        logins = conn.execute("SELECT action FROM access_log WHERE actor = 'sup'"
                              " ORDER BY id").fetchall()
    assert ("login_failed",) in logins and ("login",) in logins


def server_dsn(server: ServerProcess) -> str:
    import tomllib

    return tomllib.loads(server.config.read_text(encoding="utf-8"))["server"]["database"]


def test_gui_review_alone_signs_in_to_the_central_server(qtbot, server, tmp_path):
    """``callguard gui --review`` with [central] in the settings and no token (a
    supervisor's PC): the sign-in, then the review window with every desk's calls."""
    from callguard.config import load_settings
    from callguard.gui.app import open_review_only

    server.user("sup2", "supervisor")
    (tmp_path / "sup").mkdir()
    config = tmp_path / "sup.toml"
    config.write_text(f'[store]\npath = "{tmp_path / "sup" / "calls.db"}"\n'
                      f'[central]\nurl = "{server.url}"\n'
                      f'fingerprint = "{server.fingerprint}"\n', encoding="utf-8")
    settings = load_settings(config)
    assert settings.central.enabled and not settings.central.desk  # no token: not a desk
    opened = open_review_only(settings, settings.store_path)
    dialog = opened["dialog"]
    qtbot.addWidget(dialog)
    dialog.name_edit.setText("sup2")
    dialog.password_edit.setText("password-123")
    dialog.try_sign_in()
    qtbot.waitUntil(lambda: "window" in opened, timeout=10_000)
    window = opened["window"]
    qtbot.addWidget(window)
    try:
        qtbot.waitUntil(lambda: window.table.rowCount() >= 2, timeout=10_000)
        assert window.role == "supervisor" and window.reviewer == "sup2"
    finally:
        window.close()
        opened["client"].close()
