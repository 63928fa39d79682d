"""The counselor's window, keyboard first (issue 15, item 1): the system-wide protect hotkey
(a real X server, Xvfb, and real key events from ``xdotool`` while another X window has the
focus), the window's shortcuts, mnemonics and accessible names on every control, text
contrast of at least 4.5:1, the always-on-top mini bar and the optional hold-to-confirm."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import (
    QAbstractButton,
    QApplication,
    QLabel,
    QLineEdit,
    QTextBrowser,
    QWidget,
)

from callguard.gui import i18n
from callguard.gui.bridge import EngineBridge
from callguard.gui.counselor import _LINE_STYLE, _SAY_STYLE, HIGHLIGHT, CounselorWindow
from callguard.gui.desk import DeskSettings, hotkey_to_pynput, load_desk_settings
from callguard.telephony.base import CallEnd
from tests.gui.test_counselor import NUMBER, open_window, ring_and_answer

CLICK = Qt.MouseButton.LeftButton


pytestmark = pytest.mark.usefixtures("korean")  # tests/gui/conftest.py


# --- a real X server ------------------------------------------------------------------------

def _free_display() -> int:
    for n in range(90, 200):
        if not Path(f"/tmp/.X{n}-lock").exists() and not Path(f"/tmp/.X11-unix/X{n}").exists():
            return n
    raise RuntimeError("no free X display number")


@pytest.fixture
def xserver(monkeypatch):
    """A display for pynput and xdotool: the one in $DISPLAY if there is one, else an Xvfb
    started here on a free number (stopped after the test)."""
    if not shutil.which("xdotool"):
        pytest.skip("xdotool is not installed (installer/install.sh --dev installs it)")
    proc = None
    display = os.environ.get("DISPLAY", "")
    if not display:
        if not shutil.which("Xvfb"):
            pytest.skip("neither $DISPLAY nor Xvfb")
        n = _free_display()
        display = f":{n}"
        proc = subprocess.Popen(["Xvfb", display, "-nolisten", "tcp", "-screen", "0",
                                 "1366x768x24"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not Path(f"/tmp/.X11-unix/X{n}").exists():
            assert proc.poll() is None and time.monotonic() < deadline, "Xvfb did not start"
            time.sleep(0.05)
        monkeypatch.setenv("DISPLAY", display)
    yield display
    if proc is not None:
        proc.terminate()
        proc.wait(10)


def focused_foreign_window(display: str):
    """Another program's window (a plain X window, as a CRM would have), mapped and given
    the keyboard focus; returns (connection, window id)."""
    from Xlib import X
    from Xlib import display as xdisplay

    d = xdisplay.Display(display)
    screen = d.screen()
    w = screen.root.create_window(10, 10, 400, 300, 0, screen.root_depth,
                                  event_mask=X.StructureNotifyMask | X.KeyPressMask)
    w.set_wm_name("CRM")
    w.map()
    d.sync()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # wait for MapNotify before focusing
        if d.pending_events() and d.next_event().type == X.MapNotify:
            break
        time.sleep(0.01)
    w.set_input_focus(X.RevertToParent, X.CurrentTime)
    d.sync()
    return d, w.id


def xdotool(*args: str) -> str:
    return subprocess.run(["xdotool", *args], capture_output=True, text=True, timeout=10,
                          check=True).stdout.strip()


def hotkey_window(qtbot, rig) -> CounselorWindow:
    """The counselor's window on ``rig`` with the protect hotkey Ctrl+Alt+P asked to work
    system-wide (``global_hotkey``), shown."""
    window = CounselorWindow(EngineBridge(rig.engine), None, counselor="kim",
                             desk=DeskSettings(protect_hotkey="Ctrl+Alt+P"),
                             global_hotkey=True)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    return window


def test_the_hotkey_protects_while_another_window_has_the_focus(qtbot, stepped, xserver):
    window = hotkey_window(qtbot, stepped)
    assert window.hotkey is not None and window.hotkey.active, window.hotkey
    assert window.protect_hint.text() == ("단축키 Ctrl+Alt+P: 다른 프로그램을 쓰는 중에도 "
                                          "작동합니다")
    call = ring_and_answer(qtbot, stepped, window)
    conn, crm = focused_foreign_window(xserver)
    try:
        # The counselor's window is not even on this X server (offscreen): the CRM has the
        # focus, and the keys go to it.
        assert int(xdotool("getwindowfocus")) == crm
        xdotool("key", "ctrl+alt+o")  # another combination: nothing happens
        qtbot.wait(400)
        assert not window._protected and window.protect_button.isEnabled()
        xdotool("key", "ctrl+alt+p")
        qtbot.waitUntil(lambda: window._protected, timeout=5000)
        assert int(xdotool("getwindowfocus")) == crm  # nothing stole the focus
    finally:
        conn.close()
    stepped.settle()
    stepped.advance(2.0)  # the final notice plays to its end, then BYE
    qtbot.waitUntil(lambda: window.call_state == "idle", timeout=5000)
    assert stepped.wait("ended").data["protected"] is True
    assert call.end_reason is CallEnd.LOCAL_HANGUP
    listener = window.hotkey._listener
    window.close()
    assert window.hotkey is None or not window.hotkey.active
    # pynput's X11 listener ends at its next key event after stop(): give it one, so it
    # does not outlive the X server started for this test.
    xdotool("key", "shift")
    listener.join(5)
    assert not listener.is_alive()


def test_without_a_display_the_hotkey_works_in_the_window_and_says_so(qtbot, stepped,
                                                                      monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    window = hotkey_window(qtbot, stepped)
    assert window.hotkey is None
    assert "켜지 못했습니다" in window.statusBar().currentMessage()
    assert window.protect_hint.text().endswith("이 창이 앞에 있을 때만 작동합니다")
    ring_and_answer(qtbot, stepped, window)
    window.activateWindow()
    qtbot.keyClick(window, Qt.Key.Key_P,
                   Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier)
    qtbot.waitUntil(lambda: window._protected, timeout=3000)


def test_function_keys_answer_mute_and_hang_up(qtbot, stepped):
    window = open_window(qtbot, stepped)
    window.activateWindow()
    qtbot.waitActive(window)
    call = stepped.line.ring(NUMBER)
    qtbot.waitUntil(lambda: window.call_state == "ringing", timeout=5000)
    window.number_edit.setFocus()  # the shortcuts work wherever the focus is
    qtbot.keyClick(window.number_edit, Qt.Key.Key_F5)
    qtbot.waitUntil(lambda: window.call_state == "active", timeout=5000)
    stepped.settle()
    qtbot.keyClick(window, Qt.Key.Key_F7)
    qtbot.waitUntil(lambda: any(r.muted for r in list(stepped.engine.runners.values())),
                    timeout=3000)
    assert window.mute_button.isChecked()
    qtbot.keyClick(window, Qt.Key.Key_F8)
    stepped.advance(0.1)
    qtbot.waitUntil(lambda: window.call_state == "idle", timeout=5000)
    assert call.end_reason is CallEnd.LOCAL_HANGUP
    # F6 declines a ringing call.
    call = stepped.line.ring(NUMBER)
    qtbot.waitUntil(lambda: window.call_state == "ringing", timeout=5000)
    qtbot.keyClick(window, Qt.Key.Key_F6)
    qtbot.waitUntil(lambda: window.call_state == "idle", timeout=5000)
    assert call.end_reason is CallEnd.DECLINED


def _controls(root: QWidget) -> list[QWidget]:
    kinds = (QAbstractButton, QLineEdit, QTextBrowser)
    return [w for w in root.findChildren(QWidget)
            if isinstance(w, kinds) and w.isVisibleTo(root)
            and w.objectName() != "qt_scrollarea_viewport"]


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_every_control_has_a_mnemonic_and_an_accessible_name(qtbot, live, lang):
    i18n.set_language(lang)
    window = open_window(qtbot, live)
    controls = _controls(window)
    assert len(controls) >= 20
    nameless = [w for w in controls if not w.accessibleName().strip()]
    assert nameless == [], [(type(w).__name__, getattr(w, "text", str)()) for w in nameless]
    letters: dict[str, str] = {}
    for w in controls:
        if not isinstance(w, QAbstractButton) or w in window.digit_buttons.values():
            continue  # digits are typed in the number field
        m = re.search(r"&(\w)", w.text())
        assert m, f"no mnemonic on {w.text()!r}"
        assert m.group(1).lower() not in letters, (w.text(), letters)
        letters[m.group(1).lower()] = w.text()
    # The number field's label carries its mnemonic (its buddy).
    buddies = [lab for lab in window.findChildren(QLabel) if lab.buddy() is window.number_edit]
    assert buddies and "&" in buddies[0].text()


# --- contrast ---------------------------------------------------------------------------

def _luminance(c: QColor) -> float:
    def ch(v: float) -> float:
        return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4
    return 0.2126 * ch(c.redF()) + 0.7152 * ch(c.greenF()) + 0.0722 * ch(c.blueF())


def contrast(fg: str | QColor, bg: str | QColor) -> float:
    a, b = sorted((_luminance(QColor(fg)), _luminance(QColor(bg))), reverse=True)
    return (a + 0.05) / (b + 0.05)


_RULE = re.compile(r"([^{}]*)\{([^}]*)\}")
_PROP = re.compile(r"(?<![-\w])(color|background(?:-color)?)\s*:\s*([#\w]+)")


def stylesheet_pairs(widget: QWidget) -> list[tuple[str, str, str]]:
    """``(selector, text colour, background)`` of each rule of the widget's style sheet
    that sets a colour; a side not set is the widget palette's."""
    pal = widget.palette()
    out = []
    for selector, body in _RULE.findall(widget.styleSheet()):
        if ":disabled" in selector:
            continue  # WCAG 1.4.3 exempts inactive controls (they are tested below anyway)
        props = dict(_PROP.findall(body))
        fg = props.get("color")
        bg = props.get("background") or props.get("background-color")
        if fg is None and bg is None:
            continue
        out.append((selector.strip(), fg or pal.color(QPalette.ColorRole.WindowText).name(),
                    bg or pal.color(QPalette.ColorRole.Window).name()))
    return out


