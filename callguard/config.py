"""The agent's settings file (TOML) and where things live by default.

Looked up in this order: ``--config PATH``, ``$CALLGUARD_CONFIG``,
``$XDG_CONFIG_HOME/callguard/config.toml`` (``~/.config/callguard/config.toml``). With no file
every default applies, which runs the bundled model and the shipped default rules::

    [asr]
    model = "bundled"        # or a CTranslate2 Whisper folder, or a size name ("small",
                             # "large-v3-turbo") already in the local Hugging Face cache
    compute_type = "int8"    # CTranslate2 quantisation
    cpu_threads = 2

    [rules]
    path = "/etc/callguard/rules.toml"

    [store]
    path = "~/.local/share/callguard/callguard.db"

    [sip]                    # the counselor's extension on the office PBX (callguard run)
    server = "pbx.example.local"
    port = 5060
    user = "1001"
    password = "secret"
    local_ip = ""            # address written into SDP; "" = the one that routes to the PBX
    sip_port = 5060          # 0 = any free port
    rtp_low = 10000
    rtp_high = 20000
    auto_answer = false
    allow = []               # besides the registrar, who may send us SIP: "host" or
                             # "host:port" (e.g. a second proxy); see README, trust model
    ack_timeout_s = 32       # no ACK for our 200 OK within this: the call ends (Timer H)
    ring_timeout_s = 120     # a call nobody answers or cancels stops ringing after this
    media_timeout_s = 60     # no RTP from the caller (not on hold) for this: the call ends

    [central]                # a call centre's server (see README): omit for a single desk
    url = "https://callguard.example.local:8443"
    token = "cgd_..."        # from `callguard server desk add NAME`: keep this file private
    fingerprint = "AB:CD:.." # the server certificate's SHA-256, from `callguard server init`
    audio = "opus"           # recordings as "opus" (~3 kB/s) or "flac" (lossless)
    poll_s = 30              # how often to ask for new rules and the repeat-caller list

    [headset]                # the counselor's sound card (callguard gui, callguard run --headset)
    input = ""               # "" = the system's default; else a device name (or part of
    output = ""              # one) or number from `callguard devices`
"""

from __future__ import annotations

import difflib
import os
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

from callguard import paths
from callguard.errors import InputError

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_RULES = REPO_ROOT / "rules" / "default.toml"
DEMO_DIR = REPO_ROOT / "callguard" / "demo"


class ConfigError(InputError, ValueError):
    """A settings file problem; the message names the file and the key."""


@dataclass(frozen=True)
class AsrSettings:
    model: str = "bundled"
    compute_type: str = "int8"
    cpu_threads: int = 2


@dataclass(frozen=True)
class SipSettings:
    """The ``[sip]`` table; see :class:`callguard.telephony.sipline.SipConfig`."""

    server: str = ""
    port: int = 5060
    user: str = ""
    password: str = ""
    local_ip: str = ""
    sip_port: int = 5060
    rtp_low: int = 10000
    rtp_high: int = 20000
    auto_answer: bool = False
    allow: tuple[str, ...] = ()
    ack_timeout_s: float = 32.0
    ring_timeout_s: float = 120.0
    media_timeout_s: float = 60.0


_SIP_TYPES = {"server": str, "user": str, "password": str, "local_ip": str, "port": int,
              "sip_port": int, "rtp_low": int, "rtp_high": int, "auto_answer": bool}
#: [sip] keys added for issue 13, checked by :func:`_sip_extra`.
_SIP_EXTRA = ("allow", "ack_timeout_s", "ring_timeout_s", "media_timeout_s")


def _sip_extra(key: str, value: object, path: Path) -> object:
    """``allow``: a list of "host" or "host:port" strings; the timeouts: seconds, > 0 and at
    most an hour (a typo must not make a ghost call hold the line for days)."""
    if key == "allow":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f'{path}: sip.allow must be a list of "host" or "host:port" '
                              "strings")
        for entry in value:
            host, sep, port = entry.strip().rpartition(":")
            if not sep:
                host, port = entry.strip(), ""
            if not host or any(c in host for c in " /@;,") or (
                    sep and not (port.isdigit() and 0 < int(port) < 65536)):
                raise ConfigError(f'{path}: sip.allow entry {entry!r} is not "host" or '
                                  '"host:port" (port 1-65535)')
        return tuple(v.strip() for v in value)
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0 < value <= 3600:
        raise ConfigError(f"{path}: sip.{key} must be a number of seconds, above 0 and at "
                          "most 3600")
    return float(value)


