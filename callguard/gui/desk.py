"""The counselor's desk settings: the protect hotkey, the mini bar, hold-to-confirm, the rest.

They live in their own small file beside the settings file, ``gui.toml`` (by default
``~/.config/callguard/gui.toml``; ``callguard gui --desk FILE`` for another), because they
are the desk's and not the agent's: ``callguard run`` never reads them. Every key is
optional::

    protect_hotkey = "Ctrl+Alt+P"   # system-wide, also while the CRM is in front; "" = off
    mini_bar = false                # start with the always-on-top mini bar shown
    hold_to_confirm_s = 0           # > 0: Protect must be held this long (off by default)
    rest_minutes = 10               # the rest offered after a flagged or crisis call

A hotkey is written as Qt writes it: modifiers (``Ctrl``, ``Alt``, ``Shift``, ``Meta``)
and one key (a letter, a digit, ``F1``–``F24``, ``Pause``, ``Insert``, ``Home``, ...)
joined by ``+``; it needs at least one modifier unless the key is a function key, so that a
word typed in the CRM can never hang up a caller.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from callguard.config import ConfigError, default_config_path

DEFAULT_HOTKEY = "Ctrl+Alt+P"
DESK_FILE = "gui.toml"

_MODIFIERS = {"ctrl": "<ctrl>", "control": "<ctrl>", "alt": "<alt>", "shift": "<shift>",
              "meta": "<cmd>", "win": "<cmd>", "super": "<cmd>"}
_NAMED = {"pause": "<pause>", "insert": "<insert>", "ins": "<insert>", "home": "<home>",
          "end": "<end>", "pgup": "<page_up>", "pageup": "<page_up>",
          "pgdown": "<page_down>", "pagedown": "<page_down>", "scrolllock": "<scroll_lock>",
          "print": "<print_screen>", "space": "<space>", "esc": "<esc>", "escape": "<esc>"}
_KEYS = ("protect_hotkey", "mini_bar", "hold_to_confirm_s", "rest_minutes")


@dataclass(frozen=True)
class DeskSettings:
    protect_hotkey: str = DEFAULT_HOTKEY
    mini_bar: bool = False
    hold_to_confirm_s: float = 0.0
    rest_minutes: float = 10.0
    source: Path | None = None

    @property
    def rest_s(self) -> float:
        return self.rest_minutes * 60.0


def hotkey_to_pynput(text: str) -> str:
    """``"Ctrl+Alt+P"`` → ``"<ctrl>+<alt>+p"`` (pynput's :class:`HotKey` syntax). Raises
    :class:`ValueError` for a combination callguard does not take."""
    parts = [p.strip() for p in text.split("+")]
    if len(parts) < 1 or any(not p for p in parts):
        raise ValueError(f"{text!r} is not a key combination such as {DEFAULT_HOTKEY!r}")
    *mods, key = parts
    out = []
    for m in mods:
        if m.lower() not in _MODIFIERS:
            raise ValueError(f"{m!r} in {text!r} is not a modifier (Ctrl, Alt, Shift, Meta)")
        if _MODIFIERS[m.lower()] in out:
            raise ValueError(f"{m!r} twice in {text!r}")
        out.append(_MODIFIERS[m.lower()])
    low = key.lower()
    function = low.startswith("f") and low[1:].isdigit() and 1 <= int(low[1:]) <= 24
    if function:
        out.append(f"<{low}>")
    elif low in _NAMED:
        out.append(_NAMED[low])
    elif len(key) == 1 and key.isascii() and key.isalnum():
        out.append(low)
    else:
        raise ValueError(f"{key!r} in {text!r} is not a key callguard takes (a letter, a "
                         "digit, F1-F24, Pause, Insert, Home, End, PgUp, PgDown)")
    if not mods and not function:
        raise ValueError(f"{text!r} needs Ctrl, Alt, Shift or Meta: a plain key typed in "
                         "another program would hang up the caller")
    return "+".join(out)


def desk_path(settings_source: Path | None = None) -> Path:
    """``gui.toml`` beside the settings file in use (or the default settings file)."""
    return (settings_source or default_config_path()).parent / DESK_FILE


def load_desk_settings(path: Path | None = None, *, explicit: bool = False) -> DeskSettings:
    """The desk settings in ``path`` (default: :func:`desk_path`); defaults when the file
    does not exist, unless ``explicit`` (a path the user gave must exist)."""
    path = path or desk_path()
    if not path.is_file():
        if explicit:
            raise ConfigError(f"{path}: desk settings file not found")
        return DeskSettings()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read ({exc})") from None
    for key in data:
        if key not in _KEYS:
            raise ConfigError(f"{path}: unknown key {key!r} (known: {', '.join(_KEYS)})")
    hotkey = data.get("protect_hotkey", DEFAULT_HOTKEY)
    if not isinstance(hotkey, str):
        raise ConfigError(f"{path}: protect_hotkey must be text such as "
                                f"{DEFAULT_HOTKEY!r}, or \"\" for none")
    if hotkey.strip():
        try:
            hotkey_to_pynput(hotkey)
        except ValueError as exc:
            raise ConfigError(f"{path}: protect_hotkey: {exc}") from None
    mini = data.get("mini_bar", False)
    if not isinstance(mini, bool):
        raise ConfigError(f"{path}: mini_bar must be true or false")
    hold = data.get("hold_to_confirm_s", 0)
    if isinstance(hold, bool) or not isinstance(hold, int | float) or not 0 <= hold <= 5:
        raise ConfigError(f"{path}: hold_to_confirm_s must be seconds from 0 (off) to 5")
    rest = data.get("rest_minutes", 10)
    if isinstance(rest, bool) or not isinstance(rest, int | float) or not 1 <= rest <= 120:
        raise ConfigError(f"{path}: rest_minutes must be minutes from 1 to 120")
    return DeskSettings(hotkey.strip(), mini, float(hold), float(rest), path)
