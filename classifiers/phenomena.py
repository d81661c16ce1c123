"""Expand the phenomenon templates (classifiers/data/phenomena/) into labelled, split rows.

    python -m classifiers.phenomena [--per-template 48] [--seed 14]

Each template (one line of `templates_<lang>.jsonl`) is one phenomenon a moderator checks
(derogation, counter-speech that quotes hate, a victim asking for help...), with a few
hand-written paraphrases whose `{SLOT}` placeholders are filled from `slots_<lang>.json` and
`slurs.json`. The train/dev/test split is made per template, so no template (and none of its
paraphrases) is shared across splits, and it is deterministic: every template draws from its
own seeded generator, so adding a template changes no other template's rows.

Slot syntax: `{NAME}` a filler, `{NAME^}` capitalised, `{NAME.key}` a field of a filler that is
an object (French agreement: `{G.de}` des femmes, `{G.e}` feminine suffix, `{GSG.il}` elle). A
slot keeps one filler per row, and `{e}`/`{x}` inside a filler agree with the row's group.
"""

from __future__ import annotations

import argparse
import json
import random
import re
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / "data" / "phenomena"
LANGS = ("en", "fr")
SPLITS = ("train", "dev", "test")
SLOT_RE = re.compile(r"\{([A-Z][A-Z0-9]*)(?:\.([a-z]+))?(\^?)\}")
AGREEMENT_RE = re.compile(r"\{([ex])\}")
EN_ARTICLE_RE = re.compile(r"\b([Aa]) (?=[aeioAEIO])")
CONTRACT_MARK = "\x00"
FR_CONTRACT_RE = re.compile(r"\b(de|à) \x00(les|le) ")
FR_CONTRACTIONS = {("de", "les"): "des", ("de", "le"): "du", ("à", "les"): "aux", ("à", "le"): "au"}
LEET = {"a": "4", "e": "3", "i": "1", "o": "0", "s": "5", "t": "7"}
VARIANTS = ("leet", "spaced", "dropped", "masked", "split")


def load_templates(lang: str) -> list[dict]:
    """The templates of one language; a template without paraphrases or phenomenon is an error."""
    path = DATA / f"templates_{lang}.jsonl"
    templates = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        tpl = json.loads(line)
        if not tpl.get("t") or not tpl.get("phenomenon") or "labels" not in tpl:
            raise ValueError(f"{path}:{number}: a template needs `id`, `phenomenon`, `labels` and `t`")
        templates.append(tpl)
    return templates


def load_slots(lang: str) -> dict[str, list]:
    slots = json.loads((DATA / f"slots_{lang}.json").read_text(encoding="utf-8"))
    slurs = json.loads((DATA / "slurs.json").read_text(encoding="utf-8"))[lang]
    return {**slots, **slurs}


def _agree(value: str, group: object) -> str:
    """French adjectives in fillers agree with the row's group: `{e}` -> e or '', `{x}` -> ses or x."""
    fem = isinstance(group, dict) and group.get("e") == "e"
    return AGREEMENT_RE.sub(lambda m: ("e" if fem else "") if m.group(1) == "e" else ("ses" if fem else "x"), value)


def fill(pattern: str, slots: dict[str, list], rng: random.Random, lang: str) -> tuple[str, list[str]]:
    """One text from a pattern, and the filler strings used (where spelling variants go)."""
    chosen: dict[str, object] = {}
    used: list[str] = []

    def sub(m: re.Match) -> str:
        name, key, cap = m.groups()
        if name not in slots:
            raise KeyError(f"unknown slot {{{name}}} in {pattern!r}")
        if name not in chosen:
            chosen[name] = rng.choice(slots[name])
        value = chosen[name]
        if isinstance(value, dict):
            value = _french_fields(value)[key or "v"]
        elif key:
            raise KeyError(f"slot {{{name}}} has no field {key!r} in {pattern!r}")
        value = _agree(value, chosen.get("G", chosen.get("GSG")))
        used.append(value)
        value = value[:1].upper() + value[1:] if cap else value
        return CONTRACT_MARK + value if pattern[: m.start()].endswith(("de ", "à ")) else value

    text = SLOT_RE.sub(sub, pattern)
    if lang == "en":
        text = EN_ARTICLE_RE.sub(r"\1n ", text)
    else:  # "de" / "à" before a filler's article contract: de les -> des, à le -> au
        text = FR_CONTRACT_RE.sub(lambda m: FR_CONTRACTIONS[m.group(1), m.group(2)] + " ", text)
    return text.replace(CONTRACT_MARK, ""), used


def _french_fields(filler: dict) -> dict:
    noun = filler.get("n", "")
    partitive = ("d'" if noun[:1].lower() in "aeiouhéè" else "de ") + noun
    return {"q": partitive, **filler}


