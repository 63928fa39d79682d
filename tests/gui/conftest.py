"""GUI tests: a real Qt application on the offscreen platform (pytest-qt's ``qtbot``), the
real engine on the in-memory line (``tests/fakerig.py``), the real SQLite store."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before anything imports Qt
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: fakerig, synth

from fakerig import FakeRig


@pytest.fixture
def live(tmp_path):
    """A started :class:`FakeRig` (inbound calls ring; stopped after the test). Create the
    window's bridge *before* events matter: EngineBridge chains to the rig's event hook."""
    rig = FakeRig(tmp_path)
    rig.engine.start()
    yield rig
    rig.engine.stop()
