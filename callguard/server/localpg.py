"""A private PostgreSQL cluster in a directory: for the tests, the benchmark and a trial run.

Production uses the distribution's cluster (see the deployment guide in the README); this
module only runs Debian's own ``initdb`` and ``pg_ctl`` on a temporary directory, listening
on 127.0.0.1 and a Unix socket inside that directory, so nothing on the machine is touched
and nothing is reached from outside.

PostgreSQL refuses to run as root. When this process is root the cluster is created and run
as the ``postgres`` system user (created by Debian's package) through ``runuser``, and the
directory is handed to that user.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from callguard.errors import ResourceError


class LocalPostgresError(ResourceError):
    """The private PostgreSQL cluster could not be created, started or stopped."""


def pg_bin(name: str) -> str:
    """Path of a PostgreSQL server program (``initdb``, ``pg_ctl``, ``postgres``).

    Debian keeps them in ``/usr/lib/postgresql/<major>/bin`` (not on PATH); the newest
    major version found wins, then PATH."""
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"),
                   key=lambda p: int(p.parts[4]) if p.parts[4].isdigit() else 0)
    if found:
        return str(found[-1])
    on_path = shutil.which(name)
    if on_path:
        return on_path
    raise LocalPostgresError(f"PostgreSQL's {name} was not found: install Debian's "
                             "postgresql package (apt-get install postgresql)")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LocalPostgres:
    """One cluster in ``directory`` (created on first :meth:`start`), on ``port``.

    ``dsn`` connects as the superuser ``callguard`` to the database ``callguard``, with
    trust authentication over 127.0.0.1 only."""

    directory: Path
    port: int = field(default_factory=free_port)
    user: str = "callguard"
    database: str = "callguard"

    @property
    def data(self) -> Path:
        return self.directory / "data"

    @property
    def dsn(self) -> str:
        return (f"postgresql://{self.user}@127.0.0.1:{self.port}/{self.database}"
                "?connect_timeout=5")

    def _as_owner(self, argv: list[str]) -> list[str]:
        if os.geteuid() == 0:
            return ["runuser", "-u", "postgres", "--", *argv]
        return argv

    def _run(self, argv: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
        try:
            done = subprocess.run(self._as_owner(argv), capture_output=True, text=True,
                                  timeout=timeout, check=False, cwd="/")
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise LocalPostgresError(f"{Path(argv[0]).name} failed: {exc}") from exc
        if done.returncode != 0:
            raise LocalPostgresError(f"{Path(argv[0]).name} exited {done.returncode}: "
                                     f"{(done.stderr or done.stdout).strip()[-800:]}")
        return done

    def init(self) -> None:
        """Create the cluster (once): UTF-8, C collation, trust on 127.0.0.1 only."""
        self.directory.mkdir(parents=True, exist_ok=True)
        if (self.data / "PG_VERSION").exists():
            return
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres", "postgres")
        self._run([pg_bin("initdb"), "-D", str(self.data), "-U", self.user, "-E", "UTF8",
                   "--locale=C", "-A", "trust", "--no-sync"])
        conf = self.data / "postgresql.conf"
        with conf.open("a", encoding="utf-8") as f:
            # Tests and the benchmark: durable enough (fsync stays on), quiet, local only.
            f.write("\nlisten_addresses = '127.0.0.1'\n"
                    f"unix_socket_directories = '{self.directory}'\n"
                    "max_connections = 200\nshared_buffers = 128MB\n"
                    "logging_collector = off\n")
        (self.data / "pg_hba.conf").write_text(
            "local all all trust\nhost all all 127.0.0.1/32 trust\n", encoding="utf-8")

    def start(self, timeout: float = 60) -> None:
        """Start the server and create the database; returns when it accepts connections."""
        self.init()
        self._run([pg_bin("pg_ctl"), "-D", str(self.data), "-l",
                   str(self.directory / "server.log"), "-o", f"-p {self.port}", "-w",
                   "-t", str(int(timeout)), "start"], timeout=timeout + 10)
        self._create_database()

    def _create_database(self) -> None:
        import psycopg  # the server extra; imported here so the module loads without it

        deadline = time.monotonic() + 30
        while True:
            try:
                with psycopg.connect(self.dsn.replace(f"/{self.database}?", "/postgres?"),
                                     autocommit=True) as conn:
                    exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                                          (self.database,)).fetchone()
                    if not exists:
                        conn.execute(f'CREATE DATABASE "{self.database}"')
                return
            except psycopg.OperationalError as exc:
                if time.monotonic() > deadline:
                    raise LocalPostgresError(f"PostgreSQL did not accept connections: "
                                             f"{exc}") from exc
                time.sleep(0.2)

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast``: roll back open transactions; ``immediate``: like a
        crash, recovery at the next start)."""
        if not (self.data / "postmaster.pid").exists():
            return
        self._run([pg_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"])

    def restart(self) -> None:
        self.stop()
        self.start()

    def remove(self) -> None:
        with contextlib.suppress(LocalPostgresError):
            self.stop("immediate")
        shutil.rmtree(self.directory, ignore_errors=True)
