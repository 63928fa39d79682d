"""One wiring of the live agent from its settings: the SIP line, the recogniser, the headset
and the call engine, as ``callguard run`` and ``callguard gui`` both build them.

Nothing here starts anything: the caller starts the engine (``Engine.start``) on whatever
thread suits it (the GUI off its own thread, ``run`` in the foreground).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from callguard.asr.transcript import Transcriber
from callguard.audio.devices import AudioDevice, SoundDevice
from callguard.central.link import CentralLink
from callguard.config import HeadsetSettings, Settings, resolve_model
from callguard.engine.engine import Engine, EngineEvent
from callguard.telephony.base import Call, Line


def transcriber_factory(settings: Settings, *,
                        in_process: bool = False) -> Callable[[], Transcriber]:
    """Builds the configured Whisper model; called on the recognition worker's thread,
    which owns the model from then on.

    By default the model is loaded in a child process (:mod:`callguard.asr.process`), so a
    native crash of the recogniser fails one utterance and never the call; ``in_process``
    loads it in this process (one-shot tools, measurements of the in-process cost)."""
    def build() -> Transcriber:
        model = resolve_model(settings.asr)  # here: a configuration error is ours to say
        if not in_process:
            from callguard.asr.process import ChildTranscriber, whisper_spec

            return ChildTranscriber(whisper_spec(model,
                                                 compute_type=settings.asr.compute_type,
                                                 cpu_threads=settings.asr.cpu_threads))
        from callguard.asr.whisper import WhisperTranscriber

        return WhisperTranscriber(model, compute_type=settings.asr.compute_type,
                                  cpu_threads=settings.asr.cpu_threads)
    return build


def sip_line(settings: Settings) -> Line | None:
    """The counselor's SIP line from ``[sip]``; ``None`` when no server and user are set."""
    sip = settings.sip
    if not sip.server or not sip.user:
        return None
    from callguard.telephony.sipline import SipConfig, SipLine

    return SipLine(SipConfig(server=sip.server, port=sip.port, user=sip.user,
                             password=sip.password, local_ip=sip.local_ip,
                             sip_port=sip.sip_port, rtp_low=sip.rtp_low, rtp_high=sip.rtp_high,
                             allow=sip.allow, ack_timeout_s=sip.ack_timeout_s,
                             ring_timeout_s=sip.ring_timeout_s,
                             media_timeout_s=sip.media_timeout_s))


def headset_factory(headset: HeadsetSettings) -> Callable[[Call], AudioDevice]:
    """The counselor's headset for each call (``[headset]``). If it cannot be opened the
    engine goes on without it and says so (a ``headset`` event)."""
    def make(call: Call) -> AudioDevice:
        return SoundDevice(headset.device(headset.input), headset.device(headset.output))
    return make


def central_link(settings: Settings, store_path: Path) -> CentralLink:
    """The desk's link to the central server from ``[central]``: the pinned certificate is
    cached as ``central.pem`` beside the store, the published rules are written to
    ``central-rules.toml`` there (prompt files are taken from the configured rules file's
    folder)."""
    from callguard.central.client import HttpCentral

    central = replace(settings.central, cert_cache=settings.central.cert_cache
                      or store_path.with_name("central.pem"))
    return CentralLink(store_path, lambda: HttpCentral(central),
                       rules_target=store_path.with_name("central-rules.toml"),
                       rules_base=settings.rules_path.parent, audio=central.audio,
                       poll_s=central.poll_s)


def build_engine(settings: Settings, line: Line, *,
                 device_factory: Callable[[Call], AudioDevice] | None = None,
                 rules_path: Path | None = None, store_path: Path | None = None,
                 auto_answer: bool | None = None,
                 on_event: Callable[[EngineEvent], None] | None = None,
                 transcriber: Callable[[], Transcriber] | None = None) -> Engine:
    """The call engine on ``line`` with the settings' rules, store, model and headset;
    each keyword overrides its setting (``None``: the setting's). With ``[central]`` the
    engine gets its link to the server (:func:`central_link`), and the rules the server
    published (kept beside the store) are the ones loaded, once there are any."""
    store = store_path or settings.store_path
    central = central_link(settings, store) if settings.central.desk else None
    rules = rules_path or settings.rules_path
    if central is not None and rules_path is None and central.rules_target is not None \
            and central.rules_target.is_file():
        rules = central.rules_target
    return Engine(
        line=line, rules_path=rules, store_path=store, central=central,
        transcriber_factory=transcriber or transcriber_factory(settings),
        device_factory=device_factory or headset_factory(settings.headset),
        auto_answer=settings.sip.auto_answer if auto_answer is None else auto_answer,
        on_event=on_event, counselor=settings.sip.user or "")