def test_text_contrast_is_at_least_4_5_to_1(qtbot, live):
    window = open_window(qtbot, live)
    from callguard.gui.counselor import stage_demo_call

    stage_demo_call(window)  # a call, a hit, the warning banner
    QApplication.processEvents()
    pairs: list[tuple[str, str, str]] = []
    for w in [window, *window.findChildren(QWidget)]:
        pairs += [(f"{type(w).__name__} {sel}", fg, bg) for sel, fg, bg in stylesheet_pairs(w)]
    assert any("#2e7d32" in bg for _, _, bg in pairs)  # the answer button is measured
    # Every state's colours, not only the ones on screen now.
    pairs += [(f"line {k}", fg, bg) for k, (fg, bg) in _LINE_STYLE.items()]
    pairs += [(f"say {k}", fg, bg) for k, (fg, bg) in _SAY_STYLE.items()]
    # The transcript's own colours, on its background, and the highlight.
    base = window.transcript.palette().color(QPalette.ColorRole.Base).name()
    for colour in set(re.findall(r"(?<![-\w])color:\s*(#[0-9a-fA-F]{6})",
                                  window.transcript.toHtml())):
        pairs.append(("transcript text", colour, base))
    pairs.append(("highlight", "#000000", HIGHLIGHT))
    # The palette's own text on its own ground (what unstyled widgets use).
    pal = window.palette()
    for text, ground in ((QPalette.ColorRole.WindowText, QPalette.ColorRole.Window),
                         (QPalette.ColorRole.ButtonText, QPalette.ColorRole.Button),
                         (QPalette.ColorRole.Text, QPalette.ColorRole.Base)):
        pairs.append((f"palette {text.name}", pal.color(text).name(), pal.color(ground).name()))
    low = [(where, fg, bg, round(contrast(fg, bg), 2)) for where, fg, bg in pairs
           if contrast(fg, bg) < 4.5]
    assert low == []
    assert len(pairs) > 20


