"""The SIP test harness itself works: real Kamailio, baresip and SIPp on 127.0.0.1.

Skipped when the peers are not installed (failed instead when ``CI`` is set); see
tests/peers/__init__.py. Each test is bounded (a few seconds; every wait has a timeout).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
from peers import (
    PCMA,
    TELEPHONE_EVENT,
    Baresip,
    Kamailio,
    RtpSink,
    call_with_media,
    concat_pcaps,
    pcap_duration,
    read_pcap,
    read_wav,
    require_peers,
    sip_options_ping,
    start_call_with_media,
    write_audio_pcap,
    write_wav,
)
from synth import voiced

from callguard.audio.g711 import alaw_decode, alaw_encode

pytestmark = pytest.mark.peers

USERS = {"alice": "alice-pw", "bob": "bob-pw", "carol": "carol-pw"}


# -- helpers ------------------------------------------------------------------------------


def tone(freq: float, seconds: float, rate: int = 8000, amp: float = 0.3) -> np.ndarray:
    """A sine tone, float -1..1."""
    t = np.arange(int(seconds * rate)) / rate
    return amp * np.sin(2 * np.pi * freq * t)


def dominant_hz(samples: np.ndarray, rate: int = 8000) -> float:
    """Frequency of the largest FFT bin (Hz) of the non-silent part."""
    x = samples.astype(np.float64)
    loud = np.flatnonzero(np.abs(x) > 0.05 * np.abs(x).max()) if x.size else []
    if len(loud) < rate // 10:
        return 0.0
    x = x[loud[0]:loud[-1]]
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spec) * rate / len(x))


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) if samples.size else 0.0


def recording(path: Path | None) -> np.ndarray:
    """Samples of an 8 kHz recording made by baresip's sndfile."""
    assert path is not None, "baresip wrote no recording"
    samples, rate = read_wav(path)
    assert rate == 8000
    return samples


# -- fixtures -----------------------------------------------------------------------------


@pytest.fixture
def kamailio(tmp_path: Path) -> Iterator[Kamailio]:
    """Kamailio with USERS; config and log kept under the test's tmp_path."""
    require_peers("kamailio")
    with Kamailio(USERS, workdir=tmp_path / "kamailio") as k:
        yield k


UaFactory = Callable[..., Baresip]


@pytest.fixture
def ua(kamailio: Kamailio, tmp_path: Path) -> Iterator[UaFactory]:
    """Factory: ``ua("alice", password=None, registrar=None, **Baresip kwargs)`` starts a
    Baresip for ``registrar`` (default: the ``kamailio`` fixture) with the user's password
    from USERS; registration is not waited for. All are stopped at teardown; config, logs
    and recordings stay under tmp_path."""
    require_peers("baresip")
    started: list[Baresip] = []

    def make(user: str, password: str | None = None, registrar: Kamailio | None = None,
             **kw: object) -> Baresip:
        workdir = tmp_path / f"baresip-{len(started)}-{user}"
        b = Baresip(user, USERS.get(user, "x") if password is None else password,
                    registrar or kamailio, workdir=workdir, **kw)  # type: ignore[arg-type]
        started.append(b)
        return b.start()

    yield make
    for b in started:
        b.stop()


# -- pcap (no peers needed) -----------------------------------------------------------------


def test_pcap_write_read_roundtrip(tmp_path: Path) -> None:
    codes = alaw_encode((voiced(8000 * 1 + 100) * 12000).astype(np.int16))
    path = write_audio_pcap(tmp_path / "a.pcap", codes, dtmf="1#", seq=1000,
                            timestamp=4_294_967_000)
    packets = read_pcap(path)
    audio = [p for p in packets if p.payload_type == PCMA]
    events = [p for p in packets if p.payload_type == TELEPHONE_EVENT]
    assert len(audio) == 51  # 8100 codes -> 50 full frames + 1 padded
    assert b"".join(p.payload for p in audio)[:len(codes)] == codes
    assert all(len(p.payload) == 160 for p in audio)
    assert [p.seq for p in audio] == list(range(1000, 1051))
    steps = {(b.timestamp - a.timestamp) & 0xFFFFFFFF for a, b in pairwise(audio)}
    assert steps == {160}  # across the 32-bit wrap too
    assert audio[0].marker and not audio[1].marker
    assert [round(p.time, 3) for p in audio[:3]] == [0.0, 0.02, 0.04]
    # RFC 4733: per digit 5 packets of 20 ms, the end one three times with one seq number
    assert len(events) == 2 * 7
    assert {p.payload[0] for p in events} == {1, 11}
    ends = [p for p in events if p.payload[1] & 0x80]
    assert len(ends) == 6 and len({p.seq for p in ends}) == 2
    assert events[0].seq == audio[-1].seq + 1
    assert pcap_duration(path) == pytest.approx(events[-1].time + 0.02)


