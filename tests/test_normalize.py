from callguard.text.normalize import fold, is_gap_char, nfc, squeeze, squeeze_term


def test_fold_keeps_length_and_maps_fullwidth():
    text = "ＡＢｃ 씨발 ABC"
    out = fold(text)
    assert out == "abc 씨발 abc"
    assert len(out) == len(text)


def test_nfc_composes_decomposed_hangul():
    decomposed = "\u1109\u1175\u1107\u1161\u11af"  # 시발 as conjoining jamo
    assert nfc(decomposed) == "시발"


def test_squeeze_removes_spaces_punctuation_and_maps_back():
    sq = squeeze("씨 . 발 놈!")
    assert sq.text == "씨발놈"
    assert sq.origin == (0, 4, 6)
    assert sq.span(0, 2) == (0, 5)  # "씨 . 발" in the source


def test_digits_and_jamo_are_not_gaps():
    assert not is_gap_char("1")
    assert not is_gap_char("ㅅ")
    assert is_gap_char("~")
    assert is_gap_char("\u3000")  # ideographic space


def test_squeeze_term_folds_and_squeezes():
    assert squeeze_term(" 미친 Ｎ ") == "미친n"