# --- mini bar and hold-to-confirm -------------------------------------------------------

def test_the_mini_bar_stays_on_top_and_protects(qtbot, stepped):
    window = open_window(qtbot, stepped)
    assert window.mini_bar is None
    window.mini_action.trigger()  # 보기 > 작은 창 항상 위에 표시
    bar = window.mini_bar
    assert bar is not None and bar.isVisible()
    assert bar.windowFlags() & Qt.WindowType.WindowStaysOnTopHint
    assert bar.state_label.text() == "대기 중" and not bar.protect_button.isEnabled()
    ring_and_answer(qtbot, stepped, window)
    stepped.advance(1.0)
    qtbot.waitUntil(lambda: bar.stage_label.text() == window.stage_label.text() != "",
                    timeout=3000)
    assert bar.state_label.text() == "통화 중" and bar.protect_button.isEnabled()
    qtbot.mouseClick(bar.protect_button, CLICK)
    assert window._protected and not bar.protect_button.isEnabled()
    stepped.advance(2.0)
    qtbot.waitUntil(lambda: window.call_state == "idle", timeout=5000)
    bar.close()  # closing the bar unticks the menu entry
    assert not window.mini_action.isChecked()


def test_mini_bar_from_the_desk_settings(qtbot, live, tmp_path):
    path = tmp_path / "gui.toml"
    path.write_text('mini_bar = true\nrest_minutes = 3\nprotect_hotkey = "Ctrl+Shift+F9"\n',
                    encoding="utf-8")
    desk = load_desk_settings(path, explicit=True)
    window = CounselorWindow(EngineBridge(live.engine), None, counselor="kim", desk=desk)
    qtbot.addWidget(window)
    assert window.mini_bar is not None and window.mini_bar.isVisible()
    assert window.mini_action.isChecked() and window.rest_s == 180.0
    assert "Ctrl+Shift+F9" in window.protect_hint.text()
    window.close()
    assert window.mini_bar is None


