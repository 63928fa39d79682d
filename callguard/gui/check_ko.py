"""`rules check` messages in Korean, for the rules editor's form and its problem list.

The check's own messages are English (they are the CLI's, and an admin's editor jumps to
their ``file:line``); the editor shows each problem in the interface language, in words a
non-programmer reads — beside the form field it concerns (which field, what is wrong, what
to do) and in the problem list under the tabs (:func:`shown`, :func:`summary`), with the
check's own line as the list item's tooltip. Patterns not known here are shown as the check
wrote them, marked as such.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from callguard.gui.i18n import language
from callguard.rules.problems import Problem, Severity

_FIELD_KO = {"id": "규칙 이름(id)", "category": "유형", "terms": "단어", "mode": "찾는 방식",
             "severity": "심각도", "exceptions": "예외", "enabled": "사용",
             "description": "설명", "gap": "gap", "broad": "넓은 단어 허용"}

# (pattern on the English message, Korean template, the form field it concerns)
_PATTERNS: tuple[tuple[re.Pattern[str], str, str], ...] = (
    (re.compile(r"term '(?P<term>[^']*)' is too broad: it is one syllable(?:[^;]*; it flags "
                r"(?P<n>\d+) of (?P<m>\d+) ordinary call-centre sentences[^:]*: "
                r"(?P<ex>.*?)\. Narrow)?"),
     "단어 '{term}'은(는) 한 글자라 평범한 말 속에서도 걸립니다{flags_ko}. 더 길게 쓰거나, "
     "정말 이 단어가 필요하면 '넓은 단어 허용'을 켜세요.", "terms"),
    (re.compile(r"term '(?P<term>[^']*)' (?:is|may be) too broad: it flags (?P<n>\d+) of "
                r"(?P<m>\d+) ordinary call-centre sentences[^:]*: (?P<ex>.*?)\. Narrow"),
     "단어 '{term}'은(는) 평범한 상담 문장 {m}개 중 {n}개에서 걸립니다 (예: {ex}). 더 좁게 "
     "쓰거나 예외를 넣고, 정말 필요하면 '넓은 단어 허용'을 켜세요.", "terms"),
    (re.compile(r"unknown key '(?P<key>[^']*)' in \[\[rule\]\](?: \(did you mean "
                r"'(?P<hint>[^']*)'\?\))?"),
     "'{key}'은(는) 규칙에 쓸 수 없는 항목입니다{hint_ko}. TOML 원문에서 고치세요.", ""),
    (re.compile(r"unknown key '(?P<key>[^']*)' in (?P<what>[^;(]*?)(?: \(did you mean "
                r"'(?P<hint>[^']*)'\?\))?(?:;|$)"),
     "'{key}'은(는) {what}에 쓸 수 없는 항목입니다{hint_ko}. TOML 원문에서 고치세요.", ""),
    (re.compile(r"^TOML syntax error: (?P<detail>.*)"),
     "TOML 문법 오류입니다 ({detail}). TOML 원문 탭에서 표시된 줄을 고치세요.", ""),
    (re.compile(r"prompt file (?P<file>'[^']*'|\"[^\"]*\") not found; prompt "
                r"'(?P<prompt>[^']*)' cannot be played"),
     "안내 음성 파일 {file}이(가) 없어 '{prompt}' 안내를 틀 수 없습니다. 파일을 규칙 파일과 "
     "같은 폴더에 두거나 경로를 고치세요.", ""),
    (re.compile(r"prompt file (?P<file>'[^']*'|\"[^\"]*\") \(.*\) cannot be played: "
                r"(?P<detail>.*)"),
     "안내 음성 파일 {file}을(를) 틀 수 없습니다 ({detail}). 다른 WAV 파일을 쓰세요.", ""),
    (re.compile(r"mode must be one of"), "찾는 방식을 목록에서 고르세요.", "mode"),
    (re.compile(r"enabled must be true or false"),
     "'사용'은 true(켬) 또는 false(끔)로 쓰세요.", "enabled"),
    (re.compile(r"broad must be true or false"),
     "'넓은 단어 허용'은 true(켬) 또는 false(끔)로 쓰세요.", "broad"),
    (re.compile(r"description must be a string"), "설명은 글로 쓰세요.", "description"),
    (re.compile(r"exception (?P<term>'[^']*'|\"[^\"]*\") has a part-of-speech tag"),
     "예외 {term}에 품사 표시(/NNG 등)가 있습니다. 예외는 글자 그대로 찾으므로 표시 없이 "
     "쓰세요.", "exceptions"),
    (re.compile(r"'gap' only applies to mode"),
     "'gap'은 '활용형 포함 구절' 방식에서만 씁니다.", "gap"),
    (re.compile(r"notice_at \((?P<a>[^)]*)\) must not be above warn_at \((?P<b>[^)]*)\)"),
     "상담사 주의 표시(notice_at {a})는 경고 안내(warn_at {b})보다 늦을 수 없습니다: "
     "고객이 경고를 듣기 전에 상담사가 먼저 알아야 합니다.", ""),
    (re.compile(r"final_at \((?P<a>[^)]*)\) must come after notice_at \((?P<b>[^)]*)\)"),
     "통화 시간 종료 안내(final_at {a})는 통화 시간 안내(notice_at {b})보다 뒤여야 "
     "합니다.", ""),
    (re.compile(r"warn_after plays the warning prompt"),
     "재통화 고객 경고(warn_after)는 경고 안내 음성을 틉니다: [prompts.warning]을 넣으세요.",
     ""),
    (re.compile(r"'(?P<key>[^']*)' must be at least (?P<min>\S+), not (?P<raw>.*)"),
     "'{key}'은(는) {min} 이상이어야 합니다 (지금: {raw}).", ""),
    (re.compile(r"(?P<what>.*) holds an empty string"), "{what}에 빈 항목이 있습니다.", ""),
    (re.compile(r"(?P<what>.*) must be a list of strings"),
     "{what}은(는) 글자 목록([\"...\", \"...\"])으로 쓰세요.", ""),
    (re.compile(r"term (?P<term>'[^']*'|\"[^\"]*\") has no content morpheme to match "
                r"\(Kiwi: (?P<shown>.*)\)"),
     "단어 {term}에는 찾을 내용 형태소가 없습니다 (Kiwi 분석: {shown}).", "terms"),
    (re.compile(r"Kiwi reads (?P<term>'[^']*'|\"[^\"]*\") as (?P<shown>.*?): it ends in"),
     "Kiwi는 {term}을(를) {shown}(으)로 읽습니다: 어미나 조사로 끝나 그 활용형만 찾습니다. "
     "뜻하는 품사를 붙이세요 (예: 단어/NNG).", "terms"),
    (re.compile(r"Kiwi splits (?P<term>'[^']*'|\"[^\"]*\") into (?P<shown>.*?); it matches"),
     "Kiwi는 {term}을(를) {shown}(으)로 나눕니다: 그렇게 나뉜 곳에서만 찾습니다.", "terms"),
    (re.compile(r"the file is not valid UTF-8 text"), "파일이 UTF-8 글자가 아닙니다.", ""),
    (re.compile(r"cannot read the rules file: (?P<detail>.*)"),
     "규칙 파일을 읽을 수 없습니다 ({detail}).", ""),
    (re.compile(r"could not compile the rules: (?P<detail>.*)"),
     "규칙을 준비하지 못했습니다 ({detail}).", ""),
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


_WHERE_KO = {"the top level": "파일 맨 위(표 밖)"}


def korean(problem: Problem) -> tuple[str, str]:
    """``(message, field)``: the problem in the interface language (Korean when the
    interface is Korean) and the form field it concerns (``""`` when none)."""
    for pattern, template, field in _PATTERNS:
        m = pattern.search(problem.message)
        if m is None:
            continue
        if language() != "ko":
            return problem.message, field
        fields = {k: _WHERE_KO.get(v, v) if k == "what" else v or ""
                  for k, v in m.groupdict().items()}
        fields["hint_ko"] = f" ('{fields['hint']}'을(를) 쓰려던 것인가요?)" \
            if fields.get("hint") else ""
        if fields.get("ex"):  # the sample sentences it would flag: "... and 32 more"
            fields["ex"] = re.sub(r" and (\d+) more$", r" 외 \1개", fields["ex"])
        fields["flags_ko"] = (f" (평범한 상담 문장 {fields['m']}개 중 {fields['n']}개에서 걸림, "
                              f"예: {fields['ex']})" if fields.get("n") else "")
        return template.format(**fields), field
    return problem.message, ""


def shown(problem: Problem) -> str:
    """One line of the editor's problem list: where (line, rule), how bad, what — in the
    interface language. (The check's own line, ``file:line: rule id: message``, is the
    item's tooltip.) A message not known here keeps the check's words, said to be them."""
    message, _field = korean(problem)
    ko = language() == "ko"
    if ko and message == problem.message:  # no Korean for it (yet): say what it is
        message = f"(검사 원문) {message}"
    parts = []
    if problem.line:
        parts.append(f"{problem.line}번째 줄" if ko else f"line {problem.line}")
    if problem.rule_id:
        parts.append(f"규칙 {problem.rule_id}" if ko else f"rule {problem.rule_id}")
    error = problem.severity is Severity.ERROR
    tag = ("오류" if error else "주의") if ko else ("error" if error else "warning")
    return " · ".join([*parts, f"{tag}: {message}"])


def summary(problems: Sequence[Problem], rules: int | None, enabled: int = 0) -> str:
    """The last line of the problem list, in the interface language: ``rules`` is the
    number of rules when the file is usable, ``None`` when it has errors."""
    errors = sum(1 for p in problems if p.severity is Severity.ERROR)
    warnings = len(problems) - errors
    if language() == "ko":
        if rules is None:
            return (f"오류 {errors}건: 이 규칙 파일은 쓸 수 없습니다. 저장·적용되지 않으며, "
                    "지금 쓰는 규칙이 그대로 유지됩니다.")
        return f"문제없음: 규칙 {rules}개 (사용 {enabled}개), 주의 {warnings}건"
    if rules is None:
        return (f"{errors} error(s): these rules cannot be used; they are neither saved nor "
                "applied, and the rules in force stay")
    return f"OK: {rules} rules ({enabled} enabled), {warnings} warning(s)"


def field_name(field: str) -> str:
    return _FIELD_KO.get(field, field) if language() == "ko" else field
