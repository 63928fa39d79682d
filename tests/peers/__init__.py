"""Real SIP peers on 127.0.0.1 for integration tests: Kamailio (registrar + proxy), baresip
(user agent driven over ctrl_tcp), SIPp (scripted calls playing pcaps), plus pcap/RTP
helpers and free-port picking. All traffic stays on 127.0.0.1.

Debian packages: ``kamailio``, ``baresip-core``, ``sip-tester``. Tests call
:func:`require_peers` first: it skips when a binary is missing, or fails when the ``CI``
environment variable is set (a CI image without the peers is a broken image).
"""

from __future__ import annotations

import os

from .baresip import Baresip, BaresipError, baresip_binary, read_wav, write_wav
from .kamailio import Kamailio, KamailioError, kamailio_binary, sip_options_ping
from .pcap import (
    PCMA,
    PCMU,
    TELEPHONE_EVENT,
    RtpPacket,
    concat_pcaps,
    concat_streams,
    dtmf_stream,
    frames,
    pcap_duration,
    read_payloads,
    read_pcap,
    rtp_stream,
    write_audio_pcap,
    write_pcap,
)
from .ports import HOST, free_port, free_tcp_port, free_udp_port, port_is_free
from .sipp import (
    SIPTESTER_PCAPS,
    UAC_PCMA_DTMF,
    RtpSink,
    SippProcess,
    SippResult,
    call_with_media,
    run_sipp,
    sipp_binary,
    start_call_with_media,
    start_sipp,
)

PACKAGES = {"kamailio": "kamailio", "baresip": "baresip-core", "sipp": "sip-tester"}
"""Peer name -> Debian package providing it."""

_FINDERS = {"kamailio": kamailio_binary, "baresip": baresip_binary, "sipp": sipp_binary}


def missing_peers(*names: str) -> list[str]:
    """Which of ``names`` (default: all of kamailio, baresip, sipp) are not installed."""
    return [n for n in (names or tuple(_FINDERS)) if _FINDERS[n]() is None]


def require_peers(*names: str) -> None:
    """Skip the calling test when a peer binary is missing; fail instead when ``CI`` is
    set in the environment."""
    import pytest

    missing = missing_peers(*names)
    if not missing:
        return
    pkgs = " ".join(sorted({PACKAGES[n] for n in missing}))
    msg = f"SIP peers not installed: {', '.join(missing)} (apt-get install {pkgs})"
    if os.environ.get("CI"):
        pytest.fail(f"{msg}; CI is set, so missing peers are an error", pytrace=False)
    pytest.skip(msg)


__all__ = [
    "HOST",
    "PACKAGES",
    "PCMA",
    "PCMU",
    "SIPTESTER_PCAPS",
    "TELEPHONE_EVENT",
    "UAC_PCMA_DTMF",
    "Baresip",
    "BaresipError",
    "Kamailio",
    "KamailioError",
    "RtpPacket",
    "RtpSink",
    "SippProcess",
    "SippResult",
    "baresip_binary",
    "call_with_media",
    "concat_pcaps",
    "concat_streams",
    "dtmf_stream",
    "frames",
    "free_port",
    "free_tcp_port",
    "free_udp_port",
    "kamailio_binary",
    "missing_peers",
    "pcap_duration",
    "port_is_free",
    "read_payloads",
    "read_pcap",
    "read_wav",
    "require_peers",
    "rtp_stream",
    "run_sipp",
    "sip_options_ping",
    "sipp_binary",
    "start_call_with_media",
    "start_sipp",
    "write_audio_pcap",
    "write_pcap",
    "write_wav",
]
