"""A real Kamailio registrar + proxy on 127.0.0.1 (UDP) for integration tests.

``Kamailio(users={"alice": "secret"})`` writes ``kamailio.cfg`` (from the template beside
this file) into its own temp dir and runs ``kamailio -DD -E`` (foreground, children, log to
stderr, which goes to :attr:`Kamailio.log_path`). Behaviour is documented in the template:
digest-authenticated REGISTER against ``users`` (403 on a wrong password), in-memory usrloc,
INVITEs routed to the registered contact without a challenge (404 if not registered),
CANCEL relayed, in-dialog requests loose-routed or relayed to their Request-URI.

The SIP domain is ``127.0.0.1`` (``localhost`` is an alias too): a user's AOR is
``sip:<user>@127.0.0.1:<port>`` and the digest realm is the To domain (``127.0.0.1``).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from .ports import HOST, free_udp_port
from .process import PeerProcess, signal_group

KAMAILIO_BIN = "/usr/sbin/kamailio"
KAMCMD_BIN = "/usr/sbin/kamcmd"
MODULE_DIR = "/usr/lib/x86_64-linux-gnu/kamailio/modules"
TEMPLATE = Path(__file__).with_name("kamailio.cfg")

_SAFE = re.compile(r"^[A-Za-z0-9._~!*+=-]+$")


def kamailio_binary() -> str | None:
    """Path of the kamailio binary, or None when it is not installed."""
    if Path(KAMAILIO_BIN).is_file() and Path(MODULE_DIR).is_dir():
        return KAMAILIO_BIN
    return shutil.which("kamailio")


def sip_options_ping(host: str, port: int, timeout: float = 1.0) -> str | None:
    """Send one SIP OPTIONS over UDP to ``host:port``; return the reply's status line, or
    None when nothing answered within ``timeout`` seconds."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((HOST, 0))
        lport = s.getsockname()[1]
        tag = uuid.uuid4().hex[:10]
        msg = (
            f"OPTIONS sip:{host}:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {HOST}:{lport};branch=z9hG4bK{tag};rport\r\n"
            f"From: <sip:probe@{HOST}>;tag={tag}\r\n"
            f"To: <sip:{host}:{port}>\r\n"
            f"Call-ID: {tag}@{HOST}\r\n"
            "CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        )
        s.sendto(msg.encode(), (host, port))
        s.settimeout(timeout)
        try:
            data = s.recv(65535)
        except OSError:  # timeout, or ICMP port unreachable
            return None
    return data.split(b"\r\n", 1)[0].decode(errors="replace")


class KamailioError(RuntimeError):
    """Kamailio failed to start or stop; the message carries the tail of its log."""


class Kamailio(PeerProcess):
    """Kamailio registrar/proxy listening on ``udp:127.0.0.1:<port>``.

    ``users`` maps user name to password (letters, digits and ``._~!*+=-`` only). ``port``
    None picks a free port once; :meth:`restart` keeps it. ``record_route`` adds
    Record-Route to initial INVITEs (off by default: in-dialog requests then go straight
    between the endpoints, or through the proxy with the far Contact as Request-URI).
    ``workdir`` (created if needed, kept by :meth:`close`) holds config and log; default:
    a new temp dir, deleted by :meth:`close`. Use as a context manager (which keeps the
    files when the block raises), or call :meth:`start` / :meth:`stop` / :meth:`close`.
    """

    def __init__(self, users: dict[str, str], port: int | None = None, *,
                 record_route: bool = False, shm_mb: int = 32, pkg_mb: int = 8,
                 start_timeout: float = 10.0,
                 workdir: str | os.PathLike[str] | None = None) -> None:
        for name, password in users.items():
            if not _SAFE.match(name) or not _SAFE.match(password):
                raise ValueError(f"unsupported characters in user {name!r} or its password")
        self.users = dict(users)
        self.port = port if port is not None else free_udp_port()
        self.host = HOST
        self.record_route = record_route
        self.shm_mb = shm_mb
        self.pkg_mb = pkg_mb
        self.start_timeout = start_timeout
        self._own_dir = workdir is None
        self.dir = Path(tempfile.mkdtemp(prefix="kamailio-") if workdir is None else workdir)
        """Holds kamailio.cfg, kamailio.log and the pid file."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self.cfg_path = self.dir / "kamailio.cfg"
        self.log_path = self.dir / "kamailio.log"
        """Kamailio's stderr (all its logging), appended across restarts."""
        # unix socket paths are limited to 107 bytes: keep it short, outside ``workdir``
        self._ctl_dir = Path(tempfile.mkdtemp(prefix="kam-"))
        self.ctl_path = self._ctl_dir / "ctl.sock"
        self._proc: subprocess.Popen[bytes] | None = None
        self._write_cfg()

    # -- addresses -----------------------------------------------------------------------

    @property
    def domain(self) -> str:
        """SIP domain of the users (also the digest realm)."""
        return HOST

    @property
    def address(self) -> str:
        """``127.0.0.1:<port>``."""
        return f"{HOST}:{self.port}"

    def uri(self, user: str | None = None) -> str:
        """``sip:127.0.0.1:<port>`` (the proxy) or ``sip:<user>@127.0.0.1:<port>`` (an AOR)."""
        return f"sip:{user}@{self.address}" if user else f"sip:{self.address}"

    # -- lifecycle -----------------------------------------------------------------------

    def _write_cfg(self) -> None:
        users = "\n".join(f'\t$sht(users=>{u}) = "{p}";' for u, p in self.users.items())
        text = TEMPLATE.read_text(encoding="utf-8")
        for key, value in {
            "@@PORT@@": str(self.port),
            "@@MPATH@@": MODULE_DIR + "/",
            "@@CTL@@": str(self.ctl_path),
            "@@DEFINES@@": "#!define WITH_RR" if self.record_route else "",
            "@@USERS@@": users or "\t$var(none) = 0;",
        }.items():
            text = text.replace(key, value)
        self.cfg_path.write_text(text, encoding="utf-8")

    def start(self) -> Kamailio:
        """Start kamailio and wait until it answers OPTIONS; raises KamailioError (with the
        log tail) if it exits or stays silent for ``start_timeout`` seconds."""
        if self.running:
            return self
        binary = kamailio_binary()
        if binary is None:
            raise KamailioError("kamailio is not installed")
        self.ctl_path.unlink(missing_ok=True)
        cmd = [binary, "-DD", "-E", "-f", str(self.cfg_path), "-m", str(self.shm_mb),
               "-M", str(self.pkg_mb), "-P", str(self.dir / "kamailio.pid"),
               "-Y", str(self._ctl_dir)]
        with self.log_path.open("ab") as log:
            log.write(f"==== start {time.strftime('%H:%M:%S')}: {' '.join(cmd)}\n".encode())
            log.flush()
            self._proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log,
                                          stderr=subprocess.STDOUT, cwd=self.dir,
                                          start_new_session=True)
        try:
            self.wait_ready(self.start_timeout)
        except KamailioError:
            self.stop()
            raise
        return self

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Block until kamailio answers a SIP OPTIONS on its port (probe every 0.2 s)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running:
                code = self._proc.returncode if self._proc else None
                raise KamailioError(
                    f"kamailio exited (code {code}) during start; log {self.log_path}:\n"
                    f"{self.log_tail()}")
            if sip_options_ping(HOST, self.port, timeout=0.2) is not None:
                return
            time.sleep(0.05)
        raise KamailioError(f"kamailio not answering on {self.address} after {timeout} s; "
                            f"log {self.log_path}:\n{self.log_tail()}")

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM kamailio's process group, SIGKILL after ``timeout`` s. Never hangs."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            signal_group(proc, signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                signal_group(proc, signal.SIGKILL)
                proc.wait(5)
        # children (same process group) may outlive the main process briefly
        signal_group(proc, signal.SIGKILL)
        self._wait_port_released(timeout)

    def _wait_port_released(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                try:
                    s.bind((HOST, self.port))
                    return
                except OSError:
                    pass
            time.sleep(0.05)

    def restart(self, down_for: float = 0.0) -> None:
        """Stop, stay down ``down_for`` seconds, start again on the same port. Registrations
        are lost (usrloc is in memory): clients must re-REGISTER."""
        self.stop()
        if down_for > 0:
            time.sleep(down_for)
        self.start()

    def close(self) -> None:
        """Stop and delete the temp dirs (config, log), not a ``workdir`` given."""
        self.stop()
        shutil.rmtree(self._ctl_dir, ignore_errors=True)
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    # -- inspection ----------------------------------------------------------------------

    def kamcmd(self, *args: str, timeout: float = 5.0) -> subprocess.CompletedProcess[str]:
        """Run ``kamcmd -s unix:<ctl socket> ARGS`` (e.g. ``"ul.dump"``)."""
        return subprocess.run([KAMCMD_BIN, "-s", f"unix:{self.ctl_path}", *args],
                              capture_output=True, text=True, timeout=timeout, check=False)

    def contacts(self, user: str) -> list[str]:
        """Contact URIs registered for ``user`` now (empty when not registered)."""
        if not self.running:
            return []
        out = self.kamcmd("ul.lookup", "location", user)
        if out.returncode != 0:
            return []
        return re.findall(r"Address:\s*(\S+)", out.stdout)

    def registered(self, user: str) -> bool:
        """True when ``user`` has at least one registered contact."""
        return bool(self.contacts(user))

    def wait_registered(self, user: str, timeout: float = 10.0) -> list[str]:
        """Wait until ``user`` is registered; returns the contacts. Raises TimeoutError."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.contacts(user)
            if found:
                return found
            time.sleep(0.1)
        raise TimeoutError(f"{user} not registered at {self.address} within {timeout} s")
