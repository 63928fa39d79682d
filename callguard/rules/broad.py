"""The broad-term guard: a rule term that would flag ordinary, polite call-centre talk.

A term of one syllable ("다", "놈") matches inside countless ordinary words; a term that
matches more than :data:`BROAD_SHARE` of :data:`ORDINARY_SENTENCES` (polite things
customers and counselors say every day, written for callguard) would warn and cut off
callers who did nothing wrong. Either is an error of ``callguard rules check`` (and the
rules editor) unless the rule says ``broad = true`` — and the message lists the ordinary
sentences the term would flag, so the admin sees why.
"""

from __future__ import annotations

from dataclasses import dataclass

from callguard.rules.terms import TermSyntaxError, parse_tagged
from callguard.text.normalize import squeeze_term

#: A term that flags more than this share of the ordinary sentences is too broad.
BROAD_SHARE = 0.02

#: Ordinary, polite call-centre talk (customers and counselors); no rule should flag any.
ORDINARY_SENTENCES: tuple[str, ...] = (
    # counselors
    "안녕하세요, 고객센터 상담사 김민지입니다.",
    "무엇을 도와드릴까요?",
    "네, 말씀하세요.",
    "잠시만 기다려 주시겠어요?",
    "확인해 드리겠습니다.",
    "주문 번호를 말씀해 주시겠어요?",
    "본인 확인을 위해 생년월일을 말씀해 주세요.",
    "기다려 주셔서 감사합니다.",
    "불편을 드려 정말 죄송합니다.",
    "바로 처리해 드리겠습니다.",
    "환불은 영업일 기준 삼 일 안에 들어갑니다.",
    "배송은 내일 오전 중에 도착할 예정입니다.",
    "다른 궁금하신 점은 없으신가요?",
    "문자로 안내해 드리겠습니다.",
    "담당 부서로 연결해 드리겠습니다.",
    "통화 연결이 잠시 끊길 수 있습니다.",
    "결제 내역을 확인해 보니 두 번 결제되었습니다.",
    "이용해 주셔서 감사합니다. 좋은 하루 보내세요.",
    "고객님, 제 말씀 들리시나요?",
    "요금제 변경은 다음 달부터 적용됩니다.",
    "해지 신청은 오늘 접수되었습니다.",
    "카드 분실 신고가 완료되었습니다.",
    "비밀번호는 문자로 받으신 번호로 다시 설정하시면 됩니다.",
    "그 부분은 제가 다시 한번 확인해 보겠습니다.",
    "말씀하신 내용 그대로 전달하겠습니다.",
    "통화가 녹음되고 있음을 알려 드립니다.",
    "기사님이 방문하기 전에 먼저 전화를 드릴 겁니다.",
    "교환은 상품을 받으신 날부터 칠 일 안에 가능합니다.",
    "포인트는 다음 주 월요일에 적립됩니다.",
    "지금 대기 중인 고객이 많아 조금 늦어졌습니다.",
    # customers
    "네 감사합니다.",
    "안녕하세요, 문의할 게 있어서 전화했어요.",
    "지난주에 주문한 물건이 아직 안 왔어요.",
    "환불은 언제쯤 되나요?",
    "주소를 바꾸고 싶은데요.",
    "이번 달 요금이 왜 이렇게 많이 나왔죠?",
    "인터넷이 어제부터 계속 끊겨요.",
    "예약을 다음 주로 미룰 수 있을까요?",
    "카드를 잃어버려서 정지하려고요.",
    "아 네, 잠깐만요. 번호 찾아볼게요.",
    "제 이름은 박서준이고 생년월일은 구십 년 삼월 이일이에요.",
    "그럼 언제 다시 전화 주시는 거예요?",
    "알겠습니다, 기다릴게요.",
    "혹시 상담원 연결 말고 문자로도 되나요?",
    "아이가 아파서 병원 예약을 바꿔야 해요.",
    "좀 천천히 다시 말씀해 주실래요?",
    "죄송한데 잘 안 들려서요, 다시 한 번만요.",
    "네 맞아요, 그 주소가 맞습니다.",
    "수고하세요, 감사합니다.",
    "배송 기사님 연락처를 알 수 있을까요?",
    "엄마 대신 전화드렸어요.",
    "그 상품 재고가 다시 들어오나요?",
    "영수증은 이메일로 받을 수 있나요?",
    "화면에 오류 메시지가 계속 떠요.",
    "이거 해지하면 위약금이 있나요?",
    "시간이 좀 걸려도 괜찮아요.",
    "아까 통화했던 사람인데요, 다시 연결됐네요.",
    "정말 친절하게 설명해 주셔서 고마워요.",
    "새로 나온 요금제가 궁금해서요.",
    "택배가 문 앞에 없어서 전화했어요.",
)


@dataclass(frozen=True, slots=True)
class BroadTerm:
    """Why ``term`` is too broad: ``one_syllable``, or the ordinary sentences it flags
    (``flagged``, of ``sample`` sentences)."""

    term: str
    one_syllable: bool
    flagged: tuple[str, ...]
    sample: int = len(ORDINARY_SENTENCES)

    @property
    def share(self) -> float:
        return len(self.flagged) / self.sample if self.sample else 0.0

    @property
    def too_many(self) -> bool:
        return self.share > BROAD_SHARE

    def message(self, shown: int = 3) -> str:
        """The check's message (English, as every ``rules check`` message)."""
        why = []
        if self.one_syllable:
            why.append("it is one syllable, which can match inside ordinary words")
        if self.flagged:
            examples = ", ".join(repr(s) for s in self.flagged[:shown])
            more = f" and {len(self.flagged) - shown} more" if len(self.flagged) > shown else ""
            why.append(f"it flags {len(self.flagged)} of {self.sample} ordinary call-centre "
                       f"sentences (more than {BROAD_SHARE:.0%}"
                       f"{'' if self.too_many else ' would be an error'}): {examples}{more}")
        verdict = "is too broad" if self.one_syllable or self.too_many else "may be too broad"
        return (f"term {self.term!r} {verdict}: " + "; ".join(why)
                + ". Narrow it, or write broad = true in this rule if you mean it")


def one_syllable(term: str) -> bool:
    """Whether ``term`` is one letter or syllable: one morpheme (a pinned tag aside) of a
    single character, e.g. "다", "놈", "씹/NNG", "ㅄ". A sequence of pinned morphemes
    ("ㄴ/ETM+놈/NNB") is not: its context narrows it."""
    try:
        morphs = parse_tagged(term)
    except TermSyntaxError:
        return False  # reported as a syntax error
    if len(morphs) != 1:
        return False
    return len(squeeze_term(morphs[0][0])) <= 1
