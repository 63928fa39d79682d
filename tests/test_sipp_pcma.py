"""SIPp as the caller (through kamailio) offering only PCMA, with RFC 4733 DTMF after the
speech: the agent's line must receive the A-law audio bit-exact on its timeline, see the
digit, and send its prompt A-law encoded (pyVoIP sent µ-law bytes labelled PCMA).
The far end's RTP goes to a Python socket (RtpSink) so the bytes can be checked."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from audiocheck import clip, exact_offset, snr_db
from officepbx import agent_line, pbx_fixture
from peers.kamailio import Kamailio
from peers.pcap import PCMA, write_audio_pcap
from peers.sipp import UAC_PCMA_DTMF, RtpSink, start_call_with_media, start_sipp

from callguard.audio.g711 import alaw_decode, alaw_encode
from callguard.telephony.base import LineState
from callguard.telephony.pyvoip_fixes import disabled
from callguard.telephony.sipline import SipCall

pytestmark = pytest.mark.slow
RATE = 8000


class Recorder:
    """A SipLine that answers, plays ``prompt`` and keeps everything it receives."""

    def __init__(self, pbx: Kamailio, prompt: np.ndarray) -> None:
        self.prompt = prompt
        self.heard: list[np.ndarray] = []
        self.digits = ""
        self.done = threading.Event()
        self.line = agent_line(pbx, 34000, 34998)
        self.line.set_handlers(on_incoming=self._incoming)

    def _incoming(self, call: SipCall) -> None:
        call.answer()
        call.write(self.prompt)
        threading.Thread(target=self._pump, args=(call,), daemon=True).start()

    def _pump(self, call: SipCall) -> None:
        start = call.media_start
        pos = 0
        while call.state != "ended":
            time.sleep(0.02)
            upto = int((time.monotonic() - start) * RATE) - 960
            if upto > pos:
                self.heard.append(call.read(upto))
                pos = upto
            self.digits += call.dtmf()
        self.heard.append(call.read(pos + 2 * RATE))
        self.digits += call.dtmf()
        self.done.set()

    def audio(self) -> np.ndarray:
        return np.concatenate(self.heard) if self.heard else np.zeros(0, np.int16)


pbx = pbx_fixture("kamailio", "sipp", shared=True, users={"agent": "agentpw"})


def _call(pbx: Kamailio, tmp: Path, speech: np.ndarray, prompt: np.ndarray, *,
          scenario: Path | None = None, media: Path | None = None):
    codes = alaw_encode(speech)
    if media is None:
        media = write_audio_pcap(tmp / "media.pcap", codes, payload_type=PCMA, dtmf="5")
    rec = Recorder(pbx, prompt)
    rec.line.start()
    try:
        deadline = time.monotonic() + 10
        while rec.line.status.state is not LineState.REGISTERED:
            assert time.monotonic() < deadline, rec.line.status
            time.sleep(0.05)
        with RtpSink() as sink:
            if scenario is None:
                proc = start_call_with_media(pbx.address, "agent", media, sdp_port=sink.port,
                                             hangup="bye", hold_ms=800, timeout=30,
                                             workdir=tmp / "sipp")
            else:
                from peers.pcap import pcap_duration
                from peers.ports import free_port

                mp = free_port(tcp=False, span=4)
                proc = start_sipp(scenario, pbx.address, service="agent", media_port=mp,
                                  files={"media.pcap": media},
                                  variables={"sdp_port": sink.port, "hangup": "bye",
                                             "media_ms": round(pcap_duration(media) * 1000),
                                             "hold_ms": 800},
                                  timeout=30, workdir=tmp / "sipp")
            result = proc.wait()
            rec.done.wait(5)
            sent = sink.payload(PCMA)
    finally:
        rec.line.stop()
    return result, rec, codes, sent


@pytest.mark.parametrize("fixed", [True, False], ids=["fixed", "pyvoip"])
def test_pcma_in_bit_exact_dtmf_seen_and_prompt_sent_as_alaw(pbx, tmp_path, fixed):
    speech, prompt = clip("k009"), clip("k016")
    with (disabled() if fixed else disabled("rtp_pcma")):
        result, rec, codes, sent = _call(pbx, tmp_path, speech, prompt)
    assert result.ok, result.describe()
    heard = rec.audio()
    want = alaw_decode(codes)
    off = exact_offset(heard, want)
    assert off is not None  # every sample, on the timeline:
    assert np.array_equal(heard[off:off + want.size], want)
    assert rec.digits == "5"
    snr = snr_db(prompt, alaw_decode(sent))
    if fixed:
        assert snr > 30, snr  # A-law's own limit is ~37 dB
    else:
        assert snr < 0, snr  # µ-law bytes read as A-law: noise, not speech


@pytest.mark.parametrize("fixed", [True, False], ids=["fixed", "pyvoip"])
def test_an_invite_with_empty_and_compact_headers_is_taken(pbx, tmp_path, fixed):
    text = UAC_PCMA_DTMF.read_text(encoding="iso-8859-1")
    head, rest = text.split("Content-Type: application/sdp", 1)
    head = head.replace("Subject: callguard peers", "Subject: callguard peers\n      Supported:")
    head = head.replace("      Call-ID: [call_id]\n      CSeq: 1 INVITE",
                        "      i: [call_id]\n      CSeq: 1 INVITE", 1)
    scenario = tmp_path / "uac_compact.xml"
    scenario.write_text(head + "Content-Type: application/sdp" + rest, encoding="iso-8859-1")
    assert "Supported:\n" in scenario.read_text(encoding="iso-8859-1")
    with (disabled() if fixed else disabled("headers")):
        result, _rec, _, _ = _call(pbx, tmp_path, clip("k038"), clip("k038"),
                                  scenario=scenario)
    if fixed:
        assert result.ok, result.describe()
    else:
        assert not result.ok  # pyVoIP dropped the INVITE: SIPp never got an answer


@pytest.mark.parametrize("fixed", [True, False], ids=["fixed", "pyvoip"])
def test_a_silence_gap_keeps_its_length_on_the_timeline(pbx, tmp_path, fixed):
    # The caller sends nothing for 1.5 s between two phrases (silence suppression, RFC 3551
    # §4.1): the RTP timestamp jumps by 12000 samples. The second phrase must land 1.5 s
    # after the first on the call timeline, not straight after it.
    from peers.pcap import ALAW_SILENCE, frames, rtp_stream, write_pcap

    a, b = clip("k038"), clip("k025")
    fa, fb = frames(alaw_encode(a), 160, ALAW_SILENCE), frames(alaw_encode(b), 160, ALAW_SILENCE)
    gap = 12000
    first = rtp_stream(fa, payload_type=PCMA, seq=1, timestamp=1000, start=0.0)
    second = rtp_stream(fb, payload_type=PCMA, seq=1 + len(fa),
                        timestamp=1000 + 160 * len(fa) + gap, start=0.02 * len(fa) + gap / RATE,
                        marker_first=True)
    media = write_pcap(tmp_path / "media.pcap", first + second)
    with (disabled() if fixed else disabled("rtp_timeline")):
        result, rec, _, _ = _call(pbx, tmp_path, a, clip("k038"), media=media)
    assert result.ok, result.describe()
    heard = rec.audio()
    dec_a = alaw_decode(alaw_encode(a))
    dec_b = alaw_decode(alaw_encode(b))
    pos_a = exact_offset(heard, dec_a)
    pos_b = exact_offset(heard, dec_b)
    assert pos_a is not None and pos_b is not None
    spacing = (pos_b - pos_a) / RATE
    expected = (160 * len(fa) + gap) / RATE
    if fixed:
        assert abs(spacing - expected) < 0.03, (spacing, expected)
    else:
        assert spacing < expected - 1.0, (spacing, expected)  # the gap vanished
