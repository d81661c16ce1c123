# ruff: noqa: RUF001, RUF003  (look-alike characters are the point here)
"""The normaliser: every evasion class, and spans mapped back to the original text."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from safety_filter.text import model_view
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
    ("&#122;&#x6f;rbl&amp;ax", "zorbl&ax"),  # HTML entities (decimal, hex, named)
    ("&amp;#122;orblax", "zorblax"),  # double-encoded
    ("".join(chr(0xE0000 + ord(c)) for c in "zorblax"), "zorblax"),  # tag characters decoded
    ("z\x00o\x00r\x00b\x00l\x00a\x00x", "zorblax"),  # NUL between letters
    ("z\U0001F525o\U0001F525rblax", "zorblax"),  # emoji between letters
    ("z\u202eorb\u2066lax\u2069", "zorblax"),  # bidi override and isolates
    ("".join(chr(0x1F150 + ord(c) - 97) for c in "zorblax"), "zorblax"),  # negative circled
    ("".join(chr(0x1F170 + ord(c) - 97) for c in "zorblax"), "zorblax"),  # negative squared
    ("".join(chr(0x249C + ord(c) - 97) for c in "zorblax"), "zorblax"),  # parenthesized
    ("\ua4dc\ua4f3\ua4e3\ua4d0\ua4e1\ua4ee\ua4eb", "zorblax"),  # Lisu capitals
    ("z\u0585rbl\u0561x", "zorblwx"),  # Armenian oh; ayb looks like w (TR39)
    ("z\u0336o\u0336r\u0336blax", "zorblax"),  # strike-through combining marks
    ("z9rblax", "zgrblax"),  # heavier leet: 9 is g
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
    [*"abcxyz ZO.-_*!@$0134578\n\t'’&#;", "é", "è", "œ", "ß", "ﬁ", "Ａ", "а", "ο",
     "\u200b", "\u00ad", "\u0301", "ɴ", "𝐳", "🇿", "卐", "ᛋ", "\x00", "\U0001F525",
     "\U000e0061", "\U0001F150", "\u249c", "\ua4ee", "\u0585"]
)
_PIECES = st.sampled_from(["&amp;", "&#107;", "&#x6B;", "  ", "\n\n", "k i l l", "z-o-r", "zor_b", "a.b"])
TEXTS = (st.text(_ALPHABET, max_size=60) | st.text(max_size=40)
         | st.lists(_PIECES | st.text(_ALPHABET, max_size=5), max_size=12).map("".join))


@settings(max_examples=300, deadline=None, database=None)
@given(TEXTS)
def test_fast_and_offset_paths_agree(text: str) -> None:
    assert normalize_text(text) == normalize(text, offsets=True).text
    assert normalize_text(text, fuse=True) == normalize(text, offsets=True, fuse=True).text


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


def test_spaced_letters_keep_word_boundaries() -> None:
    """A wider (or different) gap between spaced-out letters separates words."""
    assert normalize_text("z o r b  g l i m  x") == "zorb glim x"
    assert normalize_text("z\no\nr\nb\n\ng\nl\ni\nm") == "zorb glim"
    assert normalize_text("z-o-r-b g-l-i-m") == "zorb glim"
    assert normalize_text("z o r b g l i m") == "zorbglim"  # one gap everywhere: nothing to tell words apart


def test_a_run_whose_gaps_all_differ_is_left_alone() -> None:
    """French inversions ("y a-t-il") look like spaced letters; joining them mangled the text,
    and which gap won a tie used to depend on the interpreter's hash seed."""
    assert normalize_text("Pourquoi y a-t-il du bruit ?") == "pourquoi y a t il du bruit ?"
    assert model_view("Pourquoi X a-t-il bloqué ?").text == "Pourquoi X a-t-il bloqué ?"
    assert normalize_text("z o-r b") == "zo rb"  # two equal gaps still join, the odd one separates


def test_views_do_not_depend_on_the_hash_seed() -> None:
    script = ("from safety_filter.text.normalize import normalize_text; from safety_filter.text import model_view;"
              "t='Que X a-t-il dit ? y a-t-on cru ? z.o-r b'; print(normalize_text(t)); print(model_view(t).text)")
    outputs = {subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                              env={**os.environ, "PYTHONHASHSEED": str(seed)}).stdout for seed in range(4)}
    assert len(outputs) == 1


def test_fused_view_joins_split_words() -> None:
    assert normalize_text("zor-blax zor.blax zor_blax") == "zor blax zor.blax zor blax"
    n = normalize("the zor-blax, zor.blax and zor_blax", fuse=True)
    assert n.text == "the zorblax, zorblax and zorblax"
    i = n.text.index("zorblax", 10)
    assert n.original_text(i, i + 7) == "zor.blax"
    assert normalize_text("ex-wife", fuse=True) == "exwife" and normalize_text("ex-wife") == "ex wife"


