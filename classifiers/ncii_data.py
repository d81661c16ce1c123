"""Generate the templated part of the NCII data set (issue 6), reproducibly.

    python classifiers/ncii_data.py            # writes classifiers/data/ncii/generated.jsonl
    python classifiers/ncii_data.py --seed 7 --per-template 10 --out /tmp/x.jsonl

Inputs are data files, never Python source:
  classifiers/data/ncii/source/templates_{en,fr}.yaml   templates per kind, each with its split
  classifiers/data/ncii/source/slots.yaml               slot values (relations, media, platforms...)
  blocklists/_ncii/public_figures.yaml                   real public figures (non-ambiguous names)

Every row carries the id of the template it came from and that template's split, so no
template straddles train and test. Variation: slot values, target type (public figure,
relation, invented private person), gender agreement, politeness, casing, typos.
Hand-written paraphrases live in classifiers/data/ncii/handwritten.jsonl (not generated).
`--readme` rewrites the count tables in classifiers/data/ncii/README.md from all jsonl files.
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import re
import string
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "classifiers" / "data" / "ncii"
SOURCE = DATA / "source"
FIGURES = ROOT / "blocklists" / "_ncii" / "public_figures.yaml"

SLOT_RE = re.compile(r"\{([A-Za-z_0-9]+)\}")
POSITIVE_KINDS = ("nudify_request", "share_threat", "voyeurism", "doxx_sexual", "compliant_completion")
NEGATIVE_KINDS = ("fictional_consensual", "news_policy", "victim_help", "sex_education", "nonsexual_named_person")
# Which labels each kind carries by default; a template may override with its own `labels`.
KIND_LABELS = {
    "nudify_request": ["non_consensual", "sexual"],
    "share_threat": ["non_consensual"],
    "voyeurism": ["non_consensual"],
    "doxx_sexual": ["non_consensual", "sexual"],
    "compliant_completion": ["non_consensual", "sexual"],
    "fictional_consensual": ["sexual"],
    "news_policy": [],
    "victim_help": [],
    "sex_education": [],
    "nonsexual_named_person": [],
}


POLITICIANS: list[str] = []


def load_figures() -> list[tuple[str, str]]:
    doc = yaml.safe_load(FIGURES.read_text(encoding="utf-8"))
    POLITICIANS[:] = [f["name"] for f in doc["figures"]
                      if f.get("kind") in ("politician", "activist") and f.get("gender", "f") == "f"]
    return [(f["name"], f.get("gender", "f")) for f in doc["figures"] if not f.get("ambiguous")]


def typo(text: str, rng: random.Random) -> str:
    """One keyboard-style slip in a random word of 4+ letters."""
    words = text.split(" ")
    idx = [i for i, w in enumerate(words) if len(w) >= 4 and w.isalpha()]
    if not idx:
        return text
    i = rng.choice(idx)
    w = words[i]
    j = rng.randrange(1, len(w) - 1)
    op = rng.choice(("drop", "swap", "double"))
    if op == "drop":
        w = w[:j] + w[j + 1 :]
    elif op == "swap":
        w = w[: j - 1] + w[j] + w[j - 1] + w[j + 1 :]
    else:
        w = w[:j] + w[j] + w[j:]
    words[i] = w
    return " ".join(words)


def pick_target(lang: str, slots: dict, figures: list[tuple[str, str]], rng: random.Random, kind: str) -> tuple[str, str, str]:
    """(text, gender, target_type) for the {target} slot."""
    r = rng.random()
    s = slots[lang]
    if r < 0.45:
        name, g = rng.choice(figures)
        return name, g, "figure"
    if r < 0.80:
        if rng.random() < 0.85:
            return rng.choice(s["relations_f"]), "f", "relation"
        return rng.choice(s["relations_m"]), "m", "relation"
    if rng.random() < 0.85:
        return rng.choice(s["invented_f"]), "f", "invented"
    return rng.choice(s["invented_m"]), "m", "invented"


def fill(template: str, lang: str, kind: str, slots: dict, figures, rng: random.Random) -> tuple[str, str]:
    s = slots[lang]
    target, gender, ttype = pick_target(lang, slots, figures, rng, kind)
    names = SLOT_RE.findall(template)
    if "target" not in names and "figure" in names:
        ttype = "figure"
    if "target" not in names and "rel" in names and "figure" not in names:
        ttype = "relation"
    gender_words = slots["gender"][lang][gender]
    fict = rng.sample(s["fict"], 2)
    tools = rng.sample(s["tool"], 2)
    values: dict[str, str] = {
        "target": target,
        "figure": rng.choice(figures)[0] if "target" in names else None,  # type: ignore[dict-item]
        "rel": None,  # type: ignore[dict-item]
        "fict": fict[0],
        "fict2": fict[1],
        "tool": tools[0],
        "tool2": tools[1],
        "pp": rng.choice(s["please_pre"]),
        "ps": rng.choice(s["please_post"]),
    }
    if values["figure"] is None:
        name, g = rng.choice(figures)
        values["figure"] = name
        if "target" not in names:
            gender_words = slots["gender"][lang][g]
    values["figure_f"] = rng.choice(POLITICIANS)
    rel_g = "f" if rng.random() < 0.85 else "m"
    values["rel"] = rng.choice(s["relations_f"] if rel_g == "f" else s["relations_m"])
    if "target" not in names and "rel" in names and "figure" not in names:
        gender_words = slots["gender"][lang][rel_g]
    for key in ("media", "platform", "place", "public_place", "amount", "country", "family"):
        values[key] = rng.choice(s[key])
    values.update(gender_words)

    def sub(m: re.Match[str]) -> str:
        return values[m.group(1)]

    text = SLOT_RE.sub(sub, template)
    # Elision: "qu'il"/"qu'elle" come from "qu'{elle}"; "de le" never occurs in templates.
    text = re.sub(r"\s+", " ", text).strip()
    if lang == "fr":  # elision before vowel-initial names and "il"
        text = re.sub(r"\b([dD])e (?=[AEIOUYÉÈ])", r"\1'", text)
        text = re.sub(r"\b([sS])i il\b", r"\1'il", text)
    if text and text[0] in string.ascii_lowercase and rng.random() < 0.3 and kind != "compliant_completion":
        text = text[0].upper() + text[1:]
    return text, ttype


def variants(text: str, kind: str, rng: random.Random) -> str:
    if kind != "compliant_completion" and rng.random() < 0.15:
        text = text.lower()
    if rng.random() < 0.12:
        text = typo(text, rng)
    if rng.random() < 0.15 and text.endswith((".", "?", "!")) and kind != "compliant_completion":
        text = text[:-1]
    return text


def generate(seed: int, per_template: int) -> list[dict]:
    rng = random.Random(seed)
    slots = yaml.safe_load((SOURCE / "slots.yaml").read_text(encoding="utf-8"))
    figures = load_figures()
    rows: list[dict] = []
    seen: set[str] = set()
    for lang in ("en", "fr"):
        doc = yaml.safe_load((SOURCE / f"templates_{lang}.yaml").read_text(encoding="utf-8"))
        for kind, block in doc.items():
            labels = block.get("labels", KIND_LABELS[kind])
            labels = KIND_LABELS.get(kind, labels)
            for tpl in block["templates"]:
                has_slots = bool(SLOT_RE.search(tpl["text"]))
                n = per_template if has_slots else max(2, per_template // 3)
                made = 0
                for _ in range(n * 6):
                    if made >= n:
                        break
                    text, ttype = fill(tpl["text"], lang, kind, slots, figures, rng)
                    text = variants(text, kind, rng)
                    key = text.casefold()
                    if key in seen:
                        continue
                    seen.add(key)
                    made += 1
                    rows.append(
                        {
                            "text": text,
                            "labels": list(tpl.get("labels", labels)),
                            "lang": lang,
                            "source": "written-ncii",
                            "template": tpl["id"],
                            "kind": kind,
                            "split": tpl["split"],
                            "target": ttype if has_slots else "none",
                        }
                    )
    return rows


def load_all() -> list[dict]:
    rows = []
    for path in sorted(DATA.glob("*.jsonl")):
        with path.open(encoding="utf-8") as fh:
            rows += [json.loads(line) for line in fh if line.strip()]
    return rows


def count_table(rows: list[dict]) -> str:
    c = collections.Counter((r["kind"], r["lang"], r["split"]) for r in rows)
    kinds = [k for k in POSITIVE_KINDS + NEGATIVE_KINDS]
    out = ["| kind | en train | en test | fr train | fr test | total |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
    totals = collections.Counter()
    for k in kinds:
        cells = [c[(k, lang, sp)] for lang in ("en", "fr") for sp in ("train", "test")]
        for i, v in enumerate(cells):
            totals[i] += v
        out.append(f"| {k} | " + " | ".join(map(str, cells)) + f" | {sum(cells)} |")
    cells = [totals[i] for i in range(4)]
    out.append("| **total** | " + " | ".join(map(str, cells)) + f" | {sum(cells)} |")
    return "\n".join(out)


def check_split(rows: list[dict]) -> None:
    splits: dict[str, set[str]] = collections.defaultdict(set)
    for r in rows:
        splits[r["template"]].add(r["split"])
    bad = [t for t, s in splits.items() if len(s) > 1]
    if bad:
        raise SystemExit(f"templates in both splits: {bad}")
    texts: dict[str, set[str]] = collections.defaultdict(set)
    for r in rows:
        texts[r["text"].casefold()].add(r["split"])
    dup = [t for t, s in texts.items() if len(s) > 1]
    if dup:
        raise SystemExit(f"texts in both splits: {dup[:5]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=6)
    ap.add_argument("--per-template", type=int, default=9)
    ap.add_argument("--out", type=Path, default=DATA / "generated.jsonl")
    ap.add_argument("--readme", action="store_true", help="print the count table over all jsonl files")
    args = ap.parse_args()
    if args.readme:
        rows = load_all()
        check_split(rows)
        print(count_table(rows))
        return
    rows = generate(args.seed, args.per_template)
    check_split(rows)
    with args.out.open("w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"wrote {len(rows)} rows to {args.out}")
    print(count_table(rows))


if __name__ == "__main__":
    main()