@dataclass(frozen=True)
class HeadsetSettings:
    """The ``[headset]`` table: PortAudio devices for the counselor's microphone and
    speaker; ``""`` is the system's default."""

    input: str = ""
    output: str = ""

    @staticmethod
    def device(value: str) -> str | int | None:
        """As PortAudio (sounddevice) takes it: None (default), a number, or a name part."""
        value = value.strip()
        if not value:
            return None
        return int(value) if value.isdigit() else value


@dataclass(frozen=True)
class CentralSettings:
    """The ``[central]`` table: the call centre's server. ``url`` empty = a single desk.
    ``cert_cache`` is where the pinned certificate is kept once its fingerprint checked out
    (default: ``central.pem`` beside the call store)."""

    url: str = ""
    token: str = ""
    fingerprint: str = ""
    audio: str = "opus"
    poll_s: float = 30.0
    cert_cache: Path | None = None

    @property
    def enabled(self) -> bool:
        """A server is configured (a supervisor's PC needs no token: it signs in)."""
        return bool(self.url)

    @property
    def desk(self) -> bool:
        """This PC is an enrolled desk: it uploads its calls (it has a token)."""
        return bool(self.url and self.token)


_CENTRAL_TYPES: dict[str, type | tuple[type, ...]] = {
    "url": str, "token": str, "fingerprint": str, "audio": str, "poll_s": (int, float)}


def _central(body: dict, path: Path) -> CentralSettings:
    for key, value in body.items():
        want = _CENTRAL_TYPES[key]
        if not isinstance(value, want) or isinstance(value, bool):
            raise ConfigError(f"{path}: central.{key} has the wrong type")
    central = CentralSettings(**body)
    if central.url:
        if not central.url.startswith("https://"):
            raise ConfigError(f"{path}: central.url must start with https://")
        if not central.fingerprint:
            raise ConfigError(f"{path}: central.fingerprint is needed with central.url (the "
                              "server certificate's, from the server's admin)")
    if central.audio not in ("opus", "flac"):
        raise ConfigError(f'{path}: central.audio must be "opus" or "flac"')
    if not 1 <= central.poll_s <= 3600:
        raise ConfigError(f"{path}: central.poll_s must be 1..3600 seconds")
    return central


