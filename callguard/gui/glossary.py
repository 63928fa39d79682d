"""One glossary of the interface's Korean terms: one name per concept, used by every string
of the windows and by the README's desktop-app section (a test checks both).

Each entry: the concept, the Korean term, the English term, and the names it replaces
(avoid them: each one either meant something else to some reader, or read oddly).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Term:
    concept: str
    ko: str
    en: str
    avoid: tuple[str, ...] = ()
    note: str = ""


GLOSSARY: tuple[Term, ...] = (
    Term("counselor", "상담사", "counselor", ("상담원",),
         "the person on the phone; never 'agent' (in call centres the agent is the counselor)"),
    Term("supervisor", "상담 관리자", "supervisor", ("운영자",),
         "reviews calls; '관리자' alone only after 상담/시스템"),
    Term("admin", "시스템 관리자", "admin", ("운영자",), "edits the rules, makes accounts"),
    Term("callguard itself", "callguard", "callguard", ("자동 종료",),
         "what hung up when callguard did"),
    Term("protect", "보호", "protect", (), "the counselor's button and hotkey"),
    Term("warning", "경고 안내", "warning", (), "the prompt played to the caller"),
    Term("final notice", "종료 안내", "final notice", ("최종 안내",),
         "the prompt before callguard hangs up"),
    Term("category", "유형", "category", ("범주",), "욕설, 모욕, 위협, 성희롱, 위기"),
    Term("hit", "감지", "hit", ("적중",), "a rule matched the caller's words"),
    Term("crisis", "위기", "crisis", (), "self-harm or suicide; never called 폭언"),
    Term("abuse", "폭언", "abuse", (), "욕설·모욕·위협·성희롱 together"),
    Term("flagged call", "검토 대상 통화", "flagged call", ("표시된 통화",),
         "a call with a hit, a warning, a protect press or a crisis alert"),
    Term("verdict", "검토 결과", "verdict", (), "폭언 확인 / 부당한 종료 / 위기 대응 / 메모"),
    Term("rest", "휴식", "rest", (), "offered after an incident, and from its button"),
    Term("dial pad", "전화 걸기", "dial pad", ("다이얼",)),
    Term("call time", "통화 시간", "call time", ("길이",), "how long a call lasted"),
    Term("test sentence", "예문 확인", "test a sentence", ("문장 시험",)),
    Term("rejected recognition", "인식 결과 제외", "rejected", ("인식 거부",),
         "the hallucination guard left the text out"),
    Term("end of audio", "음성 파일 끝", "end of audio", ("오디오 끝",),
         "a file-fed call whose audio ran out"),
)


def avoided() -> dict[str, Term]:
    """Every name to avoid, with the entry that replaces it."""
    return {name: term for term in GLOSSARY for name in term.avoid}


def bare_manager(text: str) -> bool:
    """Whether ``text`` says '관리자' without saying which (상담 or 시스템)."""
    import re

    return re.search(r"(?<!상담 )(?<!시스템 )관리자", text) is not None
