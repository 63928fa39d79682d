"""The central server's settings file (TOML), written by ``callguard server init``::

    [server]
    host = "0.0.0.0"          # address to listen on
    port = 8443               # HTTPS
    database = "postgresql://callguard@/callguard"   # a libpq connection string (DSN)
    blobs = "/var/lib/callguard/blobs"               # recordings, named by SHA-256 (NAS mount)
    tls_cert = "/etc/callguard/server.crt"           # PEM; desks pin its SHA-256 fingerprint
    tls_key = "/etc/callguard/server.key"            # PEM, readable by the server's user only
    site_secret = "/etc/callguard/site.secret"       # key of the phone numbers' keyed hash
    session_hours = 12        # a signed-in supervisor's session lasts this long
    pool_size = 10            # PostgreSQL connections
    rules_dir = ""            # prompt files for checking published rules ("" = shipped ones)
    repeat_days = 30          # a caller with flagged calls in this many days is a repeat caller

Relative paths are taken from the settings file's folder.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from callguard.errors import InputError


class ServerConfigError(InputError):
    """The server's settings file is missing, unreadable or wrong; the message says where."""


@dataclass(frozen=True)
class ServerSettings:
    host: str = "0.0.0.0"
    port: int = 8443
    database: str = "postgresql://callguard@/callguard"
    blobs: Path = Path("/var/lib/callguard/blobs")
    tls_cert: Path | None = Path("/etc/callguard/server.crt")
    tls_key: Path | None = Path("/etc/callguard/server.key")
    site_secret: Path = Path("/etc/callguard/site.secret")
    session_hours: float = 12.0
    pool_size: int = 10
    rules_dir: Path | None = None
    repeat_days: int = 30

    def secret(self) -> bytes:
        """The site secret's bytes (the key of the phone numbers' keyed hash)."""
        try:
            data = self.site_secret.read_bytes().strip()
        except OSError as exc:
            raise ServerConfigError(f"{self.site_secret}: cannot read the site secret "
                                    f"({exc}); run `callguard server init`") from None
        if len(data) < 32:
            raise ServerConfigError(f"{self.site_secret}: the site secret is too short")
        return data


_PATHS = ("blobs", "tls_cert", "tls_key", "site_secret", "rules_dir")
_TYPES = {"host": str, "port": int, "database": str, "session_hours": (int, float),
          "pool_size": int, "repeat_days": int, **{k: str for k in _PATHS}}


def load_server_settings(path: Path) -> ServerSettings:
    """Read ``path`` (see the module docstring); every key is optional."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ServerConfigError(f"{path}: cannot read ({exc})") from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ServerConfigError(f"{path}: {exc}") from None
    extra = set(data) - {"server"}
    if extra:
        raise ServerConfigError(f"{path}: unknown table [{sorted(extra)[0]}]; only [server]")
    body = data.get("server", {})
    values: dict[str, object] = {}
    for key, value in body.items():
        kind = _TYPES.get(key)
        if kind is None:
            raise ServerConfigError(f"{path}: unknown key server.{key}")
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ServerConfigError(f"{path}: server.{key} has the wrong type")
        if key in _PATHS:
            if not value:
                continue
            p = Path(value).expanduser()
            values[key] = p if p.is_absolute() else (path.parent / p)
        else:
            values[key] = value
    settings = ServerSettings(**values)  # type: ignore[arg-type]
    if not 0 < settings.port < 65536:
        raise ServerConfigError(f"{path}: server.port must be 1..65535")
    if settings.pool_size < 2:
        raise ServerConfigError(f"{path}: server.pool_size must be at least 2")
    if not 1 <= settings.repeat_days <= 3650:
        raise ServerConfigError(f"{path}: server.repeat_days must be 1..3650")
    return settings