def spelling_variant(text: str, fillers: list[str], rng: random.Random) -> tuple[str, str]:
    """The text with one slot-filled word respelt (leet, spaced, dropped, masked or split letters)."""
    words = sorted({w for f in fillers for w in re.findall(r"\w{4,}", f) if w in text}, key=lambda w: (-len(w), w))
    if not words:
        words = sorted(set(re.findall(r"\w{5,}", text)), key=lambda w: (-len(w), w))
    if not words:
        return text, "plain"
    word = rng.choice(words[:2])
    family = rng.choice(VARIANTS)
    j = rng.randrange(1, len(word) - 1)
    if family == "leet":
        respelt = "".join(LEET.get(c, c) if c.lower() in LEET and rng.random() < 0.7 else c for c in word)
    elif family == "spaced":
        respelt = " ".join(word)
    elif family == "dropped":
        respelt = word[:j] + word[j + 1 :]
    elif family == "masked":
        vowels = [k for k, c in enumerate(word) if c.lower() in "aeiouyéè" and k > 0] or [j]
        k = rng.choice(vowels)
        respelt = word[:k] + "*" + word[k + 1 :]
    else:
        respelt = word[:j] + rng.choice(" .-") + word[j:]
    if respelt == word:
        return text, "plain"
    return re.sub(rf"\b{re.escape(word)}\b", respelt, text, count=1), family


def assign_splits(templates: list[dict], seed: int) -> dict[str, str]:
    """Template id -> split: per (language, phenomenon, batch), a fifth of the templates each to dev and test.

    A template's optional `batch` (default 1) keeps splits stable as templates are added: a later
    batch is shuffled and split on its own, so no earlier template changes split (reshuffling all
    of them together would move old test rows into train).
    """
    by_group: dict[tuple[str, str, int], list[str]] = {}
    for tpl in templates:
        by_group.setdefault((tpl["lang"], tpl["phenomenon"], int(tpl.get("batch", 1))), []).append(tpl["id"])
    splits: dict[str, str] = {}
    for (lang, phenomenon, batch), ids in sorted(by_group.items()):
        if len(ids) < 3:
            raise ValueError(f"{lang}/{phenomenon} batch {batch}: {len(ids)} templates; at least 3 are needed for train/dev/test")
        ids = sorted(ids)
        random.Random(f"{seed}:{lang}:{phenomenon}" + ("" if batch == 1 else f":{batch}")).shuffle(ids)
        held = max(1, round(len(ids) / 5))
        for k, tid in enumerate(ids):
            splits[tid] = "test" if k < held else "dev" if k < 2 * held else "train"
    return splits


def expand(per_template: int = 48, seed: int = 14, variant_rate: float = 0.25) -> list[dict]:
    rows: list[dict] = []
    templates = []
    for lang in LANGS:
        slots = load_slots(lang)
        for tpl in load_templates(lang):
            tpl = {**tpl, "lang": lang}
            templates.append(tpl)
            rows.extend(_template_rows(tpl, slots, per_template, seed, variant_rate))
    splits = assign_splits(templates, seed)
    ids = [t["id"] for t in templates]
    if len(ids) != len(set(ids)):
        raise ValueError(f"duplicate template ids: {sorted(k for k, v in Counter(ids).items() if v > 1)}")
    for row in rows:
        row["split"] = splits[row["template"]]
    return rows


def _template_rows(tpl: dict, slots: dict, per_template: int, seed: int, variant_rate: float) -> list[dict]:
    rng = random.Random(f"{seed}:{tpl['id']}")
    seen: set[str] = set()
    rows = []
    for tries in range(per_template * 30):
        if len(seen) >= per_template:
            break
        pattern = tpl["t"][tries % len(tpl["t"])]
        text, fillers = fill(pattern, slots, rng, tpl["lang"])
        if text in seen:
            continue
        seen.add(text)
        base = {"labels": list(tpl["labels"]), "lang": tpl["lang"], "phenomenon": tpl["phenomenon"],
                "template": tpl["id"], "source": "phenomena"}
        rows.append({"text": text, **base, "variant": "plain"})
        if rng.random() < variant_rate:
            respelt, family = spelling_variant(text, fillers, rng)
            if family != "plain" and respelt not in seen:
                seen.add(respelt)
                rows.append({"text": respelt, **base, "variant": family})
    return rows


def stats(rows: list[dict]) -> dict:
    out: dict = {"rows": len(rows), "by_split": {}, "by_lang_phenomenon": {}}
    for split in SPLITS:
        part = [r for r in rows if r["split"] == split]
        out["by_split"][split] = {lang: sum(r["lang"] == lang for r in part) for lang in LANGS}
    counts = Counter((r["lang"], r["phenomenon"], r["split"]) for r in rows)
    for (lang, phenomenon, split), n in sorted(counts.items()):
        out["by_lang_phenomenon"].setdefault(lang, {}).setdefault(phenomenon, {})[split] = n
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-template", type=int, default=48, help="distinct fills per template (default: 48)")
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--out", type=Path, default=DATA, help="folder for train/dev/test.jsonl and stats.json")
    args = parser.parse_args()
    rows = expand(args.per_template, args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        with (args.out / f"{split}.jsonl").open("w", encoding="utf-8") as handle:
            for row in rows:
                if row["split"] == split:
                    handle.write(json.dumps({k: v for k, v in row.items() if k != "split"}, ensure_ascii=False) + "\n")
    (args.out / "stats.json").write_text(json.dumps(stats(rows), indent=1) + "\n", encoding="utf-8")
    print(json.dumps(stats(rows)["by_split"]))


if __name__ == "__main__":
    main()
