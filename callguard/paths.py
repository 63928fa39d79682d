"""Where callguard keeps each user's files, per OS, by platformdirs (one place for all).

- settings (``config.toml``, ``gui.toml``): ``~/.config/callguard``; ``%APPDATA%\\callguard``
- data (the call store): ``~/.local/share/callguard``; ``%LOCALAPPDATA%\\callguard``
- state (the spool, a second place for unwritten evidence): ``~/.local/state/callguard``;
  ``%LOCALAPPDATA%\\callguard``
- cache (the joined Whisper model): ``~/.cache/callguard``; ``%LOCALAPPDATA%\\callguard\\Cache``

On Linux the XDG variables are honoured. Settings roam with a Windows profile (they are
small and the counselor's own); recordings, the spool and the model stay on the PC. Each
function returns the folder without creating it: the store and the spool create theirs
with owner-only permissions.
"""

from __future__ import annotations

from pathlib import Path

import platformdirs

APP = "callguard"


def config_dir() -> Path:
    """The settings folder (roaming on Windows)."""
    return Path(platformdirs.user_config_dir(APP, appauthor=False, roaming=True))


def data_dir() -> Path:
    """The call store's folder (local to the PC)."""
    return Path(platformdirs.user_data_dir(APP, appauthor=False, roaming=False))


def state_dir() -> Path:
    """Where the spool lives (local to the PC)."""
    return Path(platformdirs.user_state_dir(APP, appauthor=False, roaming=False))


def cache_dir() -> Path:
    """The model cache (local to the PC; safe to delete: it is rebuilt from the packages)."""
    return Path(platformdirs.user_cache_dir(APP, appauthor=False))
