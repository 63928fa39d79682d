import pytest

from callguard.rules.terms import TermSyntaxError, parse_tagged


def test_plain_term_is_left_for_kiwi():
    assert parse_tagged(" 미친놈 ") == [("미친놈", None)]


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        ("보지/NNG", [("보지", "NNG")]),
        ("미치/VV+ㄴ/ETM+놈/NNB", [("미치", "VV"), ("ㄴ", "ETM"), ("놈", "NNB")]),
        ("가만/MAG 안/MAG 두/VV", [("가만", "MAG"), ("안", "MAG"), ("두", "VV")]),
        ("걷/VV-I", [("걷", "VV-I")]),
    ],
)
def test_tagged_terms(term, expected):
    assert parse_tagged(term) == expected


@pytest.mark.parametrize("term", ["보지/XYZ", "보지/NNG+마", "/NNG", "보지/"])
def test_bad_tagged_terms(term):
    with pytest.raises(TermSyntaxError):
        parse_tagged(term)
