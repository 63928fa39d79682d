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
def korean():
    """The windows' language is Korean unless the test sets another (restored after). A
    module asks for it in every test with ``pytestmark = pytest.mark.usefixtures("korean")``."""
    from callguard.gui import i18n

    before = i18n.language()
    i18n.set_language("ko")
    yield
    i18n.set_language(before)


@pytest.fixture(params=["ko", "en"])
def lang(request):
    """Each language of the windows in turn (``"ko"``, ``"en"``), set for the test (the one
    before restored after)."""
    from callguard.gui import i18n

    before = i18n.language()
    i18n.set_language(request.param)
    yield request.param
    i18n.set_language(before)


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
