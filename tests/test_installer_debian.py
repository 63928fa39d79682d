"""The .deb's smoke test in a clean Debian 12 root (issue 16).

Runs only when ``CALLGUARD_DEB`` names a built package (``installer/debian/ci.sh`` builds
one and sets it), as root with debootstrap: a fresh ``debootstrap --variant=minbase
bookworm``, ``apt-get install ./callguard_*.deb`` (its Depends from the mirror), then as a
non-root user ``/usr/bin/callguard --version``, ``rules check`` on the shipped rules,
``model`` (the shipped model, SHA-256 checked), ``simulate`` on real Korean speech through
the real Whisper (the text is printed), the GUI offscreen (drawn, closed, exit 0) and
``callguard gui`` with its worker processes; the installed files against the build's list,
nothing test-only inside, ``ldd`` on every library (the Depends are complete), an isolated
``sys.path``, the desktop entries and the systemd user unit; then ``apt-get remove`` and
``purge`` leave no file of the package and keep the counselor's calls. Every step is in
``tests/installer/smoke_debian.sh``; this test runs it (``tests/installer/smokerun.py``) and fails
on any ``smoke: FAIL``.
"""

from __future__ import annotations

import pytest

from tests.installer.smokerun import built_installer, run_smoke

pytestmark = pytest.mark.slow


def test_deb_smoke_in_clean_debian_root() -> None:
    deb = built_installer("CALLGUARD_DEB", "package", "installer/debian/ci.sh",
                          ("debootstrap", "dpkg-deb", "ffmpeg", "findmnt"),
                          needs_root="the .deb smoke test needs root (debootstrap, chroot)")
    run_smoke("smoke_debian.sh", deb, (
        "debootstrap", "apt-get install", "installed files = the build's file list",
        "package listing:", "no test-only setting", "ldd: every library", "isolated:",
        "/usr/bin/callguard --version", "rules check", "model: shipped",
        "simulate: real Whisper heard", "GUI started offscreen", "callguard gui started",
        "desktop entries:", "systemd user unit", "ExecStart (callguard run)",
        "apt-get remove:", "apt-get purge:"))
