"""Run SIPp scenarios against 127.0.0.1 peers, in the background, bounded in time.

:func:`start_sipp` launches ``sipp`` (Popen, own process group, own temp work dir used as
its cwd, so relative pcap names in a scenario resolve there) and returns a
:class:`SippProcess`; ``wait()`` gives a :class:`SippResult`. :func:`run_sipp` does both.
:func:`call_with_media` runs the shipped ``scenarios/uac_pcma_dtmf.xml``; :class:`RtpSink`
receives the far end's RTP in Python when its port is offered in that scenario's SDP.

Every run uses ``-m 1 -l 1`` (one call), ``-nostdin``, ``-trace_err``/``-trace_msg``/
``-trace_screen``/``-trace_logs`` into the work dir, a global ``-timeout`` with
``-timeout_error`` and ``-recv_timeout``; never ``-bg``. SIPp return codes: 0 all calls
succeeded, 1 a call failed, 97 stopped by an internal command, 99 no call processed,
255 fatal error, 254 could not bind a socket; -9/-15 here means the harness killed it after
its deadline.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .pcap import RtpPacket, pcap_duration
from .ports import HOST, free_port, free_udp_port
from .process import signal_group

SIPP_BIN = "/usr/bin/sipp"
SCENARIOS = Path(__file__).with_name("scenarios")
UAC_PCMA_DTMF = SCENARIOS / "uac_pcma_dtmf.xml"
"""INVITE (PCMA + telephone-event), ACK, play ``media.pcap``, BYE or wait for BYE."""
SIPTESTER_PCAPS = Path("/usr/share/sip-tester")
"""Debian's SIPp pcaps: ``g711a.pcap`` (7 s A-law, 30 ms packets), ``dtmf_2833_<d>.pcap``."""


def sipp_binary() -> str | None:
    """Path of the sipp binary, or None when it is not installed."""
    if Path(SIPP_BIN).is_file():
        return SIPP_BIN
    return shutil.which("sipp")


@dataclass
class SippResult:
    """Outcome of one SIPp run. Log paths may not exist when SIPp wrote nothing there."""

    returncode: int
    stdout: str
    stderr: str
    workdir: Path
    error_log: Path
    message_log: Path
    screen_log: Path
    command: list[str]

    @property
    def ok(self) -> bool:
        """True when SIPp exited 0 (every call succeeded)."""
        return self.returncode == 0

    def errors(self) -> str:
        """The content of SIPp's error log ('' when none)."""
        return _read(self.error_log)

    def messages(self) -> str:
        """Every SIP message SIPp sent and received (its -trace_msg log)."""
        return _read(self.message_log)

    def describe(self, tail: int = 60) -> str:
        """A summary for assertion messages: code, command, stderr, errors, last messages."""
        msgs = "\n".join(self.messages().splitlines()[-tail:])
        return (f"sipp exit {self.returncode}\ncommand: {' '.join(self.command)}\n"
                f"stderr: {self.stderr.strip()}\nerrors: {self.errors().strip()}\n"
                f"messages (tail):\n{msgs}\nworkdir: {self.workdir}")


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""


class SippProcess:
    """A running SIPp; :meth:`wait` returns its :class:`SippResult`."""

    def __init__(self, proc: subprocess.Popen[bytes], workdir: Path, command: list[str],
                 timeout: float, local_port: int, media_port: int) -> None:
        self.proc = proc
        self.workdir = workdir
        self.command = command
        self.local_port = local_port
        """SIPp's SIP port on 127.0.0.1."""
        self.media_port = media_port
        """SIPp's RTP port on 127.0.0.1 (it sends the pcap from here; +2 is bound too)."""
        self.deadline = time.monotonic() + timeout
        self._result: SippResult | None = None

    @property
    def running(self) -> bool:
        """True while sipp runs."""
        return self.proc.poll() is None

    def wait(self, timeout: float | None = None) -> SippResult:
        """Wait for SIPp to end, at most ``timeout`` s (default: until the run's own
        deadline); then SIGTERM/SIGKILL it. Never hangs."""
        if self._result is not None:
            return self._result
        limit = self.deadline - time.monotonic() if timeout is None else timeout
        try:
            self.proc.wait(max(limit, 0.01))
        except subprocess.TimeoutExpired:
            self.kill()
        return self._finish()

    def kill(self) -> None:
        """SIGTERM the process group, SIGKILL after 3 s."""
        if self.proc.poll() is None:
            signal_group(self.proc, signal.SIGTERM)
            try:
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                signal_group(self.proc, signal.SIGKILL)
                self.proc.wait(5)

    def _finish(self) -> SippResult:
        w = self.workdir
        self._result = SippResult(
            returncode=self.proc.returncode, stdout=_read(w / "stdout.txt"),
            stderr=_read(w / "stderr.txt"), workdir=w, error_log=w / "errors.log",
            message_log=w / "messages.log", screen_log=w / "screen.log",
            command=self.command)
        return self._result

    def __enter__(self) -> SippProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()


