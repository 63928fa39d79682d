"""A real baresip 1.0 user agent on 127.0.0.1, driven over ctrl_tcp, for integration tests.

``Baresip("alice", "secret", registrar=kamailio)`` writes a config dir in its own temp dir
(``config``, ``accounts``, ``contacts``; ``HOME`` points there too), listens for SIP on
``udp:127.0.0.1:<free port>`` and offers only G.711 (``PCMU``/``PCMA``, preferred first).

Audio (8 kHz mono, 16-bit linear PCM, 20 ms frames):

* sent: the ``aufile`` source plays ``source_wav`` (a mono 16-bit WAV at 8 or 16 kHz;
  16 kHz is resampled to 8 kHz here) followed by silence, ``source_pad_s`` seconds long in
  total (baresip 1.0's aufile closes the audio source at end of file, so the file is padded
  to outlast the call). ``source_wav=None`` sends silence.
* played: the ``aubridge`` player (no sound card; the samples go nowhere).
* recorded: the ``sndfile`` filter writes, per call, ``dump-<YYYY-MM-DD-HH-MM-SS>-dec.wav``
  (decoded audio received from the far end) and ``...-enc.wav`` (audio sent) into
  :attr:`Baresip.record_dir`; both 8 kHz mono 16-bit WAV. :meth:`received_wav` and
  :meth:`sent_wav` return the newest. The names carry only a start time with 1 s resolution,
  so two calls starting in the same second overwrite each other.

Control: ``ctrl_tcp`` on a free TCP port; messages are netstrings (``<len>:<json>,``).
Commands are ``{"command": ..., "params": ..., "token": ...}``; replies carry
``"response": true, "ok", "data", "token"``; events carry ``"event": true, "class", "type",
"param", "accountaor", "direction", "peeruri", "id"`` and are collected by a reader thread
(:meth:`wait_event`). The account is added with ``uanew`` only after the control connection
is up, so REGISTER_OK / REGISTER_FAIL are never missed (ctrl_tcp drops events while no
client is connected).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .kamailio import Kamailio
from .ports import HOST, free_port, free_tcp_port
from .process import PeerProcess, signal_group

BARESIP_BIN = "/usr/bin/baresip"
MODULE_DIR = "/usr/lib/baresip/modules"
RATE = 8000
"""Sample rate of everything baresip sends/records here (G.711), Hz."""

CODECS = {"PCMU": "PCMU/8000/1", "PCMA": "PCMA/8000/1"}


def baresip_binary() -> str | None:
    """Path of the baresip binary, or None when it (or its modules) is not installed."""
    if Path(BARESIP_BIN).is_file() and Path(MODULE_DIR, "ctrl_tcp.so").is_file():
        return BARESIP_BIN
    return None


class BaresipError(RuntimeError):
    """baresip failed, or a command was refused; the message carries its log tail."""


def read_wav(path: str | os.PathLike[str]) -> tuple[np.ndarray, int]:
    """A 16-bit PCM WAV as (int16 samples, rate in Hz); multi-channel is averaged to mono."""
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2:
            raise ValueError(f"{path}: need 16-bit PCM, got {8 * w.getsampwidth()}-bit")
        rate, channels = w.getframerate(), w.getnchannels()
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    if channels > 1:
        data = data.reshape(-1, channels).mean(axis=1).astype(np.int16)
    return data.astype(np.int16), rate


def write_wav(path: str | os.PathLike[str], samples: np.ndarray, rate: int = RATE) -> Path:
    """Write mono int16 ``samples`` (or float -1..1) as a 16-bit PCM WAV at ``rate`` Hz."""
    arr = np.asarray(samples)
    if arr.dtype.kind == "f":
        arr = np.clip(np.rint(arr * 32767.0), -32768, 32767)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(arr.astype("<i2").tobytes())
    return Path(path)


def _to_8k(samples: np.ndarray, rate: int) -> np.ndarray:
    if rate == RATE:
        return samples
    from callguard.audio.resample import float_to_int16, resample

    return np.asarray(float_to_int16(resample(samples, rate, RATE)), dtype=np.int16)


class Baresip(PeerProcess):
    """One baresip process with one account ``sip:<user>@127.0.0.1:<registrar port>``.

    ``registrar`` is a :class:`~peers.kamailio.Kamailio`; its address is the account's
    domain, so REGISTER and out-of-dialog requests (``dial("sip:x@<proxy>")``) go to it.
    ``auto_answer`` sets ``answermode=auto`` (no CALL_INCOMING event then, just
    CALL_ESTABLISHED). ``codecs`` is the offered/accepted order, e.g. ``("PCMA", "PCMU")``.
    ``source_wav``/``source_pad_s``: see the module doc; ``source_pad_s=0`` makes baresip
    hang up (CALL_CLOSED "end of file") as soon as ``source_wav`` has been played.
    ``register=False`` creates the account without registering (``regint=0``): outgoing
    calls still work. ``regint``: registration lifetime asked for, seconds.
    ``rtp_timeout``: hang up after that many seconds without RTP (0 = never).
    ``extra_config`` lines are appended to ``config``. ``workdir`` (created if needed,
    kept by :meth:`close`) holds config, log and recordings; default: a new temp dir,
    deleted by :meth:`close` (the context manager keeps it when the block raises).
    """

    def __init__(self, user: str, password: str, registrar: Kamailio, *,
                 source_wav: str | os.PathLike[str] | None = None, auto_answer: bool = False,
                 codecs: tuple[str, ...] = ("PCMU", "PCMA"), source_pad_s: float = 60.0,
                 register: bool = True, regint: int = 600, rtp_timeout: int = 0,
                 extra_config: tuple[str, ...] = (), start_timeout: float = 10.0,
                 workdir: str | os.PathLike[str] | None = None) -> None:
        for c in codecs:
            if c not in CODECS:
                raise ValueError(f"codec {c!r} not one of {sorted(CODECS)}")
        self.user = user
        self.password = password
        self.registrar = registrar
        self.auto_answer = auto_answer
        self.codecs = tuple(codecs)
        self.register = register
        self.regint = regint
        self.rtp_timeout = rtp_timeout
        self.extra_config = tuple(extra_config)
        self.start_timeout = start_timeout
        self._own_dir = workdir is None
        self.dir = Path(tempfile.mkdtemp(prefix=f"baresip-{user}-") if workdir is None
                        else workdir)
        """Holds conf/, rec/, baresip.log and the 8 kHz source WAV."""
        self.conf_dir = self.dir / "conf"
        self.record_dir = self.dir / "rec"
        """Where sndfile writes ``dump-*-dec.wav`` (received) and ``dump-*-enc.wav`` (sent)."""
        self.log_path = self.dir / "baresip.log"
        """baresip's stdout+stderr."""
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        self.record_dir.mkdir(parents=True, exist_ok=True)
        self.source_path = self._prepare_source(source_wav, source_pad_s)
        self.sip_port = free_port(udp=True, tcp=True, span=2)  # TLS listens on port + 1
        self.ctrl_port = free_tcp_port()
        self.events: list[dict[str, Any]] = []
        """Every event received so far (JSON dicts), in order."""
        self._cond = threading.Condition()
        self._responses: dict[str, dict[str, Any]] = {}
        self._token = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._reader: threading.Thread | None = None
        self._send_lock = threading.Lock()

    # -- addresses -----------------------------------------------------------------------

    @property
    def aor(self) -> str:
        """``sip:<user>@127.0.0.1:<registrar port>``: dial this to reach it via the proxy."""
        return self.registrar.uri(self.user)

    @property
    def contact(self) -> str:
        """``sip:<user>@127.0.0.1:<own SIP port>``: dial this to reach it directly."""
        return f"sip:{self.user}@{HOST}:{self.sip_port}"

    # -- setup ---------------------------------------------------------------------------

    def _prepare_source(self, wav: str | os.PathLike[str] | None, pad_s: float) -> Path:
        if wav is None:
            samples = np.zeros(0, dtype=np.int16)
        else:
            samples, rate = read_wav(wav)
            samples = _to_8k(samples, rate)
        total = max(len(samples), int(pad_s * RATE), RATE // 50)  # at least one 20 ms frame
        out = np.zeros(total, dtype=np.int16)
        out[:len(samples)] = samples
        return write_wav(self.dir / "source-8k.wav", out)

    def _account_line(self) -> str:
        params = [f"auth_pass={self.password}",
                  f"answermode={'auto' if self.auto_answer else 'manual'}",
                  "audio_codecs=" + ",".join(CODECS[c] for c in self.codecs),
                  f"regint={self.regint if self.register else 0}",
                  "ptime=20", "mwi=no", "pubint=0", "call_transfer=no"]
        line = f"<sip:{self.user}@{self.registrar.address};transport=udp>;" + ";".join(params)
        if len(line) > 240:  # ctrl_tcp cuts "command params" at 255 bytes
            raise ValueError(f"account line too long for ctrl_tcp ({len(line)} bytes)")
        return line

    def _write_config(self) -> None:
        lines = [
            "poll_method epoll",
            f"sip_listen {HOST}:{self.sip_port}",
            "net_interface 127.0.0.1",
            "dns_server 127.0.0.1:53",
            "call_local_timeout 60",
            "call_max_calls 4",
            f"audio_source aufile,{self.source_path}",
            "audio_player aubridge,null",
            "audio_alert aubridge,null",
            "audio_level no",
            "ausrc_format s16",
            "auplay_format s16",
            "auenc_format s16",
            "audec_format s16",
            "audio_buffer 20-160",
            "rtp_tos 0",
            "rtcp_mux no",
            "jitter_buffer_delay 1-10",
            "statmode_default off",
            "rtp_stats no",
            f"rtp_timeout {self.rtp_timeout}",
            f"module_path {MODULE_DIR}",
            "module g711.so",
            "module aufile.so",
            "module aubridge.so",
            "module sndfile.so",
            "module_app menu.so",
            "module_app ctrl_tcp.so",
            f"ctrl_tcp_listen {HOST}:{self.ctrl_port}",
            f"snd_path {self.record_dir}",
            *self.extra_config,
        ]
        (self.conf_dir / "config").write_text("\n".join(lines) + "\n", encoding="utf-8")
        (self.conf_dir / "accounts").write_text("", encoding="utf-8")
        (self.conf_dir / "contacts").write_text("", encoding="utf-8")

    # -- lifecycle -----------------------------------------------------------------------

    def _fail(self, what: str) -> BaresipError:
        code = self._proc.poll() if self._proc else None
        return BaresipError(f"baresip {self.user}: {what} (exit code {code}); "
                            f"log {self.log_path}:\n{self.log_tail()}")

    def start(self) -> Baresip:
        """Start baresip, connect to ctrl_tcp, add the account (registration starts)."""
        if self.running:
            return self
        binary = baresip_binary()
        if binary is None:
            raise BaresipError("baresip is not installed")
        self._write_config()
        env = {**os.environ, "HOME": str(self.dir)}
        with self.log_path.open("ab") as log:
            # no stdio/cons module is loaded, so nothing reads stdin
            self._proc = subprocess.Popen([binary, "-f", str(self.conf_dir)],
                                          stdin=subprocess.DEVNULL, stdout=log,
                                          stderr=subprocess.STDOUT, cwd=self.dir, env=env,
                                          start_new_session=True)
        try:
            self._connect(self.start_timeout)
            self.command("uanew", self._account_line())
        except BaseException:
            self.stop()
            raise
        return self

    def _connect(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if not self.running:
                raise self._fail("exited during start")
            try:
                sock = socket.create_connection((HOST, self.ctrl_port), timeout=0.5)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise self._fail(f"ctrl_tcp not listening on {self.ctrl_port}") from None
                time.sleep(0.05)
        sock.settimeout(None)
        self._sock = sock
        self._reader = threading.Thread(target=self._read_loop, args=(sock,),
                                        name=f"baresip-{self.user}-events", daemon=True)
        self._reader.start()

    def stop(self, grace: float = 0.5) -> None:
        """End the process; never hangs. SIGTERM makes baresip unregister and wait for its
        SIP transactions to finish, which can take 30 s when a peer (or the registrar) is
        gone; so after ``grace`` s a second SIGTERM makes it exit at once, and SIGKILL
        follows 2 s later. Recordings of calls that already ended are complete."""
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        proc, self._proc = self._proc, None
        if proc is not None:
            for sig, wait in ((signal.SIGTERM, grace), (signal.SIGTERM, 2.0),
                              (signal.SIGKILL, 5.0)):
                if proc.poll() is not None:
                    break
                signal_group(proc, sig)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(wait)
        if self._reader is not None:
            self._reader.join(2)
            self._reader = None

    def close(self) -> None:
        """Stop and delete the temp dir (config, log, recordings), not a ``workdir`` given."""
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    # -- ctrl_tcp ------------------------------------------------------------------------

    def _read_loop(self, sock: socket.socket) -> None:
        buf = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
            while True:
                colon = buf.find(b":")
                if colon < 0 or not buf[:colon].isdigit():
                    break
                end = colon + 1 + int(buf[:colon])
                if len(buf) < end + 1:
                    break
                payload, buf = buf[colon + 1:end], buf[end + 1:]  # drop the trailing ","
                try:
                    self._dispatch(json.loads(payload))
                except ValueError:
                    self._dispatch({"event": True, "type": "HARNESS_BAD_JSON",
                                    "param": payload.decode(errors="replace")})
        with self._cond:
            self._cond.notify_all()

    def _dispatch(self, msg: dict[str, Any]) -> None:
        with self._cond:
            if msg.get("response"):
                self._responses[str(msg.get("token", ""))] = msg
            elif msg.get("event"):
                msg["time"] = time.monotonic()
                self.events.append(msg)
            self._cond.notify_all()

    def command(self, command: str, params: str | None = None,
                timeout: float = 5.0) -> str:
        """Run a baresip command (``dial``, ``accept``, ``hangup``, ``reginfo``, ...);
        returns the response's ``data`` text. Raises BaresipError when it is not ok."""
        sock = self._sock
        if sock is None:
            raise BaresipError(f"baresip {self.user} is not running")
        with self._send_lock:
            self._token += 1
            token = f"t{self._token}"
        msg: dict[str, str] = {"command": command, "token": token}
        if params is not None:
            msg["params"] = params
        data = json.dumps(msg).encode()
        with self._send_lock:
            sock.sendall(str(len(data)).encode() + b":" + data + b",")
        deadline = time.monotonic() + timeout
        with self._cond:
            while token not in self._responses:
                left = deadline - time.monotonic()
                if left <= 0 or not self.running:
                    raise self._fail(f"no response to {command!r}")
                self._cond.wait(min(left, 0.2))
            resp = self._responses.pop(token)
        if not resp.get("ok"):
            raise BaresipError(f"baresip {self.user}: {command} {params or ''} failed: "
                               f"{resp.get('data')}")
        return str(resp.get("data", ""))

    def dial(self, uri: str) -> None:
        """Place a call to ``uri`` (e.g. ``other.aor`` via the proxy, or a direct URI)."""
        self.command("dial", uri)

    def answer(self) -> None:
        """Answer the current incoming call."""
        self.command("accept")

    def hangup(self) -> None:
        """Hang up the current call (or cancel/reject it)."""
        self.command("hangup")

    def send_dtmf(self, digit: str) -> None:
        """Send one DTMF digit (RFC 4733 telephone-event) in the current call."""
        self.command("sndcode", digit)

    def reregister(self) -> None:
        """Register again now, e.g. after :meth:`Kamailio.restart` lost the registrations
        (baresip 1.0 has no command for it). A second user agent for the account is
        created (``uanew``, REGISTER at once), then the old one deleted (``uadel`` finds
        the oldest): the old one's un-REGISTER then names its own Contact, which differs
        from the new one's, so it cannot remove the fresh binding whatever order the
        registrar handles them in. Wait with ``wait_event("REGISTER_OK", since=n)``,
        ``n = len(self.events)`` taken before. Not during a call."""
        self.command("uanew", self._account_line())
        self.command("uadel", self.aor)

    # -- events --------------------------------------------------------------------------

    def wait_event(self, type_: str | tuple[str, ...], timeout: float = 10.0, *,
                   since: int = 0, where: Callable[[dict[str, Any]], bool] | None = None
                   ) -> dict[str, Any]:
        """First event (index >= ``since`` in :attr:`events`) whose ``type`` is ``type_`` (or
        one of them) and matching ``where``; waits up to ``timeout`` s, then raises
        TimeoutError listing the events seen. Already received events count, so call it
        after the action without racing it. Use ``since=len(b.events)`` to skip old ones.
        """
        types = (type_,) if isinstance(type_, str) else type_
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for ev in self.events[since:]:
                    if ev.get("type") in types and (where is None or where(ev)):
                        return ev
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [(e.get("type"), e.get("param")) for e in self.events]
                    raise TimeoutError(f"baresip {self.user}: no {types} within {timeout} s; "
                                       f"events: {seen}; log {self.log_path}:\n"
                                       f"{self.log_tail(20)}")
                self._cond.wait(min(left, 0.2))

    def event_types(self) -> list[str]:
        """Types of all events so far, in order."""
        with self._cond:
            return [str(e.get("type")) for e in self.events]

    def wait_registered(self, timeout: float = 10.0) -> dict[str, Any]:
        """Wait for REGISTER_OK (returns it); raises BaresipError on REGISTER_FAIL."""
        ev = self.wait_event(("REGISTER_OK", "REGISTER_FAIL"), timeout)
        if ev["type"] == "REGISTER_FAIL":
            raise BaresipError(f"baresip {self.user}: REGISTER_FAIL {ev.get('param')}")
        return ev

    # -- recordings ----------------------------------------------------------------------

    def _newest(self, suffix: str) -> Path | None:
        files = sorted(self.record_dir.glob(f"dump-*-{suffix}.wav"),
                       key=lambda p: p.stat().st_mtime)
        return files[-1] if files else None

    def received_wav(self) -> Path | None:
        """Newest recording of audio received from the far end (8 kHz mono 16-bit WAV), or
        None. sndfile writes it while the call runs and closes it when the call ends."""
        return self._newest("dec")

    def sent_wav(self) -> Path | None:
        """Newest recording of audio sent to the far end (8 kHz mono 16-bit WAV), or None."""
        return self._newest("enc")
