"""One glossary (issue 15, item 9): every Korean interface text and the README's desktop-app
section use its terms — none of the names it replaces, and never a bare "관리자" (which
one: 상담 관리자 or 시스템 관리자?) — and the README shows the glossary."""

from __future__ import annotations

import re
from pathlib import Path

import callguard.gui.app
import callguard.gui.counselor
import callguard.gui.login
import callguard.gui.minibar
import callguard.gui.rest
import callguard.gui.review
import callguard.gui.rules_editor  # noqa: F401  (each registers its texts)
from callguard.gui import i18n
from callguard.gui.glossary import GLOSSARY, avoided, bare_manager

ROOT = Path(__file__).resolve().parents[2]


def desktop_section() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("### The desktop app")
    return text[start:text.index("\n### ", start + 1)]


def test_every_interface_text_uses_the_glossary():
    bad = []
    for key, (ko, _en) in i18n._all.items():
        for name, term in avoided().items():
            if name in ko:
                bad.append(f"{key}: {name!r} -> {term.ko!r}")
        if bare_manager(ko):
            bad.append(f"{key}: bare 관리자 in {ko!r}")
    assert bad == []
    assert len(i18n._all) > 200


def test_the_readme_uses_and_shows_the_glossary():
    section = desktop_section()
    prose = "\n".join(line for line in section.splitlines()
                      if not line.startswith("|"))  # the glossary's table names them
    korean = " ".join(re.findall(r"[\uac00-\ud7a3][\uac00-\ud7a3 ·()]*", prose))
    assert [n for n in avoided() if n in korean] == []
    assert not bare_manager(prose)
    for term in GLOSSARY:
        assert f"| {term.ko} | {term.en} |" in section, term.concept


def test_the_checks_can_fail():
    assert bare_manager("관리자에게 알리기") and not bare_manager("상담 관리자에게 알리기")
    assert "최종 안내" in avoided() and avoided()["적중"].ko == "감지"
