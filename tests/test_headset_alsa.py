"""The headset (SoundDevice) on real PortAudio and ALSA, without a sound card.

ALSA's ``file`` plugin makes two PCM devices out of files: a microphone that reads raw
int16 samples from ``in.raw`` and a speaker that writes what it plays to ``out.raw``. They
are defined in a private ``~/.asoundrc`` (a subprocess with its own HOME: PortAudio reads
the ALSA configuration once per process). What this cannot show: these devices run free
instead of in real time, so the microphone side overflows the FIFO's bound all the time
(skips, never reordering); timing under a real card's clock is covered by the FIFO's own
tests (tests/test_audio_pcmfifo.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

ASOUNDRC = """\
pcm.cgmic {{
    type file
    slave.pcm "null"
    file "/dev/null"
    infile "{dir}/in.raw"
    format "raw"
}}
pcm.cgspk {{
    type file
    slave.pcm "null"
    file "{dir}/out.raw"
    format "raw"
}}
"""

SCRIPT = textwrap.dedent("""
    import json, sys, time
    import numpy as np
    from callguard.audio.devices import HEADSET_LIMIT, SoundDevice

    try:
        SoundDevice(input_device="nosuchmic")
    except RuntimeError as exc:
        refused = str(exc)
    else:
        refused = ""
    device = SoundDevice(input_device="cgmic", output_device="cgspk")
    reads, deepest = [], 0
    t0 = time.monotonic()
    for i in range(50):  # one second of 20 ms steps, as the call loop does
        reads.append(device.read(160))
        deepest = max(deepest, device.mic.queued)
        device.write((np.arange(i * 160, (i + 1) * 160) + 1).astype(np.int16))
        time.sleep(max(0.0, t0 + (i + 1) * 0.02 - time.monotonic()))
    time.sleep(0.1)  # the speaker's callback takes the last block
    device.close()
    np.save(sys.argv[1], np.concatenate(reads))
    print(json.dumps({"refused": refused, "deepest": deepest, "limit": HEADSET_LIMIT}))