def test_pcap_concat_debian_pcaps(tmp_path: Path) -> None:
    sip_tester = Path("/usr/share/sip-tester")
    if not (sip_tester / "g711a.pcap").is_file():
        require_peers("sipp")
        pytest.skip("sip-tester pcaps not found")
    out = concat_pcaps(tmp_path / "m.pcap", [sip_tester / "g711a.pcap",
                                             sip_tester / "dtmf_2833_1.pcap"])
    packets = read_pcap(out)
    src = read_pcap(sip_tester / "g711a.pcap")
    assert [p.payload for p in packets[:len(src)]] == [p.payload for p in src]
    assert len({p.ssrc for p in packets}) == 1
    assert packets[len(src)].payload_type == TELEPHONE_EVENT
    assert packets[len(src)].seq == packets[len(src) - 1].seq + 1


# -- Kamailio + baresip -------------------------------------------------------------------


def test_register_ok_and_wrong_password_fails(kamailio: Kamailio, ua: UaFactory) -> None:
    alice, bob = ua("alice"), ua("bob")
    wrong = ua("carol", password="not-carols")
    stranger = ua("mallory", password="whatever")
    assert alice.wait_registered(5)["param"].startswith("200")
    bob.wait_registered(5)
    assert wrong.wait_event(("REGISTER_OK", "REGISTER_FAIL"), 5)["type"] == "REGISTER_FAIL"
    assert "403" in wrong.wait_event("REGISTER_FAIL", 1)["param"]
    assert "403" in stranger.wait_event("REGISTER_FAIL", 5)["param"]
    assert kamailio.contacts("alice")[0].endswith(f"@127.0.0.1:{alice.sip_port}")
    assert kamailio.registered("bob")
    assert not kamailio.registered("carol") and not kamailio.registered("mallory")

    # "registrar down and back": same port, registrations gone until clients re-REGISTER
    port = kamailio.port
    kamailio.stop()
    assert sip_options_ping("127.0.0.1", port, timeout=0.3) is None
    kamailio.start()
    assert kamailio.port == port and not kamailio.registered("alice")
    n = len(alice.events)
    alice.reregister()
    alice.wait_event("REGISTER_OK", 5, since=n)
    assert kamailio.registered("alice")
    # the new registration takes calls; the unregistered bob can still call out
    bob.dial(alice.aor)
    alice.wait_event("CALL_INCOMING", 5, since=n)
    bob.hangup()
    alice.wait_event("CALL_CLOSED", 5, since=n)


def test_call_between_baresips_carries_audio(ua: UaFactory, tmp_path: Path) -> None:
    # 16 kHz source: the harness resamples it to the 8 kHz aufile needs
    wav = write_wav(tmp_path / "tone16k.wav", tone(440, 3.0, rate=16000), rate=16000)
    alice = ua("alice", source_wav=wav, codecs=("PCMA", "PCMU"))
    bob = ua("bob", auto_answer=True)
    alice.wait_registered(5)
    bob.wait_registered(5)

    alice.dial(bob.aor)
    est_a = alice.wait_event("CALL_ESTABLISHED", 10)
    est_b = bob.wait_event("CALL_ESTABLISHED", 10)
    assert est_a["direction"] == "outgoing" and est_b["direction"] == "incoming"
    assert est_b["peeruri"].startswith("sip:alice@")
    time.sleep(2.0)
    alice.hangup()
    closed_a = alice.wait_event("CALL_CLOSED", 5)
    closed_b = bob.wait_event("CALL_CLOSED", 5)
    assert closed_a["id"] == est_a["id"]
    assert closed_b["param"]  # reason text, e.g. "Connection reset by peer"

    got = recording(bob.received_wav())
    assert len(got) > 1.5 * 8000
    assert rms(got) > 2000  # 0.3 FS sine is ~6950 RMS
    assert dominant_hz(got) == pytest.approx(440, abs=5)
    assert dominant_hz(recording(alice.sent_wav())) == pytest.approx(440, abs=5)
    assert rms(recording(alice.received_wav())) < 50  # bob sends silence


def test_manual_answer_cancel_404_with_record_route(ua: UaFactory, tmp_path: Path) -> None:
    with Kamailio(USERS, record_route=True, workdir=tmp_path / "kamailio-rr") as proxy:
        _manual_answer_cancel_404(ua, proxy)