def test_confusables_come_from_tr39_data() -> None:
    """The look-alike table is the generated TR39 file, not a hand list: spot-check its shape."""
    from safety_filter.text.confusables import confusables

    table = confusables()
    assert len(table) > 700
    assert all(len(v) == 1 and v.isascii() and v.isalnum() for v in table.values())
    assert not any(k.isascii() for k in table)
    assert table["\u0430"] == "a" and table["\u0410"] == "A"  # Cyrillic a, A
    assert "é" not in table and "ç" not in table  # accents are folded by NFKD, French stays readable


def test_french_accents_survive_the_view() -> None:
    from safety_filter.text.view import model_view

    text = "Crème brûle\u0301e, l’été à Noël"
    view = model_view(text)
    assert view.text == "Crème brûlée, l’été à Noël"
    assert view.original_span(0, len(view.text)) == (0, len(text))


MODEL_VIEW_CASES = [
    ("Z\u200bo\u00adr\u202eb\x00lax", "Zorblax"),
    ("".join(chr(0xE0000 + ord(c)) for c in "Zorblax now"), "Zorblax now"),
    ("&#90;orblax &amp; co", "Zorblax & co"),
    ("Z\u043erbl\u0430x", "Zorblax"),  # Cyrillic look-alikes, case kept
    ("\U0001F169\U0001F15E\U0001F161\U0001F151\U0001F15B\U0001F150\U0001F167", "zorblax"),  # caseless: lowercase
    # Lisu has no Q: the capital left among caseless look-alikes is lowercased with its word only
    ("\ua4e2Q\ua4f4\ua4ee\ua4dc Zorb", "squaz Zorb"),
    ("z o r b  g l i m", "zorb glim"),
    ("z\U0001F525o\U0001F525r\U0001F525b", "zorb"),
    ("zor_blax and zor.blax", "zorblax and zorblax"),
    ("z0rbl4x g1im", "zorblax giim"),
    ("mp3 player, 5G, 1st floor, 10kg", "mp3 player, 5G, 1st floor, 10kg"),
    ("Hello, I love it \U0001F600.", "Hello, I love it \U0001F600."),
    ("ex-wife", "ex-wife"),
]


@pytest.mark.parametrize(("text", "expected"), MODEL_VIEW_CASES)
def test_model_view(text: str, expected: str) -> None:
    from safety_filter.text.view import model_view

    view = model_view(text)
    assert view.text == expected
    assert view.original_span(0, len(view.text)) == (0, len(text))


@settings(max_examples=300, deadline=None, database=None)
@given(TEXTS, st.data())
def test_model_view_spans_stay_inside_and_in_order(text: str, data: st.DataObject) -> None:
    from safety_filter.text.view import model_view

    view = model_view(text)
    m = len(view.text)
    start = data.draw(st.integers(0, m))
    end = data.draw(st.integers(start, m))
    s, e = view.original_span(start, end)
    assert 0 <= s <= e <= len(text)
    firsts = [view.original_span(k, k + 1)[0] for k in range(m)]
    assert firsts == sorted(firsts)


def test_sentence_spans() -> None:
    from safety_filter.text.sentences import sentence_spans

    text = "Hello Mr. Smith. How are you?  Fine!\n\nM. Dupont est là… Oui. e.g. this one\nlast line"
    assert [text[a:b] for a, b in sentence_spans(text)] == [
        "Hello Mr. Smith.", "How are you?", "Fine!", "M. Dupont est là…", "Oui.", "e.g. this one", "last line",
    ]
    assert sentence_spans("") == [] and sentence_spans("   ") == []
    assert sentence_spans("no end") == [(0, 6)]


def test_one_language_guesser_for_every_caller() -> None:
    from safety_filter import pii
    from safety_filter.text.language import guess_language

    assert pii.guess_language is guess_language
    assert guess_language("Bonjour, je voudrais une photo de ma collègue") == "fr"
    assert guess_language("Hello, I would like a photo of my colleague") == "en"
    assert guess_language("") == "en"


def test_presidio_failure_is_retried_after_a_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    from safety_filter import pii

    calls: list[int] = []
    now = [1000.0]

    def build() -> object:
        calls.append(1)
        if len(calls) == 1:
            raise OSError("transient")
        return "engine"

    monkeypatch.setattr(pii, "_build", build)
    monkeypatch.setattr(pii, "_analyzer", None)
    monkeypatch.setattr(pii, "_error", None)
    monkeypatch.setattr(pii, "_backoff", 0.0)
    monkeypatch.setattr(pii, "_retry_at", 0.0)
    monkeypatch.setattr(pii.time, "monotonic", lambda: now[0])
    with pytest.raises(pii.PIIUnavailable, match="transient"):
        pii.analyzer()
    with pytest.raises(pii.PIIUnavailable, match="transient"):
        pii.analyzer()  # within the backoff: no rebuild
    assert len(calls) == 1
    now[0] += pii.RETRY_FIRST + 0.01
    assert pii.analyzer() == "engine"  # retried, not cached forever
    assert len(calls) == 2