""")


def make_alsa_home(home: Path) -> Path:
    """``home`` as a HOME whose ALSA has the ``cgmic``/``cgspk`` devices; the microphone
    plays a ramp (1 … 30000, repeating), so order and skips can be read off the samples."""
    (home / ".asoundrc").write_text(ASOUNDRC.format(dir=home), encoding="utf-8")
    (np.arange(8000 * 600) % 30000 + 1).astype("<i2").tofile(home / "in.raw")
    return home


@pytest.fixture
def alsa_home(tmp_path):
    try:
        import sounddevice  # noqa: F401
    except OSError as exc:  # the package is a dependency; PortAudio comes from the system
        pytest.fail(f"PortAudio is missing (install libportaudio2): {exc}")
    return make_alsa_home(tmp_path)


def without_long_silences(pcm: np.ndarray, shortest: int = 64) -> np.ndarray:
    """``pcm`` without its runs of ``shortest`` or more exact zeros (the padding a free-
    running card adds); the few zero samples inside speech stay."""
    zero = np.concatenate([[False], pcm == 0, [False]])
    edges = np.flatnonzero(np.diff(zero.astype(np.int8)))
    keep = np.ones(pcm.size, bool)
    for start, end in zip(edges[::2], edges[1::2], strict=True):
        if end - start >= shortest:
            keep[start:end] = False
    return pcm[keep]


def run_headset(home: Path) -> tuple[dict, np.ndarray]:
    env = {**os.environ, "HOME": str(home)}
    out = home / "mic.npy"
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(out)], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1]), np.load(out)


def test_the_headset_plays_every_sample_in_order_and_hears_the_microphone(alsa_home):
    report, mic = run_headset(alsa_home)

    # Speaker: what the call loop wrote reached the card whole and in order.
    played = np.fromfile(alsa_home / "out.raw", "<i2")
    sound = played[played != 0]
    assert sound.size >= 49 * 160, sound.size  # at most the last block still in flight
    assert np.array_equal(sound, np.arange(1, sound.size + 1).astype(np.int16))

    # Microphone: the card's samples arrived, moving forward through the source.
    heard = mic[mic != 0].astype(np.int64)
    assert heard.size >= 40 * 160, heard.size  # the first reads may be priming silence
    steps = np.diff(heard) % 30000  # the ramp wraps at 30000
    assert np.all(steps > 0), "microphone samples came back out of order"
    assert np.count_nonzero(steps == 1) > 0.9 * steps.size  # runs of consecutive samples
    # Bounded delay: however fast the card, never more than the limit queued.
    assert 0 < report["deepest"] <= report["limit"]

    # A device that does not exist is refused, naming what could not be opened.
    assert "nosuchmic" in report["refused"] and "microphone" in report["refused"]


def test_callguard_devices_lists_what_the_headset_can_be_set_to(alsa_home):
    env = {**os.environ, "HOME": str(alsa_home)}
    proc = subprocess.run([sys.executable, "-m", "callguard", "devices"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    listed = proc.stdout.splitlines()
    assert any("cgmic (ALSA): 128 in" in line for line in listed), proc.stdout
    assert any("cgspk (ALSA): 128 in, 128 out" in line for line in listed), proc.stdout


def test_a_real_call_is_heard_on_the_configured_headset(alsa_home):
    """`callguard run --headset` with ``[headset]`` set, on a real SIP call (kamailio and
    baresip on 127.0.0.1): the caller's speech reaches the speaker device in order, and the
    microphone device's samples reach the caller."""
    from audiocheck import align, clip, silence
    from conftest import require_shared
    from peers import require_peers
    from peers.baresip import Baresip, read_wav, write_wav
    from peers.kamailio import Kamailio
    from test_live_calls import _agent_config, _rules

    require_peers("kamailio", "baresip")
    require_shared()
    rules = alsa_home / "rules.toml"
    rules.write_text(_rules(), encoding="utf-8")
    speech = clip("k027")
    src = write_wav(alsa_home / "caller.wav", np.concatenate([silence(0.5), speech,
                                                               silence(20)]))
    env = {**os.environ, "HOME": str(alsa_home)}
    with Kamailio({"agent": "agentpw", "bob": "bobpw"}) as pbx:
        pbx.wait_ready()
        cfg = _agent_config(alsa_home, pbx, rules)
        cfg.write_text(cfg.read_text() + '\n[headset]\ninput = "cgmic"\noutput = "cgspk"\n')
        log = (alsa_home / "agent.log").open("wb")
        agent = subprocess.Popen([sys.executable, "-m", "callguard", "run", "--config",
                                  str(cfg), "--headset"], env=env, stdout=log,
                                 stderr=subprocess.STDOUT)
        try:
            with Baresip("bob", "bobpw", pbx, source_wav=src, source_pad_s=0) as bob:
                bob.wait_registered()
                deadline = time.monotonic() + 60
                while b"line: registered" not in (alsa_home / "agent.log").read_bytes():
                    assert agent.poll() is None and time.monotonic() < deadline, \
                        (alsa_home / "agent.log").read_text()[-2000:]
                    time.sleep(0.1)
                bob.dial(pbx.uri("agent"))
                bob.wait_event("CALL_ESTABLISHED", 10)
                time.sleep(0.5 + speech.size / 8000 + 1.0)
                bob.hangup()
                bob.wait_event("CALL_CLOSED", 10)
                heard_by_bob, _ = read_wav(bob.received_wav())
        finally:
            agent.terminate()
            agent.wait(20)
            log.close()
    agent_log = (alsa_home / "agent.log").read_text(errors="replace")
    assert "headset could not be opened" not in agent_log, agent_log[-2000:]
    played = np.fromfile(alsa_home / "out.raw", "<i2")
    sound = without_long_silences(played)  # the free-running card pads between blocks
    _, corr = align(sound, speech[800:-800])  # its quiet edges may count as padding
    assert corr > 0.95, (corr, sound.size)
    # The microphone's ramp went out to the caller (through G.711: not exact values).
    assert np.abs(heard_by_bob.astype(np.int32)).max() > 1000
