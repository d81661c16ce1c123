"""Expand the team-written templates (classifiers/data/templates/*.jsonl) into data rows.

Templates and slot fillers are data (jsonl/json), not code. Each template id holds several
hand-written paraphrases with `{SLOT}` placeholders; a row keeps its template id so that
prepare.py can split by template (near-copies never straddle train/dev/test).

Slot syntax: `{NAME}` picks a filler for NAME in the row's language; `{NAME^}` capitalises it.
French group fillers are objects (noun phrase + agreement forms) and expose derived slots:
`{G}` les femmes, `{Gde}`/`{Gde2}` des femmes, `{Gà}` aux femmes, `{Gq}` de femmes,
`{e}` agreement suffix, `{x}` (x / ses), `{tous}`, `{ils}`; `{NPTx}` gives "aux moustiques".
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "data" / "templates"
SLOT_RE = re.compile(r"\{([A-Za-zà0-9]+)(\^?)\}")

# Character-level obfuscations applied to a sample of rows of EVERY class (so that
# obfuscation alone is never a cue for harm).
LEET = {"a": "4", "e": "3", "i": "1", "o": "0", "s": "$"}


def _fr_group(d: dict) -> dict:
    noun = d["G"].split(" ", 1)[1]
    fem = d["e"] == "e"
    q = ("d'" + noun) if noun[0].lower() in "aeiouhéè" else ("de " + noun)
    return {**d, "Gde": "des " + noun, "Gde2": "des " + noun, "Gà": "aux " + noun, "Gq": q, "x": "ses" if fem else "x"}


def _npt_x(t: str) -> str:
    if t.startswith("les "):
        return "aux " + t[4:]
    if t.startswith("la "):
        return "à la " + t[3:]
    return "à " + t


def _fill(pattern: str, lang: str, slots: dict, rng: random.Random) -> str:
    chosen: dict[str, object] = {}

    def pick(name: str):
        base = {"Gde": "G", "Gde2": "G", "Gà": "G", "Gq": "G", "e": "G", "x": "G", "tous": "G", "ils": "G", "NPTx": "NPT"}.get(name, name)
        if base not in chosen:
            chosen[base] = rng.choice(slots[lang][base])
        v = chosen[base]
        if isinstance(v, dict):
            return _fr_group(v)[name]
        if name == "NPTx":
            return _npt_x(v)
        return v

    def sub(m: re.Match) -> str:
        val = pick(m.group(1))
        return val[:1].upper() + val[1:] if m.group(2) else val

    return SLOT_RE.sub(sub, pattern)


def obfuscate(text: str, rng: random.Random) -> str:
    mode = rng.randrange(4)
    words = text.split(" ")
    idx = [i for i, w in enumerate(words) if len(w) > 4]
    if not idx:
        return text
    for i in rng.sample(idx, k=min(len(idx), 2)):
        w = words[i]
        if mode == 0:  # leetspeak
            words[i] = "".join(LEET.get(c, c) if rng.random() < 0.6 else c for c in w)
        elif mode == 1:  # dropped letter
            j = rng.randrange(1, len(w) - 1)
            words[i] = w[:j] + w[j + 1 :]
        elif mode == 2:  # spaced letters
            words[i] = " ".join(w)
        else:  # doubled letter / asterisk
            j = rng.randrange(1, len(w) - 1)
            words[i] = w[:j] + ("*" if rng.random() < 0.5 else w[j]) + w[j + 1 :]
    return " ".join(words)


def expand(per_template: int = 40, seed: int = 13, obf_rate: float = 0.12) -> list[dict]:
    rng = random.Random(seed)
    slots = json.loads((TEMPLATES / "slots.json").read_text(encoding="utf-8"))
    rows: list[dict] = []
    for path in sorted(TEMPLATES.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            tpl = json.loads(line)
            seen: set[str] = set()
            patterns = tpl["t"]
            has_slots = any(SLOT_RE.search(p) for p in patterns)
            target = per_template if has_slots else len(patterns)
            tries = 0
            while len(seen) < target and tries < target * 20:
                tries += 1
                p = patterns[tries % len(patterns)] if not has_slots else rng.choice(patterns)
                text = _fill(p, tpl["lang"], slots, rng)
                if text in seen:
                    continue
                seen.add(text)
                variant = text
                style = "plain"
                r = rng.random()
                if r < obf_rate:
                    variant, style = obfuscate(text, rng), "obfuscated"
                elif r < obf_rate + 0.15:
                    variant, style = text.lower().rstrip(".!?"), "lowercase"
                rows.append(
                    {
                        "text": variant,
                        "labels": list(tpl["labels"]),
                        "lang": tpl["lang"],
                        "source": "written",
                        "template": tpl["id"],
                        "kind": tpl["kind"],
                        "style": style,
                    }
                )
    return rows


def main() -> None:
    rows = expand()
    out = HERE / "data" / "written.jsonl"
    with out.open("w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"wrote {len(rows)} rows to {out}")


if __name__ == "__main__":
    main()
