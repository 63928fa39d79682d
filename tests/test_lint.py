"""Static checks run with the tests: ruff (incl. ASYNC rules) and the import-linter contracts
(no Qt in the core; the layers, from the vocabulary up to the CLI and GUI)."""

from __future__ import annotations

import shutil
import subprocess
import sys

from conftest import ROOT


def _tool(name: str) -> list[str]:
    exe = shutil.which(name)
    return [exe] if exe else [sys.executable, "-m", name.replace("-", "_")]


def test_ruff_is_clean():
    out = subprocess.run([*_tool("ruff"), "check", "callguard", "tests"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


def test_core_never_imports_qt():
    out = subprocess.run(_tool("lint-imports"), cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "The core never imports Qt KEPT" in out.stdout
    assert "Layers: faces, use cases, engine, session, core, vocabulary KEPT" in out.stdout
