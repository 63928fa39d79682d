"""Save and apply, and the unsaved-edit guard, in the admin's rules editor (issue 15, item
6): one action saves and then applies the rules to the running engine; a text that fails
is neither saved nor applied and the engine keeps its rules; closing with unsaved edits
asks first. Real engine (FakeLine), real store, real rules file."""

from __future__ import annotations

from callguard.gui.bridge import EngineBridge
from callguard.gui.i18n import plain
from callguard.gui.rules_editor import RulesEditorWindow, T
from tests.gui.test_rules_editor import (
    WAIT_MS,
    clients,  # noqa: F401
    insert_after,
    open_editor,
    wait_checked,
)


def test_save_and_apply_puts_good_rules_in_force_and_keeps_them_when_new_ones_fail(
        qtbot, live, clients):  # noqa: F811
    bridge = EngineBridge(live.engine)
    editor = open_editor(qtbot, clients(live.db), live.rules, bridge)
    assert plain(editor.save_button.text()) == "저장 후 적용"
    assert not editor.push_button.isVisible()
    before = live.engine.rules.version

    # Good: one click saves, then the engine loads it.
    editor.esc["warnings"].setValue(2)
    wait_checked(qtbot, editor)
    with qtbot.waitSignal(editor.pushed, timeout=WAIT_MS) as got:
        editor.save_button.click()
    saved = got.args[0].version
    assert got.args[0].ok and live.engine.rules.version == saved != before
    assert live.rules.read_text(encoding="utf-8") == editor.text() and not editor.dirty
    assert saved[:12] in editor.engine_label.text()
    # Readable: when it was saved and by whom, not only a hash.
    qtbot.waitUntil(lambda: " · admin (" in editor.engine_label.text(), timeout=WAIT_MS)
    assert editor.engine_label.text().startswith("엔진 규칙: 20")

    # Bad: refused before anything is written; nothing is pushed; the engine keeps its rules.
    on_disk = live.rules.read_bytes()
    insert_after(editor, 'id = "t.saekki"', "enabeld = true")
    wait_checked(qtbot, editor)
    pushes: list = []
    editor.pushed.connect(pushes.append)
    with qtbot.waitSignal(editor.save_refused, timeout=WAIT_MS):
        editor.save_and_apply()
    qtbot.wait(300)
    assert pushes == [] and live.rules.read_bytes() == on_disk
    assert live.engine.rules.version == saved


def test_closing_with_unsaved_edits_asks_first(qtbot, live, clients):  # noqa: F811
    editor = open_editor(qtbot, clients(live.db), live.rules, EngineBridge(live.engine))
    editor.show()
    editor.close()  # nothing edited: it closes at once
    assert not editor.isVisible()

    editor = open_editor(qtbot, clients(live.db), live.rules, EngineBridge(live.engine))
    editor.show()
    on_disk = live.rules.read_bytes()
    editor.esc["warnings"].setValue(2)
    wait_checked(qtbot, editor)
    assert editor.dirty
    editor.close()
    box = editor.close_question
    assert editor.isVisible() and box is not None and box.isVisible()
    assert box.text() == T("rules.unsaved_text")
    # "Keep editing": the edits stay, the window too.
    keep = next(b for b in box.buttons() if b.text() == T("rules.keep_editing"))
    keep.click()
    assert editor.isVisible() and editor.dirty
    # "Discard and close": closed, the file untouched.
    editor.close()
    editor.close_question.buttons()  # asked again
    editor.close_discard.click()
    qtbot.waitUntil(lambda: not editor.isVisible(), timeout=5000)
    assert live.rules.read_bytes() == on_disk


def test_closing_can_save_and_apply_first(qtbot, live, clients):  # noqa: F811
    editor = open_editor(qtbot, clients(live.db), live.rules, EngineBridge(live.engine))
    editor.show()
    editor.esc["warnings"].setValue(2)
    wait_checked(qtbot, editor)
    text = editor.text()
    editor.close()
    with qtbot.waitSignal(editor.pushed, timeout=WAIT_MS):
        editor.close_save.click()
    qtbot.waitUntil(lambda: not editor.isVisible(), timeout=5000)
    assert live.rules.read_text(encoding="utf-8") == text


def _save_and_apply(qtbot, editor, warnings: int) -> str:
    editor.esc["warnings"].setValue(warnings)
    wait_checked(qtbot, editor)
    with qtbot.waitSignal(editor.pushed, timeout=WAIT_MS) as got, \
            qtbot.waitSignal(editor.history_loaded, timeout=WAIT_MS):
        editor.save_button.click()
    assert got.args[0].ok
    return got.args[0].version


