"""The settings file: defaults, lookup order, clear errors, relative paths, resolve_model."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from conftest import DEFAULT_RULES, ROOT

from callguard import config
from callguard.config import (
    AsrSettings,
    ConfigError,
    Settings,
    default_config_path,
    load_settings,
    resolve_model,
)


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No real user config, data or cache folders leak into these tests."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.delenv("CALLGUARD_CONFIG", raising=False)
    monkeypatch.delenv("CALLGUARD_CACHE", raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    return tmp_path


def write(path: Path, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(body).lstrip("\n"), encoding="utf-8")
    return path


# --- defaults and lookup ------------------------------------------------------------------

def test_no_file_gives_defaults(tmp_path):
    s = load_settings()
    assert s.asr == AsrSettings(model="bundled", compute_type="int8", cpu_threads=2)
    assert s.rules_path == DEFAULT_RULES == ROOT / "rules" / "default.toml"
    assert s.rules_path.is_file()
    assert s.store_path == tmp_path / "xdg-data" / "callguard" / "callguard.db"
    assert s.source is None


def test_default_paths_follow_xdg(tmp_path, monkeypatch):
    assert default_config_path() == tmp_path / "xdg-config" / "callguard" / "config.toml"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.delenv("XDG_DATA_HOME")
    assert default_config_path() == tmp_path / "home" / ".config" / "callguard" / "config.toml"
    assert Settings().store_path == (tmp_path / "home" / ".local" / "share" / "callguard"
                                     / "callguard.db")


def test_default_location_file_is_read(tmp_path):
    path = write(tmp_path / "xdg-config" / "callguard" / "config.toml",
                 '[asr]\nmodel = "small"\n')
    s = load_settings()
    assert s.asr.model == "small"
    assert s.source == path


def test_explicit_missing_path_names_the_file(tmp_path):
    missing = tmp_path / "nowhere" / "cg.toml"
    with pytest.raises(ConfigError) as err:
        load_settings(missing)
    assert str(err.value) == f"{missing}: settings file not found"


def test_env_var_is_honoured(tmp_path, monkeypatch):
    path = write(tmp_path / "env" / "cg.toml", """
        [asr]
        cpu_threads = 6
    """)
    monkeypatch.setenv("CALLGUARD_CONFIG", str(path))
    s = load_settings()
    assert s.asr.cpu_threads == 6
    assert s.source == path


def test_env_var_to_missing_file_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("CALLGUARD_CONFIG", str(tmp_path / "gone.toml"))
    with pytest.raises(ConfigError, match=r"gone\.toml: settings file not found"):
        load_settings()


def test_explicit_path_beats_env_var(tmp_path, monkeypatch):
    env = write(tmp_path / "env.toml", '[asr]\nmodel = "base"\n')
    arg = write(tmp_path / "arg.toml", '[asr]\nmodel = "tiny"\n')
    monkeypatch.setenv("CALLGUARD_CONFIG", str(env))
    assert load_settings(arg).asr.model == "tiny"


def test_empty_env_var_means_unset(monkeypatch):
    monkeypatch.setenv("CALLGUARD_CONFIG", "")
    assert load_settings().asr.model == "bundled"


def test_full_file(tmp_path):
    path = write(tmp_path / "cfg" / "config.toml", """
        [asr]
        model = "large-v3-turbo"
        compute_type = "float32"
        cpu_threads = 4

        [rules]
        path = "/etc/callguard/rules.toml"

        [store]
        path = "/var/lib/callguard/cg.db"
    """)
    s = load_settings(path)
    assert s == Settings(asr=AsrSettings("large-v3-turbo", "float32", 4),
                         rules_path=Path("/etc/callguard/rules.toml"),
                         store_path=Path("/var/lib/callguard/cg.db"), source=path)


def test_empty_file_gives_defaults_with_source(tmp_path):
    path = write(tmp_path / "empty.toml", "")
    s = load_settings(path)
    assert s.asr == AsrSettings()
    assert s.rules_path == DEFAULT_RULES
    assert s.source == path


# --- paths --------------------------------------------------------------------------------

def test_relative_paths_resolve_against_the_config_folder(tmp_path):
    path = write(tmp_path / "etc" / "cg" / "config.toml", """
        [rules]
        path = "rules/mine.toml"
        [store]
        path = "../data/cg.db"
    """)
    s = load_settings(path)
    assert s.rules_path == tmp_path / "etc" / "cg" / "rules" / "mine.toml"
    assert s.store_path == tmp_path / "etc" / "cg" / ".." / "data" / "cg.db"


def test_home_relative_paths_are_expanded(tmp_path):
    path = write(tmp_path / "cfg.toml", '[store]\npath = "~/cg/cg.db"\n')
    assert load_settings(path).store_path == tmp_path / "home" / "cg" / "cg.db"


@pytest.mark.parametrize("value", ['""', "3", "[]"])
def test_bad_path_values(tmp_path, value):
    path = write(tmp_path / "cfg.toml", f"[rules]\npath = {value}\n")
    with pytest.raises(ConfigError, match=r"cfg\.toml: rules\.path must be a non-empty string"):
        load_settings(path)


# --- errors -------------------------------------------------------------------------------

def test_unknown_section_suggests(tmp_path):
    path = write(tmp_path / "cfg.toml", '[ars]\nmodel = "small"\n')
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert str(err.value) == f"{path}: unknown key 'ars' (did you mean 'asr'?)"


def test_unknown_key_suggests(tmp_path):
    path = write(tmp_path / "cfg.toml", "[asr]\ncpu_thread = 4\n")
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert str(err.value) == f"{path}: unknown key asr.'cpu_thread' (did you mean 'cpu_threads'?)"


def test_unknown_key_without_close_match_has_no_hint(tmp_path):
    path = write(tmp_path / "cfg.toml", "[store]\nzzz = 1\n")
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert "unknown key store.'zzz'" in str(err.value)
    assert "did you mean" not in str(err.value)


def test_section_must_be_a_table(tmp_path):
    path = write(tmp_path / "cfg.toml", 'rules = "x.toml"\n')
    with pytest.raises(ConfigError, match=r"cfg\.toml: \[rules\] must be a table"):
        load_settings(path)


@pytest.mark.parametrize("value", ['"4"', "0", "-1", "2.5", "true"])
def test_bad_cpu_threads(tmp_path, value):
    path = write(tmp_path / "cfg.toml", f"[asr]\ncpu_threads = {value}\n")
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert str(err.value) == f"{path}: asr.cpu_threads must be a positive integer"


@pytest.mark.parametrize("key", ["model", "compute_type"])
def test_string_keys_must_be_strings(tmp_path, key):
    path = write(tmp_path / "cfg.toml", f"[asr]\n{key} = 5\n")
    with pytest.raises(ConfigError, match=rf"asr\.{key} must be a non-empty string"):
        load_settings(path)


def test_toml_syntax_error_names_the_file(tmp_path):
    path = write(tmp_path / "broken.toml", "[asr\nmodel = \n")
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert str(err.value).startswith(f"{path}: ")
    assert err.value.__cause__ is None and err.value.__suppress_context__


def test_non_utf8_file_names_the_file(tmp_path):
    path = tmp_path / "latin.toml"
    path.write_bytes(b'[asr]\nmodel = "\xff"\n')
    with pytest.raises(ConfigError, match=r"latin\.toml: cannot read"):
        load_settings(path)


def test_config_error_is_a_value_error():
    assert issubclass(ConfigError, ValueError)


# --- resolve_model ------------------------------------------------------------------------

def test_resolve_model_folder_without_model_bin(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    with pytest.raises(ConfigError) as err:
        resolve_model(AsrSettings(model=str(folder)))
    assert str(err.value) == f"asr.model {str(folder)!r}: no model.bin in that folder"


def test_resolve_model_folder_with_model_bin(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model.bin").write_bytes(b"x")
    assert resolve_model(AsrSettings(model=str(folder))) == str(folder)


def test_resolve_model_expands_home(tmp_path):
    folder = tmp_path / "home" / "models" / "w"
    folder.mkdir(parents=True)
    (folder / "model.bin").write_bytes(b"x")
    assert resolve_model(AsrSettings(model="~/models/w")) == str(folder)


@pytest.mark.parametrize("name", ["small", "large-v3-turbo", "base", "distil-large-v3"])
def test_resolve_model_size_name_passes_through(name):
    assert resolve_model(AsrSettings(model=name)) == name


@pytest.mark.parametrize("name", ["garbage", "Small", "large-v4"])
def test_resolve_model_garbage(name):
    with pytest.raises(ConfigError) as err:
        resolve_model(AsrSettings(model=name))
    msg = str(err.value)
    assert "neither 'bundled', a model folder, nor a size name" in msg
    assert "large-v3-turbo" in msg


def test_resolve_model_empty_is_an_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # "" is Path("."): a folder without model.bin
    with pytest.raises(ConfigError, match=r"asr\.model ''"):
        resolve_model(AsrSettings(model=""))


def test_resolve_model_bundled_uses_the_cache_dir(tmp_path, monkeypatch):
    from callguard.asr import bundled

    seen = []

    def fake(cache_dir=None):
        seen.append(cache_dir)
        return tmp_path / "assembled"

    monkeypatch.setattr(bundled, "bundled_model_dir", fake)
    assert resolve_model(AsrSettings(), tmp_path / "c") == str(tmp_path / "assembled")
    assert seen == [tmp_path / "c"]


def test_demo_dir_constant_points_into_the_package():
    assert config.DEMO_DIR == ROOT / "callguard" / "demo"


def test_headset_devices_by_name_or_number(tmp_path):
    cfg = write(tmp_path / "c.toml", """
        [headset]
        input = "USB Headset"
        output = "3"
    """)
    headset = load_settings(cfg).headset
    assert headset.device(headset.input) == "USB Headset"
    assert headset.device(headset.output) == 3
    assert Settings().headset.device(Settings().headset.input) is None  # system default
    bad = write(tmp_path / "bad.toml", "[headset]\noutput = 3\n")
    with pytest.raises(ConfigError, match=r"bad\.toml: headset\.output must be a string"):
        load_settings(bad)
    typo = write(tmp_path / "typo.toml", "[headset]\ninptu = 'x'\n")
    with pytest.raises(ConfigError, match="did you mean 'input'"):
        load_settings(typo)
