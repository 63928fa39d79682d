"""The server host's own commands: set up, migrate, enrol desks, create accounts, run.

These run on the server machine (its admin has the settings file and reaches PostgreSQL);
nothing here is reachable over the network. The first admin account is made here, at
install time, never by whoever first opens a window on a counselor's PC.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from callguard.errors import InputError
from callguard.server import database
from callguard.server.auth import DESK_PREFIX, PEOPLE_ROLES, new_token, token_hash
from callguard.server.settings import ServerSettings
from callguard.server.tls import fingerprint_of_pem, make_certificate
from callguard.store.store import hash_password

log = logging.getLogger(__name__)


class AdminError(InputError):
    """A server admin command that cannot be done as asked (a name taken, a bad role)."""


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    path.chmod(0o600)


def init(directory: Path, names: list[str], database_dsn: str, blobs: Path,
         port: int = 8443) -> tuple[Path, str]:
    """Make ``directory``'s TLS key and certificate, site secret and ``server.toml`` (kept if
    they exist). Return the settings path and the certificate's fingerprint."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    cert, key, secret = (directory / "server.crt", directory / "server.key",
                         directory / "site.secret")
    if cert.exists() and key.exists():
        fingerprint = fingerprint_of_pem(cert.read_text(encoding="ascii"))
    else:
        fingerprint = make_certificate(cert, key, names)
    if not secret.exists():
        _write_private(secret, secrets.token_hex(32).encode("ascii") + b"\n")
    settings_path = directory / "server.toml"
    if not settings_path.exists():
        text = (
            "# callguard central server (see the README's deployment guide)\n"
            "[server]\n"
            'host = "0.0.0.0"\n'
            f"port = {port}\n"
            f"database = {_toml_str(database_dsn)}\n"
            f"blobs = {_toml_str(str(blobs))}\n"
            'tls_cert = "server.crt"\n'
            'tls_key = "server.key"\n'
            'site_secret = "site.secret"\n'
            "session_hours = 12\n"
            "pool_size = 10\n")
        _write_private(settings_path, text.encode("utf-8"))
    blobs.mkdir(parents=True, exist_ok=True, mode=0o700)
    return settings_path, fingerprint


def _toml_str(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _connect(settings: ServerSettings):  # -> psycopg.Connection
    import psycopg

    try:
        return psycopg.connect(settings.database)
    except psycopg.OperationalError as exc:
        raise database.DatabaseError(f"cannot connect to PostgreSQL: {exc}") from exc


def add_desk(settings: ServerSettings, name: str) -> str:
    """Enrol a desk; return its token (shown once: only its hash is kept)."""
    import psycopg

    if not name.strip() or len(name) > 100:
        raise AdminError("a desk name is 1..100 characters")
    token = new_token(DESK_PREFIX)
    with _connect(settings) as conn:
        try:
            conn.execute("INSERT INTO desks (name, token_hash) VALUES (%s, %s)",
                         (name, token_hash(token)))
        except psycopg.errors.UniqueViolation:
            raise AdminError(f"a desk named {name!r} is already enrolled "
                             "(revoke it first to issue a new token)") from None
    return token


def revoke_desk(settings: ServerSettings, name: str) -> None:
    with _connect(settings) as conn:
        cur = conn.execute("UPDATE desks SET revoked = true, name = name || '#revoked-' || id"
                           " WHERE name = %s AND NOT revoked", (name,))
        if cur.rowcount == 0:
            raise AdminError(f"no enrolled desk named {name!r}")


def add_user(settings: ServerSettings, name: str, role: str, password: str,
             team: str = "") -> None:
    """Create an account, or set its password and role if it exists."""
    if role not in PEOPLE_ROLES:
        raise AdminError(f"role must be one of {', '.join(PEOPLE_ROLES)}")
    if not name.strip():
        raise AdminError("a user name must not be empty")
    if len(password) < 8:
        raise AdminError("a password has at least 8 characters")
    with _connect(settings) as conn:
        conn.execute("INSERT INTO users (name, role, pw_hash, team) VALUES (%s, %s, %s, %s)"
                     " ON CONFLICT (name) DO UPDATE SET role = EXCLUDED.role,"
                     " pw_hash = EXCLUDED.pw_hash, team = EXCLUDED.team, disabled = false",
                     (name, role, hash_password(password), team))
        conn.execute("INSERT INTO access_log (actor, role, action, detail)"
                     " VALUES ('server-admin', 'admin', 'account_set', %s)", (f"{name} {role}",))


def serve(settings: ServerSettings) -> None:
    """Run the server (uvicorn, HTTPS) until stopped (SIGTERM or Ctrl-C)."""
    import uvicorn

    from callguard.server.app import build_app

    app = build_app(settings)
    ssl = {}
    if settings.tls_cert is not None and settings.tls_key is not None:
        ssl = {"ssl_certfile": str(settings.tls_cert), "ssl_keyfile": str(settings.tls_key)}
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning",
                access_log=False, timeout_graceful_shutdown=5, **ssl)
