"""No symbol the installed fonts lack (issue 15, item 7): every character of every
interface text (and the few symbols drawn outside them) that is not plain ASCII, Hangul or
a Hangul letter is in some installed font — "⛔" drew as an empty box."""

from __future__ import annotations

import unicodedata

from PySide6.QtGui import QFont, QFontDatabase, QRawFont

import callguard.gui.app
import callguard.gui.counselor
import callguard.gui.login
import callguard.gui.minibar
import callguard.gui.rest
import callguard.gui.review
import callguard.gui.rules_editor  # noqa: F401  (each registers its texts)
from callguard.gui import i18n
from callguard.gui.counselor import MASK


def _symbols() -> set[str]:
    chars = {MASK, "✓"}  # drawn outside the texts: the mask, the review's reviewed mark
    for ko, en in i18n._all.values():
        chars.update(ch for ch in ko + en if ord(ch) > 127
                     and not "\uac00" <= ch <= "\ud7a3" and not "\u3130" <= ch <= "\u318f")
    return chars


def test_every_symbol_is_in_an_installed_font(qtbot):
    fonts = [QRawFont.fromFont(QFont(family)) for family in QFontDatabase.families()]
    assert fonts, "no fonts installed"
    missing = [f"{ch!r} {unicodedata.name(ch, '?')}" for ch in sorted(_symbols())
               if not any(f.supportsCharacter(ord(ch)) for f in fonts)]
    assert missing == []
    assert "⛔" not in _symbols() and "📞" not in _symbols()
