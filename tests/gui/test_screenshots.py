"""The screenshot script renders every window under Xvfb (a real X server, the xcb platform)
to PNGs a person can look at, at the size each takes on a 1366×768 screen, in Korean and
English: run it as CI would and check the images hold a window."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from PySide6.QtGui import QImage

from callguard.gui.fit import budget

ROOT = Path(__file__).resolve().parents[2]


def test_the_screenshot_script_renders_each_window(tmp_path):
    if shutil.which("xvfb-run") is None:
        if os.environ.get("CI"):
            pytest.fail("xvfb-run missing: installer/install.sh --dev installs xvfb")
        pytest.skip("xvfb-run not installed (Debian package xvfb)")
    env = {k: v for k, v in os.environ.items() if k != "QT_QPA_PLATFORM"}
    out = subprocess.run(["bash", str(ROOT / "installer" / "screenshots.sh"), str(tmp_path)],
                         capture_output=True, text=True, timeout=240, env=env, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    paths = [Path(p) for p in json.loads(out.stdout.strip().splitlines()[-1])["screenshots"]]
    assert sorted(p.name for p in paths) == sorted(
        f"{w}-{lang}.png" for w in ("counselor", "counselor-after", "counselor-crisis",
                                    "review", "review-protect", "review-crisis", "rules",
                                    "rules-broad") for lang in ("ko", "en"))
    for p in paths:
        img = QImage(str(p))
        # Each window as it is on a 1366×768 screen: all of it, within that screen.
        assert (img.width(), img.height()) == budget(), p
        # A real window, not a blank frame: many distinct colours in a sample of pixels.
        colours = {img.pixel(x, y) for x in range(0, img.width(), 7)
                   for y in range(0, img.height(), 7)}
        assert len(colours) > 50, (p, len(colours))
