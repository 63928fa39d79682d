"""``callguard gui`` itself, as a counselor starts it: its own process, the settings file,
a real SIP line (kamailio as the PBX and baresip as the caller on 127.0.0.1), the bundled
Whisper model, the real store, and the headset through PortAudio on ALSA file devices (see
tests/test_headset_alsa.py). Qt runs offscreen. The PC shutting down (SIGTERM) mid-call
ends the call cleanly: BYE to the caller, the call closed and sealed in the store."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from audiocheck import align, clip, silence
from conftest import require_shared
from peers import require_peers
from peers.baresip import Baresip, write_wav
from peers.kamailio import Kamailio
from test_headset_alsa import make_alsa_home, without_long_silences
from test_live_calls import _agent_config, _rules

from callguard.store import Store

pytestmark = pytest.mark.slow


def test_callguard_gui_takes_a_real_call_on_the_headset_and_stops_cleanly(tmp_path):
    require_peers("kamailio", "baresip")
    require_shared()
    make_alsa_home(tmp_path)
    rules = tmp_path / "rules.toml"
    rules.write_text(_rules(), encoding="utf-8")
    speech = clip("k027")
    src = write_wav(tmp_path / "caller.wav", np.concatenate([silence(0.5), speech,
                                                             silence(30)]))
    env = {**os.environ, "HOME": str(tmp_path), "QT_QPA_PLATFORM": "offscreen",
           "XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_DATA_HOME": str(tmp_path / "data"),
           "PYTHONFAULTHANDLER": "1"}
    with Kamailio({"agent": "agentpw", "bob": "bobpw"}) as pbx:
        pbx.wait_ready()
        cfg = _agent_config(tmp_path, pbx, rules)  # auto_answer, store in tmp_path
        cfg.write_text(cfg.read_text() + '\n[headset]\ninput = "cgmic"\noutput = "cgspk"\n')
        app = subprocess.Popen([sys.executable, "-m", "callguard", "gui", "--config", str(cfg)],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
        try:
            pbx.wait_registered("agent", 90)  # the model loads first
            with Baresip("bob", "bobpw", pbx, source_wav=src, source_pad_s=0) as bob:
                bob.wait_registered()
                bob.dial(pbx.uri("agent"))
                bob.wait_event("CALL_ESTABLISHED", 10)
                time.sleep(0.5 + speech.size / 8000 + 1.5)
                assert "CALL_CLOSED" not in bob.event_types()  # still talking
                app.send_signal(signal.SIGTERM)  # the PC shuts down mid-call
                closed = bob.wait_event("CALL_CLOSED", 15)
            _, err = app.communicate(timeout=60)
        finally:
            if app.poll() is None:
                app.kill()
                app.communicate()
    assert app.returncode == 0, (app.returncode, err[-3000:])
    assert "CALL_CLOSED" in closed["type"]
    assert "shared QObject" not in err and "Fatal Python error" not in err, err[-3000:]

    async def read():
        async with Store.open(tmp_path / "calls.db") as store:
            (summary,) = await store.list_calls()
            return await store.get_call(summary.id), await store.check_recording(summary.id)
    rec, (sealed, current) = asyncio.run(read())
    # Stopped, not crashed: the BYE was the agent's, and the store says so (issue 13.9).
    assert rec.end_reason == "agent_stopped" and rec.ended_at is not None, rec.end_reason
    assert rec.hung_up_by == "agent" and rec.counselor == "agent"
    assert sealed is not None and sealed == current
    # The counselor heard the caller on the headset.
    _, corr = align(without_long_silences(np.fromfile(tmp_path / "out.raw", "<i2")),
                    speech[800:-800])
    assert corr > 0.95, corr
