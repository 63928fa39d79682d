"""The syntax of a rule term.

A term is either plain text (``미친놈``, ``죽여 버리다``), which Kiwi analyses when the rule
needs morphemes, or a morpheme sequence with tags pinned by the admin: ``보지/NNG``,
``미치/VV+ㄴ/ETM+놈/NNB`` or ``가만/MAG 안/MAG 두/VV`` (pieces separated by ``+`` or spaces).
"""

from __future__ import annotations

import re

from callguard.errors import InputError
from callguard.text.analyzer import KIWI_TAGS, base_tag


class TermSyntaxError(InputError, ValueError):
    """A tagged term is malformed (message says how)."""


_SPLIT = re.compile(r"[+\s]+")


def parse_tagged(term: str) -> list[tuple[str, str | None]]:
    """``"보지/NNG"`` → ``[("보지", "NNG")]``; ``"미친놈"`` → ``[("미친놈", None)]``."""
    term = term.strip()
    if "/" not in term:
        return [(term, None)]
    out: list[tuple[str, str | None]] = []
    for piece in _SPLIT.split(term):
        if not piece:
            continue
        form, sep, tag = piece.rpartition("/")
        if not sep or not form or not tag:
            raise TermSyntaxError(f"{piece!r} is not 'form/TAG' (write every morpheme with "
                                  "its tag, e.g. '보지/NNG')")
        if base_tag(tag) not in KIWI_TAGS:
            raise TermSyntaxError(f"unknown part-of-speech tag {tag!r} in {piece!r} "
                                  "(Kiwi tags: NNG, NNP, VV, VA, MAG, IC, ...)")
        out.append((form, tag))
    return out
