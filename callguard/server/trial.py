"""A trial central server on 127.0.0.1: a private PostgreSQL cluster and ``callguard server
run`` in its own process, set up the way an admin does it (``init``, ``migrate``).

For the benchmark (:mod:`callguard.bench.central_bench`), the tests and a look around before
a deployment. Everything lives in directories under /tmp made here (PostgreSQL's own user
must reach its cluster's directory when this runs as root, see
:mod:`callguard.server.localpg`) and :meth:`Trial.close` removes them::

    with Trial.start() as trial:
        token = trial.server.desk("desk-01")
        trial.server.user("boss", "supervisor", "password-123")
        session = trial.server.login("boss", "password-123")
"""

from __future__ import annotations

import contextlib
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from callguard.central.pinning import pinned_context
from callguard.errors import ResourceError
from callguard.server.localpg import LocalPostgres, free_port


class TrialError(ResourceError):
    """The trial server could not be set up or did not come up."""


def private_tmp(prefix: str) -> Path:
    """A new directory under /tmp (PostgreSQL's own user can reach it when this runs as
    root; a test's tmp_path may sit under a root-only folder)."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


class ServerProcess:
    """``callguard server run`` in its own process, listening on 127.0.0.1 only, set up
    in ``directory`` by ``callguard server init`` and ``migrate``. Desks and accounts are
    made through :mod:`callguard.server.admin` (the code behind ``callguard server desk
    add`` / ``user add``), which is quick enough for hundreds of desks."""

    def __init__(self, directory: Path, dsn: str) -> None:
        from callguard.server.settings import load_server_settings

        self.dir = directory
        self.port = free_port()
        out = self.cli("init", "--dir", str(directory), "--name", "127.0.0.1",
                       "--database", dsn, "--blobs", str(directory / "blobs"),
                       "--port", str(self.port), config=False)
        found = re.search(r"fingerprint: (\S+)", out)
        if found is None:
            raise TrialError(f"callguard server init printed no fingerprint: {out!r}")
        self.fingerprint = found.group(1)
        self.config = directory / "server.toml"
        text = self.config.read_text(encoding="utf-8")  # 127.0.0.1 only, never 0.0.0.0
        self.config.write_text(re.sub(r'(?m)^host = .*$', 'host = "127.0.0.1"', text),
                               encoding="utf-8")
        self.settings = load_server_settings(self.config)
        self.cli("migrate")
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"https://127.0.0.1:{self.port}"
        self.cert_pem = (directory / "server.crt").read_text(encoding="ascii")
        self.ssl = pinned_context(self.cert_pem)  # trusts exactly this server's certificate

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    def cli(self, *args: str, config: bool = True, stdin: str | None = None) -> str:
        argv = [sys.executable, "-m", "callguard", "server", *args]
        if config:
            argv += ["--config", str(self.dir / "server.toml")]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=120,
                                  input=stdin, check=False)
        except subprocess.TimeoutExpired as exc:
            raise TrialError(f"callguard server {args[0]} did not finish: {exc}") from exc
        if done.returncode != 0:
            raise TrialError(f"callguard server {args[0]} failed: {done.stderr[-2000:]}")
        return done.stdout

    def desk(self, name: str) -> str:
        """Enrol a desk; its token."""
        from callguard.server.admin import add_desk

        return add_desk(self.settings, name)

    def user(self, name: str, role: str, password: str = "password-123") -> None:
        from callguard.server.admin import add_user

        add_user(self.settings, name, role, password)

    def start(self, timeout: float = 30) -> None:
        import httpx

        with (self.dir / "server.err").open("ab") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "callguard", "server", "run", "--config",
                 str(self.config)], stdout=subprocess.DEVNULL, stderr=err)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise TrialError("the server died: " + self.errors()[-2000:])
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/healthz", verify=self.ssl,
                             timeout=2).status_code == 200:
                    return
            time.sleep(0.1)
        raise TrialError("the server did not come up: " + self.errors()[-2000:])

    def errors(self) -> str:
        path = self.dir / "server.err"
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def client(self, token: str | None = None, **kw: Any):  # -> httpx.Client
        import httpx

        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, verify=self.ssl, headers=headers,
                            timeout=kw.pop("timeout", 30), **kw)

    def login(self, name: str, password: str = "password-123") -> str:
        """A session token for ``name``."""
        with self.client() as c:
            r = c.post("/api/v1/login", json={"name": name, "password": password})
            if r.status_code != 200:
                raise TrialError(f"login as {name} failed ({r.status_code}): {r.text[:300]}")
            return r.json()["token"]


class Trial:
    """A private PostgreSQL and a :class:`ServerProcess` on it, both in fresh directories
    under /tmp; :meth:`close` stops both and removes the directories (also after a failed
    start)."""

    def __init__(self, pg: LocalPostgres, server: ServerProcess, dirs: list[Path]) -> None:
        self.pg, self.server, self._dirs = pg, server, dirs

    @classmethod
    def start(cls, *, run: bool = True) -> Trial:
        pg_dir, srv_dir = private_tmp("callguard-pg-"), private_tmp("callguard-srv-")
        pg = LocalPostgres(pg_dir)
        server: ServerProcess | None = None
        try:
            pg.start()
            server = ServerProcess(srv_dir / "srv", pg.dsn)
            if run:
                server.start()
        except BaseException:
            if server is not None:
                server.stop()
            pg.remove()
            shutil.rmtree(srv_dir, ignore_errors=True)
            raise
        return cls(pg, server, [pg_dir, srv_dir])

    def close(self) -> None:
        try:
            self.server.stop()
        finally:
            self.pg.remove()
            for d in self._dirs:
                shutil.rmtree(d, ignore_errors=True)

    def __enter__(self) -> Trial:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
