"""The pytest side of the installers' smoke tests (TEST ONLY, never shipped).

``tests/test_installer_windows.py`` and ``tests/test_installer_debian.py`` each take the
built installer that their ``ci.sh`` names in an environment variable (``built_installer``)
and run their ``tests/installer/smoke_*.sh`` on it (``run_smoke``), which prints one
``smoke: ok   STEP (N s)`` or ``smoke: FAIL STEP (N s)`` line a step.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def built_installer(env_var: str, what: str, ci: str, tools: Iterable[str],
                    needs_root: str | None = None) -> Path:
    """The file that ``env_var`` names (the ``what`` that ``ci`` builds).

    Skips when the variable is not set; fails when the file is not there, when
    ``needs_root`` is given (the failure's text) and this is not root, or when a tool is
    not on PATH.
    """
    value = os.environ.get(env_var)
    if not value:
        pytest.skip(f"{env_var} is not set ({ci} builds the {what} and sets it)")
    path = Path(value)
    if not path.is_file():
        pytest.fail(f"{env_var}={value}: no such {what}")
    if needs_root and os.geteuid() != 0:
        pytest.fail(needs_root)
    for tool in tools:
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing ({ci} installs it)")
    return path


def run_smoke(script: str, installer: Path, steps: Iterable[str]) -> None:
    """Run ``tests/installer/<script>`` on ``installer`` (30 minutes at most) and print its
    transcript; fail on a non-zero exit, on any ``smoke: FAIL`` line, or when a step whose
    ``smoke: ok   `` line starts with one of ``steps`` did not pass."""
    proc = subprocess.run(["bash", str(HERE / script), str(installer)], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=1800)
    sys.stdout.write(proc.stdout)  # the transcript and the timings, with -s or on failure
    failures = [line for line in proc.stdout.splitlines() if line.startswith("smoke: FAIL")]
    assert proc.returncode == 0 and not failures, "\n".join(failures) or proc.stdout[-3000:]
    for step in steps:
        assert f"smoke: ok   {step}" in proc.stdout, f"step not run: {step}"