def test_restoring_an_earlier_version_is_one_confirmed_action(qtbot, live,
                                                              clients):  # noqa: F811
    """Restore = save and apply in one action, after a confirmation that names the version
    (and says unsaved edits go); cancelled, nothing changes; the unsaved-edit guard still
    asks afterwards."""
    editor = open_editor(qtbot, clients(live.db), live.rules, EngineBridge(live.engine))
    editor.show()
    first = _save_and_apply(qtbot, editor, 2)
    first_text = editor.text()
    second = _save_and_apply(qtbot, editor, 3)
    assert live.engine.rules.version == second != first
    editor.esc["warnings"].setValue(4)  # an unsaved edit
    wait_checked(qtbot, editor)
    assert editor.dirty
    editor.show_tab("history")
    row = next(r for r in range(editor.history_table.rowCount())
               if editor.history_table.item(r, 0).data(0x0100) == first)
    editor.history_table.selectRow(row)
    assert plain(editor.restore_button.text()) == "이 버전으로 되돌리기…"

    # Asked first: which version, that it is saved and applied, that the edits go.
    editor.restore_button.click()
    box = editor.restore_question
    assert box is not None and box.isVisible()
    assert editor.readable(first) in box.text() and "바로 적용합니다" in box.text()
    assert T("rules.history.restore_unsaved") in box.text()
    assert editor.restore_go.text() == "되돌리고 적용"
    # Cancelled: nothing changes, the edit is still there and unsaved.
    next(b for b in box.buttons() if b.text() == T("rules.history.cancel")).click()
    qtbot.wait(300)
    assert editor.dirty and live.engine.rules.version == second
    assert "warnings = 4" in editor.text()

    # Confirmed: one click saves the old text and the engine puts it in force.
    editor.restore_button.click()
    with qtbot.waitSignal(editor.pushed, timeout=WAIT_MS) as got:
        editor.restore_go.click()
    assert got.args[0].ok and got.args[0].version == first
    assert live.engine.rules.version == first
    assert live.rules.read_text(encoding="utf-8") == first_text == editor.text()
    assert not editor.dirty
    qtbot.waitUntil(lambda: editor.history and editor.history[0].version == first
                    and "되돌림" in editor.history[0].note, timeout=WAIT_MS)

    # The unsaved-edit guard still asks.
    editor.esc["warnings"].setValue(5)
    wait_checked(qtbot, editor)
    editor.close()
    assert editor.isVisible() and editor.close_question.isVisible()
    editor.close_discard.click()
    qtbot.waitUntil(lambda: not editor.isVisible(), timeout=5000)


def test_a_desk_on_a_central_server_is_told_the_editor_applies_here_only(
        qtbot, live, clients):  # noqa: F811
    """With [central] the rules of every desk come from the server (`callguard central
    publish`); the editor says that its save applies to this PC only, until the server
    publishes, and shows the command that publishes this file. Without, it says nothing."""
    from callguard.config import CentralSettings

    client = clients(live.db)
    plain_editor = open_editor(qtbot, client, live.rules, EngineBridge(live.engine))
    assert plain_editor.central is None and plain_editor.central_label.isHidden()
    assert plain(plain_editor.save_button.text()) == "저장 후 적용"

    central = CentralSettings(url="https://central.example:8443", token="desk-token",
                              fingerprint="AB:CD:EF")
    editor = RulesEditorWindow(client, live.rules, "admin", EngineBridge(live.engine),
                               central=central)
    qtbot.addWidget(editor)
    editor.show()
    wait_checked(qtbot, editor)
    assert editor.central_label.isVisible()
    shown = editor.central_label.text()
    assert "중앙 서버(https://central.example:8443)" in shown and "이 PC에만 적용" in shown
    assert (f'callguard central publish "{live.rules}"' in shown.replace("&quot;", '"')
            and "--url https://central.example:8443 --fingerprint AB:CD:EF" in shown)
    assert plain(editor.save_button.text()) == "저장 후 이 PC에 적용"
    editor.esc["warnings"].setValue(2)
    wait_checked(qtbot, editor)
    with qtbot.waitSignal(editor.pushed, timeout=WAIT_MS) as got:
        editor.save_button.click()
    assert got.args[0].ok and live.engine.rules.version == got.args[0].version
    assert T("rules.pushed_here") in editor.push_status.text()
    # Restoring an earlier version says so too.
    editor.ask_restore(got.args[0].version)
    assert T("rules.history.restore_here") in editor.restore_question.text()
    editor.restore_question.close()

    # Found from the engine's link to the server when the settings are not passed.
    live.engine.central = object()
    try:
        linked = RulesEditorWindow(client, live.rules, "admin", EngineBridge(live.engine))
        qtbot.addWidget(linked)
    finally:
        live.engine.central = None
    assert linked.central is not None and not linked.central_label.isHidden()
    assert "중앙 서버" in linked.central_label.text()
