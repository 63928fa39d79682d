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
    """A started :class:`FakeRig` on real time (inbound calls ring; stopped after the test).
    Create the window's bridge *before* events matter: EngineBridge chains to the rig's
    event hook."""
    rig = FakeRig(tmp_path)
    rig.engine.start()
    yield rig
    rig.stop()


@pytest.fixture
def stepped(tmp_path):
    """Like ``live``, on a stepped clock: call time passes only by ``stepped.advance(s)``,
    which first lets the window's commands reach the engine, so a test clicks, advances
    and then waits (``qtbot.waitUntil``) only for the window to show what happened."""
    rig = FakeRig(tmp_path, stepped=True)
    rig.engine.start()
    yield rig
    rig.stop()