@dataclass(frozen=True)
class Settings:
    asr: AsrSettings = field(default_factory=AsrSettings)
    sip: SipSettings = field(default_factory=SipSettings)
    headset: HeadsetSettings = field(default_factory=HeadsetSettings)
    central: CentralSettings = field(default_factory=CentralSettings)
    rules_path: Path = DEFAULT_RULES
    store_path: Path = field(default_factory=lambda: default_data_dir() / "callguard.db")
    source: Path | None = None  # the file these came from, if any


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/callguard``; on Windows ``%LOCALAPPDATA%\\callguard``
    (:mod:`callguard.paths`)."""
    return paths.data_dir()


def default_config_path() -> Path:
    env = os.environ.get("CALLGUARD_CONFIG")
    if env:
        return Path(env)
    return paths.config_dir() / "config.toml"


_KEYS = {"asr": {"model", "compute_type", "cpu_threads"}, "rules": {"path"},
         "store": {"path"}, "sip": set(_SIP_TYPES) | set(_SIP_EXTRA),
         "headset": {"input", "output"}, "central": set(_CENTRAL_TYPES)}


def _unknown(name: str, where: str, known: set[str], path: Path) -> ConfigError:
    hint = difflib.get_close_matches(name, sorted(known), n=1)
    extra = f" (did you mean {hint[0]!r}?)" if hint else ""
    return ConfigError(f"{path}: unknown key {where}{name!r}{extra}")


def load_settings(path: Path | None = None) -> Settings:
    """Read the settings file (``path`` must exist when given; the default may be absent)."""
    explicit = path is not None or bool(os.environ.get("CALLGUARD_CONFIG"))
    path = path or default_config_path()
    if not path.is_file():
        if explicit:
            raise ConfigError(f"{path}: settings file not found")
        return Settings()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    for section, body in data.items():
        if section not in _KEYS:
            raise _unknown(section, "", set(_KEYS), path)
        if not isinstance(body, dict):
            raise ConfigError(f"{path}: [{section}] must be a table")
        for key in body:
            if key not in _KEYS[section]:
                raise _unknown(key, f"{section}.", _KEYS[section], path)
    asr = data.get("asr", {})
    threads = asr.get("cpu_threads", 2)
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        raise ConfigError(f"{path}: asr.cpu_threads must be a positive integer")
    for key in ("model", "compute_type"):
        if key in asr and (not isinstance(asr[key], str) or not asr[key].strip()):
            raise ConfigError(f"{path}: asr.{key} must be a non-empty string")
    model = asr.get("model", "bundled")
    looks_like_path = "/" in model or "\\" in model or model.startswith((".", "~"))
    if model != "bundled" and looks_like_path:
        model = str(_path(model, path.parent, path, "asr"))  # a folder: relative to this file
    settings = Settings(
        asr=AsrSettings(model=model,
                        compute_type=asr.get("compute_type", "int8"), cpu_threads=threads),
        source=path,
    )
    sip = dict(data.get("sip", {}))
    for key, value in sip.items():
        if key in _SIP_EXTRA:
            sip[key] = _sip_extra(key, value, path)
            continue
        want = _SIP_TYPES[key]
        if not isinstance(value, want) or (want is int and isinstance(value, bool)):
            raise ConfigError(f"{path}: sip.{key} must be {want.__name__}, not "
                              f"{type(value).__name__}")
        if want is int and not 0 <= value <= 65535:
            raise ConfigError(f"{path}: sip.{key} must be a port number (0-65535)")
    if sip:
        settings = replace(settings, sip=SipSettings(**sip))
        if settings.sip.rtp_low > settings.sip.rtp_high:
            raise ConfigError(f"{path}: sip.rtp_low must not be above sip.rtp_high")
    headset = data.get("headset", {})
    for key, value in headset.items():
        if not isinstance(value, str):
            raise ConfigError(f"{path}: headset.{key} must be a string (a device name or "
                              f"number), not {type(value).__name__}")
    if headset:
        settings = replace(settings, headset=HeadsetSettings(**headset))
    if "central" in data:
        settings = replace(settings, central=_central(data["central"], path))
    base = path.parent
    if "path" in data.get("rules", {}):
        settings = replace(settings, rules_path=_path(data["rules"]["path"], base, path, "rules"))
    if "path" in data.get("store", {}):
        settings = replace(settings, store_path=_path(data["store"]["path"], base, path, "store"))
    return settings


def _path(value: object, base: Path, source: Path, section: str) -> Path:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{source}: {section}.path must be a non-empty string")
    p = Path(value).expanduser()
    return p if p.is_absolute() else base / p


def resolve_model(asr: AsrSettings, cache_dir: Path | None = None) -> str:
    """What to hand ``WhisperModel``: the assembled bundled folder, a model folder, or a size
    name (resolved offline from the local cache by faster-whisper)."""
    if asr.model == "bundled":
        from callguard.asr.bundled import bundled_model_dir

        return str(bundled_model_dir(cache_dir))
    p = Path(asr.model).expanduser()
    if p.exists():
        if not (p / "model.bin").is_file():
            raise ConfigError(f"asr.model {asr.model!r}: no model.bin in that folder")
        return str(p)
    from callguard.asr.whisper import SIZE_NAMES

    if asr.model in SIZE_NAMES:
        return asr.model
    raise ConfigError(f"asr.model {asr.model!r} is neither 'bundled', a model folder, "
                      f"nor a size name ({', '.join(SIZE_NAMES)})")


def exposed_password_warning(settings: Settings) -> str | None:
    """A warning when the settings file holds the SIP password and its group or other users
    may read it (mode ``& 0o044``) or change it (``& 0o022``); ``None`` when it is private
    (``chmod 600``), holds no password, or there is no file."""
    path = settings.source
    if path is None or not (settings.sip.password or settings.central.token):
        return None
    try:
        mode = path.stat().st_mode & 0o777
    except OSError:
        return None
    if not mode & 0o066:
        return None
    who = " and ".join(w for w, bits in (("its group", 0o060), ("other users", 0o006))
                       if mode & bits)
    secret = "the SIP password" if settings.sip.password else "the central server token"
    return (f"{path} holds {secret} and {who} can read or change it (mode "
            f"{mode:o}); make it private: chmod 600 {path}")
