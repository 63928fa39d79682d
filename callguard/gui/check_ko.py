"""`rules check` messages in Korean, for the rules editor's form.

The check's own messages are English (they are the CLI's, and an admin's editor jumps to
their ``file:line``); the form shows each problem of the selected rule beside it in the
interface language, in words a non-programmer reads: which field, what is wrong, what to do.
Patterns not known here are shown as the check wrote them.
"""

from __future__ import annotations

import re

from callguard.gui.i18n import language
from callguard.rules.problems import Problem

_FIELD_KO = {"id": "규칙 이름(id)", "category": "유형", "terms": "단어", "mode": "찾는 방식",
             "severity": "심각도", "exceptions": "예외", "enabled": "사용",
             "description": "설명", "gap": "gap", "broad": "넓은 단어 허용"}

# (pattern on the English message, Korean template, the form field it concerns)
_PATTERNS: tuple[tuple[re.Pattern[str], str, str], ...] = (
    (re.compile(r"term '(?P<term>[^']*)' is too broad: it is one syllable"),
     "단어 '{term}'은(는) 한 글자라 평범한 말 속에서도 걸립니다. 더 길게 쓰거나, 정말 이 "
     "단어가 필요하면 '넓은 단어 허용'을 켜세요.", "terms"),
    (re.compile(r"term '(?P<term>[^']*)' (?:is|may be) too broad: it flags (?P<n>\d+) of "
                r"(?P<m>\d+) ordinary call-centre sentences[^:]*: (?P<ex>.*?)\. Narrow"),
     "단어 '{term}'은(는) 평범한 상담 문장 {m}개 중 {n}개에서 걸립니다 (예: {ex}). 더 좁게 "
     "쓰거나 예외를 넣고, 정말 필요하면 '넓은 단어 허용'을 켜세요.", "terms"),
    (re.compile(r"unknown key '(?P<key>[^']*)' in \[\[rule\]\](?: \(did you mean "
                r"'(?P<hint>[^']*)'\?\))?"),
     "'{key}'은(는) 규칙에 쓸 수 없는 항목입니다{hint_ko}. TOML 원문에서 고치세요.", ""),
    (re.compile(r"category must be one of"), "유형을 목록에서 고르세요.", "category"),
    (re.compile(r"rule has no 'terms'|terms must list at least one keyword"),
     "단어를 하나 이상 넣으세요.", "terms"),
    (re.compile(r"term '(?P<term>[^']*)' has a part-of-speech tag"),
     "단어 '{term}'에 품사 표시(/NNG 등)가 있습니다. 품사 표시는 '형태소 단위'나 '활용형 "
     "포함 구절' 방식에서만 씁니다: 찾는 방식을 바꾸거나 표시를 지우세요.", "terms"),
    (re.compile(r"term '(?P<term>[^']*)' has no letters to match"),
     "단어 '{term}'에 글자가 없습니다.", "terms"),
    (re.compile(r"duplicate rule id"), "같은 규칙 이름(id)이 이미 있습니다.", "id"),
    (re.compile(r"every rule needs an 'id'"),
     "규칙 이름(id)은 영문자·숫자·'_'·'-'·'.'로 쓰세요.", "id"),
    (re.compile(r"severity must be 1-10"), "심각도는 1부터 10까지입니다.", "severity"),
    (re.compile(r"term '(?P<term>[^']*)' duplicates a term of (?P<where>.*)"),
     "단어 '{term}'이(가) 다른 곳에도 있습니다 ({where}).", "terms"),
)


def korean(problem: Problem) -> tuple[str, str]:
    """``(message, field)``: the problem in the interface language (Korean when the
    interface is Korean) and the form field it concerns (``""`` when none)."""
    for pattern, template, field in _PATTERNS:
        m = pattern.search(problem.message)
        if m is None:
            continue
        if language() != "ko":
            return problem.message, field
        fields = {k: v or "" for k, v in m.groupdict().items()}
        fields["hint_ko"] = f" ('{fields['hint']}'을(를) 쓰려던 것인가요?)" \
            if fields.get("hint") else ""
        return template.format(**fields), field
    return problem.message, ""


def field_name(field: str) -> str:
    return _FIELD_KO.get(field, field) if language() == "ko" else field