def start_sipp(scenario: str | os.PathLike[str], remote: str, *, service: str | None = None,
               local_port: int | None = None, media_port: int | None = None,
               variables: dict[str, str | int] | None = None,
               files: dict[str, str | os.PathLike[str]] | None = None,
               extra_args: tuple[str, ...] | list[str] = (), timeout: float = 30.0,
               recv_timeout: float = 10.0,
               workdir: str | os.PathLike[str] | None = None) -> SippProcess:
    """Start ``sipp <remote> -sf <scenario>`` for one call.

    ``remote``: ``host:port`` to send to (e.g. ``kamailio.address``). ``service``: the
    ``-s`` user ([service] in the scenario). ``local_port``/``media_port``: SIP and RTP
    ports on 127.0.0.1 (free ones when None; the media port is even and +1..+3 are free,
    SIPp also binds +2). ``variables``: ``-set NAME VALUE`` pairs. ``files``: copied into
    the work dir under the given names (e.g. ``{"media.pcap": path}``). ``timeout``: global
    SIPp timeout and the harness's hard deadline, seconds. ``recv_timeout``: how long any
    ``<recv>`` may wait, seconds. ``workdir``: SIPp's cwd and log dir (created if
    needed); default a new temp dir, left in place for inspection.
    """
    binary = sipp_binary()
    if binary is None:
        raise RuntimeError("sipp is not installed")
    workdir = Path(tempfile.mkdtemp(prefix="sipp-") if workdir is None else workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    for name, src in (files or {}).items():
        shutil.copyfile(src, workdir / name)
    local_port = local_port if local_port is not None else free_udp_port()
    media_port = media_port if media_port is not None else free_port(tcp=False, span=4)
    cmd = [binary, remote, "-sf", str(Path(scenario).resolve()), "-m", "1", "-l", "1",
           "-i", HOST, "-p", str(local_port), "-mi", HOST, "-mp", str(media_port),
           "-nostdin", "-trace_err", "-error_file", str(workdir / "errors.log"),
           "-trace_msg", "-message_file", str(workdir / "messages.log"),
           "-trace_screen", "-screen_file", str(workdir / "screen.log"),
           "-trace_logs", "-log_file", str(workdir / "actions.log"),
           "-timeout", f"{max(1, int(timeout))}s", "-timeout_error",
           "-recv_timeout", str(int(recv_timeout * 1000))]
    if service is not None:
        cmd += ["-s", service]
    for name, value in (variables or {}).items():
        cmd += ["-set", name, str(value)]
    cmd += list(extra_args)
    with (workdir / "stdout.txt").open("wb") as out, (workdir / "stderr.txt").open("wb") as err:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                cwd=workdir, start_new_session=True,
                                env={**os.environ, "TERM": "dumb"})
    # a little slack over SIPp's own -timeout before the harness kills it
    return SippProcess(proc, workdir, cmd, timeout + 5.0, local_port, media_port)


def run_sipp(scenario: str | os.PathLike[str], remote: str, **kw: object) -> SippResult:
    """:func:`start_sipp` and wait for it (same arguments)."""
    return start_sipp(scenario, remote, **kw).wait()  # type: ignore[arg-type]


