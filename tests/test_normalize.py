# ruff: noqa: RUF001, RUF003  (look-alike characters are the point here)
"""The normaliser: every evasion class, and spans mapped back to the original text."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from safety_filter.text.normalize import (
    normalize,
    normalize_term,
    normalize_term_runs,
    normalize_text,
    runs_compatible,
)

# (obfuscated spelling, what it normalises to) -- invented word "zorblax" and ordinary words
EVASIONS = [
    ("ZORBLAX", "zorblax"),  # case
    ("ＺＯＲＢＬＡＸ", "zorblax"),  # fullwidth (NFKC)
    ("𝐳𝐨𝐫𝐛𝐥𝐚𝐱", "zorblax"),  # mathematical bold (NFKC)
    ("ⓩⓞⓡⓑⓛⓐⓧ", "zorblax"),  # circled letters (NFKC)
    ("zоrblах", "zorblax"),  # Cyrillic о and х
    ("zοrblαx", "zorblax"),  # Greek ο and α
    ("ᴢᴏʀʙʟᴀx", "zorblax"),  # small capitals
    ("zor\u200bbl\u200dax", "zorblax"),  # zero-width space / joiner
    ("zor\u00adblax", "zorblax"),  # soft hyphen
    ("zo\u034frblax", "zorblax"),  # combining grapheme joiner
    ("zórblàx", "zorblax"),  # accents
    ("zo\u0301rbla\u0300x", "zorblax"),  # combining accents
    ("z0rbl4x", "zorblax"),  # leetspeak digits
    ("z@rbl4x", "zarblax"),  # @ is a
    ("$orblax", "sorblax"),  # $ is s
    ("zorbl!x", "zorblix"),  # ! inside a word is i
    ("z o r b l a x", "zorblax"),  # spaced letters
    ("z.o.r.b.l.a.x", "zorblax"),  # dotted
    ("z-o-r-b-l-a-x", "zorblax"),  # dashed
    ("z_o_r_b_l_a_x", "zorblax"),  # underscores
    ("z*o*r*b*l*a*x", "zorblax"),  # asterisks
    ("z . o . r . b . l . a . x", "zorblax"),  # spaced dots
    ("z-0-r-b-1-4-x", "zorbiax"),  # dashed leet
    ("zooorrrbllaaax", "zorblax"),  # repeated letters
    ("🇿🇴🇷🇧🇱🇦🇽", "zorblax"),  # regional indicator letters
]


@pytest.mark.parametrize(("text", "expected"), EVASIONS)
def test_evasion_normalises(text: str, expected: str) -> None:
    n = normalize(text)
    assert n.text == expected
    assert normalize(text, offsets=True).text == expected
    # the whole normalised text maps back to the whole original
    assert n.original_span(0, len(n.text)) == (0, len(text))


def test_french_accents_and_ligatures() -> None:
    assert normalize_text("Crème brûlée, cœur, NAÏVE, Ça, où, ÉTÉ") == "creme brule, coeur, naive, ca, ou, ete"
    assert normalize_text("Grand Remplacement") == normalize_text("grand remplacement")
    assert normalize_text("l’état") == "l'etat"  # typographic apostrophe


def test_leetspeak_leaves_numbers_alone() -> None:
    assert normalize_text("1488") == "1488"
    assert normalize_text("in 2024 we paid $100 for 3.14 kg") == "in 2024 we paid $100 for 3.14 kg"
    assert normalize_text("14/88") == "14/88"
    assert normalize_text("h4te") == "hate"


def test_trailing_exclamation_is_punctuation() -> None:
    assert normalize_text("zorblax!") == "zorblax!"
    assert normalize_text("zorblax!!!") == "zorblax!!!"
    assert normalize_text("wow! zorblax") == "wow! zorblax"


def test_whitespace_and_hyphens_squeezed() -> None:
    assert normalize_text("glimmet   \n\t fraud") == "glimet fraud"
    assert normalize_text("anti-zorb") == "anti zorb"
    assert normalize_text("snake_case_name") == "snake case name"


def test_ordinary_text_survives() -> None:
    assert normalize_text("Scunthorpe") == "scunthorpe"
    assert normalize_text("kill a python process") == "kil a python proces"
    # two-letter words are not joined as "spaced letters"
    assert normalize_text("I am on it") == "i am on it"


def test_list_terms_normalise_like_text() -> None:
    for term in ["hello", "Zorblax", "glimmet fraud", "crème", "1488", "h3llo"]:
        assert normalize_term(term) == normalize_text(term).strip()
    assert normalize_term("hello") == normalize_text("hello") == normalize_text("heeello")


def test_repeated_letters_keep_their_run_lengths() -> None:
    n = normalize("haaate and hello")
    assert n.text == "hate and helo"
    assert n.runs == {1: 3, 11: 2}
    text, runs = normalize_term_runs("hello")
    assert (text, runs) == ("helo", {2: 2})
    # a text run must equal the entry's, or be a clear stretch (3+, longer)
    hello = normalize("hello")
    assert runs_compatible(hello.runs, 0, runs, 4)
    helo = normalize("helo")
    assert not runs_compatible(helo.runs, 0, runs, 4)
    stretched = normalize("helllo")
    assert runs_compatible(stretched.runs, 0, runs, 4)
    good = normalize("good")
    _, god_runs = normalize_term_runs("god")
    assert not runs_compatible(good.runs, 0, god_runs, 3)


def test_span_maps_back_to_obfuscated_original() -> None:
    text = "look: z.0.r.b.l.a.x here"
    n = normalize(text)
    i = n.text.index("zorblax")
    s, e = n.original_span(i, i + 7)
    assert text[s:e] == "z.0.r.b.l.a.x"
    assert n.original_text(i, i + 7) == "z.0.r.b.l.a.x"


def test_span_covers_removed_characters() -> None:
    text = "a zoo\u200brrrblax b"
    n = normalize(text)
    i = n.text.index("zorblax")
    assert n.original_text(i, i + 7) == "zoo\u200brrrblax"


def test_span_with_expanding_characters() -> None:
    text = "ﬁne Straße ok"  # ligature fi (1 char -> 2), ß -> ss
    n = normalize(text)
    assert n.text == "fine strase ok"
    i = n.text.index("strase")
    assert n.original_text(i, i + 6) == "Straße"
    assert n.original_text(0, 1) == "ﬁ"


def test_empty_and_edge_spans() -> None:
    n = normalize("")
    assert n.text == ""
    assert n.original_span(0, 0) == (0, 0)
    n = normalize("abc")
    assert n.original_span(3, 3) == (3, 3)
    with pytest.raises(ValueError):
        n.original_span(2, 5)


# --- property tests --------------------------------------------------------------------------

_ALPHABET = st.sampled_from(
    [*"abcxyz ZO.-_*!@$0134578\n\t'’", "é", "è", "œ", "ß", "ﬁ", "Ａ", "а", "ο",
     "\u200b", "\u00ad", "\u0301", "ɴ", "𝐳", "🇿", "卐", "ᛋ"]
)
TEXTS = st.text(_ALPHABET, max_size=60) | st.text(max_size=40)


@settings(max_examples=300, deadline=None, database=None)
@given(TEXTS)
def test_fast_and_offset_paths_agree(text: str) -> None:
    assert normalize_text(text) == normalize(text, offsets=True).text


def test_stable_on_normalised_words() -> None:
    # not idempotent in general (collapsing "OO.O.O" creates single letters that a second pass
    # joins), but ordinary words and phrases are stable
    for text in ["zorblax", "glimmet fraud", "grand remplacement", "hello world", "crème brûlée", "1488"]:
        once = normalize_text(text)
        assert normalize_text(once) == once


@settings(max_examples=300, deadline=None, database=None)
@given(TEXTS, st.data())
def test_spans_stay_inside_and_cover_the_characters(text: str, data: st.DataObject) -> None:
    n = normalize(text)
    m = len(n.text)
    start = data.draw(st.integers(0, m))
    end = data.draw(st.integers(start, m))
    s, e = n.original_span(start, end)
    assert 0 <= s <= e <= len(text)
    if start < end:
        # every normalised character comes from inside the mapped span ...
        for k in range(start, end):
            ks, ke = n.original_span(k, k + 1)
            assert s <= ks < ke <= e
        # ... and consecutive characters map to non-decreasing positions
        firsts = [n.original_span(k, k + 1)[0] for k in range(start, end)]
        assert firsts == sorted(firsts)


@settings(max_examples=200, deadline=None, database=None)
@given(st.text(st.sampled_from(list("abcdefghij")), min_size=3, max_size=8), st.sampled_from(EVASIONS))
def test_planted_word_found_at_its_original_span(word: str, evasion: tuple[str, str]) -> None:
    obfuscated, expected = evasion
    text = f"{word} {obfuscated} {word}"
    n = normalize(text)
    i = n.text.find(expected)
    assert i >= 0
    s, e = n.original_span(i, i + len(expected))
    assert text[s:e] == obfuscated