def test_hold_to_confirm_is_off_by_default_and_needs_the_hold_when_on(qtbot, stepped):
    assert DeskSettings().hold_to_confirm_s == 0
    window = CounselorWindow(EngineBridge(stepped.engine), None, counselor="kim",
                             desk=DeskSettings(hold_to_confirm_s=0.4))
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    ring_and_answer(qtbot, stepped, window)
    qtbot.mouseClick(window.protect_button, CLICK)  # a click is not a hold
    qtbot.wait(600)
    assert not window._protected
    assert "0.4초 동안 누르고" in window.statusBar().currentMessage()
    qtbot.mousePress(window.protect_button, CLICK)
    qtbot.waitUntil(lambda: window._protected, timeout=3000)
    qtbot.mouseRelease(window.protect_button, CLICK)


@pytest.mark.parametrize("text,spec", [("Ctrl+Alt+P", "<ctrl>+<alt>+p"),
                                       ("Shift+F12", "<shift>+<f12>"), ("F9", "<f9>"),
                                       ("ctrl+alt+pause", "<ctrl>+<alt>+<pause>")])
def test_hotkey_notation(text, spec):
    assert hotkey_to_pynput(text) == spec


@pytest.mark.parametrize("text", ["P", "Ctrl+", "Ctrl+Ctrl+P", "Hyper+P", "Ctrl+가", ""])
def test_hotkeys_callguard_refuses(text):
    with pytest.raises(ValueError):
        hotkey_to_pynput(text)
