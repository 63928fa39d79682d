"""Per-user folders (callguard.paths, by platformdirs): XDG on Linux, honoured when set. The
Windows folders are checked for real under wine by the installer smoke test, which finds
the store in %LOCALAPPDATA% and the settings in %APPDATA%."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from callguard import paths
from callguard.asr.bundled import default_cache_dir
from callguard.config import default_config_path, default_data_dir
from callguard.store.spool import default_spool_dir

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="XDG folders are Linux's")


def test_xdg_variables_are_honoured(tmp_path, monkeypatch) -> None:
    for var, sub in (("XDG_CONFIG_HOME", "c"), ("XDG_DATA_HOME", "d"),
                     ("XDG_STATE_HOME", "s"), ("XDG_CACHE_HOME", "k")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    monkeypatch.delenv("CALLGUARD_CONFIG", raising=False)
    monkeypatch.delenv("CALLGUARD_CACHE", raising=False)
    assert default_config_path() == tmp_path / "c" / "callguard" / "config.toml"
    assert default_data_dir() == tmp_path / "d" / "callguard"
    assert default_cache_dir() == tmp_path / "k" / "callguard"
    spool = default_spool_dir(tmp_path / "x.db")
    assert spool.parent == tmp_path / "s" / "callguard" / "spool"
    # One folder per store: two stores never share a spool.
    assert default_spool_dir(tmp_path / "y.db") != spool


def test_defaults_without_variables(monkeypatch) -> None:
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    home = Path.home()
    assert paths.config_dir() == home / ".config" / "callguard"
    assert paths.data_dir() == home / ".local" / "share" / "callguard"
    assert paths.state_dir() == home / ".local" / "state" / "callguard"
    assert paths.cache_dir() == home / ".cache" / "callguard"


def test_nothing_is_created(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "d"))
    paths.data_dir()
    assert not (tmp_path / "d").exists()