def start_call_with_media(remote: str, user: str, media_pcap: str | os.PathLike[str], *,
                          sdp_port: int | None = None, hangup: str = "bye",
                          hold_ms: int = 500, timeout: float = 30.0,
                          recv_timeout: float = 10.0, local_port: int | None = None,
                          media_port: int | None = None,
                          extra_args: tuple[str, ...] = (),
                          workdir: str | os.PathLike[str] | None = None) -> SippProcess:
    """Start ``uac_pcma_dtmf.xml``: call ``user`` via ``remote`` (the proxy's
    ``host:port``), play ``media_pcap`` (see :mod:`peers.pcap`), then ``hangup="bye"``
    (BYE ``hold_ms`` after the media ends) or ``"wait"`` (for the far end's BYE, at most
    ``recv_timeout`` s after the ACK; the media keeps playing meanwhile).

    ``sdp_port``: the m=audio port offered: the far end's RTP goes there. None means
    SIPp's own media port (RTP is dropped there). Pass the port of your own UDP socket
    bound on 127.0.0.1 to receive it in Python.
    """
    if hangup not in ("bye", "wait"):
        raise ValueError("hangup is 'bye' or 'wait'")
    media_port = media_port if media_port is not None else free_port(tcp=False, span=4)
    media_ms = round(pcap_duration(media_pcap) * 1000)
    return start_sipp(UAC_PCMA_DTMF, remote, service=user, local_port=local_port,
                      media_port=media_port, files={"media.pcap": media_pcap},
                      variables={"sdp_port": sdp_port if sdp_port else media_port,
                                 "media_ms": media_ms, "hold_ms": hold_ms, "hangup": hangup},
                      extra_args=extra_args, timeout=timeout, recv_timeout=recv_timeout,
                      workdir=workdir)


def call_with_media(remote: str, user: str, media_pcap: str | os.PathLike[str],
                    **kw: object) -> SippResult:
    """:func:`start_call_with_media` and wait for it (same arguments)."""
    return start_call_with_media(remote, user, media_pcap, **kw).wait()  # type: ignore[arg-type]


class RtpSink:
    """A UDP socket on 127.0.0.1 collecting the RTP sent to it, in a background thread.

    Give :attr:`port` to :func:`start_call_with_media` as ``sdp_port``: the far end of the
    SIPp call then sends its RTP here. ``packets`` holds :class:`~peers.pcap.RtpPacket`
    with ``time`` = arrival (``time.monotonic()``, seconds). Non-RTP datagrams are ignored.
    """

    def __init__(self, port: int | None = None) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((HOST, port if port is not None else free_port(tcp=False, span=2)))
        self.sock.settimeout(0.2)
        self.port: int = self.sock.getsockname()[1]
        self.packets: list[RtpPacket] = []
        self.sources: set[tuple[str, int]] = set()
        """Addresses RTP came from."""
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"rtp-sink-{self.port}",
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, addr = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                break
            pkt = RtpPacket.parse(data, time=time.monotonic())
            if pkt is None:
                continue
            with self._cond:
                self.packets.append(pkt)
                self.sources.add(addr)
                self._cond.notify_all()

    def wait_packets(self, count: int = 1, timeout: float = 5.0,
                     payload_type: int | None = None) -> list[RtpPacket]:
        """Wait until ``count`` packets (of ``payload_type`` when given) arrived; returns
        them all. Raises TimeoutError."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                got = [p for p in self.packets
                       if payload_type is None or p.payload_type == payload_type]
                if len(got) >= count:
                    return got
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"RTP sink {self.port}: {len(got)} of {count} packets "
                                       f"in {timeout} s")
                self._cond.wait(min(left, 0.2))

    def payload(self, payload_type: int | None = None) -> bytes:
        """Payloads received so far in sequence-number order (duplicates dropped),
        concatenated: e.g. the far end's A-law codes for ``payload_type=8``."""
        with self._cond:
            got = [p for p in self.packets
                   if payload_type is None or p.payload_type == payload_type]
        if not got:
            return b""
        base = got[0].seq
        by_seq = {(p.seq - base) & 0xFFFF: p.payload for p in got}
        return b"".join(by_seq[k] for k in sorted(by_seq))

    def close(self) -> None:
        """Stop the thread and close the socket."""
        self._stop.set()
        self._thread.join(2)
        self.sock.close()

    def __enter__(self) -> RtpSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