def _manual_answer_cancel_404(ua: UaFactory, kamailio: Kamailio) -> None:
    alice, bob = ua("alice", registrar=kamailio), ua("bob", registrar=kamailio)
    alice.wait_registered(5)
    bob.wait_registered(5)

    # manual answer; the callee hangs up (in-dialog BYE loose-routed by the proxy)
    alice.dial(bob.aor)
    bob.wait_event("CALL_INCOMING", 5)
    bob.answer()
    alice.wait_event("CALL_ESTABLISHED", 5)
    bob.hangup()
    alice.wait_event("CALL_CLOSED", 5)

    # the caller gives up while it rings: the CANCEL must reach the callee
    n_a, n_b = len(alice.events), len(bob.events)
    alice.dial(bob.aor)
    bob.wait_event("CALL_INCOMING", 5, since=n_b)
    alice.hangup()
    bob.wait_event("CALL_CLOSED", 5, since=n_b)
    alice.wait_event("CALL_CLOSED", 5, since=n_a)

    # nobody registered under that name
    n_a = len(alice.events)
    alice.dial(kamailio.uri("nobody"))
    assert "404" in alice.wait_event("CALL_CLOSED", 5, since=n_a)["param"]


# -- SIPp ---------------------------------------------------------------------------------


def test_sipp_plays_pcma_and_dtmf_to_baresip(ua: UaFactory, kamailio: Kamailio,
                                             tmp_path: Path) -> None:
    require_peers("sipp")
    wav = write_wav(tmp_path / "tone.wav", tone(440, 5.0))
    bob = ua("bob", auto_answer=True, source_wav=wav, codecs=("PCMA",))
    bob.wait_registered(5)
    speech = (voiced(8000 * 2) * 12000).astype(np.int16)
    codes = alaw_encode(speech)
    media = write_audio_pcap(tmp_path / "media.pcap", codes, dtmf="1")

    with RtpSink() as sink:
        result = call_with_media(kamailio.address, "bob", media, sdp_port=sink.port,
                                 hold_ms=300, timeout=20, workdir=tmp_path / "sipp")
        assert result.ok, result.describe()
        # bob's own RTP came to the Python socket offered in SIPp's SDP
        got = sink.wait_packets(50, timeout=2, payload_type=PCMA)
        assert len({p.ssrc for p in got}) == 1 and len(sink.sources) == 1
        heard = alaw_decode(sink.payload(PCMA))
    assert dominant_hz(heard) == pytest.approx(440, abs=5)

    dtmf = bob.wait_event("CALL_DTMF_START", 2)
    assert dtmf["param"] == "1"
    bob.wait_event("CALL_CLOSED", 5)
    # bob decoded exactly what the pcap carried (bit-exact A-law, in order)
    rec = recording(bob.received_wav())
    expected = alaw_decode(codes)
    start = _find(rec, expected[8000:8160])
    assert start >= 0, "a 20 ms frame from the middle of the pcap is not in bob's recording"
    run = _common_run(rec[start:], expected[8000:])
    assert run >= 4000, f"only {run} samples match after the frame"


def test_sipp_waits_for_far_end_bye(ua: UaFactory, kamailio: Kamailio, tmp_path: Path) -> None:
    require_peers("sipp")
    bob = ua("bob", auto_answer=True)
    bob.wait_registered(5)
    media = write_audio_pcap(tmp_path / "m.pcap", alaw_encode(np.zeros(8000 * 5, np.int16)))
    call = start_call_with_media(kamailio.address, "bob", media, hangup="wait", timeout=15,
                                 recv_timeout=10, workdir=tmp_path / "sipp")
    with call:
        bob.wait_event("CALL_ESTABLISHED", 5)
        time.sleep(0.5)
        bob.hangup()  # while SIPp still plays its 5 s of media
        result = call.wait(10)
    assert result.ok, result.describe()
    assert "BYE sip:sipp@" in result.messages()


def _find(haystack: np.ndarray, needle: np.ndarray) -> int:
    """Index of the first exact occurrence of ``needle`` in ``haystack``, or -1."""
    if len(needle) == 0 or len(haystack) < len(needle):
        return -1
    windows = np.lib.stride_tricks.sliding_window_view(haystack, len(needle))
    hits = np.flatnonzero((windows == needle).all(axis=1))
    return int(hits[0]) if hits.size else -1


def _common_run(a: np.ndarray, b: np.ndarray) -> int:
    """Length of the common prefix of two int arrays."""
    n = min(len(a), len(b))
    diff = np.flatnonzero(a[:n] != b[:n])
    return int(diff[0]) if diff.size else n
