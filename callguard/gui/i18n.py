"""Interface text in Korean (default) and English.

Each window module registers its own strings once, keyed by a short identifier::

    T = texts({"call.answer": ("받기", "Answer"), ...})   # (Korean, English)
    button.setText(T("call.answer"))
    label.setText(T("call.elapsed", m=3, s=7))            # str.format fields

The language is chosen at start-up (``set_language("en")``, ``callguard gui --lang en`` or
the ``CALLGUARD_LANG`` environment variable) and applies to windows built afterwards.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping

LANGUAGES = ("ko", "en")
_lang = os.environ.get("CALLGUARD_LANG", "ko")
if _lang not in LANGUAGES:
    _lang = "ko"
_all: dict[str, tuple[str, str]] = {}


def set_language(lang: str) -> None:
    global _lang
    if lang not in LANGUAGES:
        raise ValueError(f"unknown interface language {lang!r}; choose one of {LANGUAGES}")
    _lang = lang


def language() -> str:
    return _lang


def tr(key: str, **fields: object) -> str:
    """The text for ``key`` in the current language, formatted with ``fields``. An unknown
    key is returned as is (visible in the window, so a missing text is noticed)."""
    pair = _all.get(key)
    if pair is None:
        return key
    text = pair[0] if _lang == "ko" else pair[1]
    return text.format(**fields) if fields else text


def texts(table: Mapping[str, tuple[str, str]]) -> Callable[..., str]:
    """Register ``{key: (korean, english)}``; returns :func:`tr`. A key registered twice
    with different text is a programming error."""
    for key, pair in table.items():
        if key in _all and _all[key] != pair:
            raise ValueError(f"interface text {key!r} registered twice with different text")
        if len(pair) != 2 or not all(isinstance(p, str) and p for p in pair):
            raise ValueError(f"interface text {key!r} needs a Korean and an English text")
        _all[key] = pair
    return tr


def missing(lang: str = "en") -> list[str]:
    """Keys without text in ``lang`` (for the tests; always empty by construction)."""
    return [k for k, (ko, en) in _all.items() if not (ko if lang == "ko" else en)]


_MNEMONIC = re.compile(r"\(&(\w)\)|&(?=[^&])")


def plain(text: str) -> str:
    """``text`` without its mnemonic marker: ``"받기(&A)"`` → ``"받기"``, ``"&Answer"`` →
    ``"Answer"`` (for accessible names and tooltips; ``&&`` stays a literal ``&``)."""
    return _MNEMONIC.sub("", text).replace("&&", "&")


_translators: list = []  # kept alive: Qt does not own installed translators


def install_qt_translations(app, lang: str | None = None) -> bool:
    """Qt's own dialogs (Yes/No, Look in, File name, ...) in the interface language: load
    PySide6's shipped ``qtbase_<lang>`` translation into ``app``. English needs none.
    Returns whether a translation was installed."""
    from PySide6.QtCore import QLibraryInfo, QTranslator

    lang = lang or _lang
    if lang == "en":
        return False
    where = QLibraryInfo.path(QLibraryInfo.LibraryPath.TranslationsPath)
    translator = QTranslator(app)
    if not translator.load(f"qtbase_{lang}", where):
        return False
    app.installTranslator(translator)
    _translators.append(translator)
    return True
