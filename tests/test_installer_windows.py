"""The Windows installer's smoke test under wine (issue 16).

Runs only when ``CALLGUARD_WINDOWS_SETUP`` names a built installer
(``installer/windows/ci.sh`` builds one and sets it): a fresh wine prefix, silent install,
then the installed ``callguard.exe --version``, ``rules check`` on the default rules,
``model`` (the shipped model, SHA-256 checked), ``simulate`` on real Korean speech through
the real Whisper (the text is printed), the GUI offscreen (drawn, closed, exit 0), a check
that nothing test-only is inside the installer or the install folder, and a silent
uninstall that keeps the call store. Every step is in ``tests/installer/smoke_windows.sh``;
this test runs it and fails on any ``smoke: FAIL`` line.
"""

from __future__ import annotations

import pytest

from tests.installer.smokerun import built_installer, run_smoke

pytestmark = pytest.mark.slow


def test_windows_installer_smoke_under_wine() -> None:
    setup = built_installer("CALLGUARD_WINDOWS_SETUP", "installer", "installer/windows/ci.sh",
                            ("wine", "wineserver", "x86_64-w64-mingw32-gcc", "ffmpeg"))
    run_smoke("smoke_windows.sh", setup, (
        "silent install", "callguard.exe --version", "rules check", "model: shipped",
        "simulate: real Whisper heard", "GUI started offscreen", "silent uninstall",
        "no test-only DLL", "reinstall, then uninstall /S /PURGE",
        "callguard-gui.exe started", "shortcuts:"))
