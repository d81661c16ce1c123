# ruff: noqa: RUF001  (typographic quotes are the point here)
"""Mentions: a listed phrase quoted or reported inside other words is a mention, and the model must agree."""

from __future__ import annotations

from pathlib import Path

import pytest

from safety_filter.detectors.rules import RulesDetector
from safety_filter.findings import Finding, Witness
from safety_filter.policy import decide
from safety_filter.text.mentions import Mentions, framed_quotes

from .helpers import make_policy

FIXTURES = Path(__file__).parent / "fixtures" / "rules"


def quoted(text: str) -> list[str]:
    return [text[a:b].strip() for a, b in framed_quotes(text)]


@pytest.mark.parametrize(("text", "expected"), [
    ("Mon chef a dit « zorbs are vermin » et je l'ai signalé.", ["zorbs are vermin"]),
    ('He wrote "zorbs are vermin" under my post, so I reported it.', ["zorbs are vermin"]),
    ("What does “zorblax” mean?", ["zorblax"]),
    ("Que veut dire ‘zorblax’ au juste ?", ["zorblax"]),
    ("What does 'zorblax' mean?", ["zorblax"]),
    ("« zorbs are vermin »", []),  # nothing but the quote: the phrase itself, not a mention
    ('"zorbs are vermin" they said', []),  # two words of frame are not enough
    ("I don't think they're zorblax, l'histoire dit non.", []),  # apostrophes are not quotes
    ("He said « zorbs are\nvermin » and left.", []),  # a passage does not cross a line break
])
def test_framed_quotes(text: str, expected: list[str]) -> None:
    assert quoted(text) == expected


@pytest.mark.parametrize(("text", "word", "expected"), [
    ("A guy in my class called me a zorblax today. I'm shaking.", "zorblax", True),
    ("Someone called my sister a dirty zorblax on the bus.", "zorblax", True),
    ("A kid keeps saying zorblax and the teachers do nothing.", "zorblax", True),
    ("Is the word zorblax a slur?", "zorblax", True),
    ("Un type m'a traité de zorblax aujourd'hui.", "zorblax", True),
    ("Que veut dire le mot zorblax ?", "zorblax", True),
    ("Zorblax, all of you. Go home.", "Zorblax", False),
    ("They called me a friend, but you are a zorblax.", "zorblax", False),  # past the frame's reach
])
def test_reported_words(text: str, word: str, expected: bool) -> None:
    start = text.index(word)
    assert Mentions(text).covers((start, start + len(word))) is expected


@pytest.mark.parametrize(("text", "claim", "expected"), [
    ("It's simply not true that zorbs are vermin.", "zorbs are vermin", True),
    ("It's a myth that all the zorbs are vermin.", "the zorbs are vermin", True),  # two words of gap
    ("Please stop spreading the lie that zorbs are vermin.", "zorbs are vermin", True),
    ("I'm not saying zorbs are vermin, I'm just saying look at the numbers.", "zorbs are vermin", False),  # a hedge
    ("Je dis pas que les zorbs sont des rats, je dis juste : regardez.", "les zorbs sont des rats", False),
    ("Je ne dis pas que les zorbs sont des rats, mais bon.", "les zorbs sont des rats", False),
    ("I would never call anyone a zorblax.", "zorblax", True),
    ("Je refuse de dire que les zorbs sont des rats.", "les zorbs sont des rats", True),
    ("C'est faux de dire que les zorbs sont des rats.", "les zorbs sont des rats", True),
    ("Je ne dirai jamais que les zorbs sont des rats.", "les zorbs sont des rats", True),
    ("Personne ne devrait penser que les zorbs sont des rats.", "les zorbs sont des rats", True),
    ("Je ne traiterais jamais personne de zorblax.", "zorblax", True),
    ("I think that zorbs are vermin.", "zorbs are vermin", False),  # asserted, not denied
    ("Zorbs are vermin, and it's not true that I lie.", "Zorbs are vermin", False),  # the frame follows
    ("Don't feel bad if you call someone a zorblax.", "zorblax", False),  # no denial of the word
    ("It's not true that the mayor lied; zorbs are vermin.", "zorbs are vermin", False),  # past the gap
])
def test_denied_claims(text: str, claim: str, expected: bool) -> None:
    start = text.index(claim)
    assert Mentions(text).covers((start, start + len(claim))) is expected


@pytest.fixture(scope="module")
def rules() -> RulesDetector:
    det = RulesDetector([FIXTURES / "invented.yaml"], mention_weight=0.4)
    det.load()
    return det


def test_an_entry_quoted_inside_other_words_weighs_at_most_mention_weight(rules: RulesDetector) -> None:
    framed, = rules.detect(["My boss said « zorbs are vermin » today and I reported him."])
    bare, = rules.detect(["« zorbs are vermin »"])
    used, = rules.detect(["Honestly zorbs are vermin, all of them."])
    assert [(f.rule_id, f.score) for f in framed] == [("invented:zorbs-are", 0.4)]
    assert framed[0].evidence is not None and framed[0].evidence.endswith("(mentioned)")
    assert [f.score for f in bare] == [1.0] and [f.score for f in used] == [1.0]
    off = RulesDetector([FIXTURES / "invented.yaml"], mention_weight=1.0)
    off.load()
    assert [f.score for f in off.detect(["My boss said « zorbs are vermin » today and I reported him."])[0]] == [1.0]
    assert rules.explain("What does 'zorblax' mean?")["matches"][0]["mentioned"] is True
    denied, = rules.detect(["It's simply not true that zorbs are vermin."])
    assert [f.score for f in denied] == [0.4]


def test_a_quoted_entry_blocks_only_when_the_model_is_a_second_witness(rules: RulesDetector) -> None:
    """hate blocks from 0.7: a quoted entry (0.4) alone does not, with a model score of 0.5 it does."""
    policy = make_policy()
    text = "Someone under my video wrote « zorbs are vermin ». Reported, and blocked."
    listed = rules.detect([text])[0]
    assert listed and all(f.witness is Witness.LIST for f in listed)

    def model(score: float) -> Finding:
        return Finding("hate", score, "classifier", (0, len(text)))

    assert not decide([*listed, model(0.05)], policy, "prompt").blocked  # counter-speech: model near 0
    assert decide([*listed, model(0.5)], policy, "prompt").blocked  # 1 - 0.6 * 0.5 = 0.7
